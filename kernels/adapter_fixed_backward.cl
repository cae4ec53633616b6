/* adapter_fixed_backward.cl: fixed-point ST-Adapter training (docs/fpga.md,
 * "Fixed-point backward and stochastic rounding"): the forward pieces that
 * meet the float residual stream (input quantization, fc2 update added in
 * float) and the backward pass in integers: gradients on int16 power-of-two
 * grids, every sum of products exact in long, weight gradients as exact
 * int64 sums, narrowing by stochastic rounding from Philox4x32-10 keyed by
 * (seed, step, tensor, element) - the same bits as host/fx_rng.h and the
 * plain-C reference (tests/unit/reference_fixed.c). Uses fxq_shift_rne and
 * fxq_sat16 of adapter_fixed.c (one program). Layouts as adapter_fixed.cl:
 * x, g [F, 1 + P, W] (class-token rows never touched), h, y, gy, gh
 * [F, P, A], gu [F, P, W], w1t [W, A], conv [A, K], w2t [A, W]. One
 * work-item per output (4 tokens in the fc kernels), no local memory, any
 * work-group size; the scale "slots" take atomic_max (core since 1.1; max
 * does not depend on the order). OpenCL C 1.2, no extensions, no double. */

#define FXB_ROWS FXQ_ROWS /* tokens per work-item, as adapter_fixed.cl */

/* Philox4x32-10 (Random123): counter (index, tensor, step lo, step hi),
 * key (seed lo, seed hi); the draw is (r1 << 32) | r0. */
ulong fxb_rand64(ulong seed, ulong step, uint tensor, uint index) {
    uint c0 = index, c1 = tensor, c2 = (uint)step, c3 = (uint)(step >> 32);
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    return ((ulong)c1 << 32) | c0;
}

/* v / 2^s rounded stochastically with the draw u (0 <= s <= 62). */
long fxb_sr(long v, uint s, ulong u) {
    if (s == 0) return v;
    const long q = v >= 0 ? (v >> s) : ~((~v) >> s);
    const ulong r = (ulong)(v - q * ((long)1 << s));
    return q + ((u >> (64 - s)) < r ? 1 : 0);
}

/* Bits of |v| (0 for 0): |v| < 2^bitlen. */
int fxb_bitlen(long v) {
    const ulong a = v < 0 ? (ulong)(-v) : (ulong)v;
    return 64 - (int)clz(a);
}

/* Patch row r of a [F, 1 + P, W] tensor: its element offset. */
size_t fxb_row(size_t r, uint patches, uint width) {
    return ((r / patches) * (patches + 1) + 1 + r % patches) * (size_t)width;
}

/* xq = sat16(rint(x * 2^frac)) (ties to even), NaN -> 0, on the patch rows;
 * scale = 2^frac exactly. */
__kernel void fx_quantize_rows(__global const float *x, uint x_off, __global short *xq, uint xq_off, uint frames,
                               uint patches, uint width, float scale) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)frames * patches * width) return;
    const size_t at = fxb_row(i / width, patches, width) + i % width;
    const float v = x[x_off + at];
    const float q = isnan(v) ? 0.0f : clamp(rint(v * scale), -32768.0f, 32767.0f);
    xq[xq_off + at] = (short)q;
}

/* x[f, 1 + p, c] += sat16(rne(b2[c] + sum_a y[f, p, a] w2t[a, c], shift))
 * * inv_scale (2^-frac_x): the fixed-point update on the float stream. */
__kernel void adapter_fc2_update_q(__global const short *y, uint y_off, __global const short *w, uint w_off,
                                   __global const int *b, uint b_off, __global float *x, uint x_off, uint frames,
                                   uint patches, uint width, uint aw, uint shift, float inv_scale) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + FXB_ROWS - 1) / FXB_ROWS;
    if (i >= blocks * width) return;
    const uint c = i % width;
    const size_t r0 = (i / width) * FXB_ROWS;
    long acc[FXB_ROWS];
    fxq_fc2_rows(y + y_off, w + w_off, (long)b[b_off + c], rows, r0, c, width, aw, acc);
    _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) {
        const size_t r = r0 + k;
        if (r < rows) {
            const size_t at = x_off + fxb_row(r, patches, width) + c;
            x[at] = x[at] + (float)fxq_sat16(fxq_shift_rne(acc[k], shift)) * inv_scale;
        }
    }
}

