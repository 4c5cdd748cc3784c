"""The package's layout rules, checked on its import graph (README's "Code map").

Stages, in pipeline order: foundation (contract, errors, fileio, environment, plots, data) ->
training -> export -> runtime -> bench -> cli. A module imports only from its own stage, the
foundation and earlier stages (lazy imports inside functions included); module-level imports form no
cycle; no module reaches into another's private names; no module is much over 300 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "edge_lstm"
ORDER = ["foundation", "training", "export", "runtime", "web", "bench", "cli"]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    if module == "edge_lstm.__main__":
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else "foundation"


def imports(path: Path) -> list[tuple[str, bool, list[str]]]:
    """(imported module, at module level?, names imported from it) for every edge_lstm import."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    guarded = {id(n) for b in tree.body if isinstance(b, ast.If) for n in ast.walk(b)}  # TYPE_CHECKING blocks
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge_lstm"):
            out.append((node.module, id(node) in top and id(node) not in guarded, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("edge_lstm"):
                    out.append((a.name, id(node) in top, []))
    return out


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_imports_point_down_the_pipeline() -> None:
    bad = []
    for mod, path in MODULES.items():
        for target, _, _ in imports(path):
            if ORDER.index(stage(target)) > ORDER.index(stage(mod)):
                bad.append(f"{mod} imports {target}")
    assert not bad, bad


def test_export_and_eval_do_not_import_the_training_loop() -> None:
    for mod in ("edge_lstm.export", "edge_lstm.runtime.evaluate", "edge_lstm.bench"):
        for name, path in MODULES.items():
            if name.startswith(mod):
                assert all(t != "edge_lstm.training.loop" for t, _, _ in imports(path)), name


def test_no_import_cycle_at_module_level() -> None:
    graph: dict[str, set[str]] = {}
    for m, p in MODULES.items():
        edges = set()
        for t, top, names in imports(p):
            if top:  # `from pkg import submodule` points at the submodule
                edges |= {f"{t}.{n}" if f"{t}.{n}" in MODULES else t for n in names or [""]} & set(MODULES)
        graph[m] = edges - {m}
    # `from edge_lstm.x import name` also runs edge_lstm/x/__init__: count the package itself.
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, m, t]))
            if not state.get(t):
                visit(t, [*trail, m])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [])


def test_no_private_names_across_modules() -> None:
    bad = []
    for mod, path in MODULES.items():
        for target, _, names in imports(path):
            bad += [
                f"{mod} imports {target}.{n}"
                for n in names
                if n.startswith("_") and not n.startswith("__") and target != mod
            ]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # obj._private where obj is not self/cls
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            if private and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):  # type: ignore[attr-defined]
                bad.append(f"{mod}: .{node.attr}")  # type: ignore[attr-defined]
    assert not bad, bad


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(sizes.values()) <= 320, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_every_subpackage_states_its_job_and_exports_its_api() -> None:
    for sub in ("data", "training", "export", "runtime", "web", "bench", "cli"):
        init = PACKAGE / sub / "__init__.py"
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), sub
        if sub != "cli":
            assert any(isinstance(n, ast.Assign) and n.targets[0].id == "__all__" for n in tree.body), sub  # type: ignore[attr-defined]
