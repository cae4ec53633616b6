/* ops_fixed.c: launchers of kernels/adapter_fixed.cl (see ops_fixed.h).
 * Same checks as ops.c: every element index a kernel may form must fit its
 * 32-bit arguments. */
#include "ops_fixed.h"

#include "launch.h"

/* Tokens per work-item of adapter_fc1_q/fc2_residual_q (FXQ_ROWS). */
#define FXQ_ROWS 4

stacl_status stacl_op_adapter_fc1_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames, size_t patches,
                                    size_t width, size_t aw, cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                                    cl_mem b, size_t b_off, cl_mem h, size_t h_off) {
    stacl_status st = STACL_OK;
    TRY(stacl_fx_format_check(fmt));
    TRY(check_u32("adapter_fc1_q", x_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc1_q", h_off + frames * patches * aw));
    TRY(check_u32("adapter_fc1_q", w_off + aw * width));
    TRY(check_u32("adapter_fc1_q", b_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_FC1_Q);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, b); arg_u32(&a, b_off);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw); arg_u32(&a, (size_t)(fmt->frac_x + fmt->frac_w1 - fmt->frac_h));
    st = launch(ctx, "adapter_fc1_q", &a, (frames * patches + FXQ_ROWS - 1) / FXQ_ROWS * aw, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t clips, size_t T,
                                         size_t grid, size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                         size_t h_off, cl_mem w, size_t w_off, cl_mem b, size_t b_off, cl_mem y,
                                         size_t y_off) {
    stacl_status st = STACL_OK;
    TRY(stacl_fx_format_check(fmt));
    const size_t n = clips * T * grid * grid * aw;
    TRY(check_u32("adapter_dwconv3d_q", h_off + n));
    TRY(check_u32("adapter_dwconv3d_q", y_off + n));
    TRY(check_u32("adapter_dwconv3d_q", w_off + aw * kt * kh * kw));
    TRY(check_u32("adapter_dwconv3d_q", b_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D_Q);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, b); arg_u32(&a, b_off);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw);
    arg_u32(&a, kt); arg_u32(&a, kh); arg_u32(&a, kw);
    arg_u32(&a, (size_t)(fmt->frac_h + fmt->frac_wc - fmt->frac_y));
    st = launch(ctx, "adapter_dwconv3d_q", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_residual_q(stacl_ctx *ctx, const stacl_fx_format *fmt, size_t frames,
                                             size_t patches, size_t width, size_t aw, cl_mem y, size_t y_off,
                                             cl_mem w, size_t w_off, cl_mem b, size_t b_off, cl_mem x,
                                             size_t x_off) {
    stacl_status st = STACL_OK;
    TRY(stacl_fx_format_check(fmt));
    TRY(check_u32("adapter_fc2_q", y_off + frames * patches * aw));
    TRY(check_u32("adapter_fc2_q", x_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc2_q", w_off + width * aw));
    TRY(check_u32("adapter_fc2_q", b_off + width));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_RESIDUAL_Q);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, w); arg_u32(&a, w_off); arg_mem(&a, b); arg_u32(&a, b_off);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw); arg_u32(&a, (size_t)(fmt->frac_y + fmt->frac_w2 - fmt->frac_x));
    st = launch(ctx, "adapter_fc2_q", &a, (frames * patches + FXQ_ROWS - 1) / FXQ_ROWS * width, 0);
cleanup:
    return st;
}
