"""The page in a real headless Chromium (Debian's chromium, driven by Playwright): digits drawn as
mouse strokes are classified as `predict` classifies the same pictures, the step model streams its
answer row by row, and broken files give a readable error on the page. Skipped without Chromium or
Playwright (.ci/run installs both)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_lstm.data import MnistSplit
from edge_lstm.runtime import Classifier
from edge_lstm.runtime.preprocess import to_mnist
from edge_lstm.web import SiteConfig, build_site

if os.environ.get("EDGE_LSTM_REQUIRE_BROWSER"):  # CI installs both: there, a missing one is a failure
    import playwright  # noqa: F401

    assert shutil.which("chromium") or shutil.which("chromium-browser"), "Chromium is not installed"
pytest.importorskip("playwright")
if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
    pytest.skip("needs Chromium (apt-get install chromium)", allow_module_level=True)

from edge_lstm.web.browser import open_page, pad_picture, write_with_mouse

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(exported: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(SiteConfig(out=tmp_path_factory.mktemp("site"), model=exported["fp32"], step=exported["step"]))


STROKES = """([runs, scale]) => {
  // Pointer events on the pad, as a mouse makes them: one drag per run of ink in each row.
  const pad = document.getElementById("pad"), r = pad.getBoundingClientRect();
  const fire = (type, x, y) => pad.dispatchEvent(new PointerEvent(type, {
    bubbles: true, pointerId: 1, pointerType: "mouse", isPrimary: true, buttons: type === "pointerup" ? 0 : 1,
    clientX: r.left + x * r.width / 28, clientY: r.top + y * r.height / 28 }));
  window.edgeLstm.clearPad();
  for (const [y, x0, x1] of runs) {
    fire("pointerdown", x0 + 0.5, y + 0.5);
    fire("pointermove", (x0 + x1) / 2 + 0.5, y + 0.5);
    fire("pointermove", x1 + 0.5, y + 0.5);
    fire("pointerup", x1 + 0.5, y + 0.5);
  }
}"""


def draw(page: Any, digit: np.ndarray) -> None:
    """An MNIST digit as strokes on the 280x280 pad, through the page's own pointer handlers."""
    runs = []
    for y in range(28):
        x = 0
        while x < 28:
            if digit[y, x] > 110:
                x1 = x
                while x1 + 1 < 28 and digit[y, x1 + 1] > 110:
                    x1 += 1
                runs.append([y, x, x1])
                x = x1 + 1
            else:
                x += 1
    page.evaluate(STROKES, [runs, 10])
    page.wait_for_function(
        "window.edgeLstm.classified !== undefined && !window.edgeLstm.busy && !window.edgeLstm.pending"
    )


def canvas_picture(page: Any) -> np.ndarray:
    return pad_picture(page)


def test_drawn_digits_match_predict(site: Path, exported: dict[str, Path], test_split: MnistSplit) -> None:
    clf = Classifier(exported["fp32"])
    agree = same_array = 0
    n = 50
    with open_page(site, "rowdelay=0") as page:
        assert page.evaluate("window.edgeLstm.readyMs") < 5000
        for i in range(n):
            draw(page, test_split.images[i])
            shown = page.evaluate("window.edgeLstm.last")
            picture = canvas_picture(page)  # the very picture the page classified
            expected = to_mnist(picture)
            same_array += int(np.array_equal(np.array(shown["pixels"], np.uint8).reshape(28, 28), expected))
            _, probs = clf.predict(expected[None])
            said = int(probs[0].argmax()) if probs[0].max() >= (clf.no_digit_below or 0) else None  # predict's answer
            agree += int(shown["label"] == said)
        # README's picture: EDGE_LSTM_SCREENSHOT=bench/results/web_page.png pytest tests/web
        page.screenshot(path=os.environ.get("EDGE_LSTM_SCREENSHOT") or str(REPO / ".pytest_cache" / "web_page.png"))
    assert same_array == n  # the page's normalisation is predict's, to the last pixel
    assert agree >= 0.98 * n


