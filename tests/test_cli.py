import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


# --- the newcomer's path ----------------------------------------------------

def _small(model_dir, out, *extra):
    return ["train", "--out", str(out), "--max-steps", "1", "--no-progress",
            "--no-reference", "--selector", "random", "--set",
            f"model={model_dir}", "--set", "n_test=4", "--set",
            "max_new_tokens=6", "--set", "n_train=8", *extra]


def test_a_changed_run_is_not_resumed_silently(random_tiny_dir, tmp_path,
                                               capsys):
    assert main(_small(random_tiny_dir, tmp_path)) == 0
    saved = (tmp_path / "random" / "config.json").read_text()
    capsys.readouterr()
    assert main(_small(random_tiny_dir, tmp_path, "--seed", "1")) == 2
    err = capsys.readouterr().err
    assert "seed" in err and "0 (saved)" in err and "1 (requested)" in err
    assert "--fresh" in err and "--out" in err
    assert main(_small(random_tiny_dir, tmp_path, "--set",
                       "learning_rate=0.05")) == 2
    assert "learning_rate" in capsys.readouterr().err
    assert (tmp_path / "random" / "config.json").read_text() == saved
    # the same run asked for again: finished, its result shown, also when
    # it was saved before a config field existed (its default is implied)
    old = json.loads(saved)
    del old["preflight"]
    (tmp_path / "random" / "config.json").write_text(json.dumps(old))
    assert main(_small(random_tiny_dir, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "final acc" in out
    # a larger budget resumes; --fresh starts the other seed over
    assert main(_small(random_tiny_dir, tmp_path, "--max-steps", "2")) == 0
    assert main(_small(random_tiny_dir, tmp_path, "--seed", "1",
                       "--fresh")) == 0
    cfg = json.loads((tmp_path / "random" / "config.json").read_text())
    assert cfg["seed"] == 1


def test_the_gpu_preset_is_a_complete_dopr_run_that_fails_fast_offline(
        tmp_path):
    from dopr_lite.config import DoprConfig

    cfg = DoprConfig.consumer_gpu()
    assert cfg.selector == "dopr" and cfg.max_rollouts > 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(tmp_path / "hf")}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "dopr_lite", "train",
                           "--preset", "consumer_gpu", "--out",
                           str(tmp_path / "gpu")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "hf download Qwen/Qwen2.5-Math-1.5B" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.time() - t0 < 60  # imports included; no retries, no load
    assert not (tmp_path / "gpu").exists()


def test_a_failed_command_writes_nothing(random_tiny_dir, tmp_path, capsys,
                                         monkeypatch):
    assert main(_small(random_tiny_dir, tmp_path)) == 0
    saved = (tmp_path / "random" / "config.json").read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "2"}\nnot json\n' * 5)
    new = tmp_path / "new"
    cases = {"bad data": ["--set", f"dataset={bad}"],
             "missing data": ["--set", f"dataset={tmp_path / 'nope.jsonl'}"],
             "bad model": ["--set", f"model={tmp_path / 'no-model'}"]}
    for why, extra in cases.items():
        assert main(_small(random_tiny_dir, tmp_path, *extra)) == 2, why
        assert main(_small(random_tiny_dir, new, *extra)) == 2, why
        assert (tmp_path / "random" / "config.json").read_text() == saved
        assert not new.exists(), why
    capsys.readouterr()
    # the data is checked before the model is loaded
    import dopr_lite.loop

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the data check")

    monkeypatch.setattr(dopr_lite.loop, "load_policy", no_model)
    assert main(_small(random_tiny_dir, new, *cases["bad data"])) == 2
    assert "line 2" in capsys.readouterr().err


def test_an_unknown_field_suggests_the_closest_one():
    with pytest.raises(ConfigError, match="did you mean num_generations"):
        parse_overrides(["num_generation=4"])


def test_help_teaches(capsys):
    for argv in (["--help"], ["train", "--help"], ["compare", "--help"],
                 ["build-tiny", "--help"], ["config", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "``" not in text, argv
        if argv != ["--help"]:
            assert "examples:" in text, argv
    main_help = _help(capsys, ["train", "--help"])
    for needle in ("DoPR", "512", "dopr, dynamic, fixed, full, random, "
                   "thompson", "consumer_gpu:", "tiny:", "--fresh",
                   "default: runs/main"):
        assert needle in main_help, needle
    compare_help = _help(capsys, ["compare", "--help"])
    for needle in ("full, dynamic, fixed, random, thompson, dopr",
                   "minutes", "--fresh", "--update-figures"):
        assert needle in compare_help, needle
    assert "minutes" in _help(capsys, ["build-tiny", "--help"])


def _help(capsys, argv):
    with pytest.raises(SystemExit):
        main(argv)
    return " ".join(capsys.readouterr().out.split())


def test_every_option_has_a_help_line():
    from dopr_lite.cli import parser

    for name, sub in parser()._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings}"


def test_compare_writes_its_figure_under_out_unless_asked(tmp_path,
                                                          monkeypatch):
    figs = tmp_path / "repo-figures"
    monkeypatch.setattr("dopr_lite.plots.FIGURES", figs)
    args = ["compare", "--seeds", "0", "--full-rollouts", "16",
            "--one-rollouts", "8", "--n-test", "4", "--rules", "full",
            "random", "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert (tmp_path / "out" / "bench_compare.png").is_file()
    assert not figs.exists()
    assert main(args + ["--update-figures"]) == 0
    assert (figs / "bench_compare.png").is_file()


def test_build_tiny_never_overwrites_the_shipped_model_unless_asked(
        monkeypatch, tmp_path):
    import dopr_lite.cli
    from dopr_lite.tiny import EMBEDDED_DIR

    class Built(Exception):
        pass

    def fake_build(out, **kw):
        raise Built(str(out))

    monkeypatch.setattr(dopr_lite.cli, "build", fake_build)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Built) as where:
        main(["build-tiny"])
    assert Path(str(where.value)).resolve() != EMBEDDED_DIR.resolve()
    with pytest.raises(Built) as where:
        main(["build-tiny", "--update-asset"])
    assert Path(str(where.value)).resolve() == EMBEDDED_DIR.resolve()
