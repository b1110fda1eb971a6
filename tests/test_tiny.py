import json

import pytest

from dopr_lite.tiny import EMBEDDED_DIR, build_tokenizer, tiny_config


def test_tokenizer_is_char_level_and_roundtrips(tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = build_tokenizer()
    text = "12+34=46\n#### 46"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.convert_ids_to_tokens(tok("é")["input_ids"])[1] == "<unk>"
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert isinstance(again, PreTrainedTokenizerFast)
    assert again(text)["input_ids"] == ids
    assert again.padding_side == "left"


def test_tiny_config_is_llama_of_about_a_million_parameters():
    from transformers import LlamaForCausalLM

    cfg = tiny_config(100)
    assert cfg.model_type == "llama"
    n = sum(p.numel() for p in LlamaForCausalLM(cfg).parameters())
    assert 500_000 < n < 2_000_000


def test_embedded_checkpoint_is_small_safetensors():
    files = {p.name: p.stat().st_size for p in EMBEDDED_DIR.iterdir()}
    assert "model.safetensors" in files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert sum(files.values()) < 8 * 2**20
    cfg = json.loads((EMBEDDED_DIR / "config.json").read_text())
    assert cfg["model_type"] == "llama"


@pytest.mark.slow
def test_embedded_model_has_a_latent_capability(embedded_policy):
    """Base greedy accuracy is in the target band, careful style is
    reliable, and sampling shows the model can solve more than it does."""
    from dopr_lite.evaluation import evaluate
    from dopr_lite.rewards import exact_answer_reward
    from dopr_lite.task import task_dataset

    from dopr_lite.task import FAMILIES

    ds = task_dataset("test", 300)
    out = evaluate(embedded_policy.model, embedded_policy.tokenizer, ds,
                   exact_answer_reward, k=8, by="family")
    assert 0.15 <= out["accuracy"] <= 0.45, out
    assert out["pass@8"] > out["accuracy"] + 0.2, out
    for family in FAMILIES:  # every skill has headroom
        assert out[f"pass@8/{family}"] > out[f"accuracy/{family}"] + 0.15, (
            family, out)
