/* adapter.cl: the ST-Adapter bottleneck on the patch tokens (the class
 * token of each frame passes unchanged):
 *   x[:, 1:] += fc2(DWConv3D(fc1(x[:, 1:])))
 * stacl's own kernels rather than CLBlast on purpose: they are what moves to
 * the FPGA later. No local memory and no barriers, so any work-group size
 * the device reports works; every output is summed by one work-item in a
 * fixed order (deterministic). Not fused: fc1/fc2 are small GEMMs and the
 * conv needs all of fc1's output of the neighbouring frames. */

/* fc1 and fc2 are the same GEMM, out[r, j] (= or +=) b[j] + sum_k in[r, k]
 * wt[k, j], with the weights stored input-major (w1t [W, A], w2t [A, W]):
 * the reduction axis k runs down the weight's columns, the output axis j
 * along its rows. So each work-item computes a register tile of
 * ADAPTER_ROWS token rows x ADAPTER_VECS * ADAPTER_VW consecutive outputs j
 * as outer products: per k, ADAPTER_VECS vector loads of wt[k, j0..] and
 * ADAPTER_ROWS broadcast scalars in[r, k] feed ADAPTER_ROWS * ADAPTER_VECS
 * vector multiply-adds. Each output is one vector lane, summed over k in
 * order from zero, then the bias added (then, for fc2, added to x): the
 * operations and order of one scalar fma chain per output, so the bits do
 * not depend on the tile sizes. PoCL does not vectorise a work-item loop
 * around an inner loop, hence the explicit vectors; GPUs split them into
 * scalars and get instruction-level parallelism from the tile.
 * Measured on PoCL (AVX-512, 2 cores, ViT-B shape; docs/kernels.md), time
 * over the adapter_fc*_backward_input kernel of the same multiply-adds,
 * rows x outputs per item: 4 x 1 (scalar): ~4.5x (85 ms); 4 x 16: ~1.0x;
 * 8 x 16: ~0.65x; 8 x 32: ~0.6x (11-12 ms, ~15% under 8 x 16 run
 * alternately); 12 x 32, 6 x 48, 4 x 64: 0.9-1.0x. Partial tiles: rows
 * past the end re-read the last row and are not written; the vectors past
 * the last output j load zeros and their lanes are not written.
 * ADAPTER_ROWS, ADAPTER_VECS and ADAPTER_VW are repeated in host/ops.c (the
 * launch size). */
#define ADAPTER_ROWS 8
#define ADAPTER_VECS 2
#define ADAPTER_VW 16
#define ADAPTER_COLS (ADAPTER_VECS * ADAPTER_VW)
typedef float16 adapter_vec;
#define adapter_vload vload16
#define adapter_vstore vstore16

/* The first n floats at p (all ADAPTER_VW when n >= ADAPTER_VW), zeros
 * after (none read when n is 0). */
adapter_vec adapter_load(__global const float *p, uint n) {
    if (n >= ADAPTER_VW) return adapter_vload(0, p);
    float v[ADAPTER_VW];
    for (uint k = 0; k < ADAPTER_VW; k++) v[k] = k < n ? p[k] : 0.0f;
    return adapter_vload(0, v);
}

/* Memory row of logical row r (= f * patches + p): dense (skip 0), or the
 * patch row of the residual stream [F, 1 + P, W] (skip 1: the class token
 * of each frame stepped over). */
size_t adapter_row(size_t r, uint patches, uint skip) { return skip ? r + r / patches + 1 : r; }

/* acc[r][v] += in_r[k] wt[k, v * ADAPTER_VW + (0 .. ADAPTER_VW - 1)] for
 * k = 0 .. nk - 1 in order; wt rows nj floats apart; nv valid columns
 * (ADAPTER_COLS: full vector loads throughout). */
void adapter_tile(__global const float *const *ir, __global const float *w, uint nk, uint nj, uint nv,
                  adapter_vec acc[ADAPTER_ROWS][ADAPTER_VECS]) {
    uint n[ADAPTER_VECS];
    _Pragma("unroll") for (int v = 0; v < ADAPTER_VECS; v++) n[v] = nv > v * ADAPTER_VW ? nv - v * ADAPTER_VW : 0;
    /* Unrolled loops over rows and vectors keep acc in registers across the
     * k loop (kernels/gemm_rows.cl: indexed, PoCL keeps it in memory, 4x slower). */
    for (uint k = 0; k < nk; k++, w += nj) {
        adapter_vec wv[ADAPTER_VECS];
        _Pragma("unroll") for (int v = 0; v < ADAPTER_VECS; v++) wv[v] = adapter_load(w + v * ADAPTER_VW, n[v]);
        _Pragma("unroll") for (int r = 0; r < ADAPTER_ROWS; r++) {
            const adapter_vec xv = (adapter_vec)(ir[r][k]);
            _Pragma("unroll") for (int v = 0; v < ADAPTER_VECS; v++) acc[r][v] = fma(xv, wv[v], acc[r][v]);
        }
    }
}

/* out[r, j] (= or += when accumulate) b[j] + sum_k in[r, k] wt[k, j] for
 * r < rows, j < nj; in rows nk floats apart, out rows nj (both through
 * adapter_row); wt dense [nk, nj] at prm + w_off, b at prm + b_off. One
 * work-item per ADAPTER_ROWS x ADAPTER_COLS tile, the column blocks of a
 * row block on neighbouring items (they share the rows of in). */