/* slots[slot] = max(slots[slot], frexp exponent of every nonzero |g| on
 * the patch rows) (|g| < 2^e); a non-finite value gives 1000. 64 elements
 * per work-item. */
__kernel void fx_grad_exponent(__global const float *g, uint g_off, uint frames, uint patches, uint width,
                               __global int *slots, uint slot) {
    const size_t n = (size_t)frames * patches * width, i0 = get_global_id(0) * 64;
    if (i0 >= n) return;
    int e = -1000;
    for (size_t i = i0; i < i0 + 64 && i < n; i++) {
        const float v = g[g_off + fxb_row(i / width, patches, width) + i % width];
        if (!isfinite(v)) {
            e = 1000;
            break;
        }
        if (v != 0.0f) {
            int ex;
            frexp(v, &ex);
            e = max(e, ex);
        }
    }
    if (e > -1000) atomic_max(&slots[slot], e);
}

/* gu[i] = sat16(sr(rint(g * 2^(frac + 16)), 16)) for i = (f P + p) W + c,
 * scale = 2^(frac + 16); the float product is clamped to +-2^46 first. */
__kernel void fx_quantize_grad_sr(__global const float *g, uint g_off, __global short *gu, uint gu_off, uint frames,
                                  uint patches, uint width, float scale, ulong seed, ulong step, uint tensor) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)frames * patches * width) return;
    const float v = g[g_off + fxb_row(i / width, patches, width) + i % width];
    const float q = clamp(rint(v * scale), -70368744177664.0f, 70368744177664.0f);
    gu[gu_off + i] = fxq_sat16(fxb_sr((long)q, 16, fxb_rand64(seed, step, tensor, (uint)i)));
}

/* acc[f, p, a] = sum_c gu[f, p, c] w2t[a, c]; slots[slot] = max bitlen. */
__kernel void adapter_fc2_backward_input_q(__global const short *gu, uint gu_off, __global const short *w,
                                           uint w_off, __global long *acc, uint acc_off, uint frames, uint patches,
                                           uint width, uint aw, __global int *slots, uint slot) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + FXB_ROWS - 1) / FXB_ROWS;
    if (i >= blocks * aw) return;
    const uint a = i % aw;
    const size_t r0 = (i / aw) * FXB_ROWS;
    long s[FXB_ROWS];
    __global const short *gr[FXB_ROWS];
    _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) {
        gr[k] = gu + gu_off + (r0 + k < rows ? r0 + k : rows - 1) * width;
        s[k] = 0;
    }
    __global const short *wr = w + w_off + (size_t)a * width;
    for (uint c = 0; c < width; c++) {
        const int wv = wr[c];
        _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) s[k] += (long)((int)gr[k][c] * wv);
    }
    int bits = 0;
    _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++)
        if (r0 + k < rows) {
            acc[acc_off + (r0 + k) * aw + a] = s[k];
            bits = max(bits, fxb_bitlen(s[k]));
        }
    atomic_max(&slots[slot], bits);
}

/* dst[i] = sat16(sr(acc[i], shift)) with the draw of element i, or 0 where
 * the forward value act[i] saturated (act != 0: the derivative of the
 * saturation is zero there). */
bool fxb_saturated(short v) { return v == (short)32767 || v == (short)-32768; }

__kernel void fx_narrow_sr(__global const long *acc, uint acc_off, __global short *dst, uint dst_off, uint n,
                           uint shift, ulong seed, ulong step, uint tensor, __global const short *act,
                           uint act_off, uint use_act) {
    const size_t i = get_global_id(0);
    if (i >= n) return;
    if (use_act && fxb_saturated(act[act_off + i])) {
        dst[dst_off + i] = 0;
        return;
    }
    dst[dst_off + i] = fxq_sat16(fxb_sr(acc[acc_off + i], shift, fxb_rand64(seed, step, tensor, (uint)i)));
}

/* The transposed depthwise conv: acc[n, t, r, c, a] = sum over taps
 * (dt, dh, dw) with an in-range source (t - dt + kt/2, ...) of
 * gy[source, a] cw[a, dt, dh, dw]; slots[slot] = max bitlen. */
