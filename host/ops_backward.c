/* ops_backward.c: launchers of kernels/backward.cl and
 * kernels/adapter_backward.cl (see ops_backward.h). Same checks as ops.c:
 * every element index a kernel may form must fit its 32-bit arguments. */
#include "ops_backward.h"

#include "launch.h"

/* Register tiles of adapter_backward.cl: must match BWD_ROWS, BWD_OUTS,
 * BWD_SCAL and BWD_VW there. */
#define BWD_ROWS 4
#define BWD_OUTS 2
#define BWD_SCAL 8
#define BWD_VEC 16

static size_t ceil_div(size_t n, size_t d) { return (n + d - 1) / d; }

/* One past the last element of `rows` rows of `cols` floats, `stride` apart. */
static size_t span(size_t off, size_t rows, size_t cols, size_t stride) {
    return rows ? off + (rows - 1) * stride + cols : off;
}

static size_t max3(size_t a, size_t b, size_t c) {
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

static stacl_status check_act(const char *op, stacl_bias_act act) {
    if ((unsigned)act > STACL_BIAS_GELU)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: unknown activation %d", op, (int)act);
    return STACL_OK;
}

/* ---- frozen backbone ------------------------------------------------------- */

stacl_status stacl_op_bias_act_keep(stacl_ctx *ctx, stacl_bias_act act, size_t rows, size_t cols,
                                    cl_mem y, size_t y_off, cl_mem u, size_t u_off,
                                    cl_mem bias, size_t bias_off) {
    stacl_status st = STACL_OK;
    TRY(check_act("bias_act_keep", act));
    TRY(check_u32("bias_act_keep", y_off + rows * cols));
    TRY(check_u32("bias_act_keep", u_off + rows * cols));
    TRY(check_u32("bias_act_keep", bias_off + cols));
    arg_list a = args_for(ctx, K_BIAS_ACT_KEEP);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, u); arg_u32(&a, u_off);
    arg_mem(&a, bias); arg_u32(&a, bias_off); arg_u32(&a, rows); arg_u32(&a, cols); arg_u32(&a, (size_t)act);
    st = launch(ctx, "bias_act_keep", &a, rows * cols, 0);
cleanup:
    return st;
}

stacl_status stacl_op_act_backward(stacl_ctx *ctx, stacl_bias_act act, size_t n, cl_mem u, size_t u_off,
                                   cl_mem dg, size_t dg_off) {
    stacl_status st = STACL_OK;
    TRY(check_act("act_backward", act));
    TRY(check_u32("act_backward", u_off + n));
    TRY(check_u32("act_backward", dg_off + n));
    if (act == STACL_BIAS_ONLY) return STACL_OK; /* the identity: dg stays as it is */
    arg_list a = args_for(ctx, K_ACT_BACKWARD);
    arg_mem(&a, u); arg_u32(&a, u_off); arg_mem(&a, dg); arg_u32(&a, dg_off); arg_u32(&a, n);
    arg_u32(&a, (size_t)act);
    st = launch(ctx, "act_backward", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_layernorm_backward(stacl_ctx *ctx, size_t rows, size_t cols, float eps,
                                         cl_mem x, size_t x_off, size_t x_stride,
                                         cl_mem params, size_t gamma_off,
                                         cl_mem dy, size_t dy_off, size_t dy_stride,
                                         cl_mem dx, size_t dx_off, size_t dx_stride) {
    stacl_status st = STACL_OK;
    TRY(check_u32("layernorm_backward", span(x_off, rows, cols, x_stride)));
    TRY(check_u32("layernorm_backward", span(dy_off, rows, cols, dy_stride)));
    TRY(check_u32("layernorm_backward", span(dx_off, rows, cols, dx_stride)));
    TRY(check_u32("layernorm_backward", gamma_off + cols));
    TRY(check_u32("layernorm_backward", rows));
    arg_list a = args_for(ctx, K_LAYERNORM_BACKWARD);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, x_stride);
    arg_mem(&a, params); arg_u32(&a, gamma_off);
    arg_mem(&a, dy); arg_u32(&a, dy_off); arg_u32(&a, dy_stride);
    arg_mem(&a, dx); arg_u32(&a, dx_off); arg_u32(&a, dx_stride);
    arg_u32(&a, cols); arg_f32(&a, eps); arg_local(&a, ctx->reduce_wg * sizeof(float));
    st = launch(ctx, "layernorm_backward", &a, rows * ctx->reduce_wg, ctx->reduce_wg);
cleanup:
    return st;
}

stacl_status stacl_op_softmax_backward(stacl_ctx *ctx, size_t rows, size_t cols, cl_mem p, size_t p_off,
                                       cl_mem dp, size_t dp_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("softmax_backward", p_off + rows * cols));
    TRY(check_u32("softmax_backward", dp_off + rows * cols));
    arg_list a = args_for(ctx, K_SOFTMAX_BACKWARD);
    arg_mem(&a, p); arg_u32(&a, p_off); arg_mem(&a, dp); arg_u32(&a, dp_off); arg_u32(&a, cols);
    arg_local(&a, ctx->reduce_wg * sizeof(float));
    st = launch(ctx, "softmax_backward", &a, rows * ctx->reduce_wg, ctx->reduce_wg);
cleanup:
    return st;
}

