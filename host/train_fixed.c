/* train_fixed.c: the trainer's fixed-point path (docs/fpga.md, "Fixed-point
 * training"): the backward pass of one fixed-point adapter site in integer
 * kernels (kernels/adapter_fixed_backward.cl), with the residual gradient
 * quantized at the site by a per-tensor power-of-two scale chosen from its
 * largest value, the intermediate gradients narrowed the same way, every
 * narrowing stochastically rounded, and the weight gradients accumulated
 * exactly in int64 and handed to the float optimizer; and the weights'
 * requantization after each optimizer step. */
#include <stdio.h>
#include <stdlib.h>

#include "adapter_fixed.h"
#include "ops_fixed_backward.h"
#include "train_internal.h"

/* Headroom rule: a tensor whose largest magnitude has b bits is shifted
 * right by b - 14, so every narrowed value is below 2^14 in magnitude
 * (stochastic rounding may add one) and never saturates. */
#define FX_GRAD_BITS 14

stacl_status stacl_trainer_fx_init(stacl_trainer *t) {
    if (!t->ad->fx) return STACL_OK;
    const size_t W = (size_t)t->model->cfg.width, A = (size_t)t->ad->info.width;
    const int *k = t->ad->info.kernel;
    const size_t K = (size_t)k[0] * (size_t)k[1] * (size_t)k[2];
    size_t longs = A * W + W;
    if (A * K + A > longs) longs = A * K + A;
    stacl_status st = stacl_device_buffer(t->model->ctx, longs * sizeof(cl_long), CL_MEM_READ_WRITE, NULL,
                                          "the fixed-point weight gradient accumulators", NULL, &t->fx_acc);
    if (st == STACL_OK)
        st = stacl_device_buffer(t->model->ctx, 4 * sizeof(cl_int), CL_MEM_READ_WRITE, NULL,
                                 "the fixed-point scale slots", NULL, &t->fx_slots);
    return st;
}

static stacl_status read_slot(stacl_ctx *ctx, cl_mem slots, size_t i, int *value) {
    cl_int err = clEnqueueReadBuffer(ctx->queue, slots, CL_TRUE, i * sizeof(cl_int), sizeof(cl_int), value, 0, NULL,
                                     NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "reading a fixed-point scale");
}

/* Rounds a float offset up to an even one (int64 views need it). */
static size_t even(size_t off) { return off + (off & 1); }

