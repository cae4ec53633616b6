/* test_gemm.c: stacl's GEMM entry points (host/gemm.c) on both engines,
 * CLBlast and stacl's own kernels (host/gemm_rows.c), against ref_gemm:
 * all four transpose combinations on odd sizes, alpha/beta other than (1, 0),
 * element offsets and padded leading dimensions inside buffers whose other
 * elements hold a NaN canary (must stay untouched, and would poison a result
 * if read), the strided-batched GEMMs of attention, stacl_linear with and
 * without accumulation, and CLBlast failures reported as stacl errors.
 *
 * CLBlast compiles its kernels on the first call of each routine (PoCL then
 * caches them), so the cases below use few distinct shapes.
 *
 * Tolerance: a float dot product of length k, evaluated in any order, is
 * within about sqrt(k) u (statistically; k u in the worst case) of the exact
 * one relative to sum |a| |b|; alpha, beta and the final add are a few more
 * roundings. So every element must satisfy
 *     |c - ref| <= (2 sqrt(k) + 4) u (|alpha| sum_p |a_ip| |b_pj| + |beta| |c0_ij|)
 * with u = 2^-24; a NaN fails. The measured errors are 0.4 of that bound or less; a
 * wrong transpose, offset or stride is off by O(1) of it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_test_util.h"
#include "ops.h"
#include "ops_backward.h"
#include "reference_ops.h"
#include "runtime.h"
#include "test_util.h"

#define U_F32 (1.0 / 16777216.0)

static double gemm_rel_tol(size_t k) { return (2.0 * sqrt((double)k) + 4.0) * U_F32; }

/* Expects the host image (after a download) to differ from the upload only
 * inside the matrices [rows, cols] at off + i * ld (+ batch * stride). */
static void expect_untouched(const char *what, const dbuf *b, size_t off, size_t rows, size_t cols, size_t ld,
                             size_t stride, size_t batch) {
    unsigned char *mask = calloc(b->n, 1);
    assert_non_null(mask);
    for (size_t q = 0; q < batch; q++)
        for (size_t i = 0; i < rows; i++) memset(mask + off + q * stride + i * ld, 1, cols);
    size_t first;
    size_t changed = dbuf_count_changed(b, mask, &first);
    free(mask);
    if (changed) {
        print_error("%s: %zu elements outside the output changed, first at %zu\n", what, changed, first);
        fail();
    }
}

/* Compares the matrices got and ref (both [rows, cols] with leading
 * dimension ld, from got/ref) using the magnitudes mag (same layout). */
static void expect_gemm_close(const char *what, const float *got, const float *ref, const float *mag, size_t rows,
                              size_t cols, size_t ld, size_t k) {
    const double rel = gemm_rel_tol(k);
    double max_err = 0.0, max_ratio = 0.0;
    size_t bad = 0, wi = 0;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            const size_t x = i * ld + j;
            const double d = fabs((double)got[x] - (double)ref[x]);
            const double tol = rel * (double)mag[x] + 1e-30;
            if (!(d <= tol)) {
                if (!bad) wi = x;
                bad++;
            }
            const double ratio = isnan(d) ? INFINITY : d / tol;
            if (isnan(d)) max_err = INFINITY;
            else if (d > max_err) max_err = d;
            if (ratio > max_ratio) max_ratio = ratio;
        }
    printf("    %-62s max|err| %-9.3g (%.2f of bound)\n", what, max_err, max_ratio);
    if (bad) {
        print_error("%s: %zu of %zu elements out of tolerance; first at %zu: got %.9g ref %.9g bound %.3g\n", what,
                    bad, rows * cols, wi, (double)got[wi], (double)ref[wi], rel * (double)mag[wi]);
        fail();
    }
}

/* Expects the whole buffer to be as uploaded (an input). */
static void expect_unchanged(const char *what, const dbuf *b) { expect_untouched(what, b, 0, 0, 0, 0, 0, 0); }

static void fabs_copy(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = fabsf(src[i]);
}

/* Every case runs twice: on CLBlast and on stacl's own GEMM kernels
 * (gemm_rows.c), chosen through STACL_GEMM as a user would. */
