/* adapter_backward.cl: the ST-Adapter's backward pass (adapter.cl's forward
 * x[:, 1:] += fc2(DWConv3D(fc1(x[:, 1:])))), input and parameter gradients.
 * Shapes as the forward: x, dx [F, 1 + P, W] (class token rows neither read
 * nor written), h, y, dh, dy [F, P, A]; weights as the forward reads them
 * (w1t [W, A], conv [A, kt, kh, kw], w2t [A, W]); parameter gradients are
 * ADDED into a buffer of the same layout.
 *
 * Determinism: every output element is summed by one work-item in a fixed
 * order (no atomics, no split reductions), so the same inputs give the same
 * bits on a given device. No local memory and no barriers: any work-group
 * size the device reports works.
 *
 * Speed: the four fc kernels are GEMMs of ~F*P*W*A multiply-adds (925 M for
 * ViT-B, 8 frames). Each work-item computes a register tile of outputs with
 * explicit vectors along the dimension that is contiguous in memory, so that
 * every value loaded feeds several multiply-adds and the CPU gets SIMD (PoCL
 * does not vectorise a work-item loop around an inner loop, and the float
 * sums inside one work-item may not be reordered). Partial tiles at the ends
 * clamp their reads to the last valid row/column (or zero-fill a partial
 * vector) and skip the writes. */

/* Vector width 16 (bwd_vec, bwd_vload, bwd_vstore and bwd_hsum change
 * together). Measured on PoCL (AVX-512, ViT-B shape): the dot kernels took
 * 33 ms with float8 and 4 x 4 tiles, 19 ms with float16 and 4 x 2 (4 x 4
 * float16: no faster, twice the registers); the outer-product kernels 38 ms
 * with float8, 18 ms with float16 (BWD_SCAL 4, 12 or 16: slower). GPUs split
 * the vectors into scalars: the tiles then give instruction-level
 * parallelism. The host's launchers (ops_backward.c) repeat these sizes. */
#define BWD_VW 16
typedef float16 bwd_vec;
#define bwd_vload vload16
#define bwd_vstore vstore16
#define bwd_hsum lanes_sum /* reduce.cl: the lanes summed in a fixed halving order */
/* Input-gradient (dot) kernels: token rows x weight rows per work-item. */
#define BWD_ROWS 4
#define BWD_OUTS 2
/* Parameter-gradient (outer-product) kernels: rows of the scalar side per
 * work-item (the vector side is BWD_VW wide). */
#define BWD_SCAL 8

/* The first n floats at p (all BWD_VW when n >= BWD_VW), zeros after: the
 * partial block at the end of a row, where a full vector load would read
 * past it. */
bwd_vec bwd_load(__global const float *p, uint n) {
    if (n >= BWD_VW) return bwd_vload(0, p);
    float v[BWD_VW];
    for (uint k = 0; k < BWD_VW; k++) v[k] = k < n ? p[k] : 0.0f;
    return bwd_vload(0, v);
}

/* Memory row of logical row r (= f * patches + p): dense (skip 0), or the
 * patch row of the residual stream [F, 1 + P, W] (skip 1: class tokens
 * stepped over). */
size_t bwd_row(size_t r, uint patches, uint skip) { return skip ? r + r / patches + 1 : r; }

/* out[r, j] (= or +=) sum_k in[r, k] wt[j, k] for r < rows, j < nj: the
 * reduction runs along k, contiguous in both in and wt, so it is vectorised
 * (BWD_VW lanes, summed in a fixed order at the end, then the k % BWD_VW
 * tail in order). One work-item per BWD_ROWS x BWD_OUTS block: per BWD_VW
 * values of k, BWD_ROWS + BWD_OUTS vector loads feed BWD_ROWS * BWD_OUTS
 * vector multiply-adds. Rows of in are nk floats apart, rows of out nj
 * (both through bwd_row); wt is dense [nj, nk]. */
/* The fixed-count loops below are unrolled so that the accumulators stay
 * in registers (indexed, PoCL keeps them in memory: see gemm_rows.cl). */
