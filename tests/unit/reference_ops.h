/* reference_ops.h: plain-C references for stacl's kernels and GEMMs, used by
 * the unit tests. Written from the operations' definitions (PyTorch / BLAS
 * semantics), not from the OpenCL code; every sum is accumulated in double
 * and each result is rounded to float once (the *_d functions keep double
 * in and out, for finite differences). All tensors are dense row-major
 * host arrays unless a stride says otherwise. Only ref_gemm allocates
 * (scratch, with a fallback when that fails); nothing fails. */
#ifndef STACL_TEST_REFERENCE_OPS_H
#define STACL_TEST_REFERENCE_OPS_H

#include <stddef.h>

/* LayerNorm over the last dimension (biased variance, eps inside the sqrt).
 * x: rows of `cols` floats, row r at x + r * x_stride.
 * y: row r written at y + r * y_stride (y may equal x with the same stride:
 *    in place). gamma, beta: [cols]. */
void ref_layernorm(size_t rows, size_t cols, double eps, const float *x, size_t x_stride, float *y,
                   size_t y_stride, const float *gamma, const float *beta);

/* Row softmax. x, y: [rows, cols] (y may equal x). causal_len > 0: row r is
 * the query at position q = r % causal_len; only columns 0..q take part and
 * the others are written as exactly 0 (CLIP text tower's causal mask). */
void ref_softmax(size_t rows, size_t cols, size_t causal_len, const float *x, float *y);

typedef enum ref_act {
    REF_ACT_NONE,       /* y + bias */
    REF_ACT_QUICK_GELU, /* v * sigmoid(1.702 v), v = y + bias (OpenAI CLIP) */
    REF_ACT_GELU        /* 0.5 v (1 + erf(v / sqrt(2))) (exact GELU) */
} ref_act;
/* y[rows, cols] = act(y + bias), in place; bias: [cols]. */
void ref_bias_act(ref_act act, size_t rows, size_t cols, float *y, const float *bias);
/* The scalar activations, in double. */
double ref_quick_gelu(double v);
double ref_gelu(double v);

/* Attention head split. qkv: [F, L, 3, H, D] (the fused projection output,
 * i.e. [F, L, 3W] with W = H*D and q | k | v along the last axis).
 * q, k, v: [F, H, L, D] each; q is multiplied by q_scale. */
void ref_split_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, float q_scale,
                     const float *qkv, float *q, float *k, float *v);
/* Inverse layout change. o: [F, H, L, D] -> y: [F, L, H*D]. */
void ref_merge_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, const float *o, float *y);

/* Patches of a conv with kernel = stride = patch, no padding.
 * img: [F, 3, S, S]; grid G = S / patch (pixels past G*patch are unused).
 * cols: [F * G * G, 3 * patch * patch]; row (f, gy, gx) = f*G*G + gy*G + gx,
 * column (c, ky, kx) = (c * patch + ky) * patch + kx (the flattening of a
 * conv weight [W, 3, patch, patch]). */
void ref_im2col(size_t frames, size_t size, size_t patch, const float *img, float *cols);

/* Direct convolution, stride = kernel = patch, no padding, no bias.
 * img: [F, 3, S, S]; weight: [W, 3, patch, patch];
 * out: [F, G*G, W] (tokens-major, as after the patch-embedding GEMM):
 * out[f, gy*G + gx, o] = sum_{c,ky,kx} img[f, c, gy*p+ky, gx*p+kx] * weight[o, c, ky, kx]. */
void ref_conv2d_patch(size_t frames, size_t size, size_t patch, size_t width, const float *img,
                      const float *weight, float *out);

/* Token assembly. patches: [F * P, W]; cls: [W]; pos: [P + 1, W];
 * x: [F, P + 1, W] with x[f, 0] = cls + pos[0], x[f, 1+p] = patches[f*P + p] + pos[1+p]. */
void ref_assemble_tokens(size_t frames, size_t n_patches, size_t width, const float *patches, const float *cls,
                         const float *pos, float *x);

