/* ops_fixed.h: launchers of the fixed-point ST-Adapter forward kernels
 * (kernels/adapter_fixed.cl; arithmetic in docs/fpga.md, "Fixed-point
 * adapter arithmetic"). Same conventions as ops.h: device buffer + element
 * offset per tensor, asynchronous launches on the ctx's queue, profiled
 * under the op name. Tensors are int16 (x, h, y, weights) and int32
 * (biases, at the accumulator's scale); weights and biases come from two
 * buffers `w` (int16) and `b` (int32), each with its own offsets. The
 * format `fmt` gives the fractional bits (and so each stage's shift); it is
 * checked (stacl_fx_format_check) before anything is launched. */
#ifndef STACL_OPS_FIXED_H
#define STACL_OPS_FIXED_H

#include "fixed_point.h"
#include "ops.h"

/* h [F, P, A] (frac_h) = fc1(x[:, 1:]) with x [F, 1 + P, W] (frac_x), w1t
 * [W, A] (frac_w1), b1 [A] (frac_x + frac_w1). */
stacl_status stacl_op_adapter_fc1_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames, size_t patches,
                                    size_t width, size_t aw, cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                                    cl_mem b, size_t b_off, cl_mem h, size_t h_off);
/* y [clips * T, grid^2, A] (frac_y) = depthwise 3D conv of h (frac_h) per
 * clip, zero padding k / 2, weight [A, kt, kh, kw] (frac_wc), bias [A]
 * (frac_h + frac_wc). */
stacl_status stacl_op_adapter_dwconv3d_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t clips, size_t T,
                                         size_t grid, size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                         size_t h_off, cl_mem w, size_t w_off, cl_mem b, size_t b_off, cl_mem y,
                                         size_t y_off);
/* x[:, 1:] = sat16(x[:, 1:] + fc2(y)) in x's format: y [F, P, A] (frac_y),
 * w2t [A, W] (frac_w2), b2 [W] (frac_y + frac_w2). */
stacl_status stacl_op_adapter_fc2_residual_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames,
                                             size_t patches, size_t width, size_t aw, cl_mem y, size_t y_off,
                                             cl_mem w, size_t w_off, cl_mem b, size_t b_off, cl_mem x,
                                             size_t x_off);

#endif