void bwd_dot(__global const float *in, uint in_off, uint in_skip, __global const float *wt, uint w_off,
             __global float *out, uint out_off, uint out_skip, uint rows, uint patches, uint nk, uint nj,
             int accumulate) {
    const size_t i = get_global_id(0);
    const size_t jblocks = (nj + BWD_OUTS - 1) / BWD_OUTS;
    if (i >= (rows + BWD_ROWS - 1) / BWD_ROWS * jblocks) return;
    const uint j0 = (i % jblocks) * BWD_OUTS;
    const size_t r0 = (i / jblocks) * BWD_ROWS;
    __global const float *ir[BWD_ROWS];
    __global const float *wr[BWD_OUTS];
    _Pragma("unroll") for (int k = 0; k < BWD_ROWS; k++) {
        const size_t r = r0 + k < rows ? r0 + k : rows - 1;
        ir[k] = in + in_off + bwd_row(r, patches, in_skip) * nk;
    }
    _Pragma("unroll") for (int k = 0; k < BWD_OUTS; k++) wr[k] = wt + w_off + (size_t)min(j0 + k, nj - 1) * nk;
    bwd_vec acc[BWD_ROWS][BWD_OUTS];
    _Pragma("unroll") for (int r = 0; r < BWD_ROWS; r++)
        _Pragma("unroll") for (int j = 0; j < BWD_OUTS; j++) acc[r][j] = (bwd_vec)(0.0f);
    const uint nkv = nk - nk % BWD_VW;
    for (uint c = 0; c < nkv; c += BWD_VW) {
        bwd_vec a[BWD_ROWS], b[BWD_OUTS];
        _Pragma("unroll") for (int r = 0; r < BWD_ROWS; r++) a[r] = bwd_vload(0, ir[r] + c);
        _Pragma("unroll") for (int j = 0; j < BWD_OUTS; j++) b[j] = bwd_vload(0, wr[j] + c);
        _Pragma("unroll") for (int r = 0; r < BWD_ROWS; r++)
            _Pragma("unroll") for (int j = 0; j < BWD_OUTS; j++) acc[r][j] = fma(a[r], b[j], acc[r][j]);
    }
    _Pragma("unroll") for (int r = 0; r < BWD_ROWS; r++) {
        if (r0 + r >= rows) continue;
        __global float *o = out + out_off + bwd_row(r0 + r, patches, out_skip) * nj + j0;
        _Pragma("unroll") for (int j = 0; j < BWD_OUTS; j++) {
            if (j0 + j >= nj) continue;
            float s = bwd_hsum(acc[r][j]);
            for (uint c = nkv; c < nk; c++) s = fma(ir[r][c], wr[j][c], s);
            if (accumulate) o[j] += s;
            else o[j] = s;
        }
    }
}

/* The row loop of bwd_outer: acc[k] += u[r, uo[k]] v[r, 0..BWD_VW-1] and
 * bacc += v[r, 0..BWD_VW-1] over every row r in order (frames, then
 * patches: no division per row). nv = the valid columns of v (BWD_VW: full
 * vector loads). */
void bwd_outer_rows(__global const float *u, uint u_ld, uint u_skip, __global const float *v, uint v_ld,
                    uint v_skip, uint frames, uint patches, const uint *uo, uint nv, bwd_vec *acc, bwd_vec *bacc) {
    for (uint f = 0; f < frames; f++) {
        const size_t r = (size_t)f * patches;
        __global const float *ur = u + bwd_row(r, patches, u_skip) * u_ld;
        __global const float *vr = v + bwd_row(r, patches, v_skip) * v_ld;
        for (uint p = 0; p < patches; p++, ur += u_ld, vr += v_ld) {
            const bwd_vec vv = bwd_load(vr, nv);
            _Pragma("unroll") for (int k = 0; k < BWD_SCAL; k++) acc[k] = fma((bwd_vec)(ur[uo[k]]), vv, acc[k]);
            *bacc += vv;
        }
    }
}

/* Weight and bias gradients of a linear layer, ADDED into grad:
 *   grad[g_off + i * nj + j] += sum_r u[r, i] v[r, j]   (i < ni, j < nj)
 *   grad[b_off + j] += sum_r v[r, j]                      (by the i0 = 0 items)
 * over the frames * patches rows r (u rows ni floats apart, v rows nj, both
 * through bwd_row). One work-item per BWD_SCAL (i) x BWD_VW (j) block: per row,
 * one vector load of v and BWD_SCAL scalars of u feed BWD_SCAL vector
 * multiply-adds; the bias costs one vector add per row. */
