/* ops_fixed_backward.c: launchers of kernels/adapter_fixed_backward.cl (see
 * ops_fixed_backward.h). Every element index a kernel may form must fit
 * its 32-bit arguments (check_u32); scales 2^k are passed as exact floats. */
#include "ops_fixed_backward.h"

#include <math.h>

#include "launch.h"

/* Tokens per work-item of the fc kernels (FXB_ROWS); elements per
 * work-item of fx_grad_exponent. */
#define FXB_ROWS 4
#define FXB_EXP_CHUNK 64
/* Outputs per work-item of the fc weight-gradient kernels (FXB_COLS). */
#define FXB_COLS 8

static size_t row_blocks(size_t frames, size_t patches) { return (frames * patches + FXB_ROWS - 1) / FXB_ROWS; }

/* 2^k as a float; k in [-126, 127] (checked by the callers' ranges). */
static stacl_status pow2f(const char *op, int k, float *out) {
    if (k < -126 || k > 127) return stacl_fail(STACL_ERR_INVALID_ARG, "%s: scale 2^%d is outside float's range", op, k);
    *out = ldexpf(1.0f, k);
    return STACL_OK;
}

stacl_status stacl_op_fx_quantize_rows(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, int frac,
                                       cl_mem x, size_t x_off, cl_mem xq, size_t xq_off) {
    stacl_status st = STACL_OK;
    if (frac < 0 || frac > STACL_FX_MAX_FRAC)
        return stacl_fail(STACL_ERR_INVALID_ARG, "fx_quantize_rows: %d fractional bits (0..15)", frac);
    const size_t n = frames * (patches + 1) * width;
    TRY(check_u32("fx_quantize_rows", x_off + n));
    TRY(check_u32("fx_quantize_rows", xq_off + n));
    arg_list a = args_for(ctx, K_FX_QUANTIZE_ROWS);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_mem(&a, xq); arg_u32(&a, xq_off); arg_u32(&a, frames);
    arg_u32(&a, patches); arg_u32(&a, width); arg_f32(&a, ldexpf(1.0f, frac));
    st = launch(ctx, "fx_quantize_rows", &a, frames * patches * width, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_update_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames, size_t patches,
                                           size_t width, size_t aw, cl_mem y, size_t y_off, cl_mem w, size_t w_off,
                                           cl_mem b, size_t b_off, cl_mem xf, size_t xf_off) {
    stacl_status st = STACL_OK;
    TRY(stacl_fx_format_check(fmt));
    TRY(check_u32("adapter_fc2_update_q", y_off + frames * patches * aw));
    TRY(check_u32("adapter_fc2_update_q", xf_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc2_update_q", w_off + width * aw));
    TRY(check_u32("adapter_fc2_update_q", b_off + width));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_UPDATE_Q);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, b); arg_u32(&a, b_off);
    arg_mem(&a, xf); arg_u32(&a, xf_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw); arg_u32(&a, (size_t)(fmt->frac_y + fmt->frac_w2 - fmt->frac_x));
    arg_f32(&a, ldexpf(1.0f, -fmt->frac_x));
    st = launch(ctx, "adapter_fc2_update_q", &a, row_blocks(frames, patches) * width, 0);
cleanup:
    return st;
}

stacl_status stacl_op_fx_fill_slots(stacl_ctx *ctx, cl_mem slots, size_t off, size_t n, int value) {
    const cl_int v = value;
    cl_int err = clEnqueueFillBuffer(ctx->queue, slots, &v, sizeof v, off * sizeof v, n * sizeof v, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "clearing the fixed-point scale slots");
}

stacl_status stacl_op_fx_grad_exponent(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, cl_mem g,
                                       size_t g_off, cl_mem slots, size_t slot) {
    stacl_status st = STACL_OK;
    const size_t n = frames * patches * width;
    TRY(check_u32("fx_grad_exponent", g_off + frames * (patches + 1) * width));
    TRY(check_u32("fx_grad_exponent", slot));
    arg_list a = args_for(ctx, K_FX_GRAD_EXPONENT);
    arg_mem(&a, g); arg_u32(&a, g_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_mem(&a, slots); arg_u32(&a, slot);
    st = launch(ctx, "fx_grad_exponent", &a, (n + FXB_EXP_CHUNK - 1) / FXB_EXP_CHUNK, 0);
cleanup:
    return st;
}

stacl_status stacl_op_fx_quantize_grad_sr(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, int frac,
                                          const stacl_fx_sr *sr, cl_mem g, size_t g_off, cl_mem gu, size_t gu_off) {
    stacl_status st = STACL_OK;
    float scale = 0.0f;
    if (frac < 0 || frac > 48)
        return stacl_fail(STACL_ERR_INVALID_ARG, "fx_quantize_grad_sr: %d fractional bits (0..48)", frac);
    TRY(pow2f("fx_quantize_grad_sr", frac + 16, &scale));
    TRY(check_u32("fx_quantize_grad_sr", g_off + frames * (patches + 1) * width));
    TRY(check_u32("fx_quantize_grad_sr", gu_off + frames * patches * width));
    arg_list a = args_for(ctx, K_FX_QUANTIZE_GRAD_SR);
    arg_mem(&a, g); arg_u32(&a, g_off); arg_mem(&a, gu); arg_u32(&a, gu_off); arg_u32(&a, frames);
    arg_u32(&a, patches); arg_u32(&a, width); arg_f32(&a, scale); arg_u64(&a, sr->seed); arg_u64(&a, sr->step);
    arg_u32(&a, sr->tensor);
    st = launch(ctx, "fx_quantize_grad_sr", &a, frames * patches * width, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_backward_input_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                   size_t aw, cl_mem gu, size_t gu_off, cl_mem w, size_t w_off,
                                                   cl_mem acc, size_t acc_off, cl_mem slots, size_t slot) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_fc2_backward_input_q", gu_off + frames * patches * width));
    TRY(check_u32("adapter_fc2_backward_input_q", w_off + aw * width));
    TRY(check_u32("adapter_fc2_backward_input_q", acc_off + frames * patches * aw));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_BACKWARD_INPUT_Q);
    arg_mem(&a, gu); arg_u32(&a, gu_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, acc); arg_u32(&a, acc_off);
    arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width); arg_u32(&a, aw); arg_mem(&a, slots);
    arg_u32(&a, slot);
    st = launch(ctx, "adapter_fc2_backward_input_q", &a, row_blocks(frames, patches) * aw, 0);
cleanup:
    return st;
}

