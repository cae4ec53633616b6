/* ops.h: host-side launchers of stacl's kernels and of the CLBlast GEMMs.
 * Every tensor argument is a device buffer plus an element offset; shapes
 * are given explicitly. Launches are asynchronous on the ctx's in-order
 * queue. When profiling is on, every launch records an event under its op
 * name, and stacl_profile_collect() sums the device time per op. */
#ifndef STACL_OPS_H
#define STACL_OPS_H

#include "runtime.h"

/* ---- profiling ---- */
#define STACL_PROFILE_MAX_OPS 40

/* One timed launch: a kernel's own event (start = NULL), or, for library
 * calls that enqueue several kernels and return only the last one's event
 * (CLBlast), a pair of markers around the call. */
typedef struct stacl_profile_record {
    const char *op;
    cl_event start, end;
} stacl_profile_record;

void stacl_profile_begin(stacl_ctx *ctx);
/* Where a kernel launch stores its event: NULL when profiling is off. */
cl_event *stacl_profile_slot(stacl_ctx *ctx, const char *op);
/* Brackets a library call with markers; span_end does nothing when
 * span_begin returned NULL (profiling off) and records nothing when op is
 * NULL (the call failed). A span is the queue's time between the markers. */
cl_event stacl_profile_span_begin(stacl_ctx *ctx);
void stacl_profile_span_end(stacl_ctx *ctx, const char *op, cl_event start);
/* Drops the last record when its launch failed (slot from profile_slot). */
void stacl_profile_drop(stacl_ctx *ctx, cl_event *slot);
/* Frees the records (ctx teardown). */
void stacl_profile_release(stacl_ctx *ctx);
/* Waits for the queue, sums event times per op, releases the events. */
stacl_status stacl_profile_collect(stacl_ctx *ctx, stacl_op_time *entries, int *count, double *total_ms);

/* ---- GEMM through CLBlast (row-major) ----
 * c[m,n] = alpha * op(a) op(b) + beta * c, op = transpose when trans_* != 0. */
stacl_status stacl_gemm(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                        float alpha, cl_mem a, size_t a_off, size_t lda,
                        cl_mem b, size_t b_off, size_t ldb,
                        float beta, cl_mem c, size_t c_off, size_t ldc);
stacl_status stacl_gemm_batched(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                                cl_mem b, size_t b_off, size_t ldb, size_t b_stride,
                                float beta, cl_mem c, size_t c_off, size_t ldc, size_t c_stride,
                                size_t batch);
/* y[rows, out] = x[rows, in] w[out, in]^T (+ y when accumulate): nn.Linear
 * without its bias. */
stacl_status stacl_linear(stacl_ctx *ctx, size_t rows, size_t in, size_t out,
                          cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                          cl_mem y, size_t y_off, int accumulate);
/* The whole nn.Linear and what follows it: y = act(x w^T (+ y) + bias), act
 * as in stacl_op_bias_act (STACL_BIAS_ONLY: none). One kernel on stacl's
 * engine with a packed w; stacl_linear + stacl_op_bias_act otherwise. */
stacl_status stacl_linear_bias(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off, cl_mem w,
                               size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem y, size_t y_off,
                               int accumulate);
/* As stacl_linear_bias, also keeping the value before the activation in
 * pre (at pre_off, [rows, out]), as stacl_op_bias_act_keep. */
stacl_status stacl_linear_bias_keep(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off,
                                    cl_mem w, size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem pre,
                                    size_t pre_off, cl_mem y, size_t y_off);

/* ---- stacl's own GEMM engine (gemm_rows.c; on when ctx->gemm_rows) ----
 * Chooses the engine for a new context: stacl's kernels on CPU devices,
 * CLBlast elsewhere; STACL_GEMM=stacl|clblast overrides. */
stacl_status stacl_gemm_engine_setup(stacl_ctx *ctx);
const char *stacl_gemm_engine_name(const stacl_ctx *ctx);
void stacl_gemm_engine_release(stacl_ctx *ctx);
/* One operand of stacl_gemm_rows: batch b = outer * batch_inner + inner is
 * the matrix at off + outer stride + inner inner_stride, rows ld apart. */
typedef struct stacl_gemm_operand {
    cl_mem mem;
    size_t off, ld, stride, inner_stride;
} stacl_gemm_operand;
/* c = alpha op(a) op(b) + beta c for every batch, on stacl's kernels, with
 * two-level batch strides (attention straight from the qkv projection). */
stacl_status stacl_gemm_rows(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             const stacl_gemm_operand *a, const stacl_gemm_operand *b, float beta,
                             const stacl_gemm_operand *c, size_t batch, size_t batch_inner);
/* As stacl_gemm_batched, on stacl's kernels. */
stacl_status stacl_gemm_rows_call(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                                  cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                  size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                  size_t c_stride, size_t batch);
/* As stacl_linear_bias_keep (bias NULL: as stacl_linear; pre NULL: as
 * stacl_linear_bias), with w's packed copy when one was registered (bias,
 * activation and the kept pre-activation then in the same kernel). */
stacl_status stacl_gemm_rows_linear(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off,
                                    cl_mem w, size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem pre,
                                    size_t pre_off, cl_mem y, size_t y_off, int accumulate);
/* Floats of the packed copy of a [out, in] weight (out rounded up to 32). */
size_t stacl_gemm_packed_floats(size_t out, size_t in);
/* Packs w [out, in] (at w_off) into dst (at dst_off, stacl_gemm_packed_floats
 * long) and registers it: later stacl_linear calls on (w, w_off, out, in) read
 * the packed copy. dst must outlive the registration (stacl_gemm_forget_packed). */
