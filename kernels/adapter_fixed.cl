/* adapter_fixed.cl: the ST-Adapter forward in fixed point (docs/fpga.md,
 * "Fixed-point adapter arithmetic"), bit-exact with the plain-C reference
 * (tests/unit/reference_fixed.c) and the Vitis HLS kernel (hls/):
 *   x[:, 1:] = sat16(x[:, 1:] + rescale(fc2(DWConv3D(fc1(x[:, 1:])))))
 * Activations and weights are int16 (short) with host-given fractional
 * bits, biases int (int32) at the accumulator's scale, every sum of products
 * exact in long (int64: cannot overflow for reductions below 2^33 terms),
 * narrowed by an arithmetic shift rounded half to even, then saturated.
 * Integer sums are exact, so the order of accumulation cannot change the
 * bits. Same layouts as adapter.cl: x [F, 1 + P, W] (class token rows never
 * touched), h, y [F, P, A], fc1 weight transposed w1t [W, A], conv weight
 * [A, kt, kh, kw], fc2 weight transposed w2t [A, W]. Weights and biases are
 * two buffers (short, int), each with its own offsets. One work-item per
 * output (4 tokens for fc1/fc2, as adapter.cl), no local memory, any
 * work-group size. OpenCL C 1.2 core only (long is core in the full
 * profile). */

#define FXQ_ROWS 4

/* floor(v / 2^s) rounded half to even, 0 <= s <= 62 (s = 0: v). The floor
 * is formed without shifting a negative value. */
long fxq_shift_rne(long v, uint s) {
    if (s == 0) return v;
    long q = v >= 0 ? (v >> s) : ~((~v) >> s);
    const long r = v - q * ((long)1 << s);
    const long mid = (long)1 << (s - 1);
    if (r > mid || (r == mid && (q & 1) != 0)) q += 1;
    return q;
}

short fxq_sat16(long v) {
    return (short)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

/* h[f, p, a] = sat16(rne((b1[a] + sum_c x[f, 1 + p, c] w1t[c, a]) >> shift)),
 * shift = frac_x + frac_w1 - frac_h. */
__kernel void adapter_fc1_q(__global const short *x, uint x_off, __global const short *w, uint w_off,
                            __global const int *b, uint b_off, __global short *h, uint h_off, uint frames,
                            uint patches, uint width, uint aw, uint shift) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + FXQ_ROWS - 1) / FXQ_ROWS;
    if (i >= blocks * aw) return;
    const uint a = i % aw;
    const size_t r0 = (i / aw) * FXQ_ROWS;
    __global const short *xr[FXQ_ROWS];
    long acc[FXQ_ROWS];
    const long bias = (long)b[b_off + a];
    _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++) {
        const size_t r = r0 + k < rows ? r0 + k : rows - 1; /* past the end: recompute the last row, unwritten */
        xr[k] = x + x_off + ((r / patches) * (patches + 1) + 1 + r % patches) * width;
        acc[k] = bias;
    }
    __global const short *wc = w + w_off + a;
    for (uint c = 0; c < width; c++) {
        const int wv = wc[(size_t)c * aw];
        _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++) acc[k] += (long)((int)xr[k][c] * wv);
    }
    _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++)
        if (r0 + k < rows) h[h_off + (r0 + k) * aw + a] = fxq_sat16(fxq_shift_rne(acc[k], shift));
}

/* y = sat16(rne((cb + depthwise conv3d(h)) >> shift)) per clip over its
 * [T, grid, grid] token volume, zero padding k / 2, taps summed in
 * (dt, dh, dw) order; shift = frac_h + frac_wc - frac_y. */
__kernel void adapter_dwconv3d_q(__global const short *h, uint h_off, __global const short *w, uint w_off,
                                 __global const int *b, uint b_off, __global short *y, uint y_off, uint clips,
                                 uint T, uint grid, uint aw, uint kt, uint kh, uint kw, uint shift) {
    const size_t i = get_global_id(0);
    const size_t P = (size_t)grid * grid;
    if (i >= (size_t)clips * T * P * aw) return;
    const uint a = i % aw;
    const size_t p = (i / aw) % P;
    const size_t ft = i / (aw * P);
    const int t = (int)(ft % T), n = (int)(ft / T);
    const int r = (int)(p / grid), c = (int)(p % grid);
    const int pt = (int)kt / 2, ph = (int)kh / 2, pw = (int)kw / 2;
    __global const short *wk = w + w_off + (size_t)a * kt * kh * kw;
    long acc = (long)b[b_off + a];
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
                acc += (long)((int)h[h_off + src] * (int)wk[(dt * kh + dh) * kw + dw]);
            }
        }
    }
    y[y_off + i] = fxq_sat16(fxq_shift_rne(acc, shift));
}

/* acc[k] = b2[c] + sum_a y[r0 + k, a] w2t[a, c] for the FXQ_ROWS rows from
 * r0 (rows past the end repeat the last one; their sums go unused): fc2's
 * exact sums, shared by the int16 residual (below) and the float one
 * (adapter_fixed_backward.cl). */
void fxq_fc2_rows(__global const short *y, __global const short *w, long bias, size_t rows, size_t r0, uint c,
                  uint width, uint aw, long *acc) {
    __global const short *yr[FXQ_ROWS];
    _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++) {
        yr[k] = y + (r0 + k < rows ? r0 + k : rows - 1) * aw;
        acc[k] = bias;
    }
    __global const short *wc = w + c;
    for (uint a = 0; a < aw; a++) {
        const int wv = wc[(size_t)a * width];
        _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++) acc[k] += (long)((int)yr[k][a] * wv);
    }
}

/* x[f, 1 + p, c] = sat16(x[f, 1 + p, c] + rne((b2[c] + sum_a y[f, p, a]
 * w2t[a, c]) >> shift)), shift = frac_y + frac_w2 - frac_x: the residual
 * add in x's format, one saturation. */
__kernel void adapter_fc2_residual_q(__global const short *y, uint y_off, __global const short *w, uint w_off,
                                     __global const int *b, uint b_off, __global short *x, uint x_off, uint frames,
                                     uint patches, uint width, uint aw, uint shift) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + FXQ_ROWS - 1) / FXQ_ROWS;
    if (i >= blocks * width) return;
    const uint c = i % width;
    const size_t r0 = (i / width) * FXQ_ROWS;
    long acc[FXQ_ROWS];
    fxq_fc2_rows(y + y_off, w + w_off, (long)b[b_off + c], rows, r0, c, width, aw, acc);
    _Pragma("unroll") for (int k = 0; k < FXQ_ROWS; k++) {
        const size_t r = r0 + k;
        if (r < rows) {
            const size_t at = x_off + ((r / patches) * (patches + 1) + 1 + r % patches) * width + c;
            x[at] = fxq_sat16((long)x[at] + fxq_shift_rne(acc[k], shift));
        }
    }
}