static int setup_engine(const char *engine, int own) {
    setenv("STACL_GEMM", engine, 1);
    int rc = cl_test_ctx_create();
    unsetenv("STACL_GEMM");
    if (rc != 0) return -1;
    printf("device: %s, GEMM engine: %s\n", stacl_ctx_device(g_ctx)->name, stacl_gemm_engine_name(g_ctx));
    return g_ctx->gemm_rows == own ? 0 : -1;
}
static int setup_clblast(void **state) {
    (void)state;
    return setup_engine("clblast", 0);
}
static int setup_stacl(void **state) {
    (void)state;
    return setup_engine("stacl", 1);
}

/* ---- single GEMM ----------------------------------------------------------------- */

/* One stacl_gemm with the stored matrices padded (ld = width + pad, the pad
 * holding canaries) and placed at offsets. beta == 0: C starts as canary
 * (NaN), which BLAS semantics say must be ignored. */
static void run_gemm_case(int ta, int tb, size_t m, size_t n, size_t k, float alpha, float beta, uint64_t seed) {
    const size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    const size_t lda = a_cols + 3, ldb = b_cols + 1, ldc = n + 2;
    const size_t a_off = 5, b_off = 7, c_off = 11;
    dbuf A = dbuf_new(a_off + a_rows * lda + 2), B = dbuf_new(b_off + b_rows * ldb + 4),
         C = dbuf_new(c_off + m * ldc + 3);
    float *tmp = xmalloc_f(a_rows * a_cols + b_rows * b_cols + m * n);
    tu_fill_random(tmp, a_rows * a_cols + b_rows * b_cols + m * n, seed, 1.0f);
    const float *ta_src = tmp, *tb_src = tmp + a_rows * a_cols, *tc_src = tb_src + b_rows * b_cols;
    for (size_t i = 0; i < a_rows; i++) memcpy(A.host + a_off + i * lda, ta_src + i * a_cols, a_cols * sizeof(float));
    for (size_t i = 0; i < b_rows; i++) memcpy(B.host + b_off + i * ldb, tb_src + i * b_cols, b_cols * sizeof(float));
    if (beta != 0.0f)
        for (size_t i = 0; i < m; i++) memcpy(C.host + c_off + i * ldc, tc_src + i * n, n * sizeof(float));
    dbuf_upload(&A);
    dbuf_upload(&B);
    dbuf_upload(&C);

    /* reference and magnitudes on the same padded layouts */
    float *ref = xmalloc_f(C.n), *mag = xmalloc_f(C.n), *aa = xmalloc_f(A.n), *ab = xmalloc_f(B.n);
    memcpy(ref, C.host, C.n * sizeof(float));
    ref_gemm(ta, tb, m, n, k, alpha, A.host + a_off, lda, B.host + b_off, ldb, beta, ref + c_off, ldc);
    fabs_copy(aa, A.host, A.n);
    fabs_copy(ab, B.host, B.n);
    fabs_copy(mag, C.host, C.n);
    ref_gemm(ta, tb, m, n, k, fabs(alpha), aa + a_off, lda, ab + b_off, ldb, fabs(beta), mag + c_off, ldc);

    ST_CHECK(stacl_gemm(g_ctx, ta, tb, m, n, k, alpha, A.mem, a_off, lda, B.mem, b_off, ldb, beta, C.mem, c_off,
                        ldc));
    dbuf_download(&C);
    dbuf_download(&A);
    dbuf_download(&B);
    char what[128];
    snprintf(what, sizeof what, "gemm %c%c m=%zu n=%zu k=%zu alpha=%g beta=%g", ta ? 'T' : 'N', tb ? 'T' : 'N', m,
             n, k, (double)alpha, (double)beta);
    expect_gemm_close(what, C.host + c_off, ref + c_off, mag + c_off, m, n, ldc, k);
    expect_untouched(what, &C, c_off, m, n, ldc, 0, 1);
    expect_unchanged("gemm A", &A);
    expect_unchanged("gemm B", &B);

    dbuf_free(&A);
    dbuf_free(&B);
    dbuf_free(&C);
    free(tmp);
    free(ref);
    free(mag);
    free(aa);
    free(ab);
}

static void run_linear_case(size_t rows, size_t in, size_t out, int accumulate, int packed);

static void test_gemm_transposes(void **state) {
    (void)state;
    const size_t shapes[][3] = {/* m, n, k */ {1, 1, 1}, {3, 17, 64}, {17, 3, 197}, {64, 197, 3}, {197, 64, 17},
                                {197, 197, 64}};
    const float ab[][2] = {{0.75f, -0.5f}, {-1.25f, 1.0f}, {2.0f, 0.25f}, {0.5f, 0.0f}};
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const float *p = ab[(s + (size_t)t) % 4];
            run_gemm_case(t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2], p[0], p[1], seed++);
        }
}