def test_streaming_updates_row_by_row(site: Path, test_split: MnistSplit) -> None:
    with open_page(site, "rowdelay=0") as page:
        draw(page, test_split.images[3])
        rows = page.evaluate("window.edgeLstm.rows")
        assert [r["row"] for r in rows] == list(range(1, 29))
        assert rows[-1]["label"] == page.evaluate("window.edgeLstm.last.label")  # row 28 = the full model
        assert "after row 28 of 28" in page.locator("#rows").inner_text()


def test_webgpu_toggle_says_what_runs(site: Path) -> None:
    with open_page(site, "ep=webgpu") as page:  # headless Chromium without a GPU: no WebGPU adapter
        status = page.locator("#status").inner_text()
        ep = page.evaluate("window.edgeLstm.ep")
        assert ep in ("webgpu", "wasm") and f"on {ep}" in status
        if ep == "wasm":
            assert "fell back to wasm" in status
            # The address now says what runs, so choosing WebGPU again is a real change of the page.
            assert "ep=wasm" in page.url
            with page.expect_navigation() as navigation:
                page.locator("input[name=ep][value=webgpu]").click()
            assert "ep=webgpu" in navigation.value.url  # a new attempt (it falls back again without a GPU)


TO_MNIST = """([h, w, d]) => {
  try { return Array.from(edgeLstmPreprocess.toMnist({h, w, d: Float64Array.from(d)})); }
  catch (e) { return (e instanceof edgeLstmPreprocess.NoDigit ? "no digit: " : "blank: ") + e.message; }
}"""


def test_the_page_normalises_every_picture_family_as_predict(site: Path, test_split: MnistSplit) -> None:
    """The JavaScript port against the Python one on every family of real-looking pictures (close
    crops, bold strokes, photos of unevenly lit and shadowed paper, thin pens widened, ...) and on
    noise: the same 28x28 array, or
    both report that there is no digit."""
    from edge_lstm.data.pictures import FAMILIES, noise_pictures, render
    from edge_lstm.data.writing import photograph
    from edge_lstm.errors import InputError

    rng = np.random.default_rng(11)  # photographed pen strokes: shadows (broad light), thin strokes widened
    photos = [np.asarray(photograph(d, rng)) for d in range(10)]
    from edge_lstm.data.writing import make_drawing, rasterise

    for digit in (1, 4, 7):  # a thin brush on a large canvas: widened
        thin = rasterise(make_drawing(digit, rng, canvas=400, pen=(1, 3), speed=(2, 4)), supersample=2)
        photos.append(np.round(255 - 255 * thin).astype(np.uint8))
    # digits rendered at 28x28 that fill the frame (normalised, not passed through as MNIST's are)
    photos += [np.asarray(Image.fromarray(255 - p[4:24, 4:24]).resize((28, 28))) for p in test_split.images[:4]]
    pictures = [p for family in FAMILIES for p in render(family, test_split.images[:5])] + noise_pictures(6) + photos
    with open_page(site, "rowdelay=0") as page:
        for picture in pictures:
            js = page.evaluate(TO_MNIST, [picture.shape[0], picture.shape[1], picture.ravel().tolist()])
            try:
                expected: object = to_mnist(picture).ravel().tolist()
            except InputError as e:
                expected = ("no digit: " if "no digit" in str(e) else "blank: ") + "..."
            if isinstance(expected, str):
                assert isinstance(js, str) and js.split(":")[0] == expected.split(":")[0], (js, expected)
            else:
                assert js == expected


@pytest.mark.parametrize("broken", ["model.onnx", "ort-wasm-simd-threaded.wasm"])
def test_broken_files_show_a_readable_error(site: Path, tmp_path: Path, broken: str) -> None:
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    if broken == "model.onnx":
        (copy / broken).write_bytes(b"not a model")
    else:
        (copy / broken).unlink()
    from edge_lstm.errors import ProviderError

    with pytest.raises(ProviderError) as e, open_page(copy):
        pass
    message = str(e.value)  # what the page shows in its error line, read from the page
    assert "could not load the model (model.onnx)" in message, message
    cause = "protobuf parsing failed" if broken == "model.onnx" else "fetching of the wasm failed"
    assert cause in message, message


