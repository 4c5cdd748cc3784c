"""The committed benchmark scripts (bench/*.py, data/make_samples.py) import only what the package
has: they run for minutes, so the suite checks their imports, lazy ones included, instead."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from test_architecture import parse

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*REPO.glob("bench/*.py"), REPO / "data" / "make_samples.py"])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_resolve(script: Path) -> None:
    for node in ast.walk(parse(script)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edge_lstm"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"{script.name}: {node.module}.{alias.name}"
                )
