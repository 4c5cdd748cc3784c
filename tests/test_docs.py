"""The documentation names only what exists: every path and link in README.md and docs/ resolves,
every module is on the code map, README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = [
    REPO / "README.md",
    REPO / "CHANGELOG.md",
    REPO / "bench" / "README.md",
    REPO / "export" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
]
TOP = ("edge_lstm/", "bench/", "tests/", "data/", "docs/", "export/README", ".ci/")
# Written by commands, not committed (git-ignored): named as what a user gets.
MADE = ("export/model", "export/step", "export/web", "runs/", "bench/results/h100/gpu_check")


def named_paths(doc: Path) -> set[str]:
    text = doc.read_text()
    found = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        token = token.rstrip(".,:;")
        if token.startswith(TOP) and not token.startswith(MADE) and "*" not in token and "{" not in token:
            found.add(token.split("#")[0].split("::")[0])
    return found


def test_every_named_path_exists() -> None:
    missing = [f"{d.relative_to(REPO)}: {p}" for d in DOCS for p in named_paths(d) if not (REPO / p).exists()]
    assert not missing, missing


def test_every_link_resolves() -> None:
    missing = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists():
                missing.append(f"{doc.relative_to(REPO)}: {target}")
    assert not missing, missing


def test_every_module_is_on_the_code_map() -> None:
    rows = {}
    for line in (REPO / "docs" / "code-map.md").read_text().splitlines():
        if m := re.match(r"\| `(edge_lstm/[a-z_/]*)`", line):
            rows[m.group(1)] = line
    missing = []
    for path in sorted((REPO / "edge_lstm").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        folder = path.parent.relative_to(REPO).as_posix() + "/"
        if f"`{path.name}`" not in rows.get(folder, ""):
            missing.append(path.relative_to(REPO).as_posix())
    assert not missing, missing


def test_readme_is_a_front_door() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_screen = "\n".join(text.splitlines()[:60])
    assert "pip install torch==2.13.0 -e '.[torch,serve]' && edge-lstm train" in first_screen
    assert "pip install torch==2.13.0 -e '.[test]' && pytest" in first_screen
    for doc in DOCS:
        assert not re.search(r"\bissue \d+|\blent\b", doc.read_text(), re.I), doc.name  # the project, not its tracker
