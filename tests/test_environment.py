from __future__ import annotations

from pathlib import Path

import pytest

from edge_lstm.environment import describe, providing_distribution


def fake_dist(site: Path, name: str, version: str, module: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n")


def test_the_imported_module_decides_not_the_first_installed_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on the H100 image: the CPU package in one folder, the GPU one earlier on the path.
    system, carried = tmp_path / "system", tmp_path / "carried"
    for site, name, version in ((system, "fakeort", "1.30.0"), (carried, "fakeort-gpu", "1.31.1")):
        (site / "fakeort").mkdir(parents=True)
        (site / "fakeort" / "__init__.py").write_text(f'__version__ = "{version}"\n')
        fake_dist(site, name, version, "fakeort")
    monkeypatch.syspath_prepend(str(system))
    monkeypatch.syspath_prepend(str(carried))
    assert providing_distribution("fakeort") == ("fakeort-gpu", "1.31.1")


def test_two_packages_installed_over_each_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fakeort2").mkdir()
    (tmp_path / "fakeort2" / "__init__.py").write_text('__version__ = "1.31.1"\n')  # the last install won
    fake_dist(tmp_path, "fakeort2", "1.30.0", "fakeort2")
    fake_dist(tmp_path, "fakeort2-gpu", "1.31.1", "fakeort2")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert providing_distribution("fakeort2") == ("fakeort2-gpu", "1.31.1")


def test_describe_names_the_runtime_that_runs() -> None:
    import onnxruntime

    env = describe()
    assert env["onnxruntime"] == onnxruntime.__version__ and env["onnxruntime_package"].startswith("onnxruntime")
    assert providing_distribution("no_such_module_here") == (None, None)
