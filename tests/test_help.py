"""The help teaches only what runs: every example in the command line's
help and in the config fields' help parses and builds a valid config, and
the help's list of rule arguments is the rules' own (issue 33)."""

import inspect
import json
import re
import shlex
import sys
import types
from dataclasses import fields
from pathlib import Path

import pytest

from dopr_lite.cli import (check_numbers, main, parse_overrides, parser,
                           reference_config)
from dopr_lite.compare import parse_rules
from dopr_lite.config import PRESETS, DoprConfig
from dopr_lite.rewards import REWARDS, reward_names
from dopr_lite.select import SELECTORS, check_selector

# a rule variant, LABEL=RULE:key=value,... (lowercase: LABEL=RULE is the
# placeholder the help spells it with)
VARIANT = re.compile(r"(?<![\w.-])([a-z][\w.-]*=[a-z][\w-]*:[^\s`'\")]+)")
ARGS_JSON = re.compile(r"\{\"[^{}]*\}")  # a selector_args example
SELECTOR_NEAR = re.compile(r"(?:--selector |selector=|for selector )"
                           r"([\w-]+)")


def commands() -> dict:
    return dict(parser()._subparsers._group_actions[0].choices)


def cli_help() -> dict[str, str]:
    """Each command's help as ``--help`` prints it, and the top level's."""
    out = {"dopr-lite": parser().format_help()}
    out.update({f"dopr-lite {name}": sub.format_help()
                for name, sub in commands().items()})
    return out


def knob_help() -> dict[str, str]:
    return {f"config field {f.name!r}": f.metadata["help"]
            for f in fields(DoprConfig)}


def example_lines(text: str) -> list[list[str]]:
    """The command lines under ``examples:`` as argv lists, without the
    program name and shell comments."""
    block = text.split("examples:\n", 1)[1] if "examples:\n" in text else ""
    out = []
    for line in block.splitlines():
        if not line.startswith("  dopr-lite"):
            break
        out.append(shlex.split(line, comments=True)[1:])
    return out


def config_of(argv: list[str]):
    """What the example ``argv`` runs with: its config (train, preflight,
    config) or its rules' configs (compare), built and so validated, as
    the command builds them; no work is started."""
    args = parser().parse_args(argv)
    check_numbers(args)
    if args.cmd == "build-tiny":
        return []
    overrides = parse_overrides(args.set or [])
    if args.cmd == "compare":
        rules = parse_rules(args.rules or list(SELECTORS),
                            one_rollouts=args.one_rollouts)
        base = DoprConfig(**overrides)
        return [rule.config(base) for rule in rules]
    own = {name: getattr(args, name, None) for name in (
        "max_rollouts", "max_steps", "seed", "selector")}
    cfg = PRESETS[args.preset](**{k: v for k, v in own.items()
                                  if v is not None}, **overrides)
    reference = getattr(args, "reference", None)
    if args.cmd == "train" and cfg.selector != "full" and (
            reference if reference is not None else args.preset == "tiny"):
        return [cfg, reference_config(cfg, Path("full"))]
    return [cfg]


def test_help_runs_for_every_command(capsys):
    for argv in [["--help"]] + [[name, "--help"] for name in commands()]:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0, argv
        text = capsys.readouterr().out
        assert text.startswith("usage: dopr-lite"), argv
    assert set(commands()) == {"train", "compare", "preflight", "config",
                               "build-tiny"}


def test_every_cli_example_builds_a_valid_config(monkeypatch):
    # the consumer_gpu preset loads in 4 bits: as if bitsandbytes were
    # installed, so the examples are checked where it is not
    monkeypatch.setitem(sys.modules, "bitsandbytes",
                        types.ModuleType("bitsandbytes"))
    seen = 0
    for where, text in cli_help().items():
        for argv in example_lines(text):
            try:
                config_of(argv)
            except Exception as err:  # noqa: BLE001 - name the example
                pytest.fail(f"{where} example {shlex.join(argv)!r}: {err}")
            seen += 1
    assert seen >= 15, seen  # the examples were found, not skipped


