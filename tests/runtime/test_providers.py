from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edge_lstm.cli import app
from edge_lstm.data import MnistSplit
from edge_lstm.errors import ProviderError
from edge_lstm.runtime import Classifier, plugins, provider_check, providers

runner = CliRunner()


def test_missing_provider_fails_fast_with_package_hint(exported: dict[str, Path]) -> None:
    for name, package in (
        ("cuda", "onnxruntime-gpu"),
        ("openvino", "onnxruntime-openvino"),
        ("dml", "onnxruntime-directml"),
    ):
        s = providers.spec(name)
        if s.ep in providers.available() or plugins.installed(s.name, s.ep, providers.available()) is not None:
            continue  # installed here (built in, or as a plugin package)
        t0 = time.perf_counter()
        with pytest.raises(ProviderError) as e:
            Classifier(exported["fp32"], provider=name)
        assert time.perf_counter() - t0 < 1.0
        assert package in str(e.value) and "available: " in str(e.value) and "cpu" in str(e.value)


def test_unknown_provider_lists_valid_ones() -> None:
    with pytest.raises(ProviderError, match="choose one of: cpu, cuda, tensorrt, openvino"):
        providers.spec("tpu")
    assert providers.spec("CUDAExecutionProvider").name == "cuda"


def test_provider_defaults() -> None:
    images = {"images": ["batch", 28, 28]}
    assert providers.default_options("cuda", images) == {"device_id": 0}
    trt = providers.default_options("tensorrt", images, max_batch=512)
    assert trt["trt_fp16_enable"] is False and trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"].endswith("trt-engines")
    assert (trt["trt_profile_min_shapes"], trt["trt_profile_opt_shapes"], trt["trt_profile_max_shapes"]) == (
        "images:1x28x28",
        "images:64x28x28",
        "images:512x28x28",
    )
    step = providers.default_options("tensorrt", {"row": ["batch", 28], "h": [1, "batch", 128], "c": [1, "batch", 128]})
    assert step["trt_profile_min_shapes"] == "row:1x28,h:1x1x128,c:1x1x128"
    assert providers.default_options("openvino", images) == {
        "device_type": "CPU",
        "load_config": providers.OPENVINO_F32,
    }
    assert providers.default_options("cpu", images) == {}


def test_parse_options() -> None:
    assert providers.parse_options(["device_id=1", "trt_fp16_enable = True"]) == {
        "device_id": "1",
        "trt_fp16_enable": "True",
    }
    with pytest.raises(ProviderError, match="KEY=VALUE"):
        providers.parse_options(["novalue"])


