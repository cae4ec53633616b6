/* ops.c: launchers for stacl's own kernels (the kernels/ folder) and the event
 * profiler they share. GEMMs are in gemm.c. */
#include <stdlib.h>
#include <string.h>

#include "launch.h"
#include "ops.h"

/* ---- profiling ---------------------------------------------------------- */

static void release_records(stacl_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_records; i++) {
        if (ctx->records[i].start) clReleaseEvent(ctx->records[i].start);
        if (ctx->records[i].end) clReleaseEvent(ctx->records[i].end);
    }
    ctx->n_records = 0;
}

void stacl_profile_release(stacl_ctx *ctx) {
    release_records(ctx);
    free(ctx->records);
    ctx->records = NULL;
    ctx->cap_records = 0;
}

void stacl_profile_begin(stacl_ctx *ctx) {
    release_records(ctx);
    ctx->profiling = 1;
}

/* Appends a record; NULL when profiling is off or the list cannot grow
 * (profiling then degrades, the work goes on). */
static stacl_profile_record *new_record(stacl_ctx *ctx, const char *op) {
    if (!ctx->profiling) return NULL;
    if (ctx->n_records == ctx->cap_records) {
        size_t cap = ctx->cap_records ? 2 * ctx->cap_records : 256;
        stacl_profile_record *grown = realloc(ctx->records, cap * sizeof *grown);
        if (!grown) return NULL;
        ctx->records = grown;
        ctx->cap_records = cap;
    }
    stacl_profile_record *r = &ctx->records[ctx->n_records++];
    *r = (stacl_profile_record){op, NULL, NULL};
    return r;
}

cl_event *stacl_profile_slot(stacl_ctx *ctx, const char *op) {
    stacl_profile_record *r = new_record(ctx, op);
    return r ? &r->end : NULL;
}

void stacl_profile_drop(stacl_ctx *ctx, cl_event *slot) {
    if (slot && ctx->n_records > 0 && slot == &ctx->records[ctx->n_records - 1].end) ctx->n_records--;
}

cl_event stacl_profile_span_begin(stacl_ctx *ctx) {
    cl_event start = NULL;
    if (ctx->profiling && clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &start) != CL_SUCCESS) start = NULL;
    return start;
}

void stacl_profile_span_end(stacl_ctx *ctx, const char *op, cl_event start) {
    if (!start) return;
    stacl_profile_record *r = op ? new_record(ctx, op) : NULL;
    if (!r || clEnqueueMarkerWithWaitList(ctx->queue, 0, NULL, &r->end) != CL_SUCCESS) {
        if (r) ctx->n_records--;
        clReleaseEvent(start);
        return;
    }
    r->start = start;
}

stacl_status stacl_profile_collect(stacl_ctx *ctx, stacl_op_time *entries, int *count, double *total_ms) {
    cl_int err = clFinish(ctx->queue);
    ctx->profiling = 0;
    if (err != CL_SUCCESS) {
        release_records(ctx);
        return stacl_cl_fail(ctx, err, "clFinish");
    }
    int n = 0;
    double total = 0.0;
    for (size_t i = 0; i < ctx->n_records; i++) {
        const stacl_profile_record *r = &ctx->records[i];
        cl_ulong t0 = 0, t1 = 0;
        /* A span runs from the end of its start marker (everything queued
         * before has finished) to the end of its end marker. */
        cl_int e0 = r->start ? clGetEventProfilingInfo(r->start, CL_PROFILING_COMMAND_END, sizeof t0, &t0, NULL)
                             : clGetEventProfilingInfo(r->end, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL);
        cl_int e1 = clGetEventProfilingInfo(r->end, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL);
        if (e0 != CL_SUCCESS || e1 != CL_SUCCESS || t1 < t0) continue;
        double ms = (double)(t1 - t0) * 1e-6;
        total += ms;
        if (!entries) continue;
        int j = 0;
        while (j < n && strcmp(entries[j].op, r->op) != 0) j++;
        if (j == n) {
            if (n == STACL_PROFILE_MAX_OPS) continue;
            entries[n++] = (stacl_op_time){r->op, 0.0, 0};
        }
        entries[j].ms += ms;
        entries[j].launches++;
    }
    release_records(ctx);
    if (count) *count = n;
    if (total_ms) *total_ms = total;
    return STACL_OK;
}

