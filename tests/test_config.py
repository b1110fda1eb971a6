import pytest

from dopr_lite.config import ConfigError, DoprConfig


@pytest.mark.parametrize("field,value,needle", [
    ("num_generations", 1, "G >= 2"),
    ("loss_type", "ppo", "loss_type"),
    ("scale_rewards", "x", "scale_rewards"),
    ("max_rollouts", -1, "max_rollouts"),
    ("temperature", 0.0, "temperature"),
])
def test_bad_fields_are_named(field, value, needle):
    with pytest.raises(ConfigError, match=needle):
        DoprConfig(**{field: value})


def test_4bit_needs_lora():
    with pytest.raises(ConfigError, match="QLoRA"):
        DoprConfig(load_in_4bit=True, use_lora=False)


def test_roundtrip(tmp_path):
    cfg = DoprConfig.consumer_gpu(seed=7)
    cfg.save(tmp_path / "c.json")
    assert DoprConfig.load(tmp_path / "c.json") == cfg
    assert cfg.load_in_4bit and cfg.use_lora


def test_unknown_field_in_file(tmp_path):
    (tmp_path / "c.json").write_text('{"lr": 1}')
    with pytest.raises(ConfigError, match="unknown config fields"):
        DoprConfig.load(tmp_path / "c.json")
