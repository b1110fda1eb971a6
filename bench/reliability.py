"""Reliability summary: how much breakage the tests throw at dopr_lite.

Runs the reliability tests (reward fuzzing and LaTeX bombs, bad data and
bad config, SIGKILL/Ctrl-C/torn-write resume, NaN handling, loading safety)
with larger counts than CI, and prints the counts the tests recorded as a
markdown table; the JSON goes to ``runs/bench/reliability.json``.

    python bench/reliability.py                  # 10 random kill points
    python bench/reliability.py --kill-points 20 --fuzz-examples 400
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dopr_lite.env import runs_dir

TESTS = ["tests/test_rewards.py", "tests/test_sandbox.py",
         "tests/test_data.py", "tests/test_config.py",
         "tests/test_reliability.py"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kill-points", type=int, default=10,
                   help="random SIGKILL points (besides the 3 torn writes)")
    p.add_argument("--fuzz-examples", type=int, default=200,
                   help="hypothesis examples of 50 completions each")
    p.add_argument("--out", default=str(Path(runs_dir("bench")) /
                                        "reliability.json"))
    args = p.parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DOPR_RELIABILITY_LOG": args.out,
           "DOPR_KILL_POINTS": str(args.kill_points),
           "DOPR_FUZZ_EXAMPLES": str(args.fuzz_examples)}
    root = Path(__file__).resolve().parent.parent
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q",
                           "-p", "no:cacheprovider", *TESTS], cwd=root,
                          env=env)
    seconds = time.time() - t0
    log = json.loads(Path(args.out).read_text())
    log["pytest"] = {"exit_code": proc.returncode, "seconds": round(seconds)}
    Path(args.out).write_text(json.dumps(log, indent=1) + "\n")

    fuzz = log.get("fuzzed_completions", {})
    bombs = log.get("latex_bombs", {})
    kills = log.get("kill_points", {})
    bad = log.get("bad_input_cases", {})
    nan = log.get("nan_cases", {})
    rows = [
        ("fuzzed completions per reward",
         ", ".join(f"{k} {v:,}" for k, v in fuzz.items()
                   if k != "slowest_s")),
        ("slowest fuzz batch, mean s per completion", fuzz.get("slowest_s")),
        ("LaTeX bombs (main thread / other thread)",
         " / ".join(f"{v['cases']} in {v['seconds']} s"
                    for v in bombs.values())),
        ("kill points resumed to an identical run", len(kills)),
        ("  of which torn writes / random SIGKILL / Ctrl-C",
         f"{sum(k.startswith('fault') for k in kills)} / "
         f"{sum(k.startswith('SIGKILL') for k in kills)} / "
         f"{sum(k.startswith('Ctrl-C') for k in kills)}"),
        ("bad-input cases rejected with file/row/field",
         f"{len(bad)} (rows {sum(k.startswith('row') for k in bad)}, "
         f"files {sum(k.startswith('file') for k in bad)}, "
         f"configs {sum(k.startswith('config') for k in bad)})"),
        ("NaN cases skipped with the reason", len(nan)),
        ("pytest", f"exit {proc.returncode}, {seconds:.0f} s"),
    ]
    print("\n| check | count |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nwrote {args.out}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
