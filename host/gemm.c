/* gemm.c: the one place that calls CLBlast. Every backbone GEMM goes
 * through here, so tuning, profiling and a future half-precision path have
 * one home. Row-major throughout. */
#include <clblast_c.h>

#include "ops.h"

static stacl_status blas_fail(stacl_ctx *ctx, CLBlastStatusCode code, const char *routine,
                              size_t m, size_t n, size_t k, size_t batch) {
    /* CLBlast reuses OpenCL's codes (negative, above -1000) and adds its own
     * below -1000 (see clblast_c.h). */
    const char *name = code > -1000                    ? stacl_cl_error_name((cl_int)code)
                       : code <= -1007 && code >= -1011 ? "CLBlast: a matrix buffer is too small for its shape"
                       : code <= -1012 && code >= -1024 ? "CLBlast: invalid argument (leading dimension, offset or size)"
                                                        : "CLBlast internal error (see clblast_c.h)";
    stacl_status st = (code == CLBlastOpenCLOutOfResources || code == CLBlastOpenCLOutOfHostMemory ||
                       code == (CLBlastStatusCode)CL_MEM_OBJECT_ALLOCATION_FAILURE)
                          ? STACL_ERR_OUT_OF_MEMORY
                          : STACL_ERR_BLAS;
    return stacl_fail(st, "%s (m=%zu n=%zu k=%zu batch=%zu) failed on device '%s': %s (%d)", routine, m, n, k,
                      batch, ctx->info.name, name, (int)code);
}

stacl_status stacl_gemm(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                        float alpha, cl_mem a, size_t a_off, size_t lda,
                        cl_mem b, size_t b_off, size_t ldb,
                        float beta, cl_mem c, size_t c_off, size_t ldc) {
    /* CLBlast may enqueue several kernels (pad, transpose, Xgemm) and hands
     * back only the last one's event: time the call between markers. */
    cl_event start = stacl_profile_span_begin(ctx);
    CLBlastStatusCode code = CLBlastSgemm(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                          trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off,
                                          lda, b, b_off, ldb, beta, c, c_off, ldc, &ctx->queue, NULL);
    stacl_profile_span_end(ctx, code == CLBlastSuccess ? "gemm" : NULL, start);
    return code == CLBlastSuccess ? STACL_OK : blas_fail(ctx, code, "CLBlastSgemm", m, n, k, 1);
}

stacl_status stacl_gemm_batched(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                                cl_mem b, size_t b_off, size_t ldb, size_t b_stride,
                                float beta, cl_mem c, size_t c_off, size_t ldc, size_t c_stride,
                                size_t batch) {
    cl_event start = stacl_profile_span_begin(ctx);
    CLBlastStatusCode code = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda, a_stride, b, b_off, ldb,
        b_stride, beta, c, c_off, ldc, c_stride, batch, &ctx->queue, NULL);
    stacl_profile_span_end(ctx, code == CLBlastSuccess ? "gemm_batched" : NULL, start);
    return code == CLBlastSuccess ? STACL_OK : blas_fail(ctx, code, "CLBlastSgemmStridedBatched", m, n, k, batch);
}

stacl_status stacl_linear(stacl_ctx *ctx, size_t rows, size_t in, size_t out,
                          cl_mem x, size_t x_off, cl_mem w, size_t w_off,
                          cl_mem y, size_t y_off, int accumulate) {
    return stacl_gemm(ctx, 0, 1, rows, out, in, 1.0f, x, x_off, in, w, w_off, in,
                      accumulate ? 1.0f : 0.0f, y, y_off, out);
}