/* Token embedding. tokens: [n, ctx] ids into table [vocab, W]; pos: [ctx, W];
 * x: [n, ctx, W] with x[i, t] = table[tokens[i, t]] + pos[t]. */
void ref_embed_tokens(size_t n, size_t ctx, size_t width, const int *tokens, const float *table, const float *pos,
                      float *x);
/* Row gather. y[r] = x[rows[r]] for r < n; x, y rows of `width` floats. */
void ref_gather_rows(size_t n, size_t width, const float *x, const int *rows, float *y);

/* ST-Adapter bottleneck (kernels/adapter.cl), on x [F, 1 + P, W] whose row
 * 0 of each frame is the class token (never read or written). mag, when
 * not NULL, receives each output's sum of |terms| (for GEMM-like bounds).
 * fc1: h[f, p, a] = b1[a] + sum_c x[f, 1 + p, c] w1[a, c]; w1 [A, W]. */
void ref_adapter_fc1(size_t frames, size_t patches, size_t width, size_t aw, const float *x, const float *w1,
                     const float *b1, float *h, float *mag);
/* Depthwise Conv3d (PyTorch semantics, groups = channels, zero padding
 * k / 2, stride 1) over each clip's [T, grid, grid] volume, channels last:
 * h, y [clips * T, grid * grid, A]; w [A, kt, kh, kw]; b [A]. */
void ref_adapter_dwconv3d(size_t clips, size_t T, size_t grid, size_t aw, size_t kt, size_t kh, size_t kw,
                          const float *h, const float *w, const float *b, float *y, float *mag);
/* x[f, 1 + p, c] += b2[c] + sum_a y[f, p, a] w2[c, a] (in place); w2 [W, A];
 * mag: [F, P, W]. */
void ref_adapter_fc2_residual(size_t frames, size_t patches, size_t width, size_t aw, const float *y,
                              const float *w2, const float *b2, float *x, float *mag);
/* m[n, c] = mean over t < T of x[n * T + t, 0, c]; x [clips * T, tokens, W]. */
void ref_adapter_mean_cls(size_t clips, size_t T, size_t tokens, size_t width, const float *x, float *m);

/* ---- backward passes (kernels/backward.cl, kernels/adapter_backward.cl) ----
 * Derived by hand from the forward definitions above, every sum in double.
 * `mag` outputs (may be NULL) give each result's scale for the float
 * kernels' error bound, as for the forward references. */

/* Derivatives of the activations: v sigmoid(1.702 v) -> s + 1.702 v s (1 - s);
 * v Phi(v) -> Phi(v) + v phi(v). */
double ref_quick_gelu_grad(double v);
double ref_gelu_grad(double v);

/* LayerNorm backward, ADDED into dx: per row, with mean and rstd = 1 /
 * sqrt(var + eps) of x as ref_layernorm, xhat = (x - mean) rstd, g = dy gamma:
 *   dx += rstd (g - mean(g) - xhat mean(g xhat)).
 * Rows of x, dy, dx are x_stride, dy_stride, dx_stride floats apart.
 * mag [rows, cols] (dense): the first-order error scale of a float kernel
 * whose sums have k additions each, error <= (k + 4) u mag:
 *   |dx_old| + rstd (|g| + mean|g| + |xhat| |mean(g xhat)| + |xhat| mean|g xhat|
 *                    + m (|mean(g xhat)| + |xhat| mean|g|)),  m = 1 + |mean| rstd
 * (m: the float mean's error is relative to mean |x| <= |mean| + std). */
void ref_layernorm_backward(size_t rows, size_t cols, double eps, const float *x, size_t x_stride,
                            const float *gamma, const float *dy, size_t dy_stride, float *dx, size_t dx_stride,
                            float *mag);

/* Softmax backward in place: dp[r, :] = p (dp - sum_j p_j dp_j) over rows of
 * cols; mag = p (|dp| + sum_j |p_j dp_j|). */
void ref_softmax_backward(size_t rows, size_t cols, const float *p, float *dp, float *mag);