/* ---- ops ------------------------------------------------------------------ */

stacl_status stacl_op_layernorm(stacl_ctx *ctx, size_t rows, size_t cols, float eps,
                                cl_mem x, size_t x_off, size_t x_stride,
                                cl_mem y, size_t y_off, size_t y_stride,
                                cl_mem params, size_t gamma_off, size_t beta_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("layernorm", x_off + rows * x_stride));
    TRY(check_u32("layernorm", y_off + rows * y_stride));
    arg_list a = args_for(ctx, K_LAYERNORM);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, x_stride);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_u32(&a, y_stride);
    arg_mem(&a, params); arg_u32(&a, gamma_off);
    arg_mem(&a, params); arg_u32(&a, beta_off);
    arg_u32(&a, cols); arg_f32(&a, eps); arg_local(&a, ctx->reduce_wg * sizeof(float));
    st = launch(ctx, "layernorm", &a, rows * ctx->reduce_wg, ctx->reduce_wg);
cleanup:
    return st;
}

stacl_status stacl_op_softmax(stacl_ctx *ctx, size_t rows, size_t cols, size_t causal_len,
                              cl_mem x, size_t x_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("softmax", x_off + rows * cols));
    if (ctx->info.is_cpu && ctx->kernels[K_SOFTMAX_ROWS_WIDE]) { /* a row per work-item (softmax.cl) */
        arg_list w = args_for(ctx, K_SOFTMAX_ROWS_WIDE);
        arg_mem(&w, x); arg_u32(&w, x_off); arg_u32(&w, rows); arg_u32(&w, cols); arg_u32(&w, causal_len);
        return launch(ctx, "softmax", &w, rows, 0);
    }
    arg_list a = args_for(ctx, K_SOFTMAX_ROWS);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, cols); arg_u32(&a, causal_len);
    arg_local(&a, ctx->reduce_wg * sizeof(float));
    st = launch(ctx, "softmax", &a, rows * ctx->reduce_wg, ctx->reduce_wg);
cleanup:
    return st;
}

stacl_status stacl_op_bias_act(stacl_ctx *ctx, stacl_bias_act act, size_t rows, size_t cols,
                               cl_mem y, size_t y_off, cl_mem bias, size_t bias_off) {
    static const stacl_kernel_id ids[] = {K_BIAS_ADD, K_BIAS_QUICK_GELU, K_BIAS_GELU};
    static const char *const names[] = {"bias_add", "bias_quick_gelu", "bias_gelu"};
    stacl_status st = STACL_OK;
    if ((unsigned)act > STACL_BIAS_GELU) return stacl_fail(STACL_ERR_INVALID_ARG, "bias_act: unknown activation %d", (int)act);
    TRY(check_u32(names[act], y_off + rows * cols));
    arg_list a = args_for(ctx, ids[act]);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, bias); arg_u32(&a, bias_off);
    arg_u32(&a, rows); arg_u32(&a, cols);
    st = launch(ctx, names[act], &a, rows * cols, 0);
cleanup:
    return st;
}