/* alpha = 1, beta = 0 (what stacl_linear uses on uninitialised workspace):
 * NaN in C must not leak into the result. */
static void test_gemm_beta_zero_ignores_c(void **state) {
    (void)state;
    run_gemm_case(0, 1, 17, 33, 64, 1.0f, 0.0f, 77);
    run_gemm_case(0, 0, 197, 64, 197, 1.0f, 0.0f, 78);
}

/* CLBlast switches from its single "direct" kernel to the padded/transposed
 * "indirect" path (pre-processing kernels + Xgemm) above a device-dependent
 * size (on PoCL's CPU device: somewhere above m n k = 1.6e8; 384^3 to
 * 1280^3 on GPUs). These shapes reach it on the CPU device, with odd sizes,
 * padded leading dimensions and offsets; beta = 0 with NaN in C matters most
 * here, since the indirect path copies C before scaling it. The last one is
 * vit.c's qkv projection of one frame. */
static void test_gemm_indirect_path(void **state) {
    (void)state;
    run_gemm_case(0, 0, 201, 1001, 1153, 0.75f, -0.5f, 90);
    run_gemm_case(1, 1, 201, 1001, 1153, 1.0f, 0.0f, 91);
    run_linear_case(197, 768, 3 * 768, 0, 1);
}

/* ---- strided batched (attention) --------------------------------------------------- */

/* scores[b] = q[b] k[b]^T (m = n = L, k = D, trans_b), then
 * o[b] = scores[b] v[b] (m = L, n = D, k = L), b < frames * heads, with the
 * strides vit.c uses (L*D for q/k/v/o, L*L for scores) at offsets inside
 * shared buffers. */
static void run_attention_case(size_t frames, size_t heads, size_t L, size_t D, float alpha, float beta) {
    const size_t batch = frames * heads, n = batch * L * D, ns = batch * L * L;
    /* qkv buffer: [canary 3 | q | canary 5 | k | canary 2 | v | canary 1] */
    const size_t q_off = 3, k_off = q_off + n + 5, v_off = k_off + n + 2, s_off = 9, o_off = 4;
    dbuf QKV = dbuf_new(v_off + n + 1), S = dbuf_new(s_off + ns + 2), O = dbuf_new(o_off + n + 6);
    float *src = xmalloc_f(3 * n + ns + n);
    tu_fill_random(src, 3 * n + ns + n, 1000 + L + D + batch, 1.0f);
    memcpy(QKV.host + q_off, src, n * sizeof(float));
    memcpy(QKV.host + k_off, src + n, n * sizeof(float));
    memcpy(QKV.host + v_off, src + 2 * n, n * sizeof(float));
    if (beta != 0.0f) {
        memcpy(S.host + s_off, src + 3 * n, ns * sizeof(float));
        memcpy(O.host + o_off, src + 3 * n + ns, n * sizeof(float));
    }
    dbuf_upload(&QKV);
    dbuf_upload(&S);
    dbuf_upload(&O);

    ST_CHECK(stacl_gemm_batched(g_ctx, 0, 1, L, L, D, alpha, QKV.mem, q_off, D, L * D, QKV.mem, k_off, D, L * D,
                                beta, S.mem, s_off, L, L * L, batch));
    dbuf_download(&S);

    float *ref = xmalloc_f(S.n), *mag = xmalloc_f(S.n), *aqkv = xmalloc_f(QKV.n);
    memcpy(ref, S.sent, S.n * sizeof(float));
    fabs_copy(mag, S.sent, S.n);
    fabs_copy(aqkv, QKV.host, QKV.n);
    for (size_t b = 0; b < batch; b++) {
        ref_gemm(0, 1, L, L, D, alpha, QKV.host + q_off + b * L * D, D, QKV.host + k_off + b * L * D, D, beta,
                 ref + s_off + b * L * L, L);
        ref_gemm(0, 1, L, L, D, fabs(alpha), aqkv + q_off + b * L * D, D, aqkv + k_off + b * L * D, D, fabs(beta),
                 mag + s_off + b * L * L, L);
    }
    char what[128];
    snprintf(what, sizeof what, "batched q k^T batch=%zu L=%zu D=%zu alpha=%g beta=%g", batch, L, D, (double)alpha,
             (double)beta);
    expect_gemm_close(what, S.host + s_off, ref + s_off, mag + s_off, batch * L, L, L, D);
    expect_untouched(what, &S, s_off, batch * L, L, L, 0, 1);

    /* second GEMM reads the scores just computed (as softmax would leave them) */
    memcpy(S.sent, S.host, S.n * sizeof(float));
    ST_CHECK(stacl_gemm_batched(g_ctx, 0, 0, L, D, L, alpha, S.mem, s_off, L, L * L, QKV.mem, v_off, D, L * D, beta,
                                O.mem, o_off, D, L * D, batch));
    dbuf_download(&O);
    float *oref = xmalloc_f(O.n), *omag = xmalloc_f(O.n), *as = xmalloc_f(S.n);
    memcpy(oref, O.sent, O.n * sizeof(float));
    fabs_copy(omag, O.sent, O.n);
    fabs_copy(as, S.host, S.n);
    for (size_t b = 0; b < batch; b++) {
        ref_gemm(0, 0, L, D, L, alpha, S.host + s_off + b * L * L, L, QKV.host + v_off + b * L * D, D, beta,
                 oref + o_off + b * L * D, D);
        ref_gemm(0, 0, L, D, L, fabs(alpha), as + s_off + b * L * L, L, aqkv + v_off + b * L * D, D, fabs(beta),
                 omag + o_off + b * L * D, D);
    }
    snprintf(what, sizeof what, "batched p v   batch=%zu L=%zu D=%zu alpha=%g beta=%g", batch, L, D, (double)alpha,
             (double)beta);
    expect_gemm_close(what, O.host + o_off, oref + o_off, omag + o_off, batch * L, D, D, L);
    expect_untouched(what, &O, o_off, batch * L, D, D, 0, 1);
    dbuf_download(&QKV);
    dbuf_download(&S);
    expect_unchanged("batched inputs q/k/v", &QKV);
    expect_unchanged("batched input scores", &S);

    dbuf_free(&QKV);
    dbuf_free(&S);
    dbuf_free(&O);
    free(src);
    free(ref);
    free(mag);
    free(aqkv);
    free(oref);
    free(omag);
    free(as);
}