def test_bench_measures_the_browser_beside_native(exported: dict[str, Path], tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from edge_lstm.cli import app

    out = tmp_path / "b.json"
    res = CliRunner().invoke(
        app,
        [
            "bench",
            str(exported["fp32"]),
            "--provider",
            "cpu,browser-wasm",
            "--scenario",
            "single-stream",
            "--min-time",
            "0.3",
            "--min-count",
            "50",
            "--rounds",
            "1",
            "--warmup",
            "5",
            "--json-file",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {r["provider"]: r for r in json.loads(out.read_text())["results"]}
    assert (
        rows["browser-wasm"]["n"] >= 50
        and rows["browser-wasm"]["p50_ms"] > 0
        and rows["browser-wasm"]["p50_vs_native"] > 0
    )
    assert rows["browser-wasm"]["provider_options"]["engine"].startswith("onnxruntime-web") and "x native" in res.stdout


def assert_same_answer(page_label: int | None, clf: Classifier, image: np.ndarray) -> None:
    """The page's class is predict's (None: "no digit", the file's threshold), unless float noise
    (onnxruntime-web and onnxruntime may round the last bits differently) decides it: the two best
    classes within 1e-3 of each other, or the best within 1e-3 of the threshold."""
    _, probs = clf.predict(image[None])
    p, below = probs[0], clf.no_digit_below or 0.0
    if abs(float(p.max()) - below) < 1e-3:
        return
    if p.max() < below:
        assert page_label is None, (page_label, p)
    elif page_label != int(p.argmax()):
        assert page_label is not None and p.max() - p[page_label] < 1e-3, (page_label, p)


def test_readme_samples_drawn_back_as_strokes(site: Path, exported: dict[str, Path]) -> None:
    """Each sample of data/samples, as predict sees it, drawn back on the pad as mouse strokes: the
    page answers what predict answers for the file."""
    from edge_lstm.runtime.preprocess import load_inputs

    clf = Classifier(exported["fp32"])
    samples = sorted((REPO / "data" / "samples").glob("*_*.*[gp]"))
    with open_page(site, "rowdelay=0") as page:
        for path in samples:
            seen = load_inputs(path)[0]
            draw(page, seen)
            shown = page.evaluate("window.edgeLstm.last")
            drawn = np.array(shown["pixels"], np.uint8).reshape(28, 28)  # the strokes redrawn: close to `seen`
            assert np.abs(drawn.astype(int) - seen).mean() < 40, path
            assert_same_answer(shown["label"], clf, drawn)


def test_mouse_strokes_at_many_pen_widths(site: Path, exported: dict[str, Path]) -> None:
    """Digits written with the mouse (bench/writing.py's way: real pointer input through Playwright,
    the pen slider's width): the page's pixels and answer are predict's for the canvas it drew."""
    from edge_lstm.data.writing import make_drawing

    clf = Classifier(exported["fp32"])
    rng = np.random.default_rng(3)
    with open_page(site, "rowdelay=0") as page:
        for digit in range(10):
            d = make_drawing(digit, rng)
            page.locator("#pen").fill(str(round(d.pen)))  # the slider, as a user sets it
            page.evaluate("window.edgeLstm.clearPad()")
            write_with_mouse(page, d.strokes)
            assert page.evaluate("document.getElementById('pad').getContext('2d').lineWidth") == round(d.pen)
            expected = to_mnist(canvas_picture(page))
            shown = page.evaluate("window.edgeLstm.last")
            assert np.array_equal(np.array(shown["pixels"], np.uint8).reshape(28, 28), expected)
            assert_same_answer(shown["label"], clf, expected)