void bwd_outer(__global const float *u, uint u_off, uint u_skip, __global const float *v, uint v_off, uint v_skip,
               __global float *grad, uint g_off, uint b_off, uint frames, uint patches, uint ni, uint nj) {
    const size_t i = get_global_id(0);
    const uint jblocks = (nj + BWD_VW - 1) / BWD_VW;
    if (i >= (size_t)(ni + BWD_SCAL - 1) / BWD_SCAL * jblocks) return;
    const uint j0 = (i % jblocks) * BWD_VW, i0 = (i / jblocks) * BWD_SCAL;
    const uint nv = min((uint)BWD_VW, nj - j0);
    uint uo[BWD_SCAL];
    _Pragma("unroll") for (int k = 0; k < BWD_SCAL; k++) uo[k] = min(i0 + k, ni - 1) - i0;
    bwd_vec acc[BWD_SCAL], bacc = (bwd_vec)(0.0f);
    _Pragma("unroll") for (int k = 0; k < BWD_SCAL; k++) acc[k] = (bwd_vec)(0.0f);
    /* Two copies of the loop: full vector loads, or the partial last block. */
    if (nv == BWD_VW)
        bwd_outer_rows(u + u_off + i0, ni, u_skip, v + v_off + j0, nj, v_skip, frames, patches, uo, BWD_VW, acc,
                       &bacc);
    else
        bwd_outer_rows(u + u_off + i0, ni, u_skip, v + v_off + j0, nj, v_skip, frames, patches, uo, nv, acc, &bacc);
    float t[BWD_VW];
    _Pragma("unroll") for (int k = 0; k < BWD_SCAL; k++) {
        if (i0 + k >= ni) continue;
        bwd_vstore(acc[k], 0, t);
        __global float *g = grad + g_off + (size_t)(i0 + k) * nj + j0;
        for (uint j = 0; j < nv; j++) g[j] += t[j];
    }
    if (i0 == 0) {
        bwd_vstore(bacc, 0, t);
        for (uint j = 0; j < nv; j++) grad[b_off + j0 + j] += t[j];
    }
}

/* dy[f, p, a] = sum_c dx[f, 1 + p, c] w2t[a, c] (overwrites dy). */
__kernel void adapter_fc2_backward_input(__global const float *dx, uint dx_off, __global const float *prm,
                                         uint w_off, __global float *dy, uint dy_off, uint frames, uint patches,
                                         uint width, uint aw) {
    bwd_dot(dx, dx_off, 1, prm, w_off, dy, dy_off, 0, frames * patches, patches, width, aw, 0);
}

/* grad w2t[a, c] += sum y[f, p, a] dx[f, 1 + p, c]; grad b2[c] += sum dx[f, 1 + p, c]. */
__kernel void adapter_fc2_backward_params(__global const float *y, uint y_off, __global const float *dx,
                                          uint dx_off, __global float *grad, uint w_off, uint b_off, uint frames,
                                          uint patches, uint width, uint aw) {
    bwd_outer(y, y_off, 0, dx, dx_off, 1, grad, w_off, b_off, frames, patches, aw, width);
}

/* dx[f, 1 + p, c] += sum_a dh[f, p, a] w1t[c, a] (class token rows untouched). */
__kernel void adapter_fc1_backward_input(__global const float *dh, uint dh_off, __global const float *prm,
                                         uint w_off, __global float *dx, uint dx_off, uint frames, uint patches,
                                         uint width, uint aw) {
    bwd_dot(dh, dh_off, 0, prm, w_off, dx, dx_off, 1, frames * patches, patches, aw, width, 1);
}

/* grad w1t[c, a] += sum x[f, 1 + p, c] dh[f, p, a]; grad b1[a] += sum dh[f, p, a]. */
__kernel void adapter_fc1_backward_params(__global const float *x, uint x_off, __global const float *dh,
                                          uint dh_off, __global float *grad, uint w_off, uint b_off, uint frames,
                                          uint patches, uint width, uint aw) {
    bwd_outer(x, x_off, 1, dh, dh_off, 0, grad, w_off, b_off, frames, patches, width, aw);
}

/* The adjoint of the depthwise conv (a correlation with the kernel flipped),
 * one work-item per element of dh (overwritten), taps in the forward's
 * order:
 *   dh[n, t, r, c, a] = sum w[a, jt, jh, jw] dy[n, t - jt + kt/2, r - jh + kh/2, c - jw + kw/2, a]
 * over the taps whose source lies inside the clip's volume. */