static void test_gemm_batched_attention(void **state) {
    (void)state;
    run_attention_case(2, 3, 197, 64, 1.0f, 0.0f); /* frames 2 x heads 3, ViT-B/16 tokens */
    run_attention_case(1, 2, 7, 32, 1.0f, 0.0f);   /* 1 frame, odd L */
    run_attention_case(3, 1, 17, 32, 0.5f, -1.0f); /* alpha/beta through the batched path */
}

/* Batches further apart than the matrices (c_stride > m * ldc): the gaps and
 * the padding of ldc stay untouched. */
static void test_gemm_batched_gaps(void **state) {
    (void)state;
    const size_t m = 5, n = 7, k = 33, batch = 3, lda = k + 1, ldb = n + 2, ldc = n + 3;
    const size_t a_stride = m * lda + 4, b_stride = k * ldb + 1, c_stride = m * ldc + 6;
    const size_t a_off = 2, b_off = 1, c_off = 8;
    dbuf A = dbuf_new(a_off + batch * a_stride), B = dbuf_new(b_off + batch * b_stride),
         C = dbuf_new(c_off + batch * c_stride);
    float *v = xmalloc_f(k * n);
    for (size_t q = 0; q < batch; q++) {
        tu_fill_random(v, m * k, 50 + q, 1.0f);
        for (size_t i = 0; i < m; i++) memcpy(A.host + a_off + q * a_stride + i * lda, v + i * k, k * sizeof(float));
        tu_fill_random(v, k * n, 60 + q, 1.0f);
        for (size_t i = 0; i < k; i++) memcpy(B.host + b_off + q * b_stride + i * ldb, v + i * n, n * sizeof(float));
        tu_fill_random(v, m * n, 70 + q, 1.0f);
        for (size_t i = 0; i < m; i++) memcpy(C.host + c_off + q * c_stride + i * ldc, v + i * n, n * sizeof(float));
    }
    dbuf_upload(&A);
    dbuf_upload(&B);
    dbuf_upload(&C);
    const float alpha = -0.75f, beta = 1.5f;
    ST_CHECK(stacl_gemm_batched(g_ctx, 0, 0, m, n, k, alpha, A.mem, a_off, lda, a_stride, B.mem, b_off, ldb, b_stride,
                                beta, C.mem, c_off, ldc, c_stride, batch));
    dbuf_download(&C);
    float *ref = xmalloc_f(C.n), *mag = xmalloc_f(C.n), *aa = xmalloc_f(A.n), *ab = xmalloc_f(B.n);
    memcpy(ref, C.sent, C.n * sizeof(float));
    fabs_copy(mag, C.sent, C.n);
    fabs_copy(aa, A.host, A.n);
    fabs_copy(ab, B.host, B.n);
    for (size_t q = 0; q < batch; q++) {
        ref_gemm(0, 0, m, n, k, alpha, A.host + a_off + q * a_stride, lda, B.host + b_off + q * b_stride, ldb, beta,
                 ref + c_off + q * c_stride, ldc);
        ref_gemm(0, 0, m, n, k, fabs(alpha), aa + a_off + q * a_stride, lda, ab + b_off + q * b_stride, ldb,
                 fabs(beta), mag + c_off + q * c_stride, ldc);
        char what[96];
        snprintf(what, sizeof what, "batched gaps m=%zu n=%zu k=%zu, batch %zu of %zu", m, n, k, q, batch);
        expect_gemm_close(what, C.host + c_off + q * c_stride, ref + c_off + q * c_stride,
                          mag + c_off + q * c_stride, m, n, ldc, k);
    }
    expect_untouched("batched gaps", &C, c_off, m, n, ldc, c_stride, batch);
    dbuf_free(&A);
    dbuf_free(&B);
    dbuf_free(&C);
    free(v);
    free(ref);
    free(mag);
    free(aa);
    free(ab);
}

