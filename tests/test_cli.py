import json
from pathlib import Path

import pytest

from dopr_lite.cli import main, parse_overrides
from dopr_lite.config import DoprConfig
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
    rc = main(["train", "--out", str(tmp_path), "--max-rollouts", "16",
               "--no-progress", "--set", f"model={random_tiny_dir}",
               "--set", "n_test=4", "--set", "max_new_tokens=6",
               "--set", "n_train=8"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "final acc" in out and "rollouts" in out
    dopr = json.loads((tmp_path / "dopr" / "config.json").read_text())
    full = json.loads((tmp_path / "full" / "config.json").read_text())
    assert dopr["selector"] == "dopr" and dopr["max_new_tokens"] == 6
    assert full["selector"] == "full" and full["max_rollouts"] == 64
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
        tmp_path, monkeypatch, capsys, offline_hub):
    """What "fast" means, asserted directly: offline, the first attempt
    fails with the advice, before any connection or model load (so no
    retry loop can start), and writes nothing."""
    import dopr_lite.inputs
    from dopr_lite.config import DoprConfig

    cfg = DoprConfig.consumer_gpu()
    assert cfg.selector == "dopr" and cfg.max_rollouts > 0
    attempts, attempt = offline_hub
    for name in ("load_policy", "load_tokenizer"):
        monkeypatch.setattr(dopr_lite.inputs, name, attempt)
    rc = main(["train", "--preset", "consumer_gpu", "--out",
               str(tmp_path / "gpu")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "hf download Qwen/Qwen2.5-Math-1.5B" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert attempts == []
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
    import dopr_lite.inputs

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the data check")

    monkeypatch.setattr(dopr_lite.inputs, "load_policy", no_model)
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
    for needle in ("DoPR", "512", "dopr, dopr-v1, dynamic, fixed, full, "
                   "random, thompson", "consumer_gpu:", "tiny:", "--fresh",
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
    args = ["compare", "--seeds", "0", "--full-rollouts", "64",
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


# --- bad inputs, tried as a new user would --------------------------------
# each: a one-line error naming the problem (these words) and the fix, exit
# 2, before any model loads, and nothing written
BAD_INPUTS = {
    "batch 0": (["compare", "--batch", "0", "--seeds", "0", "--rules",
                 "random"], ["--batch 0", ">= 1"]),
    "negative batch": (["compare", "--batch", "-1"], ["--batch -1"]),
    "repeated batch": (["compare", "--batch", "8", "8"], ["--batch 8 8",
                                                           "repeat"]),
    "repeated seed": (["compare", "--seeds", "0", "0"], ["--seeds 0 0",
                                                         "repeat"]),
    "huge seed": (["compare", "--seeds", str(2**70)], ["--seeds", "2**62"]),
    "full budget 0": (["compare", "--full-rollouts", "0"],
                      ["--full-rollouts 0", ">= 1"]),
    "one budget 0": (["compare", "--one-rollouts", "0"],
                     ["--one-rollouts 0", ">= 1"]),
    "no held-out prompts": (["compare", "--n-test", "0"], ["n_test", ">= 1"]),
    "full budget under a step": (["compare", "--rules", "full", "random",
                                  "--full-rollouts", "16"],
                                 ["'full'", "64 rollouts", "budget of 16"]),
    "unknown rule": (["compare", "--rules", "nope"], ["--rules", "'nope'"]),
    "more candidates than the pool": (
        ["train", "--set", "prompts_per_step=1000", "--max-rollouts", "16"],
        ["prompts_per_step", "n_train=256", "<= 256"]),
    "reference step over its budget": (
        ["train", "--set", "prompts_per_step=64", "--max-rollouts", "16"],
        ["reference", "512 rollouts", "budget of 64", "--no-reference"]),
    "a budget under one step": (["train", "--max-rollouts", "4"],
                                ["8 rollouts", "budget of 4"]),
    "negative budget": (["train", "--max-rollouts", "-1"],
                        ["max_rollouts", ">= 0"]),
    "negative steps": (["train", "--max-steps", "-1"], ["max_steps", ">= 0"]),
    "G = 0": (["train", "--set", "num_generations=0"],
              ["num_generations", "G >= 2"]),
    "negative learning rate": (["train", "--set", "learning_rate=-1"],
                               ["learning_rate", ">= 0"]),
    "an empty pool": (["train", "--set", "n_train=0"], ["n_train", ">= 1"]),
    "no held-out set": (["train", "--set", "n_test=0"], ["n_test", ">= 1"]),
    "huge training seed": (["train", "--seed", str(2**70)], ["seed",
                                                             "2**62"]),
    "a word for a number": (["train", "--set", "n_test=many"],
                            ["--set n_test: expected int, got 'many'"]),
    "k = 0": (["preflight", "--k", "0"], ["--k 0", ">= 1"]),
    "no prompts": (["preflight", "--prompts", "0"], ["--prompts 0"]),
    "huge preflight seed": (["preflight", "--seed", str(2**70)],
                            ["--seed", "2**62"]),
    "no warm-up": (["build-tiny", "--steps", "0"], ["--steps 0", ">= 1"]),
    "no threads": (["build-tiny", "--threads", "0"], ["--threads 0"]),
}
COMMANDS = ("train", "compare", "preflight", "build-tiny")


def _refused(argv, tmp_path, monkeypatch, capsys):
    """Run ``argv`` in an empty folder with every heavy step replaced by a
    failure: the exit code, the stderr lines and what was written."""
    import dopr_lite.cli
    import dopr_lite.compare

    def started(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    for module, name in ((dopr_lite.cli, "train"), (dopr_lite.cli, "build"),
                         (dopr_lite.cli, "preflight"),
                         (dopr_lite.compare, "train_all")):
        monkeypatch.setattr(module, name, started)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOPR_RUNS", str(tmp_path / "runs"))
    before = sorted(tmp_path.rglob("*"))
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err.strip().splitlines(), sorted(tmp_path.rglob("*")) != before


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_a_bad_input_is_one_line_and_writes_nothing(case, tmp_path,
                                                    monkeypatch, capsys):
    argv, needles = BAD_INPUTS[case]
    rc, lines, wrote = _refused(argv, tmp_path, monkeypatch, capsys)
    assert rc == 2 and len(lines) == 1, lines
    assert lines[0].startswith("dopr-lite: "), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not wrote


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_folder_that_cannot_be_made_is_refused_first(
        command, tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    outs = [tmp_path / "a-file" / "run"]
    if Path("/proc/self").is_dir():  # a folder nobody can make, root too
        outs.append(Path("/proc/nope"))
    for out in outs:
        rc, lines, wrote = _refused([command, "--out", str(out)], tmp_path,
                                    monkeypatch, capsys)
        assert rc == 2 and len(lines) == 1, lines
        assert f"--out {out}" in lines[0] and "choose" in lines[0], lines
        assert not wrote and not out.exists()


def test_update_figures_into_a_folder_that_cannot_be_made_is_refused(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr("dopr_lite.cli.FIGURES", tmp_path / "a-file" / "f")
    for command in ("compare", "preflight"):
        rc, lines, wrote = _refused([command, "--update-figures"], tmp_path,
                                    monkeypatch, capsys)
        assert rc == 2 and "--update-figures" in lines[0], lines
        assert not wrote


def test_the_reference_runs_without_the_preflight_and_says_so(
        tmp_path, monkeypatch, capsys):
    """The README's `--set preflight=...` with the default main job: DoPR
    starts from it, full-batch GRPO (no per-prompt rates) cannot, and a
    line says so instead of refusing the command."""
    from dopr_lite.cli import reference_config
    from dopr_lite.config import DoprConfig

    cfg = DoprConfig.tiny(preflight="runs/preflight/preflight.json")
    ref = reference_config(cfg, tmp_path / "full")
    assert (ref.selector, ref.preflight) == ("full", "")
    assert ref.max_rollouts == 4 * cfg.max_rollouts

    class Started(Exception):
        pass

    def train(cfg, **kwargs):
        raise Started(cfg)

    monkeypatch.setattr("dopr_lite.cli.train", train)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Started) as first:
        main(["train", "--set", "preflight=pf.json"])
    assert first.value.args[0].preflight == "pf.json"  # DoPR uses it
    out = capsys.readouterr().out
    assert "== full:" in out and "without the pre-flight" in out


def test_field_types_come_from_the_annotations():
    """One table, read from the dataclass, parses --set and checks types;
    an optional field (``int | None``) takes a number or none."""
    from dataclasses import dataclass

    from dopr_lite.config import DoprConfig, FieldType, field_types, knob

    @dataclass
    class WithCap(DoprConfig):
        cap: int | None = knob(None, "an optional int")

    kinds = field_types(WithCap)
    assert kinds["cap"] == FieldType(int, optional=True)
    assert kinds["learning_rate"] == FieldType(float)
    assert kinds["use_lora"] == FieldType(bool)
    assert kinds["selector_args"] == FieldType(dict)
    assert kinds["cap"].parse("3") == 3 and kinds["cap"].parse("none") is None
    assert str(kinds["cap"]) == "int | None"
    assert WithCap(cap=3).cap == 3 and WithCap(cap=None).cap is None
    with pytest.raises(ConfigError, match=r"'cap': expected int \| None"):
        WithCap(cap="3")
    with pytest.raises(ValueError):
        kinds["cap"].parse("three")
    with pytest.raises(ValueError):
        kinds["learning_rate"].parse("none")  # not optional
    assert parse_overrides(["selector_args={\"c\": 0.5}", "top_k=3"]) == {
        "selector_args": {"c": 0.5}, "top_k": 3}


def test_threads_default_to_one_for_the_embedded_model(monkeypatch):
    from dopr_lite.cli import set_threads

    asked = []
    monkeypatch.setattr("dopr_lite.cli.torch.set_num_threads", asked.append)
    set_threads(None, DoprConfig())  # the embedded model: one thread
    set_threads(3, DoprConfig())  # asked for
    set_threads(None, DoprConfig(model="some/hub-model"))  # torch's choice
    assert asked == [1, 3]


def test_compare_refuses_zero_jobs(capsys):
    assert main(["compare", "--jobs", "0"]) == 2
    assert "--jobs 0: must be >= 1" in capsys.readouterr().err
