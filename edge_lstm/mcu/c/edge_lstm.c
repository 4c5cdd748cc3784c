/* edge-lstm's recurrent classifier for microcontrollers: the runtime, the same for every model.
 *
 * The model (sizes, weights, scales) is in edge_lstm_model.h / edge_lstm_model.c, written by
 * `edge-lstm export --mcu`. No heap, no libc, no libm: state and scratch are static arrays, the
 * weights const arrays in flash. C99, any compiler; on a Cortex-M with the DSP extension (M4, M7,
 * M33, M55) the int8 dot products use SMLAD, two multiply-accumulates an instruction.
 *
 * int8: each weight matrix has one scale per row; the vector it multiplies is quantized at run time
 * (one scale for the vector, int16 values: 8x16 products, as TFLite's 16x8 mode), so the dot product
 * is exact integer arithmetic, and the rest (biases, gates, state) stays in float32.
 */
#include "edge_lstm.h"
#include "edge_lstm_model.h"

#if EL_INT8 && defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#endif

static float el_h[EL_LAYERS][EL_HIDDEN];
#if EL_CELL_LSTM
static float el_c[EL_LAYERS][EL_HIDDEN];
#endif
static float el_gates[EL_GATES * EL_HIDDEN];
#if EL_CELL_GRU
static float el_rec[EL_GATES * EL_HIDDEN]; /* GRU: the recurrent product apart (the reset gate scales it) */
#endif
#if EL_INPUT_LAYER
static float el_in[EL_IN_UNITS];
#endif
#if EL_INT8
/* the vector being multiplied, as int16 (padded to a multiple of 4 with zeros), word-aligned */
static int16_t el_q[EL_MAX_COLS_PAD] __attribute__((aligned(4)));
#endif

/* tanh as a rational function (Eigen's fast float tanh: within a few ulp of tanhf on [-9, 9]),
 * so no libm is linked and each call costs some 20 instructions instead of expf's hundreds. */