/* ---- linear -------------------------------------------------------------------------- */

/* y[rows, out] (+)= x[rows, in] w[out, in]^T with w inside a parameter
 * buffer, as vit.c's projections. packed (stacl's engine only): w packed
 * first, as the model loader does, into a buffer at an offset between
 * canaries, then forgotten. */
static void run_linear_case(size_t rows, size_t in, size_t out, int accumulate, int packed) {
    const size_t x_off = 3, w_off = 13, y_off = 6;
    dbuf X = dbuf_new(x_off + rows * in + 1), P = dbuf_new(w_off + out * in + 5), Y = dbuf_new(y_off + rows * out + 2);
    tu_fill_random(X.host + x_off, rows * in, rows + in, 1.0f);
    tu_fill_random(P.host + w_off, out * in, out + in, 0.1f);
    if (accumulate) tu_fill_random(Y.host + y_off, rows * out, rows + out, 1.0f);
    dbuf_upload(&X);
    dbuf_upload(&P);
    dbuf_upload(&Y);
    packed = packed && g_ctx->gemm_rows;
    const size_t pk_off = 5, pk_n = stacl_gemm_packed_floats(out, in);
    dbuf PK = dbuf_new(packed ? pk_off + pk_n + 3 : 1);
    dbuf_upload(&PK);
    if (packed) ST_CHECK(stacl_gemm_pack_linear(g_ctx, P.mem, w_off, out, in, PK.mem, pk_off));
    ST_CHECK(stacl_linear(g_ctx, rows, in, out, X.mem, x_off, P.mem, w_off, Y.mem, y_off, accumulate));
    if (packed) {
        stacl_gemm_forget_packed(g_ctx, P.mem);
        dbuf_download(&PK);
        expect_untouched("packed weight", &PK, pk_off, 1, pk_n, pk_n, 0, 1);
        /* the packing itself: panel p, row k, lane j holds w[32 p + j, k], zero past out */
        for (size_t q = 0; q < pk_n; q++) {
            const size_t j = q % 32, kk = q / 32 % in, n = q / 32 / in * 32 + j;
            const float want = n < out ? P.host[w_off + n * in + kk] : 0.0f;
            if (PK.host[pk_off + q] != want) {
                print_error("packed weight [%zu]: %g, expected %g\n", q, (double)PK.host[pk_off + q], (double)want);
                fail();
            }
        }
    }
    dbuf_free(&PK);
    dbuf_download(&Y);
    float *ref = xmalloc_f(Y.n), *mag = xmalloc_f(Y.n), *ax = xmalloc_f(X.n), *aw = xmalloc_f(P.n);
    memcpy(ref, Y.sent, Y.n * sizeof(float));
    fabs_copy(mag, Y.sent, Y.n);
    fabs_copy(ax, X.host, X.n);
    fabs_copy(aw, P.host, P.n);
    const double beta = accumulate ? 1.0 : 0.0;
    ref_gemm(0, 1, rows, out, in, 1.0, X.host + x_off, in, P.host + w_off, in, beta, ref + y_off, out);
    ref_gemm(0, 1, rows, out, in, 1.0, ax + x_off, in, aw + w_off, in, beta, mag + y_off, out);
    char what[96];
    snprintf(what, sizeof what, "linear rows=%zu in=%zu out=%zu%s%s", rows, in, out, accumulate ? " accumulate" : "",
             packed ? " packed" : "");
    expect_gemm_close(what, Y.host + y_off, ref + y_off, mag + y_off, rows, out, out, in);
    expect_untouched(what, &Y, y_off, rows, out, out, 0, 1);
    dbuf_download(&X);
    dbuf_download(&P);
    expect_unchanged("linear x", &X);
    expect_unchanged("linear w", &P);
    dbuf_free(&X);
    dbuf_free(&P);
    dbuf_free(&Y);
    free(ref);
    free(mag);
    free(ax);
    free(aw);
}