def test_listed_is_not_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    # The H100 image listed TensorRT without its libraries: `providers` said "yes". --check tries it.
    monkeypatch.setattr(providers, "available", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    rows = {r.name: r for r in provider_check.statuses(check=True)}
    assert rows["cpu"].listed and rows["cpu"].loads is True
    assert rows["tensorrt"].listed and rows["tensorrt"].loads is False and "fell back to cpu" in rows["tensorrt"].detail
    assert not rows["cuda"].listed and rows["cuda"].loads is False
    assert {r.name: r.loads for r in provider_check.statuses()}["tensorrt"] is None  # not tried without --check


def test_providers_command_check_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "available", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    res = runner.invoke(app, ["providers", "--check", "--json"])
    assert res.exit_code == 0, res.output
    assert "listed but does not load" in res.stdout and "Falling back" not in res.output
    assert "not in available provider names" not in res.output  # onnxruntime's own warnings stay out
    import json

    report = json.loads(res.stdout.splitlines()[-1])
    assert "CPUExecutionProvider" in report["available"]  # onnxruntime's own list (GPU machines have more)


def test_a_plugin_provider_that_cannot_load_is_one_clean_error(
    exported: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # onnxruntime-ep-openvino is registered at run time; a broken or deviceless plugin must say so.
    if providers.spec("openvino").ep in providers.available():
        pytest.skip("OpenVINO is already in this process (built into onnxruntime, or the real plugin registered)")
    pkg = tmp_path / "onnxruntime_ep_openvino"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"def get_library_path():\n    return {str(tmp_path / 'missing.so')!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_registered", set())
    before = set(Path(tempfile.gettempdir()).glob("edge-lstm-profile-*"))
    with pytest.raises(ProviderError, match="onnxruntime_ep_openvino plugin did not load"):
        Classifier(exported["fp32"], provider="openvino")
    assert set(Path(tempfile.gettempdir()).glob("edge-lstm-profile-*")) == before  # nothing left behind


def test_a_registered_plugin_is_still_used_through_its_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # After registration onnxruntime lists the plugin's EP like a built-in one; sessions must still
    # take it through its devices (a provider list silently falls back to the CPU: seen on a Xeon).
    (tmp_path / "onnxruntime_ep_openvino").mkdir()
    (tmp_path / "onnxruntime_ep_openvino" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    ov = providers.spec("openvino")
    have = ["OpenVINOExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(plugins, "_registered", {"openvino"})
    assert plugins.installed(ov.name, ov.ep, have) == "onnxruntime_ep_openvino"
    monkeypatch.setattr(plugins, "_registered", set())
    assert plugins.installed(ov.name, ov.ep, have) is None  # built in (onnxruntime-openvino): a provider list works


def _openvino_cpu_device() -> str | None:
    """Why the OpenVINO plugin cannot run here, or None where it offers a CPU device."""
    if providers.spec("openvino").ep in providers.available():
        return None  # built into this onnxruntime (onnxruntime-openvino)
    if plugins.installed("openvino", "OpenVINOExecutionProvider", providers.available()) is None:
        return "the onnxruntime-ep-openvino plugin is not installed (pip install -e '.[openvino]')"
    try:
        plugins.devices_for("openvino", "OpenVINOExecutionProvider", {"device_type": "CPU"})
    except ProviderError as e:
        return str(e)  # e.g. on an AMD CPU the plugin offers no CPU device (README)
    return None


_OPENVINO_MISSING = _openvino_cpu_device()  # once: finding out registers the plugin


@pytest.mark.skipif(_OPENVINO_MISSING is not None, reason=str(_OPENVINO_MISSING))
def test_openvino_runs_every_node_and_agrees_with_the_cpu(exported: dict[str, Path], test_split: MnistSplit) -> None:
    # Where the plugin offers a CPU device (an Intel CPU), the whole graph runs in OpenVINO, in FP32.
    ov = Classifier(exported["fp32"], provider="openvino")
    assert ov.provider == "openvino"
    assert ov.placement is not None and set(ov.placement) == {"openvino"}, ov.placement
    cpu = Classifier(exported["fp32"], threads=1)
    x = test_split.images[:256]
    assert np.abs(ov.logits(x) - cpu.logits(x)).max() < 1e-3
    assert (ov.predict_labels(x) == cpu.predict_labels(x)).all()
    res = runner.invoke(app, ["providers", "--check", "--json"])
    assert res.exit_code == 0, res.output
    assert "openvino" in res.output


def test_a_provider_that_cannot_build_its_graph_is_the_providers_error(
    exported: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # QNN's HTP refused the fixed-batch LSTM file with "EP_FAIL : Failed to finalize QNN graph"
    # (bench/results/qnn_check.json): that is the provider's failure, not a broken file.
    import onnxruntime as ort

    real = ort.InferenceSession

    def failing(data: bytes, so: object = None, providers: list[object] | None = None) -> object:
        if providers and providers[0] != "CPUExecutionProvider":
            raise RuntimeError("[ONNXRuntimeError] : 11 : EP_FAIL : Failed to finalize QNN graph. Error: MEM_ALLOC")
        return real(data, so, providers=providers)

    monkeypatch.setattr(providers, "available", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", failing)
    with pytest.raises(ProviderError, match=r"tensorrt: could not create the session: .*EP_FAIL"):
        Classifier(exported["fp32"], provider="tensorrt")
