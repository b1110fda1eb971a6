"""The README's Python example is examples/python_api.py, and it runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_the_python_example_as_it_is():
    example = (ROOT / "examples" / "python_api.py").read_text()
    body = example.split('"""', 2)[2].strip()  # without its docstring
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md")
                        .read_text(), re.S)
    assert body in [b.strip() for b in blocks]


def test_the_python_example_trains_and_evaluates(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" /
                                                "python_api.py")],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = re.search(r"held-out accuracy ([\d.]+) -> ([\d.]+) after "
                     r"(\d+) rollouts", proc.stdout)
    base, final, rollouts = float(line[1]), float(line[2]), int(line[3])
    assert final > base and 48 <= rollouts <= 58
    assert "pass@4" in proc.stdout
    assert (tmp_path / "runs" / "api" / "run.png").stat().st_size > 1000