static void test_linear(void **state) {
    (void)state;
    for (int packed = 0; packed <= 1; packed++) {
        run_linear_case(5, 33, 7, 0, packed);
        run_linear_case(5, 33, 7, 1, packed);
        run_linear_case(2 * 197, 64, 3 * 64, 0, packed); /* a small qkv projection */
        run_linear_case(197, 768, 64, 1, packed);        /* residual accumulate, k = 768 */
        run_linear_case(11, 40, 70, 1, packed);          /* rows and columns past the 8 x 32 blocks */
        run_linear_case(1, 1, 1, 1, packed);
    }
}

/* stacl_linear_bias / _keep: y = act(x w^T (+ y) + bias), and the value
 * before the activation in pre. On stacl's engine with a packed weight this
 * is one kernel (gemm_rows.cl's epilogue); otherwise linear + bias_act. The
 * reference is in double; the bound is the GEMM's on the pre-activation
 * (plus |bias|), times 1.2 for the activation's slope (at most 1.13 for
 * both GELUs), plus |v| for the activation's own rounding (> 4 u |v|). */
static double ref_activation(double v, int act) {
    if (act == STACL_BIAS_QUICK_GELU) return v / (1.0 + exp(-1.702 * v));
    if (act == STACL_BIAS_GELU) return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    return v;
}