__kernel void adapter_dwconv3d_backward_input_q(__global const short *gy, uint gy_off, __global const short *w,
                                                uint w_off, __global long *acc, uint acc_off, uint clips, uint T,
                                                uint grid, uint aw, uint kt, uint kh, uint kw, __global int *slots,
                                                uint slot) {
    const size_t i = get_global_id(0);
    const size_t P = (size_t)grid * grid;
    if (i >= (size_t)clips * T * P * aw) return;
    const uint a = i % aw;
    const size_t p = (i / aw) % P, ft = i / (aw * P);
    const int t = (int)(ft % T), n = (int)(ft / T), r = (int)(p / grid), c = (int)(p % grid);
    const int pt = (int)kt / 2, ph = (int)kh / 2, pw = (int)kw / 2;
    __global const short *wk = w + w_off + (size_t)a * kt * kh * kw;
    long s = 0;
    for (int dt = 0; dt < (int)kt; dt++) {
        const int tt = t - dt + pt;
        if (tt < 0 || tt >= (int)T) continue;
        for (int dh = 0; dh < (int)kh; dh++) {
            const int rr = r - dh + ph;
            if (rr < 0 || rr >= (int)grid) continue;
            for (int dw = 0; dw < (int)kw; dw++) {
                const int cc = c - dw + pw;
                if (cc < 0 || cc >= (int)grid) continue;
                const size_t src = (((size_t)n * T + tt) * P + (size_t)rr * grid + cc) * aw + a;
                s += (long)((int)gy[gy_off + src] * (int)wk[(dt * kh + dh) * kw + dw]);
            }
        }
    }
    acc[acc_off + i] = s;
    atomic_max(&slots[slot], fxb_bitlen(s));
}

/* g[f, 1 + p, c] += (float)(sum_a gh[f, p, a] w1t[c, a]) * inv_scale, except
 * where the quantized input xq saturated (no gradient through the clamp). */
__kernel void adapter_fc1_backward_input_q(__global const short *gh, uint gh_off, __global const short *w, uint w_off,
                                           __global const short *xq, uint xq_off, __global float *g, uint g_off,
                                           uint frames, uint patches, uint width, uint aw, float inv_scale) {
    const size_t i = get_global_id(0);
    const size_t rows = (size_t)frames * patches, blocks = (rows + FXB_ROWS - 1) / FXB_ROWS;
    if (i >= blocks * width) return;
    const uint c = i % width;
    const size_t r0 = (i / width) * FXB_ROWS;
    long s[FXB_ROWS];
    __global const short *hr[FXB_ROWS];
    _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) {
        hr[k] = gh + gh_off + (r0 + k < rows ? r0 + k : rows - 1) * aw;
        s[k] = 0;
    }
    __global const short *wr = w + w_off + (size_t)c * aw;
    for (uint a = 0; a < aw; a++) {
        const int wv = wr[a];
        _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) s[k] += (long)((int)hr[k][a] * wv);
    }
    _Pragma("unroll") for (int k = 0; k < FXB_ROWS; k++) {
        const size_t r = r0 + k;
        if (r < rows) {
            const size_t row = fxb_row(r, patches, width) + c;
            if (!fxb_saturated(xq[xq_off + row])) g[g_off + row] = g[g_off + row] + convert_float_rte(s[k]) * inv_scale;
        }
    }
}

/* dw[a, c] = sum over rows of y[r, a] gu[r, c]; db[c] = sum gu[r, c].
 * A work-item sums FXB_COLS neighbouring c of one a (contiguous gu loads);
 * the last ceil(W / FXB_COLS) work-items do db. */
#define FXB_COLS 8
__kernel void adapter_fc2_backward_params_q(__global const short *y, uint y_off, __global const short *gu,
                                            uint gu_off, __global long *dw, uint dw_off, __global long *db,
                                            uint db_off, uint frames, uint patches, uint width, uint aw) {
    const size_t i = get_global_id(0), rows = (size_t)frames * patches;
    const size_t cb = (width + FXB_COLS - 1) / FXB_COLS;
    if (i >= ((size_t)aw + 1) * cb) return;
    const uint a = i / cb, c0 = (i % cb) * FXB_COLS, n = min((uint)FXB_COLS, width - c0);
    long s[FXB_COLS];
    _Pragma("unroll") for (int k = 0; k < FXB_COLS; k++) s[k] = 0;
    for (size_t r = 0; r < rows; r++) {
        const int yv = a < aw ? (int)y[y_off + r * aw + a] : 1; /* a == aw: the bias row */
        __global const short *gr = gu + gu_off + r * width + c0;
        for (uint k = 0; k < n; k++) s[k] += (long)(yv * (int)gr[k]);
    }
    for (uint k = 0; k < n; k++) {
        if (a < aw) dw[dw_off + (size_t)a * width + c0 + k] = s[k];
        else db[db_off + c0 + k] = s[k];
    }
}

