/* gemm.c: the one place that calls CLBlast. Every backbone GEMM goes
 * through here (and on to gemm_rows.c when stacl's own engine is on), so
 * tuning, profiling and a future half-precision path have one home.
 * Row-major throughout. With a tuning set in effect (tune.h) each call first
 * tells CLBlast which of its two paths to take for this shape (indirect:
 * pad/transpose + Xgemm; direct: one XgemmDirect kernel), as measured by
 * `stacl tune`. */
#include <clblast_c.h>

#include "ops.h"
#include "ops_backward.h"
#include "tune.h"

static stacl_status blas_fail(stacl_ctx *ctx, CLBlastStatusCode code, const char *routine,
                              size_t m, size_t n, size_t k, size_t batch) {
    /* CLBlast reuses OpenCL's codes (negative, above -1000) and adds its own
     * below -1000 (see clblast_c.h). */
    const char *name = code > -1000                    ? stacl_cl_error_name((cl_int)code)
                       : code <= -1007 && code >= -1011 ? "CLBlast: a matrix buffer is too small for its shape"
                       : code <= -1012 && code >= -1024 ? "CLBlast: invalid argument (leading dimension, offset or size)"
                       : code == -2048 || code == -2047 ? "CLBlast: invalid parameter override"
                                                        : "CLBlast internal error (see clblast_c.h)";
    stacl_status st = (code == CLBlastOpenCLOutOfResources || code == CLBlastOpenCLOutOfHostMemory ||
                       code == (CLBlastStatusCode)CL_MEM_OBJECT_ALLOCATION_FAILURE)
                          ? STACL_ERR_OUT_OF_MEMORY
                          : STACL_ERR_BLAS;
    return stacl_fail(st, "%s (m=%zu n=%zu k=%zu batch=%zu) failed on device '%s': %s (%d)", routine, m, n, k,
                      batch, ctx->info.name, name, (int)code);
}

stacl_status stacl_gemm_routine_call(stacl_ctx *ctx, stacl_gemm_routine routine, int batched, int trans_a,
                                     int trans_b, size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                     size_t lda, size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                     size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                     size_t c_stride, size_t batch) {
    stacl_status st = stacl_tune_force_routine(ctx, routine);
    if (st != STACL_OK) return st;
    const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    /* CLBlast may enqueue several kernels (pad, transpose, Xgemm) and hands
     * back only the last one's event: time the call between markers. */
    cl_event start = stacl_profile_span_begin(ctx);
    CLBlastStatusCode code =
        batched ? CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, a_stride, b,
                                             b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &ctx->queue,
                                             NULL)
                : CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c,
                               c_off, ldc, &ctx->queue, NULL);
    stacl_profile_span_end(ctx, code != CLBlastSuccess ? NULL : batched ? "gemm_batched" : "gemm", start);
    if (code == CLBlastSuccess) return STACL_OK;
    return blas_fail(ctx, code, batched ? "CLBlastSgemmStridedBatched" : "CLBlastSgemm", m, n, k, batch);
}

stacl_status stacl_gemm_batch_call(stacl_ctx *ctx, stacl_gemm_routine routine, int loop, int trans_a, int trans_b,
                                   size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                   size_t a_stride, cl_mem b, size_t b_off, size_t ldb, size_t b_stride, float beta,
                                   cl_mem c, size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
    if (!loop || batch < 2)
        return stacl_gemm_routine_call(ctx, routine, 1, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, a_stride, b,
                                       b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch);
    for (size_t q = 0; q < batch; q++) {
        stacl_status st = stacl_gemm_routine_call(ctx, routine, 0, trans_a, trans_b, m, n, k, alpha, a,
                                                  a_off + q * a_stride, lda, 0, b, b_off + q * b_stride, ldb, 0, beta,
                                                  c, c_off + q * c_stride, ldc, 0, 1);
        if (st != STACL_OK) return st;
    }
    return STACL_OK;
}

stacl_status stacl_gemm(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                        float alpha, cl_mem a, size_t a_off, size_t lda,
                        cl_mem b, size_t b_off, size_t ldb,
                        float beta, cl_mem c, size_t c_off, size_t ldc) {
    if (ctx->gemm_rows)
        return stacl_gemm_rows_call(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0, beta,
                                    c, c_off, ldc, 0, 1);
    stacl_gemm_routine r = stacl_tune_routine_for(ctx, m, n, k, 1, trans_a, trans_b);
    return stacl_gemm_routine_call(ctx, r, 0, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, 0, b, b_off, ldb, 0,
                                   beta, c, c_off, ldc, 0, 1);
}

stacl_status stacl_gemm_batched(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                                cl_mem b, size_t b_off, size_t ldb, size_t b_stride,
                                float beta, cl_mem c, size_t c_off, size_t ldc, size_t c_stride,
                                size_t batch) {
    if (ctx->gemm_rows)
        return stacl_gemm_rows_call(ctx, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, a_stride, b, b_off, ldb,
                                    b_stride, beta, c, c_off, ldc, c_stride, batch);
    stacl_gemm_routine r = stacl_tune_routine_for(ctx, m, n, k, batch, trans_a, trans_b);
    return stacl_gemm_batch_call(ctx, r, stacl_tune_batch_loop(ctx, m, n, k, batch, trans_a, trans_b), trans_a,
                                 trans_b, m, n, k, alpha, a, a_off, lda, a_stride, b, b_off, ldb, b_stride, beta, c,
                                 c_off, ldc, c_stride, batch);
}

stacl_status stacl_linear(stacl_ctx *ctx, size_t rows, size_t in, size_t out,
                          cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                          cl_mem y, size_t y_off, int accumulate) {
    if (ctx->gemm_rows)
        return stacl_gemm_rows_linear(ctx, rows, in, out, x, x_off, w, w_off, NULL, 0, 0, NULL, 0, y, y_off,
                                      accumulate);
    return stacl_gemm(ctx, 0, 1, rows, out, in, 1.0f, x, x_off, in, w, w_off, in,
                      accumulate ? 1.0f : 0.0f, y, y_off, out);
}

stacl_status stacl_linear_bias(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off, cl_mem w,
                               size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem y, size_t y_off,
                               int accumulate) {
    if (ctx->gemm_rows)
        return stacl_gemm_rows_linear(ctx, rows, in, out, x, x_off, w, w_off, bias, bias_off, act, NULL, 0, y,
                                      y_off, accumulate);
    stacl_status st = stacl_linear(ctx, rows, in, out, x, x_off, w, w_off, y, y_off, accumulate);
    if (st != STACL_OK) return st;
    return stacl_op_bias_act(ctx, (stacl_bias_act)act, rows, out, y, y_off, bias, bias_off);
}

stacl_status stacl_linear_bias_keep(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off,
                                    cl_mem w, size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem pre,
                                    size_t pre_off, cl_mem y, size_t y_off) {
    if (ctx->gemm_rows)
        return stacl_gemm_rows_linear(ctx, rows, in, out, x, x_off, w, w_off, bias, bias_off, act, pre, pre_off, y,
                                      y_off, 0);
    stacl_status st = stacl_linear(ctx, rows, in, out, x, x_off, w, w_off, y, y_off, 0);
    if (st != STACL_OK) return st;
    return stacl_op_bias_act_keep(ctx, (stacl_bias_act)act, rows, out, y, y_off, pre, pre_off, bias, bias_off);
}
