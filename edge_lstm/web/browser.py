"""A headless Chromium driven by Playwright: opens the built page for `bench --provider browser-wasm`
and the tests. Chromium comes from the system (Debian's `chromium` package): Playwright's own browser
download is not used (`executable_path`)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edge_lstm.errors import ProviderError

# Headless, and no background traffic: a closed network refuses it, and it is noise in a benchmark.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# --provider name -> the page's ?ep=. Named apart from onnxruntime's own providers: `webgpu` is the
# native WebGpuExecutionProvider, `browser-webgpu` onnxruntime-web's WebGPU inside Chromium.
BROWSER_PROVIDERS = {"browser-wasm": "wasm", "browser-webgpu": "webgpu"}


def browser_status() -> tuple[bool, str]:
    """Whether the browser providers can run here (Chromium and Playwright present), and why not."""
    import importlib.util

    try:
        find_chromium()
    except ProviderError as e:
        return False, str(e)
    if importlib.util.find_spec("playwright") is None:
        return False, "needs Playwright: install the extra with `pip install -e '.[web]'`"
    return True, ""


def serve_folder(folder: Path) -> tuple[str, Callable[[], None]]:
    """The page folder served in a background thread by `edge-lstm serve`'s own server (with the
    cross-origin isolation headers); (its URL, a stop function)."""
    from edge_lstm.serve import ServeConfig, build_app, start_in_thread

    return start_in_thread(build_app(ServeConfig(models=(), static=Path(folder))))


def find_chromium() -> str:
    for candidate in (os.environ.get("EDGE_LSTM_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    raise ProviderError(
        "the browser providers need Chromium: install it (Debian: apt-get install chromium) "
        "or point EDGE_LSTM_CHROMIUM at it"
    )


@contextlib.contextmanager
def open_page(folder: Path, query: str = "", timeout_s: float = 60.0) -> Iterator[Any]:
    """The page served from `folder`, loaded in headless Chromium and ready (or ProviderError with
    the error the page shows)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ProviderError(
            "the browser providers drive Chromium with Playwright: install the extra with `pip install -e '.[web]'`"
        ) from None
    executable = find_chromium()
    url, stop = serve_folder(folder)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.goto(url + "/" + (f"?{query}" if query else ""))
                page.wait_for_function(
                    "window.edgeLstm && (window.edgeLstm.ready || window.edgeLstm.error)", timeout=timeout_s * 1000
                )
                error = page.evaluate("window.edgeLstm.error || null")
                if error:
                    raise ProviderError(f"the page in Chromium: {error}")
                yield page
            finally:
                browser.close()
    finally:
        stop()


def bench_in_browser(folder: Path, ep: str, settings: dict[str, float], pixels: list[int]) -> dict[str, Any]:
    """The page's single-stream benchmark (batch 1) on `ep`; raw latencies in ms and what ran."""
    with open_page(folder, f"ep={BROWSER_PROVIDERS[ep]}&rowdelay=0") as page:
        ready_ms = page.evaluate("window.edgeLstm.readyMs")
        result: dict[str, Any] = page.evaluate("([s, px]) => window.edgeLstm.bench(s, px)", [settings, pixels])
        result["ready_ms"] = ready_ms
        result["fell_back"] = page.evaluate("window.edgeLstm.fellBack")
        return result


def pad_picture(page: Any) -> Any:
    """The page's drawing pad as a (H, W) uint8 grayscale picture, as `predict` would read it saved."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("L"))


def write_with_mouse(page: Any, strokes: list[Any]) -> None:
    """Drag the mouse along each stroke ((n, 2) points in the 280-pixel pad's pixels), one button
    press per stroke, through Playwright's real pointer input; return once the page has looked at the
    drawing (classified it, or said it holds no digit)."""
    left, top, width = page.evaluate(
        "(() => { const r = document.getElementById('pad').getBoundingClientRect(); "
        "return [r.left, r.top, r.width]; })()"
    )
    scale = width / 280
    before = page.evaluate("window.edgeLstm.handled || 0")
    for stroke in strokes:
        page.mouse.move(left + stroke[0][0] * scale, top + stroke[0][1] * scale)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(left + x * scale, top + y * scale)
        page.mouse.up()
    page.wait_for_function(
        "n => (window.edgeLstm.handled || 0) > n && !window.edgeLstm.busy && !window.edgeLstm.pending", arg=before
    )