static void run_linear_bias_case(size_t rows, size_t in, size_t out, int act, int accumulate, int keep, int packed) {
    const size_t x_off = 2, w_off = 7, b_off = 3, y_off = 4, u_off = 5;
    dbuf X = dbuf_new(x_off + rows * in + 1), P = dbuf_new(w_off + out * in + b_off + out + 2);
    dbuf Y = dbuf_new(y_off + rows * out + 3), U = dbuf_new(u_off + rows * out + 2);
    const size_t bias_at = w_off + out * in + b_off;
    tu_fill_random(X.host + x_off, rows * in, 3 * rows + in, 1.0f);
    tu_fill_random(P.host + w_off, out * in, out + 7 * in, 0.2f);
    tu_fill_random(P.host + bias_at, out, out + 1, 1.0f);
    if (accumulate) tu_fill_random(Y.host + y_off, rows * out, rows + 5 * out, 1.0f);
    dbuf_upload(&X);
    dbuf_upload(&P);
    dbuf_upload(&Y);
    dbuf_upload(&U);
    packed = packed && g_ctx->gemm_rows;
    dbuf PK = dbuf_new(packed ? stacl_gemm_packed_floats(out, in) : 1);
    dbuf_upload(&PK);
    if (packed) ST_CHECK(stacl_gemm_pack_linear(g_ctx, P.mem, w_off, out, in, PK.mem, 0));
    if (keep)
        ST_CHECK(stacl_linear_bias_keep(g_ctx, rows, in, out, X.mem, x_off, P.mem, w_off, P.mem, bias_at, act, U.mem,
                                        u_off, Y.mem, y_off));
    else
        ST_CHECK(stacl_linear_bias(g_ctx, rows, in, out, X.mem, x_off, P.mem, w_off, P.mem, bias_at, act, Y.mem,
                                   y_off, accumulate));
    if (packed) stacl_gemm_forget_packed(g_ctx, P.mem);
    dbuf_free(&PK);
    dbuf_download(&Y);
    dbuf_download(&U);
    const size_t n = rows * out;
    float *ref = xmalloc_f(n), *mag = xmalloc_f(n), *pre = xmalloc_f(n), *pre_mag = xmalloc_f(n);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < out; j++) {
            double v = P.host[bias_at + j], m = fabs(v);
            for (size_t q = 0; q < in; q++) {
                const double t = (double)X.host[x_off + i * in + q] * P.host[w_off + j * in + q];
                v += t;
                m += fabs(t);
            }
            if (accumulate && !keep) {
                v += Y.sent[y_off + i * out + j];
                m += fabs(Y.sent[y_off + i * out + j]);
            }
            pre[i * out + j] = (float)v;
            pre_mag[i * out + j] = (float)m;
            ref[i * out + j] = (float)ref_activation(v, act);
            mag[i * out + j] = (float)(1.2 * m + fabs(v));
        }
    char what[120];
    snprintf(what, sizeof what, "linear+bias rows=%zu in=%zu out=%zu act=%d%s%s%s", rows, in, out, act,
             accumulate && !keep ? " accumulate" : "", keep ? " keep" : "", packed ? " packed" : "");
    expect_gemm_close(what, Y.host + y_off, ref, mag, rows, out, out, in + 1);
    expect_untouched(what, &Y, y_off, rows, out, out, 0, 1);
    if (keep) {
        expect_gemm_close("  its pre-activation", U.host + u_off, pre, pre_mag, rows, out, out, in + 1);
        expect_untouched("  its pre-activation", &U, u_off, rows, out, out, 0, 1);
    } else {
        expect_unchanged("  pre-activation buffer (unused)", &U);
    }
    dbuf_download(&P);
    expect_unchanged("linear+bias w", &P);
    dbuf_free(&X);
    dbuf_free(&P);
    dbuf_free(&Y);
    dbuf_free(&U);
    free(ref);
    free(mag);
    free(pre);
    free(pre_mag);
}

static void test_linear_bias(void **state) {
    (void)state;
    for (int packed = 0; packed <= 1; packed++) {
        run_linear_bias_case(9, 40, 70, STACL_BIAS_ONLY, 1, 0, packed);  /* partial row block and panel */
        run_linear_bias_case(9, 40, 70, STACL_BIAS_QUICK_GELU, 0, 0, packed);
        run_linear_bias_case(16, 24, 64, STACL_BIAS_GELU, 0, 0, packed); /* full blocks */
        run_linear_bias_case(9, 40, 70, STACL_BIAS_QUICK_GELU, 0, 1, packed);
        run_linear_bias_case(16, 24, 64, STACL_BIAS_GELU, 0, 1, packed);
    }
}

/* ---- failures ------------------------------------------------------------------------ */

/* CLBlast's refusals come back as BLAS errors naming it; stacl's engine
 * checks shapes against the buffers itself and names the matrix. */
static void expect_blas_failure(stacl_status st, const char *what) {
    const char *msg = stacl_last_error();
    printf("    %s -> %s: %s\n", what, stacl_status_str(st), msg);
    if (g_ctx->gemm_rows) {
        assert_int_equal(st, STACL_ERR_INVALID_ARG);
        assert_true(strstr(msg, "its buffer holds") || strstr(msg, "leading dimension"));
    } else {
        assert_true(st == STACL_ERR_BLAS || st == STACL_ERR_OUT_OF_MEMORY);
        assert_non_null(strstr(msg, "CLBlast"));
    }
}

