/* adapter.cl: the ST-Adapter bottleneck on the patch tokens (the class
 * token of each frame passes unchanged):
 *   x[:, 1:] += fc2(DWConv3D(fc1(x[:, 1:])))
 * stacl's own kernels rather than CLBlast on purpose: they are what moves to
 * the FPGA later. One work-item per output element, no local memory, so any
 * work-group size the device reports works. Not fused: fc1/fc2 are small
 * GEMMs and the conv needs all of fc1's output of the neighbouring frames. */

/* Rows per work-item in fc1/fc2: each weight element loaded is used for
 * ADAPTER_ROWS tokens (measured on PoCL: the plain one-output-per-item form
 * spent half the ViT-B forward in these two kernels). */
#define ADAPTER_ROWS 4

/* h[f, p, a] = b1[a] + sum_c x[f, 1 + p, c] w1[a, c], w1 stored transposed
 * as w1t [width, aw], so that neighbouring work-items (neighbouring a) read
 * neighbouring weights while sharing each x value.
 * x: [frames, 1 + patches, width]. */
__kernel void adapter_fc1(__global const float *x, uint x_off, __global const float *prm, uint w_off, uint b_off,
                          __global float *h, uint h_off, uint frames, uint patches, uint width, uint aw) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + ADAPTER_ROWS - 1) / ADAPTER_ROWS;
    if (i >= blocks * aw) return;
    const uint a = i % aw;
    const size_t r0 = (i / aw) * ADAPTER_ROWS;
    __global const float *xr[ADAPTER_ROWS];
    float acc[ADAPTER_ROWS];
    for (int k = 0; k < ADAPTER_ROWS; k++) {
        const size_t r = r0 + k < rows ? r0 + k : rows - 1; /* past the end: recompute the last row, unwritten */
        xr[k] = x + x_off + ((r / patches) * (patches + 1) + 1 + r % patches) * width;
        acc[k] = 0.0f;
    }
    __global const float *wc = prm + w_off + a;
    for (uint c = 0; c < width; c++) {
        const float wv = wc[(size_t)c * aw];
        for (int k = 0; k < ADAPTER_ROWS; k++) acc[k] = fma(xr[k][c], wv, acc[k]);
    }
    const float b = prm[b_off + a];
    for (int k = 0; k < ADAPTER_ROWS; k++)
        if (r0 + k < rows) h[h_off + (r0 + k) * aw + a] = acc[k] + b;
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
 * as w2t [aw, width] (same access pattern as fc1). */
__kernel void adapter_fc2_residual(__global const float *y, uint y_off, __global const float *prm, uint w_off,
                                   uint b_off, __global float *x, uint x_off, uint frames, uint patches, uint width,
                                   uint aw) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + ADAPTER_ROWS - 1) / ADAPTER_ROWS;
    if (i >= blocks * width) return;
    const uint c = i % width;
    const size_t r0 = (i / width) * ADAPTER_ROWS;
    __global const float *yr[ADAPTER_ROWS];
    float acc[ADAPTER_ROWS];
    for (int k = 0; k < ADAPTER_ROWS; k++) {
        yr[k] = y + y_off + (r0 + k < rows ? r0 + k : rows - 1) * aw;
        acc[k] = 0.0f;
    }
    __global const float *wc = prm + w_off + c;
    for (uint a = 0; a < aw; a++) {
        const float wv = wc[(size_t)a * width];
        for (int k = 0; k < ADAPTER_ROWS; k++) acc[k] = fma(yr[k][a], wv, acc[k]);
    }
    const float b = prm[b_off + c];
    for (int k = 0; k < ADAPTER_ROWS; k++) {
        const size_t r = r0 + k;
        if (r < rows) x[x_off + ((r / patches) * (patches + 1) + 1 + r % patches) * width + c] += acc[k] + b;
    }
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