static float el_tanh(float x) {
    const float clamp = 7.90531110763549805f;
    if (x > clamp) x = clamp;
    if (x < -clamp) x = -clamp;
    if (x < 0.0004f && x > -0.0004f) return x;
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

static float el_sigmoid(float x) { return 0.5f + 0.5f * el_tanh(0.5f * x); }

#if EL_INT8
/* x (cols) -> el_q; returns the vector's scale (0 for a zero vector). */
static float el_quantize(const float *x, int cols, int cols_pad, float qmax) {
    float m = 0.0f;
    for (int i = 0; i < cols; i++) {
        const float a = x[i] < 0.0f ? -x[i] : x[i];
        if (a > m) m = a;
    }
    if (m == 0.0f) {
        for (int i = 0; i < cols_pad; i++) el_q[i] = 0;
        return 0.0f;
    }
    const float inv = qmax / m;
    for (int i = 0; i < cols; i++) {
        const float f = x[i] * inv;
        el_q[i] = (int16_t)(f >= 0.0f ? (int32_t)(f + 0.5f) : -(int32_t)(0.5f - f));
    }
    for (int i = cols; i < cols_pad; i++) el_q[i] = 0;
    return m / qmax;
}

/* Four rows' dot products with el_q. The generator stores each block of 4 rows interleaved, a word
 * (4 columns) of each row in turn, and each word's columns as (0, 2, 1, 3): SXTB16 of a word gives
 * columns (0, 1) and SXTB16 of it rotated by 8 gives (2, 3), matching el_q's int16 pairs. Four rows
 * share each load of el_q: 25 instructions per 16 multiply-accumulates on a Cortex-M4. */
#if defined(__ARM_FEATURE_DSP)
static inline int32_t el_lo(uint32_t w) { return (int32_t)__sxtb16(w); }
static inline int32_t el_hi(uint32_t w) {
    int32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(w)); /* __sxtb16(__ror(w, 8)) as one instruction */
    return r;
}
#endif
static void el_dot4(const int8_t *w, int groups, int32_t acc[4]) {
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#if defined(__ARM_FEATURE_DSP)
    const uint32_t *wp = (const uint32_t *)(const void *)w;
    const int32_t *xp = (const int32_t *)(const void *)el_q;
    for (int g = 0; g < groups; g++, wp += 4, xp += 2) { /* unrolling this spills registers: slower */
        const int32_t x01 = xp[0], x23 = xp[1];
        const uint32_t w0 = wp[0], w1 = wp[1], w2 = wp[2], w3 = wp[3];
        a0 = __smlad(el_lo(w0), x01, a0);
        a1 = __smlad(el_lo(w1), x01, a1);
        a2 = __smlad(el_lo(w2), x01, a2);
        a3 = __smlad(el_lo(w3), x01, a3);
        a0 = __smlad(el_hi(w0), x23, a0);
        a1 = __smlad(el_hi(w1), x23, a1);
        a2 = __smlad(el_hi(w2), x23, a2);
        a3 = __smlad(el_hi(w3), x23, a3);
    }
#else
    for (int g = 0; g < groups; g++, w += 16) {
        const int16_t *q = el_q + 4 * g;
        a0 += (int32_t)w[0] * q[0] + (int32_t)w[2] * q[1] + (int32_t)w[1] * q[2] + (int32_t)w[3] * q[3];
        a1 += (int32_t)w[4] * q[0] + (int32_t)w[6] * q[1] + (int32_t)w[5] * q[2] + (int32_t)w[7] * q[3];
        a2 += (int32_t)w[8] * q[0] + (int32_t)w[10] * q[1] + (int32_t)w[9] * q[2] + (int32_t)w[11] * q[3];
        a3 += (int32_t)w[12] * q[0] + (int32_t)w[14] * q[1] + (int32_t)w[13] * q[2] + (int32_t)w[15] * q[3];
    }
#endif
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

/* y = W x (accumulate: y += W x). Rows come in blocks of 4 (the last padded with zero rows). */
static void el_matvec(const el_matrix *m, const float *x, float *y, int accumulate) {
    const int blocks = (m->rows + 3) / 4;
#if EL_INT8
    const float sx = el_quantize(x, m->cols, m->cols_pad, m->qmax);
    const int groups = m->cols_pad / 4;
    int32_t acc[4];
    for (int b = 0; b < blocks; b++) {
        el_dot4(m->w + b * 4 * m->cols_pad, groups, acc);
        for (int j = 0; j < 4 && 4 * b + j < m->rows; j++) {
            const int r = 4 * b + j;
            const float v = (float)acc[j] * (m->scale[r] * sx);
            y[r] = accumulate ? y[r] + v : v;
        }
    }
#else
    for (int b = 0; b < blocks; b++) { /* each column's 4 weights together: one load of x[i] for 4 rows */
        const float *w = m->w + b * 4 * m->cols;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#if defined(__GNUC__) && __GNUC__ >= 8
#pragma GCC unroll 4
#endif
        for (int i = 0; i < m->cols; i++, w += 4) {
            const float xi = x[i];
            a0 += w[0] * xi;
            a1 += w[1] * xi;
            a2 += w[2] * xi;
            a3 += w[3] * xi;
        }
        const float a[4] = {a0, a1, a2, a3};
        for (int j = 0; j < 4 && 4 * b + j < m->rows; j++) y[4 * b + j] = accumulate ? y[4 * b + j] + a[j] : a[j];
    }
#endif
}

/* One layer, one step: x (the layer's input) -> el_h[k] (and el_c[k]). ONNX's gate order. */
static void el_cell(int k, const float *x) {
    const el_layer *L = &el_layers[k];
    float *h = el_h[k];
    el_matvec(&L->w, x, el_gates, 0);
#if EL_CELL_LSTM
    el_matvec(&L->r, h, el_gates, 1);
    float *c = el_c[k];
    for (int u = 0; u < EL_HIDDEN; u++) { /* gates (i, o, f, c) */
        const float i = el_sigmoid(el_gates[u] + L->bias[u]);
        const float o = el_sigmoid(el_gates[EL_HIDDEN + u] + L->bias[EL_HIDDEN + u]);
        const float f = el_sigmoid(el_gates[2 * EL_HIDDEN + u] + L->bias[2 * EL_HIDDEN + u]);
        const float g = el_tanh(el_gates[3 * EL_HIDDEN + u] + L->bias[3 * EL_HIDDEN + u]);
        c[u] = f * c[u] + i * g;
        h[u] = o * el_tanh(c[u]);
    }
#else
    el_matvec(&L->r, h, el_rec, 0);
    for (int u = 0; u < EL_HIDDEN; u++) { /* gates (z, r, h); linear_before_reset: r scales R_h h + Rb_h */
        const float z = el_sigmoid(el_gates[u] + el_rec[u] + L->bias[u]);
        const float r = el_sigmoid(el_gates[EL_HIDDEN + u] + el_rec[EL_HIDDEN + u] + L->bias[EL_HIDDEN + u]);
        const float n = el_tanh(el_gates[2 * EL_HIDDEN + u] + L->bias[2 * EL_HIDDEN + u] +
                                r * (el_rec[2 * EL_HIDDEN + u] + L->bias_rn[u]));
        h[u] = (1.0f - z) * n + z * h[u];
    }
#endif
}

static void el_advance(const float *row) {
    const float *x = row;
#if EL_INPUT_LAYER
    el_matvec(&el_input.w, row, el_in, 0);
    for (int u = 0; u < EL_IN_UNITS; u++) el_in[u] += el_input.bias[u];
    x = el_in;
#endif
    for (int k = 0; k < EL_LAYERS; k++) {
        el_cell(k, x);
        x = el_h[k];
    }
}

static void el_head(float *logits) {
    el_matvec(&el_output.w, el_h[EL_LAYERS - 1], logits, 0);
    for (int j = 0; j < EDGE_LSTM_CLASSES; j++) logits[j] += el_output.bias[j];
}

void edge_lstm_reset(void) {
    for (int k = 0; k < EL_LAYERS; k++)
        for (int u = 0; u < EL_HIDDEN; u++) {
            el_h[k][u] = 0.0f;
#if EL_CELL_LSTM
            el_c[k][u] = 0.0f;
#endif
        }
}

void edge_lstm_step(const float *row, float *logits) {
    el_advance(row);
    if (logits) el_head(logits);
}

void edge_lstm_classify(const float *rows, int n, float *logits) {
    edge_lstm_reset();
    for (int t = 0; t < n; t++) el_advance(rows + t * EDGE_LSTM_FEATURES);
    el_head(logits);
}