stacl_status stacl_op_split_merged(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                   cl_mem y, size_t y_off, cl_mem o, size_t o_off) {
    stacl_status st = STACL_OK;
    const size_t n = frames * tokens * heads * head_dim;
    TRY(check_u32("split_merged", y_off + n));
    TRY(check_u32("split_merged", o_off + n));
    arg_list a = args_for(ctx, K_SPLIT_MERGED);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, o); arg_u32(&a, o_off);
    arg_u32(&a, frames); arg_u32(&a, tokens); arg_u32(&a, heads); arg_u32(&a, head_dim);
    st = launch(ctx, "split_merged", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_join_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                 float q_scale, cl_mem g, size_t dq_off, size_t dk_off, size_t dv_off,
                                 cl_mem dqkv, size_t dqkv_off) {
    stacl_status st = STACL_OK;
    const size_t n = frames * tokens * heads * head_dim;
    TRY(check_u32("join_heads", max3(dq_off, dk_off, dv_off) + n));
    TRY(check_u32("join_heads", dqkv_off + 3 * n));
    arg_list a = args_for(ctx, K_JOIN_HEADS);
    arg_mem(&a, g); arg_u32(&a, dq_off); arg_u32(&a, dk_off); arg_u32(&a, dv_off);
    arg_mem(&a, dqkv); arg_u32(&a, dqkv_off);
    arg_u32(&a, frames); arg_u32(&a, tokens); arg_u32(&a, heads); arg_u32(&a, head_dim); arg_f32(&a, q_scale);
    st = launch(ctx, "join_heads", &a, 3 * n, 0);
cleanup:
    return st;
}

/* ---- ST-Adapter ------------------------------------------------------------- */

/* The index checks shared by the four fc kernels: x/dx [F, 1 + P, W],
 * h/y/dh/dy [F, P, A], a weight of A * W floats. */