static void test_gemm_errors(void **state) {
    (void)state;
    const size_t m = 8, n = 8, k = 8;
    dbuf A = dbuf_new(m * k), B = dbuf_new(k * n), C_small = dbuf_new(m * n - 1), C = dbuf_new(m * n);
    tu_fill_random(A.host, m * k, 1, 1.0f);
    tu_fill_random(B.host, k * n, 2, 1.0f);
    dbuf_upload(&A);
    dbuf_upload(&B);
    dbuf_upload(&C_small);
    dbuf_upload(&C);

    /* C one element short */
    expect_blas_failure(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k, B.mem, 0, n, 0.0f, C_small.mem, 0, n),
                        "gemm, C too small");
    /* C large enough, but not from this offset */
    expect_blas_failure(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k, B.mem, 0, n, 0.0f, C.mem, 1, n),
                        "gemm, C offset past the end");
    /* A too small for its leading dimension */
    expect_blas_failure(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k + 1, B.mem, 0, n, 0.0f, C.mem, 0, n),
                        "gemm, A too small");
    /* leading dimension smaller than the row */
    expect_blas_failure(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k - 1, B.mem, 0, n, 0.0f, C.mem, 0, n),
                        "gemm, lda < k");
    /* batched: the third matrix of C does not fit */
    expect_blas_failure(stacl_gemm_batched(g_ctx, 0, 0, 2, 2, 2, 1.0f, A.mem, 0, 2, 4, B.mem, 0, 2, 4, 0.0f,
                                           C_small.mem, 0, 2, 30, 3),
                        "gemm_batched, C too small");
    expect_blas_failure(stacl_linear(g_ctx, m, k, n, A.mem, 0, B.mem, 0, C_small.mem, 0, 0), "linear, y too small");

    /* the context still works */
    ST_CHECK(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k, B.mem, 0, n, 0.0f, C.mem, 0, n));
    dbuf_download(&C);
    float ref[64];
    ref_gemm(0, 0, m, n, k, 1.0, A.host, k, B.host, n, 0.0, ref, n);
    float mag[64], aa[64], ab[64];
    fabs_copy(aa, A.host, 64);
    fabs_copy(ab, B.host, 64);
    ref_gemm(0, 0, m, n, k, 1.0, aa, k, ab, n, 0.0, mag, n);
    expect_gemm_close("gemm after failures", C.host, ref, mag, m, n, n, k);

    dbuf_free(&A);
    dbuf_free(&B);
    dbuf_free(&C_small);
    dbuf_free(&C);
}

/* A GEMM that CLBlast refused ran nothing: like a failed kernel launch
 * (stacl_profile_drop), it must not show up in the profile. */
static void test_gemm_failure_not_profiled(void **state) {
    (void)state;
    const size_t m = 8, n = 8, k = 8;
    dbuf A = dbuf_new(m * k), C_small = dbuf_new(m * n - 1), C = dbuf_new(m * n);
    tu_fill_random(A.host, m * k, 3, 1.0f);
    dbuf_upload(&A);
    dbuf_upload(&C_small);
    dbuf_upload(&C);
    stacl_profile_begin(g_ctx);
    assert_int_not_equal(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k, A.mem, 0, n, 0.0f, C_small.mem, 0, n),
                         STACL_OK);
    assert_int_not_equal(stacl_gemm_batched(g_ctx, 0, 0, 2, 2, 2, 1.0f, A.mem, 0, 2, 4, A.mem, 0, 2, 4, 0.0f,
                                            C_small.mem, 0, 2, 30, 3),
                         STACL_OK);
    ST_CHECK(stacl_gemm(g_ctx, 0, 0, m, n, k, 1.0f, A.mem, 0, k, A.mem, 0, n, 0.0f, C.mem, 0, n));
    stacl_op_time entries[STACL_PROFILE_MAX_OPS];
    int count = 0;
    double total = 0.0;
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, &total));
    for (int i = 0; i < count; i++)
        printf("    profile: %-14s %d launches %.4f ms\n", entries[i].op, entries[i].launches, entries[i].ms);
    dbuf_free(&A);
    dbuf_free(&C_small);
    dbuf_free(&C);
    assert_int_equal(count, 1);
    assert_string_equal(entries[0].op, "gemm");
    assert_int_equal(entries[0].launches, 1);
    assert_true(entries[0].ms >= 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_transposes),
        cmocka_unit_test(test_gemm_beta_zero_ignores_c),
        cmocka_unit_test(test_gemm_indirect_path),
        cmocka_unit_test(test_gemm_batched_attention),
        cmocka_unit_test(test_gemm_batched_gaps),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_bias),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_gemm_failure_not_profiled),
    };
    int failed = cmocka_run_group_tests_name("CLBlast", tests, setup_clblast, cl_test_group_teardown);
    failed += cmocka_run_group_tests_name("stacl's GEMM kernels", tests, setup_stacl, cl_test_group_teardown);
    return failed;
}