stacl_status stacl_trainer_fx_site_backward(stacl_trainer *t, const adapter_site *s, int site_index, size_t x_in,
                                            size_t h, size_t y, size_t clips) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = t->model->ctx;
    const stacl_adapter *ad = t->ad;
    const adapter_fixed *fx = ad->fx;
    const stacl_vision_config *c = &t->model->cfg;
    const size_t T = (size_t)t->T, F = clips * T, W = (size_t)c->width, A = (size_t)ad->info.width;
    const size_t grid = (size_t)(c->image_size / c->patch), P = grid * grid, L = P + 1;
    const int *k = ad->info.kernel;
    const size_t kt = (size_t)k[0], kh = (size_t)k[1], kw = (size_t)k[2], K = kt * kh * kw;
    const stacl_fx_format fmt = stacl_fx_site_format(ad, s);
    cl_mem ws = t->ws, acc = t->fx_acc, slots = t->fx_slots, gr = t->grad;
    /* Scratch in the MLP region (free during the adapter's backward), as
     * float offsets: gu int16 [F, P, W], xq int16 [F, L, W], an int64
     * accumulator [F, P, A], gy and gh int16 [F, P, A]. */
    const size_t gu = t->plan.mlp, xq = gu + (F * P * W + 1) / 2, big = even(xq + (F * L * W + 1) / 2);
    const size_t gy = big + 2 * F * P * A, gh = gy + (F * P * A + 1) / 2;
    /* Every stochastic rounding of this pass: keyed by the optimizer step
     * and the micro-batch within it, the site and the tensor. */
    stacl_fx_sr sr = {t->opt.fixed_seed, (uint64_t)t->steps * 4096u + t->fx_micro, 0};
    const uint32_t tensor_base = (uint32_t)site_index * 4u;

    /* 1-2: the residual gradient at the site, on a power-of-two grid. */
    TRY(stacl_op_fx_fill_slots(ctx, slots, 0, 1, STACL_FX_EXP_ZERO));
    TRY(stacl_op_fx_fill_slots(ctx, slots, 1, 2, 0));
    TRY(stacl_op_fx_grad_exponent(ctx, F, P, W, ws, t->g, slots, 0));
    int e;
    TRY(read_slot(ctx, slots, 0, &e));
    if (e == STACL_FX_EXP_ZERO) return STACL_OK; /* no gradient reaches this adapter */
    if (e == STACL_FX_EXP_NONFINITE)
        return stacl_fail(STACL_ERR_INVALID_ARG, "trainer: non-finite gradient at a fixed-point adapter (block %d): "
                          "lower the learning rate", site_index / 2);
    int frac_gu = FX_GRAD_BITS - e;
    if (frac_gu < 0) frac_gu = 0;
    if (frac_gu > 48) frac_gu = 48;
    sr.tensor = tensor_base + 0;
    TRY(stacl_op_fx_quantize_grad_sr(ctx, F, P, W, frac_gu, &sr, ws, t->g, ws, 2 * gu));

    /* 3-4: fc2. */
    TRY(stacl_op_adapter_fc2_backward_input_q(ctx, F, P, W, A, ws, 2 * gu, fx->dqw, s->fc2_w, ws, big / 2, slots, 1));
    TRY(stacl_op_adapter_fc2_backward_params_q(ctx, F, P, W, A, ws, 2 * y, ws, 2 * gu, acc, 0, acc, A * W));
    TRY(stacl_op_fx_accumulate_grad(ctx, A * W, fmt.frac_y + frac_gu, acc, 0, gr, s->fc2_w));
    TRY(stacl_op_fx_accumulate_grad(ctx, W, frac_gu, acc, A * W, gr, s->fc2_b));
    int b;
    TRY(read_slot(ctx, slots, 1, &b));
    const int s_gy = b > FX_GRAD_BITS ? b - FX_GRAD_BITS : 0, frac_gy = frac_gu + fmt.frac_w2 - s_gy;
    sr.tensor = tensor_base + 1;
    TRY(stacl_op_fx_narrow_sr(ctx, F * P * A, (unsigned)s_gy, &sr, ws, big / 2, ws, 2 * gy, ws, 2 * y));

    /* 5-6: the depthwise conv. */
    TRY(stacl_op_adapter_dwconv3d_backward_input_q(ctx, clips, T, grid, A, kt, kh, kw, ws, 2 * gy, fx->dqw, s->conv_w,
                                                   ws, big / 2, slots, 2));
    TRY(stacl_op_adapter_dwconv3d_backward_params_q(ctx, clips, T, grid, A, kt, kh, kw, ws, 2 * h, ws, 2 * gy, acc, 0,
                                                    acc, A * K));
    TRY(stacl_op_fx_accumulate_grad(ctx, A * K, frac_gy + fmt.frac_h, acc, 0, gr, s->conv_w));
    TRY(stacl_op_fx_accumulate_grad(ctx, A, frac_gy, acc, A * K, gr, s->conv_b));
    TRY(read_slot(ctx, slots, 2, &b));
    const int s_gh = b > FX_GRAD_BITS ? b - FX_GRAD_BITS : 0, frac_gh = frac_gy + fmt.frac_wc - s_gh;
    sr.tensor = tensor_base + 2;
    TRY(stacl_op_fx_narrow_sr(ctx, F * P * A, (unsigned)s_gh, &sr, ws, big / 2, ws, 2 * gh, ws, 2 * h));

    /* 7-8: fc1 (its input re-quantized from the kept float input). */
    TRY(stacl_op_fx_quantize_rows(ctx, F, P, W, fmt.frac_x, ws, x_in, ws, 2 * xq));
    TRY(stacl_op_adapter_fc1_backward_params_q(ctx, F, P, W, A, ws, 2 * xq, ws, 2 * gh, acc, 0, acc, W * A));
    TRY(stacl_op_fx_accumulate_grad(ctx, W * A, fmt.frac_x + frac_gh, acc, 0, gr, s->fc1_w));
    TRY(stacl_op_fx_accumulate_grad(ctx, A, frac_gh, acc, W * A, gr, s->fc1_b));
    TRY(stacl_op_adapter_fc1_backward_input_q(ctx, F, P, W, A, frac_gh + fmt.frac_w1, ws, 2 * gh, fx->dqw, s->fc1_w,
                                              ws, 2 * xq, ws, t->g));
cleanup:
    return st;
}

stacl_status stacl_trainer_fx_requantize(stacl_trainer *t) {
    if (!t->ad->fx) return STACL_OK;
    if (!t->opt.fixed_sr_update) /* fp32 master in t->params: round half to even from it */
        return stacl_fx_quantize_params(t->ad, t->params, NULL, NULL);
    /* No master: the updated values go onto the fixed-point grid by
     * stochastic rounding, and t->params takes the grid values. */
    const stacl_fx_sr sr = {t->opt.fixed_seed, (uint64_t)t->steps, 0};
    return stacl_fx_quantize_params(t->ad, t->params, &sr, t->params);
}