static stacl_status check_fc(const char *op, size_t frames, size_t patches, size_t width, size_t aw,
                             size_t stream_off, size_t act_off, size_t w_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32(op, stream_off + frames * (patches + 1) * width));
    TRY(check_u32(op, act_off + frames * patches * aw));
    TRY(check_u32(op, w_off + aw * width));
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_backward_input(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                 size_t aw, cl_mem dx, size_t dx_off, cl_mem prm, size_t w_off,
                                                 cl_mem dy, size_t dy_off) {
    static const char op[] = "adapter_fc2_backward_input";
    stacl_status st = STACL_OK;
    TRY(check_fc(op, frames, patches, width, aw, dx_off, dy_off, w_off));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_BACKWARD_INPUT);
    arg_mem(&a, dx); arg_u32(&a, dx_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_mem(&a, dy); arg_u32(&a, dy_off);
    arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width); arg_u32(&a, aw);
    st = launch(ctx, op, &a, ceil_div(frames * patches, BWD_ROWS) * ceil_div(aw, BWD_OUTS), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_backward_params(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                  size_t aw, cl_mem y, size_t y_off, cl_mem dx, size_t dx_off,
                                                  cl_mem grad, size_t w_off, size_t b_off) {
    static const char op[] = "adapter_fc2_backward_params";
    stacl_status st = STACL_OK;
    TRY(check_fc(op, frames, patches, width, aw, dx_off, y_off, w_off));
    TRY(check_u32(op, b_off + width));
    if (frames * patches == 0) return STACL_OK; /* nothing to add (and no row to index) */
    arg_list a = args_for(ctx, K_ADAPTER_FC2_BACKWARD_PARAMS);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, dx); arg_u32(&a, dx_off);
    arg_mem(&a, grad); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width); arg_u32(&a, aw);
    st = launch(ctx, op, &a, ceil_div(aw, BWD_SCAL) * ceil_div(width, BWD_VEC), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d_backward_input(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                      size_t aw, size_t kt, size_t kh, size_t kw, cl_mem dy,
                                                      size_t dy_off, cl_mem prm, size_t w_off, cl_mem dh,
                                                      size_t dh_off) {
    static const char op[] = "adapter_dwconv3d_backward_input";
    stacl_status st = STACL_OK;
    const size_t n = clips * T * grid * grid * aw;
    TRY(check_u32(op, dy_off + n));
    TRY(check_u32(op, dh_off + n));
    TRY(check_u32(op, w_off + aw * kt * kh * kw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D_BACKWARD_INPUT);
    arg_mem(&a, dy); arg_u32(&a, dy_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_mem(&a, dh); arg_u32(&a, dh_off);
    arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw);
    arg_u32(&a, kt); arg_u32(&a, kh); arg_u32(&a, kw);
    st = launch(ctx, op, &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d_backward_params(stacl_ctx *ctx, size_t clips, size_t T, size_t grid,
                                                       size_t aw, size_t kt, size_t kh, size_t kw, cl_mem h,
                                                       size_t h_off, cl_mem dy, size_t dy_off, cl_mem grad,
                                                       size_t w_off, size_t b_off) {
    static const char op[] = "adapter_dwconv3d_backward_params";
    stacl_status st = STACL_OK;
    const size_t n = clips * T * grid * grid * aw, taps = kt * kh * kw;
    TRY(check_u32(op, h_off + n));
    TRY(check_u32(op, dy_off + n));
    TRY(check_u32(op, w_off + aw * taps));
    TRY(check_u32(op, b_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D_BACKWARD_PARAMS);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_mem(&a, dy); arg_u32(&a, dy_off);
    arg_mem(&a, grad); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw);
    arg_u32(&a, kt); arg_u32(&a, kh); arg_u32(&a, kw);
    st = launch(ctx, op, &a, (taps + 1) * ceil_div(aw, BWD_VEC), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc1_backward_input(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                 size_t aw, cl_mem dh, size_t dh_off, cl_mem prm, size_t w_off,
                                                 cl_mem dx, size_t dx_off) {
    static const char op[] = "adapter_fc1_backward_input";
    stacl_status st = STACL_OK;
    TRY(check_fc(op, frames, patches, width, aw, dx_off, dh_off, w_off));
    arg_list a = args_for(ctx, K_ADAPTER_FC1_BACKWARD_INPUT);
    arg_mem(&a, dh); arg_u32(&a, dh_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_mem(&a, dx); arg_u32(&a, dx_off);
    arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width); arg_u32(&a, aw);
    st = launch(ctx, op, &a, ceil_div(frames * patches, BWD_ROWS) * ceil_div(width, BWD_OUTS), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc1_backward_params(stacl_ctx *ctx, size_t frames, size_t patches, size_t width,
                                                  size_t aw, cl_mem x, size_t x_off, cl_mem dh, size_t dh_off,
                                                  cl_mem grad, size_t w_off, size_t b_off) {
    static const char op[] = "adapter_fc1_backward_params";
    stacl_status st = STACL_OK;
    TRY(check_fc(op, frames, patches, width, aw, x_off, dh_off, w_off));
    TRY(check_u32(op, b_off + aw));
    if (frames * patches == 0) return STACL_OK; /* nothing to add (and no row to index) */
    arg_list a = args_for(ctx, K_ADAPTER_FC1_BACKWARD_PARAMS);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_mem(&a, dh); arg_u32(&a, dh_off);
    arg_mem(&a, grad); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width); arg_u32(&a, aw);
    st = launch(ctx, op, &a, ceil_div(width, BWD_SCAL) * ceil_div(aw, BWD_VEC), 0);
cleanup:
    return st;
}