__kernel void adapter_dwconv3d_backward_input(__global const float *dy, uint dy_off, __global const float *prm,
                                              uint w_off, __global float *dh, uint dh_off, uint clips, uint T,
                                              uint grid, uint aw, uint kt, uint kh, uint kw) {
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
    float acc = 0.0f;
    for (int jt = 0; jt < (int)kt; jt++) {
        const int tt = t - jt + pt;
        if (tt < 0 || tt >= (int)T) continue;
        for (int jh = 0; jh < (int)kh; jh++) {
            const int rr = r - jh + ph;
            if (rr < 0 || rr >= (int)grid) continue;
            for (int jw = 0; jw < (int)kw; jw++) {
                const int cc = c - jw + pw;
                if (cc < 0 || cc >= (int)grid) continue;
                const size_t src = (((size_t)n * T + tt) * P + (size_t)rr * grid + cc) * aw + a;
                acc = fma(dy[dy_off + src], wk[(jt * kh + jh) * kw + jw], acc);
            }
        }
    }
    dh[dh_off + i] = acc;
}

/* Sum over one tap (shift st, sh, sw of the source; bias: h_used 0, dy
 * alone) of dy[pos, a0..] h[pos + shift, a0..] over BWD_VW channels, in order
 * (clip, t, row, column), only those whose source lies inside the volume. */
bwd_vec bwd_conv_tap(__global const float *h, __global const float *dy, int h_used, uint clips, int T, int grid,
                    uint aw, int st, int sh, int sw, uint nv) {
    const size_t P = (size_t)grid * grid;
    const int t0 = max(0, -st), t1 = min(T, T - st), r0 = max(0, -sh), r1 = min(grid, grid - sh);
    const int c0 = max(0, -sw), c1 = min(grid, grid - sw);
    bwd_vec acc = (bwd_vec)(0.0f);
    for (uint n = 0; n < clips; n++)
        for (int t = t0; t < t1; t++)
            for (int r = r0; r < r1; r++) {
                __global const float *d = dy + (((size_t)n * T + t) * P + (size_t)r * grid) * aw;
                __global const float *s = h + (((size_t)n * T + (t + st)) * P + (size_t)(r + sh) * grid) * aw;
                for (int c = c0; c < c1; c++) {
                    const bwd_vec dv = bwd_load(d + (size_t)c * aw, nv);
                    acc = h_used ? fma(dv, bwd_load(s + (size_t)(c + sw) * aw, nv), acc) : acc + dv;
                }
            }
    return acc;
}

/* Conv weight and bias gradients, ADDED into grad:
 *   grad[w_off + a * K + k] += sum dy[n, t, r, c, a] h[n, t + jt - kt/2, r + jh - kh/2, c + jw - kw/2, a]
 *   grad[b_off + a] += sum dy[..., a]
 * (k = (jt * kh + jh) * kw + jw). One work-item per tap (or the bias) and
 * BWD_VW consecutive channels, contiguous in h and dy: (K + 1) *
 * ceil(A / BWD_VW) items, each a vector sum over the F * P positions. */
__kernel void adapter_dwconv3d_backward_params(__global const float *h, uint h_off, __global const float *dy,
                                               uint dy_off, __global float *grad, uint w_off, uint b_off,
                                               uint clips, uint T, uint grid, uint aw, uint kt, uint kh, uint kw) {
    const size_t i = get_global_id(0);
    const uint K = kt * kh * kw, ablocks = (aw + BWD_VW - 1) / BWD_VW;
    if (i >= (size_t)(K + 1) * ablocks) return;
    const uint a0 = (i % ablocks) * BWD_VW, k = i / ablocks, nv = min((uint)BWD_VW, aw - a0);
    const int bias = k == K;
    const int st = bias ? 0 : (int)(k / (kh * kw)) - (int)kt / 2;
    const int sh = bias ? 0 : (int)((k / kw) % kh) - (int)kh / 2;
    const int sw = bias ? 0 : (int)(k % kw) - (int)kw / 2;
    __global const float *hp = h + h_off + a0, *dp = dy + dy_off + a0;
    bwd_vec acc;
    if (nv == BWD_VW) acc = bwd_conv_tap(hp, dp, !bias, clips, (int)T, (int)grid, aw, st, sh, sw, BWD_VW);
    else acc = bwd_conv_tap(hp, dp, !bias, clips, (int)T, (int)grid, aw, st, sh, sw, nv);
    float t[BWD_VW];
    bwd_vstore(acc, 0, t);
    for (uint j = 0; j < nv; j++) {
        if (bias) grad[b_off + a0 + j] += t[j];
        else grad[w_off + (size_t)(a0 + j) * K + k] += t[j];
    }
}