/* dw[a, dt, dh, dw] = sum over in-range (n, t, r, c) of gy[n, t, r, c, a]
 * h[n, t + dt - kt/2, r + dh - kh/2, c + dw - kw/2, a]; db[a] = sum gy. */
__kernel void adapter_dwconv3d_backward_params_q(__global const short *h, uint h_off, __global const short *gy,
                                                 uint gy_off, __global long *dw, uint dw_off, __global long *db,
                                                 uint db_off, uint clips, uint T, uint grid, uint aw, uint kt,
                                                 uint kh, uint kw) {
    const size_t i = get_global_id(0), K = (size_t)kt * kh * kw, P = (size_t)grid * grid;
    if (i >= (size_t)aw * K + aw) return;
    long s = 0;
    if (i >= (size_t)aw * K) {
        const uint a = i - (size_t)aw * K;
        for (size_t e = 0; e < (size_t)clips * T * P; e++) s += gy[gy_off + e * aw + a];
        db[db_off + a] = s;
        return;
    }
    const uint a = i / K, k = i % K;
    const int dt = (int)(k / (kh * kw)) - (int)kt / 2, dh = (int)((k / kw) % kh) - (int)kh / 2,
              dw_ = (int)(k % kw) - (int)kw / 2;
    for (uint n = 0; n < clips; n++)
        for (int t = 0; t < (int)T; t++) {
            const int tt = t + dt;
            if (tt < 0 || tt >= (int)T) continue;
            for (int r = 0; r < (int)grid; r++) {
                const int rr = r + dh;
                if (rr < 0 || rr >= (int)grid) continue;
                for (int c = 0; c < (int)grid; c++) {
                    const int cc = c + dw_;
                    if (cc < 0 || cc >= (int)grid) continue;
                    const size_t out = (((size_t)n * T + t) * P + (size_t)r * grid + c) * aw + a;
                    const size_t in = (((size_t)n * T + tt) * P + (size_t)rr * grid + cc) * aw + a;
                    s += (long)((int)gy[gy_off + out] * (int)h[h_off + in]);
                }
            }
        }
    dw[dw_off + i] = s;
}

/* dw[c, a] = sum over patch rows of xq[f, 1 + p, c] gh[f, p, a];
 * db[a] = sum gh[f, p, a]. A work-item sums FXB_COLS neighbouring a of one
 * c (contiguous gh loads); c == width: the bias. */
__kernel void adapter_fc1_backward_params_q(__global const short *xq, uint xq_off, __global const short *gh,
                                            uint gh_off, __global long *dw, uint dw_off, __global long *db,
                                            uint db_off, uint frames, uint patches, uint width, uint aw) {
    const size_t i = get_global_id(0);
    const size_t ab = (aw + FXB_COLS - 1) / FXB_COLS;
    if (i >= ((size_t)width + 1) * ab) return;
    const uint c = i / ab, a0 = (i % ab) * FXB_COLS, n = min((uint)FXB_COLS, aw - a0);
    long s[FXB_COLS];
    _Pragma("unroll") for (int k = 0; k < FXB_COLS; k++) s[k] = 0;
    size_t r = 0;
    for (uint f = 0; f < frames; f++)
        for (uint p = 0; p < patches; p++, r++) {
            const int xv = c < width ? (int)xq[xq_off + ((size_t)f * (patches + 1) + 1 + p) * width + c] : 1;
            __global const short *hr = gh + gh_off + r * aw + a0;
            for (uint k = 0; k < n; k++) s[k] += (long)(xv * (int)hr[k]);
        }
    for (uint k = 0; k < n; k++) {
        if (c < width) dw[dw_off + (size_t)c * aw + a0 + k] = s[k];
        else db[db_off + a0 + k] = s[k];
    }
}

/* grad[i] += (float)acc[i] * inv_scale (the float gradients of the
 * optimizer; inv_scale = 2^-scale). */
__kernel void fx_accumulate_grad(__global const long *acc, uint acc_off, __global float *grad, uint grad_off, uint n,
                                 float inv_scale) {
    const size_t i = get_global_id(0);
    if (i >= n) return;
    grad[grad_off + i] = grad[grad_off + i] + convert_float_rte(acc[acc_off + i]) * inv_scale;
}
