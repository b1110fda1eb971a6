import sys

import pytest
import torch

from dopr_lite.errors import ConfigError, PolicyLoadError
from dopr_lite.policy import (load_policy, pick_device, reference_mode,
                              resolve_source)


def _has_mps():
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def test_pick_device_auto_on_this_machine():
    """What torch reports here decides "auto": cuda, else mps, else cpu."""
    expected = ("cuda" if torch.cuda.is_available()
                else "mps" if _has_mps() else "cpu")
    assert pick_device("auto").type == expected
    assert pick_device("cpu").type == "cpu"


@pytest.mark.parametrize(("cuda", "mps", "expected"), [
    (True, True, "cuda"), (True, False, "cuda"),
    (False, True, "mps"), (False, False, "cpu")])
def test_pick_device_auto_order(monkeypatch, cuda, mps, expected):
    """Each branch of cuda > mps > cpu, with torch's answers faked."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto").type == expected


@pytest.mark.parametrize(("device", "fake", "message"), [
    ("cuda", "cuda", "CUDA is not available"),
    ("mps", "mps", "MPS is not available")])
def test_pick_device_refuses_a_missing_device(monkeypatch, device, fake,
                                              message):
    """An explicit request for a device torch says is missing is refused,
    never replaced by another."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=message):
        pick_device(device)
    assert pick_device("cpu").type == "cpu"


def test_pick_device_honours_an_available_request(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("cuda").type == "cuda"
    assert pick_device("cuda:1") == torch.device("cuda", 1)


def test_offline_hub_id_fails_fast_with_clear_message(monkeypatch,
                                                      offline_hub):
    """What "fast" means, asserted directly: with HF_HUB_OFFLINE=1 and a
    hub id that is not cached, the first attempt raises the advice, before
    any connection, download or load (so no retry loop can start)."""
    import dopr_lite.policy

    attempts, attempt = offline_hub
    for auto in ("AutoTokenizer", "AutoModelForCausalLM"):
        monkeypatch.setattr(getattr(dopr_lite.policy, auto),
                            "from_pretrained", attempt)
    with pytest.raises(PolicyLoadError) as err:
        load_policy(model="Qwen/Qwen2.5-0.5B-Instruct")
    assert attempts == []
    assert "Qwen/Qwen2.5-0.5B-Instruct" in str(err.value)
    assert "HF_HUB_OFFLINE" in str(err.value)


def test_missing_local_dir_is_named():
    with pytest.raises(PolicyLoadError, match="does not exist"):
        resolve_source("./no/such/model")


def test_lora_update_changes_only_adapter(random_tiny_dir):
    from dopr_lite.grpo import grpo_update
    from dopr_lite.rollout import generate_rollouts

    pol = load_policy(model=random_tiny_dir, lora_r=4)
    trainable = pol.trainable_parameters()
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in pol.model.named_parameters()}
    torch.manual_seed(0)
    ro = generate_rollouts(pol.model, pol.tokenizer, ["1+1=?\n"], 4,
                           max_new_tokens=5)
    opt = torch.optim.AdamW(list(trainable.values()), lr=1e-2)
    grpo_update(pol.model, opt, ro, torch.tensor([1.0, -1.0, 1.0, -1.0]),
                max_new_tokens=5)
    changed = {n for n, p in pol.model.named_parameters()
               if not torch.equal(p, before[n])}
    assert changed and changed <= set(trainable)


def test_reference_mode_is_the_base_model(random_tiny_dir):
    pol = load_policy(model=random_tiny_dir, lora_r=4)
    with torch.no_grad():
        for p in pol.trainable_parameters().values():
            p.add_(0.5)  # move the adapter away from identity
    x = pol.tokenizer(["3+4=?\n"], return_tensors="pt")["input_ids"]
    base = load_policy(model=random_tiny_dir, use_lora=False).model
    with torch.no_grad():
        adapted = pol.model(x).logits
        with reference_mode(pol.model):
            ref = pol.model(x).logits
        plain = base(x).logits
    assert torch.allclose(ref, plain, atol=1e-5)
    assert not torch.allclose(adapted, plain, atol=1e-3)


def test_reference_mode_needs_lora(random_tiny_dir):
    pol = load_policy(model=random_tiny_dir, use_lora=False)
    with pytest.raises(ConfigError, match="LoRA"):
        with reference_mode(pol.model):
            pass


def test_4bit_lora_loads_generates_and_updates_on_cpu(random_tiny_dir):
    pytest.importorskip("bitsandbytes")
    from dopr_lite.grpo import grpo_update
    from dopr_lite.rollout import generate_rollouts

    pol = load_policy(model=random_tiny_dir, load_in_4bit=True, lora_r=4,
                      bnb_compute_dtype="float32")
    kinds = {type(m).__name__ for m in pol.model.modules()}
    assert "Linear4bit" in kinds
    ro = generate_rollouts(pol.model, pol.tokenizer, ["2+2=?\n"], 2,
                           max_new_tokens=4)
    params = pol.trainable_parameters()
    before = {n: p.detach().clone() for n, p in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=1e-2)
    st = grpo_update(pol.model, opt, ro, torch.tensor([1.0, -1.0]),
                     max_new_tokens=4)
    assert st["skipped"] == ""
    assert any(not torch.equal(p, before[n]) for n, p in params.items())