stacl_status stacl_op_split_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                  float q_scale, cl_mem qkv, size_t qkv_off, cl_mem out,
                                  size_t q_off, size_t k_off, size_t v_off) {
    stacl_status st = STACL_OK;
    size_t n = frames * tokens * heads * head_dim;
    TRY(check_u32("split_heads", qkv_off + 3 * n));
    TRY(check_u32("split_heads", (q_off > k_off ? (q_off > v_off ? q_off : v_off) : (k_off > v_off ? k_off : v_off)) + n));
    arg_list a = args_for(ctx, K_SPLIT_HEADS);
    arg_mem(&a, qkv); arg_u32(&a, qkv_off); arg_mem(&a, out);
    arg_u32(&a, q_off); arg_u32(&a, k_off); arg_u32(&a, v_off);
    arg_u32(&a, frames); arg_u32(&a, tokens); arg_u32(&a, heads); arg_u32(&a, head_dim); arg_f32(&a, q_scale);
    st = launch(ctx, "split_heads", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_merge_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                  cl_mem o, size_t o_off, cl_mem y, size_t y_off) {
    stacl_status st = STACL_OK;
    size_t n = frames * tokens * heads * head_dim;
    TRY(check_u32("merge_heads", o_off + n));
    TRY(check_u32("merge_heads", y_off + n));
    arg_list a = args_for(ctx, K_MERGE_HEADS);
    arg_mem(&a, o); arg_u32(&a, o_off); arg_mem(&a, y); arg_u32(&a, y_off);
    arg_u32(&a, frames); arg_u32(&a, tokens); arg_u32(&a, heads); arg_u32(&a, head_dim);
    st = launch(ctx, "merge_heads", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_im2col(stacl_ctx *ctx, size_t frames, size_t size, size_t patch,
                             cl_mem img, size_t img_off, cl_mem cols, size_t cols_off) {
    stacl_status st = STACL_OK;
    size_t grid = size / patch;
    size_t n = frames * grid * grid * 3 * patch * patch;
    TRY(check_u32("im2col", img_off + frames * 3 * size * size));
    TRY(check_u32("im2col", cols_off + n));
    arg_list a = args_for(ctx, K_IM2COL_PATCHES);
    arg_mem(&a, img); arg_u32(&a, img_off); arg_mem(&a, cols); arg_u32(&a, cols_off);
    arg_u32(&a, frames); arg_u32(&a, size); arg_u32(&a, patch);
    st = launch(ctx, "im2col", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_assemble_tokens(stacl_ctx *ctx, size_t frames, size_t n_patches, size_t width,
                                      cl_mem patches, size_t patches_off, cl_mem params, size_t cls_off,
                                      size_t pos_off, cl_mem x, size_t x_off) {
    stacl_status st = STACL_OK;
    size_t n = frames * (n_patches + 1) * width;
    TRY(check_u32("assemble_tokens", x_off + n));
    TRY(check_u32("assemble_tokens", patches_off + frames * n_patches * width));
    arg_list a = args_for(ctx, K_ASSEMBLE_TOKENS);
    arg_mem(&a, patches); arg_u32(&a, patches_off);
    arg_mem(&a, params); arg_u32(&a, cls_off);
    arg_mem(&a, params); arg_u32(&a, pos_off);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, frames); arg_u32(&a, n_patches); arg_u32(&a, width);
    st = launch(ctx, "assemble_tokens", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_embed_tokens(stacl_ctx *ctx, size_t n, size_t context, size_t width, size_t vocab,
                                   cl_mem tokens, size_t tokens_off, cl_mem params, size_t table_off,
                                   size_t pos_off, cl_mem x, size_t x_off) {
    stacl_status st = STACL_OK;
    size_t total = n * context * width;
    TRY(check_u32("embed_tokens", x_off + total));
    TRY(check_u32("embed_tokens", tokens_off + n * context));
    TRY(check_u32("embed_tokens", table_off + vocab * width));
    TRY(check_u32("embed_tokens", pos_off + context * width));
    arg_list a = args_for(ctx, K_EMBED_TOKENS);
    arg_mem(&a, tokens); arg_u32(&a, tokens_off);
    arg_mem(&a, params); arg_u32(&a, table_off);
    arg_mem(&a, params); arg_u32(&a, pos_off);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, n); arg_u32(&a, context); arg_u32(&a, width);
    st = launch(ctx, "embed_tokens", &a, total, 0);
cleanup:
    return st;
}

stacl_status stacl_op_gather_rows(stacl_ctx *ctx, size_t n, size_t width, size_t x_rows, cl_mem x, size_t x_off,
                                  cl_mem rows, size_t rows_off, cl_mem y, size_t y_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("gather_rows", x_off + x_rows * width));
    TRY(check_u32("gather_rows", rows_off + n));
    TRY(check_u32("gather_rows", y_off + n * width));
    arg_list a = args_for(ctx, K_GATHER_ROWS);
    arg_mem(&a, x); arg_u32(&a, x_off);
    arg_mem(&a, rows); arg_u32(&a, rows_off);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_u32(&a, n); arg_u32(&a, width);
    st = launch(ctx, "gather_rows", &a, n * width, 0);
cleanup:
    return st;
}

/* ---- ST-Adapter ------------------------------------------------------------ */

/* Register tile of adapter_fc1/fc2, token rows x outputs per work-item:
 * must match ADAPTER_ROWS, ADAPTER_VECS and ADAPTER_VW in adapter.cl. */
#define ADAPTER_ROWS 8
#define ADAPTER_VECS 2
#define ADAPTER_VW 16
#define ADAPTER_COLS (ADAPTER_VECS * ADAPTER_VW)

/* Work-items of adapter_fc1/fc2: one per ADAPTER_ROWS x ADAPTER_COLS tile
 * of the [rows, outs] output. */
static size_t adapter_fc_items(size_t rows, size_t outs) {
    return (rows + ADAPTER_ROWS - 1) / ADAPTER_ROWS * ((outs + ADAPTER_COLS - 1) / ADAPTER_COLS);
}

stacl_status stacl_op_adapter_fc1(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, size_t aw,
                                  cl_mem x, size_t x_off, cl_mem prm, size_t w_off, size_t b_off,
                                  cl_mem h, size_t h_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_fc1", x_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc1", h_off + frames * patches * aw));
    TRY(check_u32("adapter_fc1", w_off + aw * width));
    TRY(check_u32("adapter_fc1", b_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_FC1);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw);
    st = launch(ctx, "adapter_fc1", &a, adapter_fc_items(frames * patches, aw), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_dwconv3d(stacl_ctx *ctx, size_t clips, size_t T, size_t grid, size_t aw,
                                       size_t kt, size_t kh, size_t kw, cl_mem h, size_t h_off,
                                       cl_mem prm, size_t w_off, size_t b_off, cl_mem y, size_t y_off) {
    stacl_status st = STACL_OK;
    size_t n = clips * T * grid * grid * aw;
    TRY(check_u32("adapter_dwconv3d", h_off + n));
    TRY(check_u32("adapter_dwconv3d", y_off + n));
    TRY(check_u32("adapter_dwconv3d", w_off + aw * kt * kh * kw));
    TRY(check_u32("adapter_dwconv3d", b_off + aw));
    arg_list a = args_for(ctx, K_ADAPTER_DWCONV3D);
    arg_mem(&a, h); arg_u32(&a, h_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, grid); arg_u32(&a, aw);
    arg_u32(&a, kt); arg_u32(&a, kh); arg_u32(&a, kw);
    st = launch(ctx, "adapter_dwconv3d", &a, n, 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_fc2_residual(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, size_t aw,
                                           cl_mem y, size_t y_off, cl_mem prm, size_t w_off, size_t b_off,
                                           cl_mem x, size_t x_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_fc2", y_off + frames * patches * aw));
    TRY(check_u32("adapter_fc2", x_off + frames * (patches + 1) * width));
    TRY(check_u32("adapter_fc2", w_off + width * aw));
    TRY(check_u32("adapter_fc2", b_off + width));
    arg_list a = args_for(ctx, K_ADAPTER_FC2_RESIDUAL);
    arg_mem(&a, y); arg_u32(&a, y_off); arg_mem(&a, prm); arg_u32(&a, w_off); arg_u32(&a, b_off);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_u32(&a, frames); arg_u32(&a, patches); arg_u32(&a, width);
    arg_u32(&a, aw);
    st = launch(ctx, "adapter_fc2", &a, adapter_fc_items(frames * patches, width), 0);
cleanup:
    return st;
}

stacl_status stacl_op_adapter_mean_cls(stacl_ctx *ctx, size_t clips, size_t T, size_t tokens, size_t width,
                                       cl_mem x, size_t x_off, cl_mem m, size_t m_off) {
    stacl_status st = STACL_OK;
    TRY(check_u32("adapter_mean_cls", x_off + clips * T * tokens * width));
    TRY(check_u32("adapter_mean_cls", m_off + clips * width));
    arg_list a = args_for(ctx, K_ADAPTER_MEAN_CLS);
    arg_mem(&a, x); arg_u32(&a, x_off); arg_mem(&a, m); arg_u32(&a, m_off);
    arg_u32(&a, clips); arg_u32(&a, T); arg_u32(&a, tokens); arg_u32(&a, width);
    st = launch(ctx, "adapter_mean_cls", &a, clips * width, 0);
cleanup:
    return st;
}