def test_every_rule_variant_in_the_help_is_accepted():
    texts = {**cli_help(), **knob_help()}
    found = []
    for where, text in texts.items():
        for spec in VARIANT.findall(" ".join(text.split())):
            found.append(spec)
            (rule,) = parse_rules([spec])
            try:
                check_selector(rule.selector, rule.args)
                rule.config(DoprConfig())
            except Exception as err:  # noqa: BLE001 - name the example
                pytest.fail(f"{where}: {spec!r}: {err}")
    assert "p0=dopr:probe=0" in found, found


def test_every_selector_args_example_is_accepted():
    texts = {**cli_help(), **knob_help()}
    found = 0
    for where, text in texts.items():
        for line in text.splitlines():
            for example in ARGS_JSON.findall(line):
                named = SELECTOR_NEAR.findall(line)
                assert len(named) == 1, (
                    f"{where}: selector_args example {example} names no "
                    f"one selector in its line: {line!r}")
                check_selector(named[0], json.loads(example))
                found += 1
    assert found >= 2, found  # config's selector_args and train's example


def test_the_reward_help_names_rewards_that_resolve():
    text = DoprConfig.help("reward")
    quoted = re.findall(r"'([\w,]+)'", text)
    assert set(REWARDS) <= set(quoted), quoted
    for spec in quoted:
        reward_names(spec)


def test_the_config_help_names_every_rule():
    listed = re.search(r": ([\w| -]+) \(", DoprConfig.help("selector"))
    assert listed[1].split(" | ") == list(SELECTORS)


def signatures(text: str) -> dict[str, list[tuple[str, object]]]:
    """``name(arg=default, ...)`` of each rule as the help writes it."""
    flat = " ".join(text.split())
    out = {}
    for name in SELECTORS:
        m = re.search(rf"(?<![\w-]){re.escape(name)}\(([^)]*)\)", flat)
        assert m, f"rule {name} is not in the help"
        pairs = [item.split("=", 1) for item in m[1].split(", ") if item]
        out[name] = [(key, json.loads(value)) for key, value in pairs]
    return out


@pytest.mark.parametrize("command", ["train", "compare"])
def test_the_rule_arguments_in_the_help_are_the_rules_own(command):
    shown = signatures(commands()[command].format_help())
    for name, cls in SELECTORS.items():
        params = inspect.signature(cls).parameters.values()
        assert shown[name] == [(p.name, p.default) for p in params], name
        check_selector(name, dict(shown[name]))


def test_parse_rules_doc_example_is_accepted():
    """The docstring of the parser of ``--rules`` teaches variants too."""
    specs = VARIANT.findall(" ".join(parse_rules.__doc__.split()))
    assert specs
    for spec in specs:
        (rule,) = parse_rules([spec])
        check_selector(rule.selector, rule.args)


@pytest.mark.slow
def test_every_cli_example_on_the_embedded_model_runs_its_first_step(
        tmp_path):
    """Each distinct rule setup of the examples on the embedded model
    trains one step (a small held-out set; no other change), so the help
    shows nothing that fails once it starts."""
    from dataclasses import replace

    from dopr_lite.loop import train

    setups = {}
    for text in cli_help().values():
        for argv in example_lines(text):
            cfgs = config_of(argv)
            for cfg in cfgs if isinstance(cfgs, list) else [cfgs]:
                if cfg.model.startswith("embedded"):
                    setups.setdefault(json.dumps(
                        [cfg.selector, cfg.selector_args, cfg.preflight,
                         cfg.prompts_per_step], sort_keys=True), cfg)
    assert len(setups) >= 7, list(setups)  # every rule of compare's help
    for i, cfg in enumerate(setups.values()):
        one = replace(cfg, max_steps=1, max_rollouts=0, n_test=4,
                      eval_every=1, save_every=0, preflight="",
                      out_dir=str(tmp_path / str(i)))
        result = train(one, progress=False, log=lambda *a: None)
        assert result.metrics and result.metrics[-1]["step"] == 1, cfg