def test_4bit_without_bitsandbytes_is_a_clear_error(random_tiny_dir,
                                                    monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        load_policy(model=random_tiny_dir, load_in_4bit=True)


def test_embedded_tokenizer_class_survives_reload(embedded_policy):
    from transformers import PreTrainedTokenizerFast

    tok = embedded_policy.tokenizer
    assert isinstance(tok, PreTrainedTokenizerFast)
    text = "57+38-19=?\n57+38=95\n#### 76"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)  # one token per character
    assert tok.decode(ids) == text


def test_lora_init_depends_on_the_config_seed_only(random_tiny_dir):
    """The adapter draw must not depend on what ran before in the process."""
    import torch

    from dopr_lite.policy import load_policy

    def adapter(seed):
        pol = load_policy(model=random_tiny_dir, seed=seed)
        return torch.cat([p.detach().flatten() for p in
                          pol.trainable_parameters().values()])

    torch.manual_seed(1)
    first = adapter(0)
    torch.manual_seed(2)
    before = torch.random.get_rng_state()
    again = adapter(0)
    assert torch.equal(first, again)
    assert torch.equal(torch.random.get_rng_state(), before)  # untouched
    assert not torch.equal(first, adapter(1))


def test_gradient_checkpointing_still_trains_lora(random_tiny_dir):
    """Non-reentrant checkpointing: LoRA gets gradients although the
    frozen embeddings' outputs do not require grad."""
    from dopr_lite.grpo import grpo_update
    from dopr_lite.rollout import generate_rollouts

    pol = load_policy(model=random_tiny_dir, lora_r=4,
                      gradient_checkpointing=True)
    assert pol.model.base_model.model.is_gradient_checkpointing
    ro = generate_rollouts(pol.model, pol.tokenizer, ["1+2=?"], 2,
                           max_new_tokens=4, min_new_tokens=4)
    params = pol.trainable_parameters()
    before = {n: p.detach().clone() for n, p in params.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=1e-2)
    st = grpo_update(pol.model, opt, ro, torch.tensor([1.0, -1.0]),
                     max_new_tokens=4)
    assert st["skipped"] == "" and st["grad_norm"] > 0
    assert any(not torch.equal(p, before[n]) for n, p in params.items())


def test_a_relative_path_that_is_not_there_is_named_as_such(tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(PolicyLoadError, match="neither an existing "
                       "directory nor a model in the local Hugging Face "
                       "cache"):
        resolve_source("models/mine")
    (tmp_path / "models").mkdir()
    with pytest.raises(PolicyLoadError, match="'models/mine' does not "
                       "exist"):
        resolve_source("models/mine")


def test_sampling_model_folds_lora_and_gives_the_policy_back_untouched():
    """Generation on a CPU runs a LoRA policy with each adapter folded
    into a copy of its weight: the same logits, no LoRA layer left, and
    afterwards the very same parameters, unchanged, even after an error."""
    from dopr_lite.policy import sampling_model

    pol = load_policy()
    model = pol.model
    torch.manual_seed(1)
    with torch.no_grad():  # a trained adapter: B is no longer zero
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    params = dict(model.named_parameters())
    values = {n: p.detach().clone() for n, p in params.items()}
    enc = pol.tokenizer(["12+30=", "what is 7*8?"], padding=True,
                        return_tensors="pt")
    with torch.no_grad():
        want = model(**enc).logits
        with sampling_model(model) as folded:
            assert not any("lora" in n for n, _ in folded.named_modules())
            got = folded(**enc).logits
    assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(RuntimeError, match="inside"):
        with sampling_model(model):
            raise RuntimeError("an error inside")
    after = dict(model.named_parameters())
    assert after.keys() == params.keys()
    assert all(after[n] is p and torch.equal(p, values[n])
               for n, p in params.items())
    with torch.no_grad():
        assert torch.equal(model(**enc).logits, want)  # LoRA layers back
        with model.disable_adapter():
            assert not torch.allclose(model(**enc).logits, want, atol=1e-3)


def test_sampling_model_leaves_what_it_cannot_fold_as_it_is():
    """No adapter, or bfloat16 weights (a delta added to them would round
    most of a young adapter away): the model is used as it is."""
    from dopr_lite.policy import sampling_model

    for kwargs in ({"use_lora": False}, {"dtype": "bfloat16"}):
        pol = load_policy(**kwargs)
        with sampling_model(pol.model) as model:
            assert model is pol.model, kwargs