/* y [F, L, H*D] -> o [F, H, L, D] (ref_merge_heads undone). */
void ref_split_merged(size_t frames, size_t tokens, size_t heads, size_t head_dim, const float *y, float *o);
/* dq, dk, dv [F, H, L, D] -> dqkv [F, L, 3, H, D], dq times q_scale (the
 * adjoint of ref_split_heads). */
void ref_join_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, float q_scale, const float *dq,
                    const float *dk, const float *dv, float *dqkv);

/* Double-precision forwards, for finite differences: one LayerNorm row;
 * one softmax row over its first `valid` entries (the rest 0). */
void ref_layernorm_row_d(size_t cols, double eps, const double *x, const double *gamma, const double *beta,
                         double *y);
void ref_softmax_row_d(size_t cols, size_t valid, const double *x, double *y);

/* ST-Adapter in double (PyTorch layouts: w1 [A, W], cw [A, kt, kh, kw],
 * w2 [W, A]); x, out [F, 1 + P, W] with class rows first; h, y [F, P, A].
 * The backward pieces overwrite their outputs (gradients of a loss
 * sum(dout * out)); mag_* (may be NULL): the sums of |terms|. */
typedef struct ref_adapter_shape {
    size_t clips, T, grid, width, aw, kt, kh, kw;
} ref_adapter_shape;
/* h = fc1(x patch rows), y = dwconv(h), out = x + fc2(y) on the patch rows,
 * out = x on the class rows. */
void ref_adapter_forward_d(const ref_adapter_shape *s, const double *x, const double *w1, const double *b1,
                           const double *cw, const double *cb, const double *w2, const double *b2, double *h,
                           double *y, double *out);
/* dy[f, p, a] = sum_c dout[f, 1 + p, c] w2[c, a]. */
void ref_adapter_fc2_backward_input_d(const ref_adapter_shape *s, const double *dout, const double *w2, double *dy,
                                     double *mag);
/* gw2[c, a] = sum_{f,p} dout[f, 1 + p, c] y[f, p, a]; gb2[c] = sum dout[f, 1 + p, c]. */
void ref_adapter_fc2_backward_params_d(const ref_adapter_shape *s, const double *y, const double *dout,
                                      double *gw2, double *gb2, double *mag_w, double *mag_b);
/* dh = the adjoint of the depthwise conv applied to dy. */
void ref_adapter_dwconv3d_backward_input_d(const ref_adapter_shape *s, const double *dy, const double *cw,
                                          double *dh, double *mag);
/* gcw[a, k] = sum dy[pos, a] h[pos + tap k offset, a] (inside the volume);
 * gcb[a] = sum dy[..., a]. */
void ref_adapter_dwconv3d_backward_params_d(const ref_adapter_shape *s, const double *h, const double *dy,
                                           double *gcw, double *gcb, double *mag_w, double *mag_b);
/* dxp [F, P, W] (patch rows only, dense) = sum_a dh[f, p, a] w1[a, c]. */
void ref_adapter_fc1_backward_input_d(const ref_adapter_shape *s, const double *dh, const double *w1, double *dxp,
                                     double *mag);
/* gw1[a, c] = sum_{f,p} dh[f, p, a] x[f, 1 + p, c]; gb1[a] = sum dh[f, p, a]. */
void ref_adapter_fc1_backward_params_d(const ref_adapter_shape *s, const double *x, const double *dh, double *gw1,
                                      double *gb1, double *mag_w, double *mag_b);

/* Row-major GEMM: c[m, n] = alpha * op(a) op(b) + beta * c.
 * op(a)[i, p] = trans_a ? a[p * lda + i] : a[i * lda + p]   (op(a): [m, k])
 * op(b)[p, j] = trans_b ? b[j * ldb + p] : b[p * ldb + j]   (op(b): [k, n])
 * c[i, j] at c[i * ldc + j]. beta == 0 means c is not read (BLAS
 * convention: NaN or garbage in c is ignored). */
void ref_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const float *a, size_t lda,
              const float *b, size_t ldb, double beta, float *c, size_t ldc);

#endif
