// MNIST normalisation in the browser: edge_lstm/runtime/imageops.py and preprocess.to_mnist,
// function for function, with the same order of floating-point operations, so that the same
// picture gives the same 28x28 array as `edge-lstm predict` (tests/web/test_page.py checks it).
// An image is {h, w, d}: d a Float64Array in row-major order.
"use strict";

const BLANK_CONTRAST = 16, EVEN_LIGHT = 0.08, PAPER_CEILING = 0.25, BROAD_LIGHT = 19, MIN_STROKE = 2.0, PEN_MIN = 3.0, FRAME_FILLED = 0.9, HAZE = 0.2;

function roundHalfUp(x) { return Math.floor(x + 0.5); }
function make(h, w) { return { h, w, d: new Float64Array(h * w) }; }
function transpose(a) {
  const t = make(a.w, a.h);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) t.d[x * a.h + y] = a.d[y * a.w + x];
  return t;
}

function areaWeights(nIn, nOut) {
  const s = nIn / nOut, w = [];
  for (let o = 0; o < nOut; o++) {
    const row = new Float64Array(nIn), lo = o * s, hi = (o + 1) * s;
    for (let i = Math.floor(lo); i < Math.min(nIn, Math.ceil(hi)); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 0) row[i] = overlap / s;
    }
    w.push(row);
  }
  return w;
}

function resizeAxis0(a, nOut) {
  const nIn = a.h, out = make(nOut, a.w);
  if (nOut <= nIn) {  // shrinking: area average, summed over the input index in order
    const w = areaWeights(nIn, nOut);
    for (let o = 0; o < nOut; o++) for (let c = 0; c < a.w; c++) {
      let acc = 0;
      for (let i = 0; i < nIn; i++) acc = acc + w[o][i] * a.d[i * a.w + c];
      out.d[o * a.w + c] = acc;
    }
    return out;
  }
  for (let o = 0; o < nOut; o++) {  // growing: bilinear, half-pixel centres, clamped
    const src = Math.min(Math.max((o + 0.5) * (nIn / nOut) - 0.5, 0), nIn - 1);
    const i0 = Math.floor(src), i1 = Math.min(i0 + 1, nIn - 1), t = src - i0;
    for (let c = 0; c < a.w; c++) out.d[o * a.w + c] = a.d[i0 * a.w + c] * (1 - t) + a.d[i1 * a.w + c] * t;
  }
  return out;
}

function resize(a, h, w) { return transpose(resizeAxis0(transpose(resizeAxis0(a, h)), w)); }

function clampIdx(i, n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

function rank(a, size, pick) {
  const r = Math.floor(size / 2), out = make(a.h, a.w);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) {
    let v = pick === "min" ? Infinity : -Infinity;
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) {
      const p = a.d[clampIdx(y + dy, a.h) * a.w + clampIdx(x + dx, a.w)];
      v = pick === "min" ? Math.min(v, p) : Math.max(v, p);
    }
    out.d[y * a.w + x] = v;
  }
  return out;
}

function median3(a) {
  const out = make(a.h, a.w), win = new Float64Array(9);
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) {
    let k = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) win[k++] = a.d[clampIdx(y + dy, a.h) * a.w + clampIdx(x + dx, a.w)];
    win.sort();
    out.d[y * a.w + x] = win[4];
  }
  return out;
}

function blur5Axis0(a) {
  const out = make(a.h, a.w), n = a.h;
  const p = (k, c) => a.d[clampIdx(k - 2, n) * a.w + c];
  for (let r = 0; r < n; r++) for (let c = 0; c < a.w; c++)
    out.d[r * a.w + c] = ((((p(r, c) + 4 * p(r + 1, c)) + 6 * p(r + 2, c)) + 4 * p(r + 3, c)) + p(r + 4, c)) / 16;
  return out;
}

function blur5(a) { return transpose(blur5Axis0(transpose(blur5Axis0(a)))); }

