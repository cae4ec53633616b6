/* ops_fixed_backward.h: launchers of kernels/adapter_fixed_backward.cl,
 * the fixed-point adapter's training kernels (docs/fpga.md, "Fixed-point
 * backward and stochastic rounding"). Conventions as ops_fixed.h: device
 * buffer + element offset (in the tensor's own type: short for int16,
 * long for int64, int for the slots, float for float) per tensor,
 * asynchronous launches on ctx's queue, profiled under the op name.
 *
 * - fx_quantize_rows: xq = quantize(x, frac) on the patch rows of
 *   [F, 1 + P, W] (same layout; class rows untouched).
 * - adapter_fc2_update_q: x (float) += the fixed-point fc2 output, rounded
 *   to fmt->frac_x, as float.
 * - fx_fill_slots: n int slots = value (before the max reductions).
 * - fx_grad_exponent: slot = max frexp exponent of g's patch rows
 *   (STACL_FX_EXP_ZERO if all zero stays, STACL_FX_EXP_NONFINITE).
 * - fx_quantize_grad_sr: gu [F, P, W] = g * 2^frac stochastically rounded.
 * - *_backward_input_q: exact int64 sums into acc with the max bit length
 *   in the slot (fc1's goes straight into the float g: += sum * 2^-scale).
 * - fx_narrow_sr: int16 = acc / 2^shift stochastically rounded, saturated;
 *   0 where the forward value saturated.
 * - *_backward_params_q: int64 weight and bias gradients (overwritten).
 * - fx_accumulate_grad: grad (float) += acc * 2^-scale. */
#ifndef STACL_OPS_FIXED_BACKWARD_H
#define STACL_OPS_FIXED_BACKWARD_H

#include <stdint.h>

#include "ops_fixed.h"

/* One stochastic-rounding stream: element i of the tensor draws
 * stacl_fx_rand64(seed, step, tensor, i) (fx_rng.h). */
typedef struct stacl_fx_sr { uint64_t seed, step; uint32_t tensor; } stacl_fx_sr;
#define STACL_FX_EXP_ZERO (-1000)
#define STACL_FX_EXP_NONFINITE 1000
stacl_status stacl_op_fx_quantize_rows(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, int frac,
                                       cl_mem x, size_t x_off, cl_mem xq, size_t xq_off);
stacl_status stacl_op_adapter_fc2_update_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames, size_t patches,
                                           size_t width, size_t aw, cl_mem y, size_t y_off, cl_mem w, size_t w_off,
                                           cl_mem b, size_t b_off, cl_mem xf, size_t xf_off);
stacl_status stacl_op_fx_fill_slots(stacl_ctx *ctx, cl_mem slots, size_t off, size_t n, int value);
stacl_status stacl_op_fx_grad_exponent(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, cl_mem g,
                                       size_t g_off, cl_mem slots, size_t slot);
stacl_status stacl_op_fx_quantize_grad_sr(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, int frac,
                                          const stacl_fx_sr *sr, cl_mem g, size_t g_off, cl_mem gu, size_t gu_off);
stacl_status stacl_op_adapter_fc2_backward_input_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                   size_t aw, cl_mem gu, size_t gu_off, cl_mem w, size_t w_off,
                                                   cl_mem acc, size_t acc_off, cl_mem slots, size_t slot);
/* act (may be NULL): the forward int16 values of the same tensor; where one
 * saturated, dst is 0 (the clamp passes no gradient). */
stacl_status stacl_op_fx_narrow_sr(stacl_ctx *ctx, size_t n, unsigned shift, const stacl_fx_sr *sr, cl_mem acc,
                                   size_t acc_off, cl_mem dst, size_t dst_off, cl_mem act, size_t act_off);
stacl_status stacl_op_adapter_dwconv3d_backward_input_q(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                        size_t aw, size_t kt, size_t kh, size_t kw, cl_mem gy,
                                                        size_t gy_off, cl_mem w, size_t w_off, cl_mem acc,
                                                        size_t acc_off, cl_mem slots, size_t slot);
/* xq: the quantized input [F, 1 + P, W]; saturated elements get nothing. */
stacl_status stacl_op_adapter_fc1_backward_input_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                   size_t aw, int scale, cl_mem gh, size_t gh_off, cl_mem w,
                                                   size_t w_off, cl_mem xq, size_t xq_off, cl_mem g, size_t g_off);
stacl_status stacl_op_adapter_fc2_backward_params_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                    size_t aw, cl_mem y, size_t y_off, cl_mem gu, size_t gu_off,
                                                    cl_mem dw, size_t dw_off, cl_mem db, size_t db_off);
stacl_status stacl_op_adapter_dwconv3d_backward_params_q(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                         size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                                         size_t h_off, cl_mem gy, size_t gy_off, cl_mem dw,
                                                         size_t dw_off, cl_mem db, size_t db_off);
stacl_status stacl_op_adapter_fc1_backward_params_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                    size_t aw, cl_mem xq, size_t xq_off, cl_mem gh, size_t gh_off,
                                                    cl_mem dw, size_t dw_off, cl_mem db, size_t db_off);
stacl_status stacl_op_fx_accumulate_grad(stacl_ctx *ctx, size_t n, int scale, cl_mem acc, size_t acc_off,
                                         cl_mem grad, size_t grad_off);

#endif
