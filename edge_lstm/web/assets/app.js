// The page: draw, normalise as `edge-lstm predict` does (preprocess.js), classify with the exported
// model in onnxruntime-web (wasm or WebGPU), and feed the 28 rows to the step model one by one, so
// the anytime prediction shows as it forms. Errors are shown on the page, never a blank page.
"use strict";

const state = { ep: null, fellBack: false, session: null, step: null, config: null, readyMs: null, rows: [], last: null, busy: false };
window.edgeLstm = state;
const $ = (id) => document.getElementById(id);

function showError(message) {
  $("error").textContent = "error: " + message;
  state.error = String(message);
}
window.addEventListener("error", (e) => showError(e.message || String(e)));
window.addEventListener("unhandledrejection", (e) => showError((e.reason && e.reason.message) || String(e.reason)));

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src} (is the onnxruntime-web file there?)`));
    document.head.appendChild(s);
  });
}

function softmax(logits) {
  const m = Math.max(...logits), e = logits.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function drawBars(probs) {
  const best = probs.indexOf(Math.max(...probs));
  $("bars").innerHTML = probs.map((p, k) =>
    `<div class="bar${k === best ? " best" : ""}"><b>${k}</b><span class="fill" style="width:${Math.round(160 * p)}px"></span>${(100 * p).toFixed(1)}%</div>`).join("");
  $("answer").textContent = String(best);
  return best;
}

function showSeen(pixels) {
  const ctx = $("seen").getContext("2d"), img = ctx.createImageData(28, 28);
  for (let i = 0; i < 784; i++) { img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = pixels[i]; img.data[4 * i + 3] = 255; }
  ctx.putImageData(img, 0, 0);
}

async function start() {
  const params = new URLSearchParams(location.search);
  let ep = params.get("ep") === "webgpu" ? "webgpu" : "wasm";
  if (ep === "webgpu") {  // a browser may expose navigator.gpu and still have no adapter (no GPU)
    const adapter = navigator.gpu ? await navigator.gpu.requestAdapter().catch(() => null) : null;
    if (!adapter) {
      ep = "wasm"; state.fellBack = true;
      params.set("ep", "wasm");  // the address says what runs, so either choice can be made again
      history.replaceState(null, "", "?" + params.toString());
    }
  }
  for (const r of document.querySelectorAll("input[name=ep]")) {
    r.checked = r.value === ep;
    r.onchange = () => { params.set("ep", r.value); location.search = params.toString(); };
  }
  const config = await (await fetch("config.json")).json();
  state.config = config;
  state.noDigitBelow = config.no_digit_below ?? null;
  await loadScript(ep === "webgpu" ? "ort.webgpu.min.js" : "ort.wasm.min.js");
  ort.env.wasm.wasmPaths = new URL("./", location.href).href;
  // Threads need a cross-origin isolated page (`edge-lstm web --serve` sends the headers).
  // (?threads=N and ?opt=disabled|basic|extended|all override the defaults, for measuring them.)
  const threads = Number(params.get("threads")) || Math.min(4, navigator.hardwareConcurrency || 1);
  ort.env.wasm.numThreads = crossOriginIsolated ? threads : 1;
  const options = { executionProviders: [ep], graphOptimizationLevel: params.get("opt") || "all" };
  try {
    state.session = await ort.InferenceSession.create(config.model, options);
    if (config.step) state.step = await ort.InferenceSession.create(config.step, options);
  } catch (e) {
    throw new Error(`could not load the model (${config.model}) with onnxruntime-web ${config.onnxruntime_web} on ${ep}: ${e.message || e}`);
  }
  // One zero image through the model: the first run compiles kernels (and WebGPU pipelines).
  await state.session.run({ images: new ort.Tensor("float32", new Float32Array(784), [1, 28, 28]) });
  state.ep = ep;
  state.readyMs = performance.now();
  $("status").textContent = `ready in ${state.readyMs.toFixed(0)} ms: onnxruntime-web ${config.onnxruntime_web} on ${ep}` +
    (state.fellBack ? " (WebGPU is not available in this browser: fell back to wasm)" : "") +
    `, ${ort.env.wasm.numThreads} thread(s); draw a digit`;
  state.ready = true;
}

async function classify(pixels) {
  const x = Float32Array.from(pixels, (v) => v / 255);
  const out = await state.session.run({ images: new ort.Tensor("float32", x, [1, 28, 28]) });
  return softmax(Array.from(out.logits.data));
}

async function stream(pixels, generation) {
  // The step model: rows one by one with the state carried, the answer after every row.
  if (!state.step) return;
  const delay = Number(new URLSearchParams(location.search).get("rowdelay") ?? 15);
  // The state tensors (LSTM h and c, GRU h; (layers, 1, hidden) each) come from the model's architecture (config.json).
  let carried = Object.fromEntries(state.config.state.map((s) =>
    [s.input, new ort.Tensor("float32", new Float32Array(s.dims.reduce((a, b) => a * b)), s.dims)]));
  state.rows = [];
  for (let t = 0; t < 28; t++) {
    const row = Float32Array.from(pixels.slice(28 * t, 28 * t + 28), (v) => v / 255);
    const out = await state.step.run({ row: new ort.Tensor("float32", row, [1, 28]), ...carried });
    carried = Object.fromEntries(state.config.state.map((s) => [s.input, out[s.output]]));
    const probs = softmax(Array.from(out.logits.data)), label = probs.indexOf(Math.max(...probs));
    state.rows.push({ row: t + 1, label, p: probs[label] });
    $("rows").textContent = `streaming: after row ${t + 1} of 28 the answer is ${label} (${(100 * probs[label]).toFixed(0)}%)`;
    drawBars(probs);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));  // let the page show each row
    if (generation !== state.generation) return;  // a newer drawing took over
  }
}

async function onDrawn() {
  if (!state.ready) return;
  state.generation = (state.generation || 0) + 1;
  if (state.busy) { state.pending = true; return; }  // classify the newest drawing when this one is done
  state.busy = true;
  const generation = state.generation;
  try {
    const pad = $("pad"), rgba = pad.getContext("2d").getImageData(0, 0, pad.width, pad.height).data;
    let pixels;
    try {
      pixels = edgeLstmPreprocess.toMnist(edgeLstmPreprocess.grayFromRgba(rgba, pad.height, pad.width));
    } catch (e) {
      if (e instanceof edgeLstmPreprocess.BlankPicture) { state.last = null; $("answer").textContent = ""; $("rows").textContent = e instanceof edgeLstmPreprocess.NoDigit ? e.message : "draw a digit"; return; }
      throw e;
    }
    showSeen(pixels);
    const probs = await classify(pixels);
    const best = probs.indexOf(Math.max(...probs));
    if (state.noDigitBelow !== null && probs[best] < state.noDigitBelow) {  // the model's own "no digit", as predict
      state.last = { label: null, probs, pixels: Array.from(pixels), noDigit: true }; $("answer").textContent = "";
      state.classified = (state.classified || 0) + 1;  // answered: "no digit" is the model's answer
      $("rows").textContent = `no digit found: the model is not sure this is a digit (its best guess, ${best}, at ${(100 * probs[best]).toFixed(0)}%)`;
      return;
    }
    const label = drawBars(probs);
    state.last = { label, probs, pixels: Array.from(pixels) };
    await stream(pixels, generation);
    drawBars(probs);  // the full model's answer stays on screen
    state.classified = (state.classified || 0) + 1;
  } finally {
    state.handled = (state.handled || 0) + 1;  // every drawing looked at, classified or refused
    state.busy = false;
    if (state.pending) { state.pending = false; onDrawn(); }
  }
}

function setUpPad() {
  const pad = $("pad"), ctx = pad.getContext("2d");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  // The pen's width (pixels of the 280-pixel pad): the slider, or ?pen=N (the real-writing benchmark
  // draws with many widths, as people's pens and fingers differ).
  const setPen = (w) => { ctx.lineWidth = Math.max(1, Math.min(60, Number(w) || 18)); $("pen").value = String(ctx.lineWidth); };
  ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#000";
  setPen(new URLSearchParams(location.search).get("pen") || 18);
  $("pen").oninput = (e) => setPen(e.target.value);
  state.setPen = setPen;
  let drawing = false;
  const at = (e) => { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; };
  pad.addEventListener("pointerdown", (e) => {
    drawing = true;
    try { pad.setPointerCapture(e.pointerId); } catch (_) { /* a synthetic or finished pointer */ }
    const [x, y] = at(e); ctx.beginPath(); ctx.moveTo(x, y); ctx.lineTo(x + 0.01, y); ctx.stroke(); });
  pad.addEventListener("pointermove", (e) => { if (!drawing) return; const [x, y] = at(e); ctx.lineTo(x, y); ctx.stroke(); });
  const end = () => { if (drawing) { drawing = false; onDrawn(); } };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").onclick = () => { clear(); $("answer").textContent = ""; $("bars").innerHTML = ""; $("rows").textContent = ""; };
  state.clearPad = $("clear").onclick;
  state.classifyNow = onDrawn;
}

// The single-stream benchmark of `edge-lstm bench`, here: one image, batch 1, awaited one at a time.
state.bench = async (settings, pixels) => {
  const x = new ort.Tensor("float32", Float32Array.from(pixels || new Array(784).fill(0), (v) => v / 255), [1, 28, 28]);
  const result = await edgeLstmStats.singleStream(() => state.session.run({ images: x }), settings || {});
  const s = result.summary, us = (v) => (v === null ? "-" : `${(1000 * v).toFixed(1)} us`);
  $("benchout").textContent = `${state.ep}, batch 1, n=${s.n}: p50 ${us(s.p50_ms)} [${us(s.p50_ci_ms[0])}, ${us(s.p50_ci_ms[1])}], p90 ${us(s.p90_ms)}, p99 ${us(s.p99_ms)}`;
  return { ...result, ep: state.ep, threads: ort.env.wasm.numThreads, crossOriginIsolated, userAgent: navigator.userAgent };
};

setUpPad();
$("bench").onclick = () => state.bench({ minTime: 3 }, state.last && state.last.pixels);
start().catch((e) => showError(e.message || String(e)));
