"""Web: the browser as an edge device. Builds the draw-a-digit page (onnxruntime-web, wasm or
WebGPU), serves it, and drives it in a headless Chromium for `bench --provider wasm` and the tests."""

from edge_lstm.web.site import SiteConfig, build_site

__all__ = ["SiteConfig", "build_site"]
