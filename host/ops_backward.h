/* ops_backward.h: launchers of the kernels that training needs on top of
 * the forward ones (kernels/backward.cl, kernels/adapter_backward.cl).
 * Same conventions as ops.h: device buffer + element offset per tensor,
 * asynchronous launches on the ctx's queue, profiled under the op name.
 *
 * The frozen backbone needs activation gradients only, so its backward
 * kernels (layer norm, softmax, activation, head layout) produce input
 * gradients and never weight gradients. The adapters' backward kernels
 * produce both; their weight and bias gradients are ADDED into a gradient
 * buffer laid out like the adapter's parameter buffer (so micro-batches
 * accumulate), each element summed by one work-item in a fixed order
 * (deterministic: the same inputs give the same bits on a given device). */
#ifndef STACL_OPS_BACKWARD_H
#define STACL_OPS_BACKWARD_H

#include "ops.h"

/* ---- frozen backbone ---- */

/* Forward that keeps the pre-activation for the backward pass:
 * u = y + bias (stored at u), y = act(u) (in place). act as in
 * stacl_op_bias_act (STACL_BIAS_ONLY copies y + bias into both). */
stacl_status stacl_op_bias_act_keep(stacl_ctx *ctx, stacl_bias_act act, size_t rows, size_t cols,
                                    cl_mem y, size_t y_off, cl_mem u, size_t u_off,
                                    cl_mem bias, size_t bias_off);

/* In place on dg[n]: dg *= act'(u), u the pre-activation (QuickGELU
 * x sigmoid(1.702 x), or exact GELU). */
stacl_status stacl_op_act_backward(stacl_ctx *ctx, stacl_bias_act act, size_t n, cl_mem u, size_t u_off,
                                   cl_mem dg, size_t dg_off);

/* LayerNorm backward, ACCUMULATING into dx: for each row r,
 *   xhat = (x - mean) * rstd (mean, rstd recomputed from x as the forward),
 *   g = dy * gamma,
 *   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)).
 * Rows are x_stride / dy_stride / dx_stride floats apart. dy and dx must
 * not overlap. */
stacl_status stacl_op_layernorm_backward(stacl_ctx *ctx, size_t rows, size_t cols, float eps,
                                         cl_mem x, size_t x_off, size_t x_stride,
                                         cl_mem params, size_t gamma_off,
                                         cl_mem dy, size_t dy_off, size_t dy_stride,
                                         cl_mem dx, size_t dx_off, size_t dx_stride);

/* Softmax backward in place: dp[r, :] = p[r, :] * (dp[r, :] - sum_j p[r, j] dp[r, j])
 * over rows of `cols` (p is the forward's output; masked entries have p = 0
 * and get 0). */
stacl_status stacl_op_softmax_backward(stacl_ctx *ctx, size_t rows, size_t cols, cl_mem p, size_t p_off,
                                       cl_mem dp, size_t dp_off);

/* y [F, L, H*D] -> o [F, H, L, D]: the inverse of stacl_op_merge_heads. */
stacl_status stacl_op_split_merged(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                   cl_mem y, size_t y_off, cl_mem o, size_t o_off);

/* dq, dk, dv [F, H, L, D] (in buffer `g`) -> dqkv [F, L, 3, H, D], dq
 * multiplied by q_scale: the inverse (adjoint) of stacl_op_split_heads. */
stacl_status stacl_op_join_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                 float q_scale, cl_mem g, size_t dq_off, size_t dk_off, size_t dv_off,
                                 cl_mem dqkv, size_t dqkv_off);

/* ---- ST-Adapter backward (kernels/adapter_backward.cl) ----
 * Shapes as the forward (ops.h): x, dx [F, 1 + P, W] residual stream and
 * its gradient (class token rows first, never read or written here); h, y,
 * dh, dy [F, P, A]; weights in `prm` stored as the forward reads them
 * (w1t [W, A], conv [A, kt, kh, kw], w2t [A, W]); gradients in `grad` at the
 * same offsets and layouts, ADDED to. F = clips * T. */

/* dy[f, p, a] = sum_c dx[f, 1 + p, c] w2t[a, c]. */
stacl_status stacl_op_adapter_fc2_backward_input(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                 size_t aw, cl_mem dx, size_t dx_off, cl_mem prm, size_t w_off,
                                                 cl_mem dy, size_t dy_off);
/* grad[w_off + a * W + c] += sum_{f,p} y[f, p, a] dx[f, 1 + p, c];
 * grad[b_off + c] += sum_{f,p} dx[f, 1 + p, c]. */
stacl_status stacl_op_adapter_fc2_backward_params(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                  size_t aw, cl_mem y, size_t y_off, cl_mem dx, size_t dx_off,
                                                  cl_mem grad, size_t w_off, size_t b_off);
/* dh = the adjoint of the depthwise conv (zero padding k / 2, per clip):
 * dh[n, t, r, c, a] = sum_{dt,dh,dw} w[a, dt, dh, dw] dy[n, t - dt + kt/2, r - dh + kh/2, c - dw + kw/2, a]
 * (terms outside the volume are zero). Overwrites dh. */
stacl_status stacl_op_adapter_dwconv3d_backward_input(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                      size_t aw, size_t kt, size_t kh, size_t kw, cl_mem dy,
                                                      size_t dy_off, cl_mem prm, size_t w_off, cl_mem dh,
                                                      size_t dh_off);
/* grad[w_off + a * K + k] += sum_{n,t,r,c} dy[n, t, r, c, a] h[n, t + dt - kt/2, r + dh - kh/2, c + dw - kw/2, a]
 * (k = (dt * kh + dh) * kw + dw, out-of-volume h = 0);
 * grad[b_off + a] += sum dy[..., a]. */
stacl_status stacl_op_adapter_dwconv3d_backward_params(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                       size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                                       size_t h_off, cl_mem dy, size_t dy_off, cl_mem grad,
                                                       size_t w_off, size_t b_off);
/* dx[f, 1 + p, c] += sum_a dh[f, p, a] w1t[c, a] (the class token rows of
 * dx are untouched). */
stacl_status stacl_op_adapter_fc1_backward_input(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                 size_t aw, cl_mem dh, size_t dh_off, cl_mem prm, size_t w_off,
                                                 cl_mem dx, size_t dx_off);
/* grad[w_off + c * A + a] += sum_{f,p} x[f, 1 + p, c] dh[f, p, a];
 * grad[b_off + a] += sum_{f,p} dh[f, p, a]. */
stacl_status stacl_op_adapter_fc1_backward_params(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                  size_t aw, cl_mem x, size_t x_off, cl_mem dh, size_t dh_off,
                                                  cl_mem grad, size_t w_off, size_t b_off);

#endif
