"""The package's layout rules, checked on its import graph (docs/code-map.md).

Each part (the foundation modules, data, training, export, runtime, web, serve, devices, bench,
cluster, cli) states what it may import (ALLOWED), lazy imports inside functions included; the
graph has no circle, lazy imports included; no module reaches into another's private names; no
module is much over 300 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "edge_lstm"


def parse(path: Path) -> ast.Module:
    """ast.parse, again if CPython 3.11.7's AST validation trips over another thread compiling at the same
    time (a SystemError, "AST constructor recursion depth mismatch": its recursion counter is not per
    thread); the suite's Ray tests leave such threads behind, and on a busy machine they meet."""
    for _ in range(5):
        try:
            return ast.parse(path.read_text())
        except SystemError as e:
            if "recursion depth mismatch" not in str(e):
                raise
    return ast.parse(path.read_text())


# What each part may import (its own modules aside), lazy imports inside functions included. The
# deployment side (runtime, web, serve) never reaches training or export, so it never needs torch.
ALLOWED = {
    "foundation": set(),
    "data": {"foundation"},
    "training": {"foundation", "data"},
    # Triton's repository and server: used by export, serve --triton and the benchmarks; only launch.py
    # (serve --triton) reaches serve, for its file checks and options
    "triton": {"foundation", "serve"},
    # microcontrollers: the C library from a model file, its firmware, QEMU and serial boards (no torch)
    "mcu": {"foundation", "data", "runtime"},
    "export": {"foundation", "data", "training", "triton", "mcu"},
    "runtime": {"foundation", "data"},
    "serve": {"foundation", "data", "runtime"},
    "web": {"foundation", "data", "runtime", "serve"},
    # the device side runs the CLI (a microcontroller: firmware, mcu); this side copies and merges
    "devices": {"foundation", "data", "runtime", "mcu"},
    "bench": {"foundation", "data", "runtime", "web", "training", "triton", "mcu"},
    "cluster": {"foundation", "data", "runtime", "web", "serve", "triton"},
    "cli": {
        "foundation",
        "data",
        "training",
        "triton",
        "export",
        "runtime",
        "web",
        "serve",
        "devices",
        "bench",
        "cluster",
        "mcu",
    },
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage(module: str) -> str:
    if module == "edge_lstm.__main__":
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "foundation"


def imports(path: Path) -> list[tuple[str, bool, list[str]]]:
    """(imported module, at module level?, names imported from it) for every edge_lstm import."""
    tree = parse(path)
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


def dependency_errors(modules: dict[str, list[tuple[str, bool, list[str]]]]) -> list[str]:
    bad = []
    for mod, found in modules.items():
        for target, _, _ in found:
            if stage(target) != stage(mod) and stage(target) not in ALLOWED[stage(mod)]:
                bad.append(f"{mod} imports {target}")
    return bad


def test_each_part_imports_only_what_it_may() -> None:
    bad = dependency_errors({m: imports(p) for m, p in MODULES.items()})
    assert not bad, bad


def test_the_dependency_rule_catches_runtime_importing_training() -> None:
    assert dependency_errors({"edge_lstm.runtime.x": [("edge_lstm.training.loop", False, [])]})
    assert not dependency_errors({"edge_lstm.bench.x": [("edge_lstm.runtime", False, ["Classifier"])]})


def import_graph(modules: dict[str, list[tuple[str, bool, list[str]]]]) -> dict[str, set[str]]:
    """module -> the modules it imports, at module level or inside functions (a lazy import that
    closes a circle still means two modules that cannot be understood apart)."""
    graph: dict[str, set[str]] = {}
    for m, found in modules.items():
        edges = set()
        for t, _, names in found:  # `from pkg import submodule` points at the submodule
            edges |= {f"{t}.{n}" if f"{t}.{n}" in modules else t for n in names or [""]} & set(modules)
        graph[m] = edges - {m}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> list[str] | None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                return [*trail, m, t]
            if not state.get(t) and (found := visit(t, [*trail, m])):
                return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if not state.get(m) and (found := visit(m, [])):
            return found
    return None


def test_no_import_cycle_lazy_imports_included() -> None:
    # A package's __init__ re-exporting its modules is the one allowed pointer back: a module that
    # imports its own package would close a circle through it, so it is counted (and must not happen).
    cycle = find_cycle(import_graph({m: imports(p) for m, p in MODULES.items()}))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_a_lazy_circle() -> None:
    lazy = {"edge_lstm.a": [("edge_lstm.b", True, ["x"])], "edge_lstm.b": [("edge_lstm.a", False, ["y"])]}
    assert find_cycle(import_graph(lazy)) is not None


def test_no_private_names_across_modules() -> None:
    bad = []
    for mod, path in MODULES.items():
        for target, _, names in imports(path):
            bad += [
                f"{mod} imports {target}.{n}"
                for n in names
                if n.startswith("_") and not n.startswith("__") and target != mod
            ]
        tree = parse(path)
        for node in ast.walk(tree):  # obj._private where obj is not self/cls
            private = isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
            if private and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):  # type: ignore[attr-defined]
                bad.append(f"{mod}: .{node.attr}")  # type: ignore[attr-defined]
    assert not bad, bad


def test_modules_stay_small() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    assert max(sizes.values()) <= 320, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_every_subpackage_states_its_job_and_exports_its_api() -> None:
    for sub in (p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        init = PACKAGE / sub / "__init__.py"
        tree = parse(init)
        assert ast.get_docstring(tree), sub
        if sub != "cli":
            assert any(isinstance(n, ast.Assign) and n.targets[0].id == "__all__" for n in tree.body), sub  # type: ignore[attr-defined]


# The server's rooms (docs/serving.md, "One core, thin fronts"): the core serves every transport; a
# front (HTTP's hot path, gRPC, the WebSocket) reaches the core and what it holds, never another front,
# and nothing below the fronts reaches up to one.
SERVE_FRONTS = {"edge_lstm.serve.hotpath", "edge_lstm.serve.grpc", "edge_lstm.serve.websocket"}
SERVE_ASSEMBLY = {"edge_lstm.serve.app", "edge_lstm.serve", "edge_lstm.serve.server"}  # puts fronts together


def test_serving_fronts_stand_on_one_core_and_not_on_each_other() -> None:
    graph = import_graph({m: imports(p) for m, p in MODULES.items()})
    serve = {m for m in graph if m.startswith("edge_lstm.serve.") or m == "edge_lstm.serve"}
    for front in SERVE_FRONTS:
        assert "edge_lstm.serve.core" in graph[front], front
        assert not graph[front] & (SERVE_FRONTS | SERVE_ASSEMBLY) - {front}, (front, graph[front])
    for m in serve - SERVE_FRONTS - SERVE_ASSEMBLY:
        assert not graph[m] & SERVE_FRONTS, (m, graph[m] & SERVE_FRONTS)