function medianOf(values) {
  const s = Float64Array.from(values).sort(), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function border(g) {
  const v = [];
  for (let x = 0; x < g.w; x++) v.push(g.d[x]);
  for (let x = 0; x < g.w; x++) v.push(g.d[(g.h - 1) * g.w + x]);
  for (let y = 0; y < g.h; y++) v.push(g.d[y * g.w]);
  for (let y = 0; y < g.h; y++) v.push(g.d[y * g.w + g.w - 1]);
  return v;
}

function removeBackground(g, flat) {
  const out = make(g.h, g.w);
  const flatOnly = () => { for (let i = 0; i < g.d.length; i++) out.d[i] = Math.max(g.d[i] - flat, 0); return out; };
  if (Math.max(g.h, g.w) < 64) return flatOnly();
  const scale = 32 / Math.max(g.h, g.w);
  const sh = Math.max(1, roundHalfUp(g.h * scale)), sw = Math.max(1, roundHalfUp(g.w * scale));
  const small = resize(g, sh, sw);
  let smax = -Infinity;
  for (const v of small.d) smax = Math.max(smax, v);
  const contrast = smax - flat;
  let emin = Infinity, emax = -Infinity;
  for (const v of border(blur5(small))) { emin = Math.min(emin, v); emax = Math.max(emax, v); }
  if (emax - emin < EVEN_LIGHT * contrast) return flatOnly();  // evenly lit: the border's level
  const paper = blur5(rank(rank(small, 7, "min"), 7, "max"));
  const broad = blur5(rank(rank(small, BROAD_LIGHT, "min"), BROAD_LIGHT, "max"));  // shadows, broad light
  const ceiling = flat + PAPER_CEILING * contrast;  // bold strokes are not paper
  for (let i = 0; i < paper.d.length; i++) paper.d[i] = Math.min(paper.d[i], Math.max(broad.d[i], ceiling));
  const level = resize(paper, g.h, g.w);
  for (let i = 0; i < g.d.length; i++) out.d[i] = Math.max(g.d[i] - Math.max(level.d[i], 0), 0);
  return out;
}

// Max over a size x size square (size odd), edges replicated: a row max, then a column max.
function dilate(a, size) {
  const r = Math.floor(size / 2);
  const rowsMax = (b) => {
    const out = make(b.h, b.w);
    for (let y = 0; y < b.h; y++) for (let x = 0; x < b.w; x++) {
      let v = -Infinity;
      for (let dx = -r; dx <= r; dx++) v = Math.max(v, b.d[y * b.w + clampIdx(x + dx, b.w)]);
      out.d[y * b.w + x] = v;
    }
    return out;
  };
  return transpose(rowsMax(transpose(rowsMax(a))));
}

// 2 x area / edge pixels of the ink above `level`: the strokes' width in pixels.
function strokeWidth(a, level) {
  const on = (y, x) => y >= 0 && y < a.h && x >= 0 && x < a.w && a.d[y * a.w + x] > level;
  let area = 0, inner = 0;
  for (let y = 0; y < a.h; y++) for (let x = 0; x < a.w; x++) if (on(y, x)) {
    area++;
    if (on(y - 1, x) && on(y + 1, x) && on(y, x - 1) && on(y, x + 1)) inner++;
  }
  return 2 * area / Math.max(area - inner, 1);
}

// Pen strokes too fine to survive the shrink to 20x20, widened first (preprocess.py's _bolden).
function bolden(crop, fillsFrame) {
  const scale = 20 / Math.max(crop.h, crop.w);
  const width = strokeWidth(crop, 127.5);
  const grow = roundHalfUp((MIN_STROKE / scale - width) / 2);
  if (grow < 1 || (width < PEN_MIN && fillsFrame)) return crop;
  const padded = make(crop.h + 2 * grow, crop.w + 2 * grow);
  for (let y = 0; y < crop.h; y++) for (let x = 0; x < crop.w; x++) padded.d[(y + grow) * padded.w + x + grow] = crop.d[y * crop.w + x];
  return dilate(padded, 2 * grow + 1);
}

// A 28x28 light-on-dark image whose marks (above 32) fit in 20x20, as all of MNIST's do.
function fitsMnistBox(g) {
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  for (let y = 0; y < g.h; y++) for (let x = 0; x < g.w; x++) if (g.d[y * g.w + x] > 32) {
    y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
  }
  return y1 < 0 || (y1 - y0 < 20 && x1 - x0 < 20);
}

class BlankPicture extends Error {}
class NoDigit extends BlankPicture {}  // marks, but not solid strokes (noise, a texture)

// gray: {h, w, d} with values 0..255 -> Uint8Array(784), white digit on black, MNIST-normalised.
function toMnist(gray) {
  let g = { h: gray.h, w: gray.w, d: Float64Array.from(gray.d) };
  let lo = Infinity, hi = -Infinity;
  for (const v of g.d) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (hi - lo < BLANK_CONTRAST) throw new BlankPicture("the image is blank: no digit found");
  let background = medianOf(border(g));
  if (background > 127) {  // dark ink on light paper: invert
    for (let i = 0; i < g.d.length; i++) g.d[i] = 255 - g.d[i];
    background = 255 - background;
  }
  if (g.h === 28 && g.w === 28 && background < 32 && fitsMnistBox(g)) return Uint8Array.from(g.d, (v) => Math.trunc(Math.min(Math.max(v, 0), 255)));
  const ink = removeBackground(g, background);
  let peak = 0;
  for (const v of ink.d) peak = Math.max(peak, v);
  if (peak <= 0) throw new BlankPicture("the image is blank: no digit found");
  const factor = 255 / peak;
  for (let i = 0; i < ink.d.length; i++) ink.d[i] = ink.d[i] * factor;
  const strokes = median3(ink);
  let smax = -Infinity;
  for (const v of strokes.d) smax = Math.max(smax, v);
  const thr = 0.2 * smax;
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  for (let y = 0; y < ink.h; y++) for (let x = 0; x < ink.w; x++) if (strokes.d[y * ink.w + x] > thr) {
    y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
  }
  if (y1 < 0) throw new BlankPicture("the image is blank: no digit found");
  const cut = make(y1 - y0 + 1, x1 - x0 + 1);
  for (let y = 0; y < cut.h; y++) for (let x = 0; x < cut.w; x++) cut.d[y * cut.w + x] = ink.d[(y0 + y) * ink.w + x0 + x];
  for (let i = 0; i < cut.d.length; i++) cut.d[i] = cut.d[i] > HAZE * 255 ? cut.d[i] : 0;  // haze, not strokes
  const crop = bolden(cut, cut.h * cut.w > FRAME_FILLED * (ink.h * ink.w));
  const scale = 20 / Math.max(crop.h, crop.w);
  const nh = Math.max(1, roundHalfUp(crop.h * scale)), nw = Math.max(1, roundHalfUp(crop.w * scale));
  const small = resize(crop, nh, nw);
  for (let i = 0; i < small.d.length; i++) small.d[i] = Math.min(Math.max(small.d[i], 0), 255);
  const rows = new Float64Array(nh), cols = new Float64Array(nw);
  for (let y = 0; y < nh; y++) { let s = 0; for (let x = 0; x < nw; x++) s = s + small.d[y * nw + x]; rows[y] = s; }
  for (let x = 0; x < nw; x++) { let s = 0; for (let y = 0; y < nh; y++) s = s + small.d[y * nw + x]; cols[x] = s; }
  let mass = 0, my = 0, mx = 0;
  for (let y = 0; y < nh; y++) mass = mass + rows[y];
  for (let y = 0; y < nh; y++) my = my + rows[y] * y;
  for (let x = 0; x < nw; x++) mx = mx + cols[x] * x;
  const cy = my / mass, cx = mx / mass;
  const top = Math.min(Math.max(roundHalfUp(14 - cy), 0), 28 - nh);
  const left = Math.min(Math.max(roundHalfUp(14 - cx), 0), 28 - nw);
  const out = new Uint8Array(784);
  for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++)
    out[(top + y) * 28 + left + x] = Math.min(Math.max(roundHalfUp(small.d[y * nw + x]), 0), 255);
  let total = 0, solid = 0;
  for (const v of out) { total += v; if (v > 127) solid += v; }
  if (2 * solid < total) throw new NoDigit("no digit found: mostly faint marks, noise or a texture, not a digit");
  return out;
}

// RGBA pixels (a canvas's ImageData) -> gray as Pillow's convert("L") computes it (ITU-R 601-2, integer).
function grayFromRgba(rgba, h, w) {
  const g = make(h, w);
  for (let i = 0; i < h * w; i++) {
    const r = rgba[4 * i], gg = rgba[4 * i + 1], b = rgba[4 * i + 2];
    g.d[i] = (r * 19595 + gg * 38470 + b * 7471 + 0x8000) >> 16;
  }
  return g;
}

window.edgeLstmPreprocess = { toMnist, grayFromRgba, BlankPicture, NoDigit };