void adapter_linear(__global const float *in, uint in_off, uint in_skip, __global const float *prm, uint w_off,
                    uint b_off, __global float *out, uint out_off, uint out_skip, uint rows, uint patches, uint nk,
                    uint nj, int accumulate) {
    const size_t i = get_global_id(0);
    const uint jblocks = (nj + ADAPTER_COLS - 1) / ADAPTER_COLS;
    if (i >= ((size_t)rows + ADAPTER_ROWS - 1) / ADAPTER_ROWS * jblocks) return;
    const uint j0 = (uint)(i % jblocks) * ADAPTER_COLS, nv = min((uint)ADAPTER_COLS, nj - j0);
    const size_t r0 = (i / jblocks) * ADAPTER_ROWS;
    __global const float *ir[ADAPTER_ROWS];
    adapter_vec acc[ADAPTER_ROWS][ADAPTER_VECS];
    _Pragma("unroll") for (int r = 0; r < ADAPTER_ROWS; r++) {
        const size_t rr = r0 + r < rows ? r0 + r : rows - 1; /* past the end: the last row again, unwritten */
        ir[r] = in + in_off + adapter_row(rr, patches, in_skip) * nk;
        _Pragma("unroll") for (int v = 0; v < ADAPTER_VECS; v++) acc[r][v] = (adapter_vec)(0.0f);
    }
    __global const float *w = prm + w_off + j0;
    /* Two copies of the loop: full vector loads, or the partial last block. */
    if (nv == ADAPTER_COLS) adapter_tile(ir, w, nk, nj, ADAPTER_COLS, acc);
    else adapter_tile(ir, w, nk, nj, nv, acc);
    float b[ADAPTER_COLS], t[ADAPTER_COLS];
    for (uint j = 0; j < nv; j++) b[j] = prm[b_off + j0 + j];
    _Pragma("unroll") for (int r = 0; r < ADAPTER_ROWS; r++) {
        if (r0 + r >= rows) continue;
        __global float *o = out + out_off + adapter_row(r0 + r, patches, out_skip) * nj + j0;
        _Pragma("unroll") for (int v = 0; v < ADAPTER_VECS; v++) adapter_vstore(acc[r][v], 0, t + v * ADAPTER_VW);
        for (uint j = 0; j < nv; j++) o[j] = accumulate ? o[j] + (t[j] + b[j]) : t[j] + b[j];
    }
}

/* h[f, p, a] = b1[a] + sum_c x[f, 1 + p, c] w1[a, c], w1 stored transposed
 * as w1t [width, aw]. x: [frames, 1 + patches, width]. */
__kernel void adapter_fc1(__global const float *x, uint x_off, __global const float *prm, uint w_off, uint b_off,
                          __global float *h, uint h_off, uint frames, uint patches, uint width, uint aw) {
    adapter_linear(x, x_off, 1, prm, w_off, b_off, h, h_off, 0, frames * patches, patches, width, aw, 0);
}

/* Depthwise 3D convolution over each clip's [T, grid, grid] token volume,
 * per channel, zero padding k / 2, with bias (no activation, as the
 * reference). h, y: [clips * T, grid * grid, aw]; weight [aw, kt, kh, kw]. */
__kernel void adapter_dwconv3d(__global const float *h, uint h_off, __global const float *prm, uint w_off,
                               uint b_off, __global float *y, uint y_off, uint clips, uint T, uint grid, uint aw,
                               uint kt, uint kh, uint kw) {
    const size_t i = get_global_id(0);
    const size_t P = (size_t)grid * grid;
    if (i >= (size_t)clips * T * P * aw) return;
    const uint a = i % aw;
    const size_t p = (i / aw) % P;
    const size_t ft = i / (aw * P);
    const int t = (int)(ft % T), n = (int)(ft / T);
    const int r = (int)(p / grid), c = (int)(p % grid);
    const int pt = (int)kt / 2, ph = (int)kh / 2, pw = (int)kw / 2;
    __global const float *wk = prm + w_off + (size_t)a * kt * kh * kw;
    float acc = prm[b_off + a];
    for (int dt = 0; dt < (int)kt; dt++) {
        const int tt = t + dt - pt;
        if (tt < 0 || tt >= (int)T) continue;
        for (int dh = 0; dh < (int)kh; dh++) {
            const int rr = r + dh - ph;
            if (rr < 0 || rr >= (int)grid) continue;
            for (int dw = 0; dw < (int)kw; dw++) {
                const int cc = c + dw - pw;
                if (cc < 0 || cc >= (int)grid) continue;
                const size_t src = (((size_t)n * T + tt) * P + (size_t)rr * grid + cc) * aw + a;
                acc = fma(h[h_off + src], wk[(dt * kh + dh) * kw + dw], acc);
            }
        }
    }
    y[y_off + i] = acc;
}

/* x[f, 1 + p, c] += b2[c] + sum_a y[f, p, a] w2[c, a], w2 stored transposed
 * as w2t [aw, width] (class token rows untouched). */
__kernel void adapter_fc2_residual(__global const float *y, uint y_off, __global const float *prm, uint w_off,
                                   uint b_off, __global float *x, uint x_off, uint frames, uint patches, uint width,
                                   uint aw) {
    adapter_linear(y, y_off, 0, prm, w_off, b_off, x, x_off, 1, frames * patches, patches, aw, width, 1);
}

/* m[n, c] = mean over t of x[n * T + t, 0, c]: the class tokens averaged
 * over each clip's frames (the reference averages before ln_post). */
__kernel void adapter_mean_cls(__global const float *x, uint x_off, __global float *m, uint m_off, uint clips,
                               uint T, uint tokens, uint width) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)clips * width) return;
    const uint c = i % width;
    const size_t n = i / width;
    float acc = 0.0f;
    for (uint t = 0; t < T; t++) acc += x[x_off + ((n * T + t) * tokens) * width + c];
    m[m_off + i] = acc / (float)T;
}
