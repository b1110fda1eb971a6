import sys

import pytest

from dopr_lite.config import DoprConfig
from dopr_lite.errors import ConfigError


# impossible settings -> the message must name this field and this fix
BAD_CONFIGS = {
    "G < 2 for GRPO": (dict(num_generations=1), "num_generations", "G >= 2"),
    "unknown loss": (dict(loss_type="ppo"), "loss_type", "use one of"),
    "unknown reward scaling": (dict(scale_rewards="x"), "scale_rewards",
                               "use one of"),
    "negative rollout budget": (dict(max_rollouts=-1), "max_rollouts",
                                ">= 0"),
    "negative step budget": (dict(max_steps=-5), "max_steps", ">= 0"),
    "zero temperature": (dict(temperature=0.0), "temperature", "> 0"),
    "top_p above 1": (dict(top_p=1.5), "top_p", "(0, 1]"),
    "zero micro-batch": (dict(micro_batch=0), "micro_batch", ">= 1"),
    "negative learning rate": (dict(learning_rate=-1e-3), "learning_rate",
                               ">= 0"),
    "LoRA dropout 1": (dict(lora_dropout=1.0), "lora_dropout", "[0, 1)"),
    "unknown dtype": (dict(dtype="fp8"), "dtype", "use one of"),
    "unknown selector": (dict(selector="dopr2"), "selector", "choose one"),
    "unknown selector argument": (dict(selector="dopr", selector_args={
        "cc": 1}), "selector_args", "cc"),
    "unknown reward": (dict(reward="exactly"), "reward", "choose from"),
    "unknown bad_rows policy": (dict(bad_rows="ignore"), "bad_rows",
                                "use one of"),
    "4-bit without LoRA": (dict(load_in_4bit=True, use_lora=False),
                           "load_in_4bit", "use_lora=True"),
    "a string where an int goes": (dict(num_generations="8"),
                                   "num_generations", "expected int"),
    "a bool where an int goes": (dict(max_steps=True), "max_steps",
                                 "expected int"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_impossible_configs_fail_at_start_naming_field_and_fix(
        case, reliability_log):
    overrides, field, fix = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as err:
        DoprConfig(**overrides)
    msg = str(err.value)
    assert f"config field {field!r}" in msg and fix in msg, msg
    reliability_log.setdefault("bad_input_cases", {})[f"config: {case}"] = \
        msg


def test_4bit_without_bitsandbytes_fails_at_start(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    with pytest.raises(ConfigError, match="pip install bitsandbytes"):
        DoprConfig(load_in_4bit=True)


def test_config_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "c.json").write_text("selector: dopr")
    with pytest.raises(ConfigError, match="c.json: not a JSON config"):
        DoprConfig.load(tmp_path / "c.json")


def test_roundtrip(tmp_path):
    cfg = DoprConfig.consumer_gpu(seed=7)
    cfg.save(tmp_path / "c.json")
    assert DoprConfig.load(tmp_path / "c.json") == cfg
    assert cfg.load_in_4bit and cfg.use_lora


def test_unknown_field_in_file(tmp_path):
    (tmp_path / "c.json").write_text('{"lr": 1}')
    with pytest.raises(ConfigError, match="unknown config fields"):
        DoprConfig.load(tmp_path / "c.json")


@pytest.mark.parametrize("overrides,field", [
    (dict(task_families={"div": 1.0}), "task_families"),
    (dict(task_families={"add": 0}), "task_families"),
    (dict(task_easy=1.5), "task_easy"),
    (dict(task_easy=0.6, task_hard=0.6), "task_hard"),
])
def test_an_impossible_task_mix_names_its_field(overrides, field):
    with pytest.raises(ConfigError, match=f"config field '{field}'"):
        DoprConfig(**overrides)


def test_the_task_mix_is_config(tmp_path):
    from collections import Counter

    from dopr_lite.cli import parse_overrides
    from dopr_lite.data import load_prompts

    over = parse_overrides(['task_families={"mul": 1, "max": 1}',
                            "task_easy=0", "task_hard=0.5"])
    cfg = DoprConfig(n_train=64, n_test=40, **over)
    cfg.save(tmp_path / "c.json")
    assert DoprConfig.load(tmp_path / "c.json").task_mix() == cfg.task_mix()
    data = load_prompts(cfg)
    fams = Counter(data.train["family"]) + Counter(data.test["family"])
    tiers = Counter(data.train["tier"]) + Counter(data.test["tier"])
    assert set(fams) == {"mul", "max"} and "easy" not in tiers
    assert 0.3 < tiers["hard"] / 104 < 0.7
