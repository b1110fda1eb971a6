"""The package's architecture: imports flow one way, at module top.

An AST walk over ``dopr_lite/`` (module- and function-level imports alike)
checks that every module imports only modules before it in ``ORDER`` (the
layering the package docstring states), which rules out import cycles, and
that imports sit at module top except for the named optional or
subprocess-only dependencies.
"""

import ast
from pathlib import Path

import pytest

import dopr_lite

PKG = Path(dopr_lite.__file__).parent

# left to right: a module may import only modules to its left
ORDER = [
    "errors", "faults", "files", "bound", "curves", "steprow",
    "task", "sandbox", "rewards",
    "select.base", "select.baselines", "select.posterior", "select.dopr",
    "select",
    "config",
    "env", "tiny", "archs", "steptime", "cpufit", "steplog", "ruletime",
    "data", "policy", "inputs", "rollout", "grpo", "groups", "evaluation",
    "preflight",
    "checkpoint", "runlog", "guards",
    "loop", "compare", "savings", "plots", "cli", "__main__",
    "integrations", "integrations.trl",
]
# imported inside a function on purpose: math-verify (and sympy) only in
# the reward sandbox's worker process
LAZY_OK = {"math_verify"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__":  # a sub-package is its __init__
            parts = parts[:-1]
        if parts:
            out[".".join(parts)] = f
    return out


def _imports(tree: ast.AST):
    """(dopr_lite module imported, node) for every import in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}"
                                     for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for n in names:
            if n.startswith("dopr_lite."):
                yield n.removeprefix("dopr_lite."), node


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        graph[name] = {t for t, _ in _imports(tree)
                       if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle (as a path that comes back to its start)."""
    found, done = [], set()

    def visit(node, path):
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_every_module_has_a_place_in_the_layering():
    assert sorted(_modules()) == sorted(ORDER)


def test_imports_only_go_left():
    graph = import_graph(_modules())
    upward = [f"{m} imports {t}" for m, targets in graph.items()
              for t in targets if ORDER.index(t) > ORDER.index(m)]
    assert not upward, upward
    assert not cycles(graph)


def test_the_cycle_check_would_fail_on_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [
        ["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("name", ORDER)
def test_imports_sit_at_module_top(name):
    path = _modules()[name]
    tree = ast.parse(path.read_text())
    inner = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = ([a.name for a in node.names]
                        if isinstance(node, ast.Import) else [node.module])
                inner += [m for m in mods
                          if m.split(".")[0] not in LAZY_OK]
    assert not inner, f"{name}: imports inside functions: {inner}"


def test_the_public_api_resolves():
    missing = [n for n in dopr_lite.__all__ if not hasattr(dopr_lite, n)]
    assert not missing
