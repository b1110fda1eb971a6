"""Shared fixtures.  Nothing here touches the network or $HOME."""

import json
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="mpl-"))
os.environ.setdefault("DOPR_FIGURES", tempfile.mkdtemp(prefix="figs-"))

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def random_tiny_dir(tmp_path_factory):
    """A tiny Llama with random weights and the char tokenizer, on disk."""
    from transformers import LlamaForCausalLM

    from dopr_lite.tiny import build_tokenizer, tiny_config

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random_tiny")
    tok = build_tokenizer()
    model = LlamaForCausalLM(tiny_config(len(tok), hidden=32, layers=2,
                                         heads=2))
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def embedded_policy():
    """The committed embedded tiny model, full weights, no adapter."""
    from dopr_lite.policy import load_policy

    return load_policy(use_lora=False)


_RELIABILITY: dict = {}


@pytest.fixture(scope="session")
def reliability_log():
    """Counts the reliability tests report (fuzz cases, kill points, bad
    inputs); written to $DOPR_RELIABILITY_LOG at the end of the session
    (``bench/reliability.py`` reads it)."""
    return _RELIABILITY


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("DOPR_RELIABILITY_LOG")
    if path and _RELIABILITY:
        with open(path, "w") as fh:
            json.dump(_RELIABILITY, fh, indent=1)


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 with nothing cached, and every network connection
    refused loudly.  Returns ``(attempts, attempt)``: patch ``attempt`` over
    any loader a test must not reach; ``attempts`` lists the calls made."""
    import socket

    attempts = []

    def attempt(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a connection or a load was attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE",
                        str(tmp_path / "hf"))  # nothing cached
    monkeypatch.setattr(socket.socket, "connect", attempt)
    monkeypatch.setattr(socket.socket, "connect_ex", attempt)
    return attempts, attempt
