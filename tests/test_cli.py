import json

import pytest

from dopr_lite.cli import main, parse_overrides
from dopr_lite.errors import ConfigError


def test_parse_overrides_types():
    out = parse_overrides(["learning_rate=1e-3", "use_lora=false",
                           "num_generations=4", "model=x/y"])
    assert out == {"learning_rate": 1e-3, "use_lora": False,
                   "num_generations": 4, "model": "x/y"}
    with pytest.raises(ConfigError, match="lr"):
        parse_overrides(["lr=1"])


def test_bad_config_exits_2_with_the_field(capsys):
    assert main(["train", "--set", "num_generations=1"]) == 2
    assert "num_generations" in capsys.readouterr().err


def test_train_command_writes_outputs(random_tiny_dir, tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path), "--max-rollouts", "8",
               "--no-progress", "--set", f"model={random_tiny_dir}",
               "--set", "n_test=4", "--set", "max_new_tokens=6",
               "--set", "n_train=8"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "final acc" in out and "rollouts" in out
    dopr = json.loads((tmp_path / "dopr" / "config.json").read_text())
    full = json.loads((tmp_path / "full" / "config.json").read_text())
    assert dopr["selector"] == "dopr" and dopr["max_new_tokens"] == 6
    assert full["selector"] == "full" and full["max_rollouts"] == 32
    assert (tmp_path / "dopr" / "run.png").stat().st_size > 1000
    assert (tmp_path / "compare.png").stat().st_size > 1000
    assert "dopr" in out and "full" in out


def test_train_without_reference(random_tiny_dir, tmp_path):
    rc = main(["train", "--out", str(tmp_path), "--max-steps", "1",
               "--no-progress", "--no-reference", "--selector", "random",
               "--set", f"model={random_tiny_dir}", "--set", "n_test=4",
               "--set", "max_new_tokens=6", "--set", "n_train=8"])
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["random"]