stacl_status stacl_gemm_pack_linear(stacl_ctx *ctx, cl_mem w, size_t w_off, size_t out, size_t in, cl_mem dst,
                                    size_t dst_off);
/* Drops every registration whose source buffer is src (before releasing it). */
void stacl_gemm_forget_packed(stacl_ctx *ctx, cl_mem src);

/* ---- stacl kernels ---- */
/* y rows (y_stride apart) = LayerNorm(x rows (x_stride apart)) over cols. */
stacl_status stacl_op_layernorm(stacl_ctx *ctx, size_t rows, size_t cols, float eps,
                                cl_mem x, size_t x_off, size_t x_stride,
                                cl_mem y, size_t y_off, size_t y_stride,
                                cl_mem params, size_t gamma_off, size_t beta_off);
/* In-place row softmax of x[rows, cols]; causal_len > 0 masks keys after the
 * query position (row % causal_len). */
stacl_status stacl_op_softmax(stacl_ctx *ctx, size_t rows, size_t cols, size_t causal_len,
                              cl_mem x, size_t x_off);
typedef enum { STACL_BIAS_ONLY, STACL_BIAS_QUICK_GELU, STACL_BIAS_GELU } stacl_bias_act;
/* y[rows, cols] = act(y + bias). */
stacl_status stacl_op_bias_act(stacl_ctx *ctx, stacl_bias_act act, size_t rows, size_t cols,
                               cl_mem y, size_t y_off, cl_mem bias, size_t bias_off);
/* qkv [F, L, 3, H, D] -> q, k, v [F, H, L, D], q scaled. */
stacl_status stacl_op_split_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                  float q_scale, cl_mem qkv, size_t qkv_off, cl_mem out,
                                  size_t q_off, size_t k_off, size_t v_off);
/* o [F, H, L, D] -> y [F, L, H*D]. */
stacl_status stacl_op_merge_heads(stacl_ctx *ctx, size_t frames, size_t tokens, size_t heads, size_t head_dim,
                                  cl_mem o, size_t o_off, cl_mem y, size_t y_off);
/* img [F, 3, S, S] -> cols [F * (S/p)^2, 3 p p]. */
stacl_status stacl_op_im2col(stacl_ctx *ctx, size_t frames, size_t size, size_t patch,
                             cl_mem img, size_t img_off, cl_mem cols, size_t cols_off);
/* x [F, P+1, W] = [cls; patches] + pos. */
stacl_status stacl_op_assemble_tokens(stacl_ctx *ctx, size_t frames, size_t n_patches, size_t width,
                                      cl_mem patches, size_t patches_off, cl_mem params, size_t cls_off,
                                      size_t pos_off, cl_mem x, size_t x_off);

/* x [n, ctx, W] = table[tokens] + pos (tokens: int32 [n, ctx] in buffer
 * `tokens`, ids already checked against the table's rows). */
stacl_status stacl_op_embed_tokens(stacl_ctx *ctx, size_t n, size_t context, size_t width, size_t vocab,
                                   cl_mem tokens, size_t tokens_off, cl_mem params, size_t table_off,
                                   size_t pos_off, cl_mem x, size_t x_off);
/* y [n, W] = x[rows[r], :] (rows: int32 [n] row indices, all < x_rows). */
stacl_status stacl_op_gather_rows(stacl_ctx *ctx, size_t n, size_t width, size_t x_rows, cl_mem x, size_t x_off,
                                  cl_mem rows, size_t rows_off, cl_mem y, size_t y_off);

/* ---- ST-Adapter (kernels/adapter.cl) ----
 * x: [F, 1 + P, W] residual stream (class token first); h, y: [F, P, A]
 * scratch; weights and biases are offsets into `prm` (the adapter's buffer). */
/* h = fc1(x[:, 1:]) = x w1^T + b1, the weight stored transposed: w1t [W, A]. */
stacl_status stacl_op_adapter_fc1(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, size_t aw,
                                  cl_mem x, size_t x_off, cl_mem prm, size_t w_off, size_t b_off,
                                  cl_mem h, size_t h_off);
/* y = depthwise 3D conv of h over each clip's [T, grid, grid], zero padding
 * k / 2, + bias; weight [A, kt, kh, kw]; frames = clips * T. */
stacl_status stacl_op_adapter_dwconv3d(stacl_ctx *ctx, size_t clips, size_t T, size_t grid, size_t aw,
                                       size_t kt, size_t kh, size_t kw, cl_mem h, size_t h_off,
                                       cl_mem prm, size_t w_off, size_t b_off, cl_mem y, size_t y_off);
/* x[:, 1:] += y w2^T + b2, the weight stored transposed: w2t [A, W]. */
stacl_status stacl_op_adapter_fc2_residual(stacl_ctx *ctx, size_t frames, size_t patches, size_t width, size_t aw,
                                           cl_mem y, size_t y_off, cl_mem prm, size_t w_off, size_t b_off,
                                           cl_mem x, size_t x_off);
/* m [clips, W] = mean over each clip's T frames of the class token of x
 * [clips * T, tokens, W]. */
stacl_status stacl_op_adapter_mean_cls(stacl_ctx *ctx, size_t clips, size_t T, size_t tokens, size_t width,
                                       cl_mem x, size_t x_off, cl_mem m, size_t m_off);

#endif