stacl_status stacl_op_fx_narrow_sr(stacl_ctx *ctx, size_t n, unsigned shift, const stacl_fx_sr *sr, cl_mem acc,
                                   size_t acc_off, cl_mem dst, size_t dst_off, cl_mem act, size_t act_off) {
    stacl_status st = STACL_OK;
    if (shift > 62) return stacl_fail(STACL_ERR_INVALID_ARG, "fx_narrow_sr: shift %u (0..62)", shift);
    TRY(check_u32("fx_narrow_sr", acc_off + n));
    TRY(check_u32("fx_narrow_sr", dst_off + n));
    if (act) TRY(check_u32("fx_narrow_sr", act_off + n));
    arg_list a = args_for(ctx, K_FX_NARROW_SR);
    arg_mem(&a, acc); arg_u32(&a, acc_off); arg_mem(&a, dst); arg_u32(&a, dst_off); arg_u32(&a, n);
    arg_u32(&a, shift); arg_u64(&a, sr->seed); arg_u64(&a, sr->step); arg_u32(&a, sr->tensor);
    arg_mem(&a, act ? act : dst); arg_u32(&a, act ? act_off : 0); arg_u32(&a, act != NULL);
    st = launch(ctx, "fx_narrow_sr", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d_backward_input_q(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                        size_t aw, size_t kt, size_t kh, size_t kw, cl_mem gy,
                                                        size_t gy_off, cl_mem w, size_t w_off, cl_mem acc,
                                                        size_t acc_off, cl_mem slots, size_t slot) {
    stacl_status st = STACL_OK;
    const size_t n = clips * T * grid * grid * aw;
    TRY(check_u32("adapter_dwconv3d_backward_input_q", gy_off + n));
    TRY(check_u32("adapter_dwconv3d_backward_input_q", acc_off + n));
    TRY(check_u32("adapter_dwconv3d_backward_input_q", w_off + aw * kt * kh * kw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D_BACKWARD_INPUT_Q);
    arg_mem(&a, gy); arg_u32(&a, gy_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, acc); arg_u32(&a, acc_off);
    arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw); arg_u32(&a, kt); arg_u32(&a, kh);
    arg_u32(&a, kw); arg_mem(&a, slots); arg_u32(&a, slot);
    st = launch(ctx, "adapter_dwconv3d_backward_input_q", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc1_backward_input_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                   size_t aw, int scale, cl_mem gh, size_t gh_off, cl_mem w,
                                                   size_t w_off, cl_mem xq, size_t xq_off, cl_mem g, size_t g_off) {
    stacl_status st = STACL_OK;
    float inv = 0.0f;
    TRY(pow2f("adapter_fc1_backward_input_q", -scale, &inv));
    TRY(check_u32("adapter_fc1_backward_input_q", gh_off + frames * patches * aw));
    TRY(check_u32("adapter_fc1_backward_input_q", w_off + width * aw));
    TRY(check_u32("adapter_fc1_backward_input_q", g_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc1_backward_input_q", xq_off + frames * (patches + 1) * width));
    arg_list a = args_for(ctx, K_ADAPTER_FC1_BACKWARD_INPUT_Q);
    arg_mem(&a, gh); arg_u32(&a, gh_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, xq); arg_u32(&a, xq_off);
    arg_mem(&a, g); arg_u32(&a, g_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw); arg_f32(&a, inv);
    st = launch(ctx, "adapter_fc1_backward_input_q", &a, row_blocks(frames, patches) * width, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_backward_params_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                    size_t aw, cl_mem y, size_t y_off, cl_mem gu, size_t gu_off,
                                                    cl_mem dw, size_t dw_off, cl_mem db, size_t db_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_fc2_backward_params_q", y_off + frames * patches * aw));
    TRY(check_u32("adapter_fc2_backward_params_q", gu_off + frames * patches * width));
    TRY(check_u32("adapter_fc2_backward_params_q", dw_off + aw * width));
    TRY(check_u32("adapter_fc2_backward_params_q", db_off + width));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_BACKWARD_PARAMS_Q);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, gu); arg_u32(&a, gu_off); arg_mem(&a, dw); arg_u32(&a, dw_off);
    arg_mem(&a, db); arg_u32(&a, db_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw);
    st = launch(ctx, "adapter_fc2_backward_params_q", &a, (aw + 1) * ((width + FXB_COLS - 1) / FXB_COLS), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d_backward_params_q(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                         size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                                         size_t h_off, cl_mem gy, size_t gy_off, cl_mem dw,
                                                         size_t dw_off, cl_mem db, size_t db_off) {
    stacl_status st = STACL_OK;
    const size_t n = clips * T * grid * grid * aw, K = kt * kh * kw;
    TRY(check_u32("adapter_dwconv3d_backward_params_q", h_off + n));
    TRY(check_u32("adapter_dwconv3d_backward_params_q", gy_off + n));
    TRY(check_u32("adapter_dwconv3d_backward_params_q", dw_off + aw * K));
    TRY(check_u32("adapter_dwconv3d_backward_params_q", db_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D_BACKWARD_PARAMS_Q);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_mem(&a, gy); arg_u32(&a, gy_off); arg_mem(&a, dw); arg_u32(&a, dw_off);
    arg_mem(&a, db); arg_u32(&a, db_off); arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw);
    arg_u32(&a, kt); arg_u32(&a, kh); arg_u32(&a, kw);
    st = launch(ctx, "adapter_dwconv3d_backward_params_q", &a, aw * K + aw, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc1_backward_params_q(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                    size_t aw, cl_mem xq, size_t xq_off, cl_mem gh, size_t gh_off,
                                                    cl_mem dw, size_t dw_off, cl_mem db, size_t db_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_fc1_backward_params_q", xq_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc1_backward_params_q", gh_off + frames * patches * aw));
    TRY(check_u32("adapter_fc1_backward_params_q", dw_off + width * aw));
    TRY(check_u32("adapter_fc1_backward_params_q", db_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_FC1_BACKWARD_PARAMS_Q);
    arg_mem(&a, xq); arg_u32(&a, xq_off); arg_mem(&a, gh); arg_u32(&a, gh_off); arg_mem(&a, dw); arg_u32(&a, dw_off);
    arg_mem(&a, db); arg_u32(&a, db_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw);
    st = launch(ctx, "adapter_fc1_backward_params_q", &a, (width + 1) * ((aw + FXB_COLS - 1) / FXB_COLS), 0);
cleanup:
    return st;
}

stacl_status stacl_op_fx_accumulate_grad(stacl_ctx *ctx, size_t n, int scale, cl_mem acc, size_t acc_off,
                                         cl_mem grad, size_t grad_off) {
    stacl_status st = STACL_OK;
    float inv = 0.0f;
    TRY(pow2f("fx_accumulate_grad", -scale, &inv));
    TRY(check_u32("fx_accumulate_grad", acc_off + n));
    TRY(check_u32("fx_accumulate_grad", grad_off + n));
    arg_list a = args_for(ctx, K_FX_ACCUMULATE_GRAD);
    arg_mem(&a, acc); arg_u32(&a, acc_off); arg_mem(&a, grad); arg_u32(&a, grad_off); arg_u32(&a, n);
    arg_f32(&a, inv);
    st = launch(ctx, "fx_accumulate_grad", &a, n, 0);
cleanup:
    return st;
}
