/* test_kernels.c: stacl's own OpenCL kernels (the kernels/ folder, through the
 * launchers of host/ops.h) against the double-precision references of
 * reference_ops.c, on awkward sizes (1, 7, 33, 197, 768, 1000 columns: not
 * multiples of any work-group size), at non-zero offsets inside larger
 * buffers whose other elements hold a NaN canary that must come back
 * bit-for-bit unchanged (and, if a kernel read it, would poison the result).
 * Also: determinism of the reduction kernels, the event profiler, and
 * im2col + stacl_linear against a direct convolution. */
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
#include "reference_ops.h"
#include "runtime.h"
#include "test_util.h"

/* ---- tolerances -------------------------------------------------------------
 * An element passes when |got - ref| <= atol + rtol * |ref|, written as
 * !(diff <= tol) so that a NaN (or a NaN reference) always fails.
 * u = 2^-24 (float unit roundoff, 6e-8). The references are exact to double
 * precision, so the budget is the float kernels' own error:
 *  - layout kernels (split/merge heads, im2col, assemble tokens, embed
 *    tokens, gather rows) and the
 *    plain bias add are copies or one float add/multiply, which the rounded
 *    double reference reproduces exactly: atol = rtol = 0 (bit-exact).
 *  - layernorm: float sums over <= 1000 values (each work-item adds about
 *    cols / work-group terms, then a log2(work-group) tree) give mean and
 *    variance to about 20 u relative to max|x|; with the rows offset so that
 *    max|x| / std <= 7, and |gamma| <= 1.5, that is ~1e-5 on the output in
 *    the worst case (measured: ~1e-6): atol 2e-5, rtol 2e-5.
 *  - softmax: exp (<= 3 ulp), the float row sum (~ (cols/wg + log2 wg) u)
 *    and a reciprocal (<= 2.5 ulp): ~20 u relative, rtol 1e-5; atol 1e-8
 *    only for the very small probabilities.
 *  - QuickGELU: v = y + bias rounded to float (0.5 ulp), exp of a rounded
 *    argument (|1.702 v| <= 11: 1e-6 relative), division: rtol 1e-5,
 *    atol 1e-6.
 *  - GELU: OpenCL's erf may be off by 16 ulp; near |v| = 6, 1 + erf(v/sqrt 2)
 *    cancels, so the error is absolute: 0.5 * 6 * 16 * 2^-24 = 3e-6: atol
 *    4e-6, rtol 1e-5.
 *  - im2col + GEMM vs a direct conv: a sum of K = 3 p^2 products, bounded by
 *    2 sqrt(K) u * sum |img| |w| per output (see test_gemm.c). */
#define U_F32 (1.0 / 16777216.0)

/* Counts elements outside tolerance; reports the max error and the worst
 * element through the out-parameters. */
static size_t count_violations(const float *got, const float *ref, size_t n, double atol, double rtol,
                               double *max_err, size_t *worst) {
    size_t bad = 0;
    double m = 0.0;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        const double tol = atol + rtol * fabs((double)ref[i]);
        if (!(d <= tol)) {
            if (bad == 0 || !(d <= m)) *worst = i;
            bad++;
        }
        if (isnan(d)) m = INFINITY;
        else if (d > m) m = d;
    }
    *max_err = m;
    return bad;
}

static void expect_close(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double max_err;
    size_t worst;
    size_t bad = count_violations(got, ref, n, atol, rtol, &max_err, &worst);
    printf("    %-58s max|err| %-9.3g (atol %.0e rtol %.0e)\n", what, max_err, atol, rtol);
    if (bad) {
        print_error("%s: %zu of %zu elements out of tolerance; worst [%zu] got %.9g ref %.9g\n", what, bad, n,
                    worst, (double)got[worst], (double)ref[worst]);
        fail();
    }
}

/* Per-element tolerance from a magnitude (for GEMM-like sums). */
static void expect_close_mag(const char *what, const float *got, const float *ref, const float *mag, size_t n,
                             double rel) {
    double max_err = 0.0, max_ratio = 0.0;
    size_t bad = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        const double tol = rel * (double)mag[i] + 1e-30;
        if (!(d <= tol)) {
            if (!bad) worst = i;
            bad++;
        }
        if (isnan(d)) max_err = INFINITY;
        else if (d > max_err) max_err = d;
        if (d / tol > max_ratio || isnan(d)) max_ratio = isnan(d) ? INFINITY : d / tol;
    }
    printf("    %-58s max|err| %-9.3g (%.2f of its bound)\n", what, max_err, max_ratio);
    if (bad) {
        print_error("%s: %zu of %zu elements out of tolerance; first [%zu] got %.9g ref %.9g bound %.3g\n", what,
                    bad, n, worst, (double)got[worst], (double)ref[worst], rel * (double)mag[worst]);
        fail();
    }
}

/* ---- device buffers with canaries ------------------------------------------ */
/* (dbuf, canary, CL_CHECK and ST_CHECK come from cl_test_util.h) */

/* A strided block of a buffer: `rows` runs of `cols` floats, `stride` apart,
 * from element `off`. */
typedef struct region {
    size_t off, rows, cols, stride;
} region;
#define DENSE(off, n) ((region){(off), 1, (n), (n)})
#define BLOCK(off, rows, cols, stride) ((region){(off), (rows), (cols), (stride)})

static void dbuf_put(dbuf *b, region r, const float *src) {
    assert_true(r.rows == 0 || r.off + (r.rows - 1) * r.stride + r.cols <= b->n);
    for (size_t i = 0; i < r.rows; i++)
        memcpy(b->host + r.off + i * r.stride, src + i * r.cols, r.cols * sizeof(float));
}

static void dbuf_get(const dbuf *b, region r, float *dst) {
    for (size_t i = 0; i < r.rows; i++)
        memcpy(dst + i * r.cols, b->host + r.off + i * r.stride, r.cols * sizeof(float));
}

/* Checks that every element outside the given regions still holds exactly
 * what was uploaded. */
static void dbuf_expect_untouched(const char *what, const dbuf *b, const region *written, size_t n_written) {
    unsigned char *mask = calloc(b->n, 1);
    assert_non_null(mask);
    for (size_t w = 0; w < n_written; w++)
        for (size_t i = 0; i < written[w].rows; i++)
            memset(mask + written[w].off + i * written[w].stride, 1, written[w].cols);
    size_t first;
    size_t changed = dbuf_count_changed(b, mask, &first);
    free(mask);
    if (changed) {
        print_error("%s: %zu elements outside the output changed, first at %zu (now %g)\n", what, changed, first,
                    (double)b->host[first]);
        fail();
    }
}

/* ---- setup ------------------------------------------------------------------ */

static int group_setup(void **state) {
    (void)state;
    if (cl_test_ctx_create() != 0) return -1;
    printf("device: %s (reduce work-group %zu)\n", stacl_ctx_device(g_ctx)->name, g_ctx->reduce_wg);
    return 0;
}

/* ---- the tolerance check itself ------------------------------------------- */

static void test_checker_rejects_nan(void **state) {
    (void)state;
    const float ref[3] = {1.0f, 2.0f, 3.0f};
    float got[3] = {1.0f, 2.0f, 3.0f};
    double m;
    size_t w;
    assert_int_equal(count_violations(got, ref, 3, 0.0, 0.0, &m, &w), 0);
    got[1] = NAN;
    assert_int_equal(count_violations(got, ref, 3, 1e30, 1e30, &m, &w), 1);
    assert_int_equal(w, 1);
    assert_true(isinf(m));
    got[1] = INFINITY;
    assert_int_equal(count_violations(got, ref, 3, 1e30, 1e30, &m, &w), 1);
    got[1] = 2.0f;
    const float nan_ref[1] = {NAN};
    assert_int_equal(count_violations(got, nan_ref, 1, 1e30, 1e30, &m, &w), 1);
    got[2] = 3.001f;
    assert_int_equal(count_violations(got, ref, 3, 0.0, 1e-4, &m, &w), 1);
    assert_int_equal(count_violations(got, ref, 3, 0.0, 1e-3, &m, &w), 0);
}

/* ---- layernorm ------------------------------------------------------------------ */

#define LN_ATOL 2e-5
#define LN_RTOL 2e-5

/* Rows of x with a per-row offset (so the centred variance matters) and
 * spread `scale`. */
static void fill_rows_with_offsets(float *x, size_t rows, size_t cols, uint64_t seed, float scale) {
    tu_fill_random(x, rows * cols, seed, scale);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) x[r * cols + c] += 1.5f * (float)((int)(r % 5) - 2) * scale;
}

typedef struct ln_case {
    size_t rows, cols;
    float eps, scale;
    size_t x_off, x_stride, y_off, y_stride;
    int in_place;
} ln_case;

static void run_layernorm_case(const ln_case *c, uint64_t seed) {
    const size_t rows = c->rows, cols = c->cols;
    float *x = xmalloc_f(rows * cols), *ref = xmalloc_f(rows * cols), *got = xmalloc_f(rows * cols);
    float *gb = xmalloc_f(2 * cols);
    fill_rows_with_offsets(x, rows, cols, seed, c->scale);
    tu_fill_random(gb, 2 * cols, seed + 1, 0.5f);
    for (size_t i = 0; i < cols; i++) gb[i] += 1.0f; /* gamma in [0.5, 1.5], beta in [-0.5, 0.5] */

    /* params: [canary x3 | beta | canary x5 | gamma | canary x2] */
    const size_t beta_off = 3, gamma_off = 3 + cols + 5;
    dbuf params = dbuf_new(gamma_off + cols + 2);
    dbuf_put(&params, DENSE(gamma_off, cols), gb);
    dbuf_put(&params, DENSE(beta_off, cols), gb + cols);
    dbuf_upload(&params);

    const region xr = BLOCK(c->x_off, rows, cols, c->x_stride);
    const region yr = c->in_place ? xr : BLOCK(c->y_off, rows, cols, c->y_stride);
    dbuf xb = dbuf_new(c->x_off + (rows - 1) * c->x_stride + cols + 7);
    dbuf_put(&xb, xr, x);
    dbuf_upload(&xb);
    dbuf yb = {0};
    if (!c->in_place) {
        yb = dbuf_new(c->y_off + (rows - 1) * c->y_stride + cols + 4);
        dbuf_upload(&yb);
    }
    dbuf *out = c->in_place ? &xb : &yb;

    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, c->eps, xb.mem, xr.off, xr.stride, out->mem, yr.off, yr.stride,
                                params.mem, gamma_off, beta_off));
    ref_layernorm(rows, cols, c->eps, x, cols, ref, cols, gb, gb + cols);
    dbuf_download(out);
    dbuf_get(out, yr, got);

    char what[128];
    snprintf(what, sizeof what, "layernorm %zux%zu eps %g x@%zu/%zu y@%zu/%zu%s", rows, cols, (double)c->eps, xr.off,
             xr.stride, yr.off, yr.stride, c->in_place ? " in place" : "");
    expect_close(what, got, ref, rows * cols, LN_ATOL, LN_RTOL);
    dbuf_expect_untouched(what, out, &yr, 1);
    if (!c->in_place) {
        dbuf_download(&xb);
        dbuf_expect_untouched("layernorm input", &xb, NULL, 0);
    }
    dbuf_download(&params);
    dbuf_expect_untouched("layernorm params", &params, NULL, 0);

    dbuf_free(&params);
    dbuf_free(&xb);
    if (!c->in_place) dbuf_free(&yb);
    free(x);
    free(ref);
    free(got);
    free(gb);
}

static void test_layernorm_shapes(void **state) {
    (void)state;
    const ln_case cases[] = {
        {1, 1, 1e-5f, 1.0f, 0, 1, 0, 1, 0},          /* var = 0: output is beta */
        {5, 7, 1e-5f, 1.0f, 3, 7, 2, 7, 0},
        {3, 33, 1e-5f, 2.0f, 1, 40, 0, 33, 0},
        {197, 768, 1e-5f, 1.0f, 13, 768, 29, 768, 0}, /* 1 frame x 197 tokens x ViT-B */
        {4, 1000, 1e-5f, 1.0f, 5, 1005, 3, 1003, 0},  /* gaps between rows */
        {2, 197, 0.5f, 1.0f, 0, 197, 0, 197, 0},      /* eps large enough to matter */
        {6, 64, 1e-5f, 1e-3f, 2, 64, 1, 64, 0},       /* var ~ 1e-7 << eps */
        {3, 255, 1e-5f, 1.0f, 0, 255, 0, 255, 0},
        {2, 257, 1e-5f, 1.0f, 0, 257, 0, 257, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_layernorm_case(&cases[i], 100 + i);
}

/* ln_pre in vit.c: x and y are the same buffer, offset and stride. */
static void test_layernorm_in_place(void **state) {
    (void)state;
    const ln_case cases[] = {
        {197, 768, 1e-5f, 1.0f, 7, 768, 7, 768, 1},
        {2 * 197, 33, 1e-5f, 1.0f, 0, 33, 0, 33, 1},
        {3, 1000, 1e-5f, 1.0f, 11, 1000, 11, 1000, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_layernorm_case(&cases[i], 200 + i);
}

/* ln_post in vit.c: the class token of every frame, read straight out of the
 * residual stream [F, L, W] with x_stride = L * W. The other tokens hold
 * distinct data that must not leak into the result. */
static void test_layernorm_class_token(void **state) {
    (void)state;
    const size_t L = 197, W = 768, frames[] = {1, 3};
    for (size_t fi = 0; fi < 2; fi++) {
        const size_t F = frames[fi], x_off = 5;
        float *stream = xmalloc_f(F * L * W), *cls = xmalloc_f(F * W), *ref = xmalloc_f(F * W),
              *got = xmalloc_f(F * W), *gb = xmalloc_f(2 * W);
        fill_rows_with_offsets(stream, F * L, W, 300 + fi, 1.0f);
        tu_fill_random(gb, 2 * W, 310 + fi, 0.5f);
        for (size_t i = 0; i < W; i++) gb[i] += 1.0f;
        for (size_t f = 0; f < F; f++) memcpy(cls + f * W, stream + f * L * W, W * sizeof(float));

        dbuf params = dbuf_new(2 * W);
        dbuf_put(&params, DENSE(0, 2 * W), gb);
        dbuf_upload(&params);
        dbuf xb = dbuf_new(x_off + F * L * W + 3);
        dbuf_put(&xb, DENSE(x_off, F * L * W), stream);
        dbuf_upload(&xb);
        dbuf yb = dbuf_new(F * W + 2);
        dbuf_upload(&yb);

        ST_CHECK(stacl_op_layernorm(g_ctx, F, W, 1e-5f, xb.mem, x_off, L * W, yb.mem, 1, W, params.mem, 0, W));
        ref_layernorm(F, W, 1e-5, cls, W, ref, W, gb, gb + W);
        dbuf_download(&yb);
        dbuf_get(&yb, DENSE(1, F * W), got);
        char what[96];
        snprintf(what, sizeof what, "layernorm class tokens F=%zu L=%zu W=%zu x_stride=L*W", F, L, W);
        expect_close(what, got, ref, F * W, LN_ATOL, LN_RTOL);
        const region yr = DENSE(1, F * W);
        dbuf_expect_untouched(what, &yb, &yr, 1);
        dbuf_download(&xb);
        dbuf_expect_untouched("layernorm residual stream", &xb, NULL, 0);

        dbuf_free(&params);
        dbuf_free(&xb);
        dbuf_free(&yb);
        free(stream);
        free(cls);
        free(ref);
        free(got);
        free(gb);
    }
}

/* ---- softmax --------------------------------------------------------------------- */

#define SM_ATOL 1e-8
#define SM_RTOL 1e-5

/* x: [rows, cols] host input. Runs the kernel at x_off inside a canary
 * buffer and checks against the reference. */
static void run_softmax_kernel(const char *label, size_t rows, size_t cols, size_t causal_len, const float *x,
                               size_t x_off);

/* Both softmax kernels, whatever the device: the work-group-per-row one
 * (GPUs) and the row-per-work-item one (CPU devices, softmax_rows_wide),
 * chosen by the device type the context recorded. */
static void run_softmax_case(const char *label, size_t rows, size_t cols, size_t causal_len, const float *x,
                             size_t x_off) {
    const int was_cpu = g_ctx->info.is_cpu;
    char what[96];
    for (int cpu = 0; cpu <= 1; cpu++) {
        g_ctx->info.is_cpu = cpu;
        snprintf(what, sizeof what, "%s%s", label, cpu ? " (row kernel)" : "");
        run_softmax_kernel(what, rows, cols, causal_len, x, x_off);
    }
    g_ctx->info.is_cpu = was_cpu;
}

static void run_softmax_kernel(const char *label, size_t rows, size_t cols, size_t causal_len, const float *x,
                               size_t x_off) {
    float *ref = xmalloc_f(rows * cols), *got = xmalloc_f(rows * cols);
    dbuf xb = dbuf_new(x_off + rows * cols + 9);
    const region r = DENSE(x_off, rows * cols);
    dbuf_put(&xb, r, x);
    dbuf_upload(&xb);
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, causal_len, xb.mem, x_off));
    ref_softmax(rows, cols, causal_len, x, ref);
    dbuf_download(&xb);
    dbuf_get(&xb, r, got);
    char what[128];
    snprintf(what, sizeof what, "softmax %s %zux%zu causal %zu @%zu", label, rows, cols, causal_len, x_off);
    expect_close(what, got, ref, rows * cols, SM_ATOL, SM_RTOL);
    dbuf_expect_untouched(what, &xb, &r, 1);
    if (causal_len) /* masked keys must be exactly zero */
        for (size_t i = 0; i < rows; i++)
            for (size_t c = i % causal_len + 1; c < cols; c++) assert_true(got[i * cols + c] == 0.0f);
    dbuf_free(&xb);
    free(ref);
    free(got);
}

static void test_softmax_shapes(void **state) {
    (void)state;
    const size_t shapes[][3] = {
        /* rows, cols, offset */
        {1, 1, 0},
        {3, 7, 5},
        {5, 33, 1},
        {2 * 3 * 197, 197, 17}, /* attention scores: frames 2 x heads 3 x 197 queries */
        {4, 1000, 3},
        {2, 768, 0},
        {3, 257, 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const size_t rows = shapes[i][0], cols = shapes[i][1];
        float *x = xmalloc_f(rows * cols);
        tu_fill_random(x, rows * cols, 400 + i, 4.0f);
        run_softmax_case("random", rows, cols, 0, x, shapes[i][2]);
        free(x);
    }
}

/* exp(90) overflows float: the kernel must subtract the row max. Rows around
 * +80 (a naive softmax gives inf/inf), around -80 (a naive one gives 0/0),
 * and around 1e4. */
static void test_softmax_large_magnitude(void **state) {
    (void)state;
    const size_t rows = 6, cols = 197;
    float *x = xmalloc_f(rows * cols);
    tu_fill_random(x, rows * cols, 500, 10.0f);
    const float centre[6] = {80.0f, 85.0f, -80.0f, -100.0f, 1e4f, -1e4f};
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) x[r * cols + c] += centre[r];
    run_softmax_case("large", rows, cols, 0, x, 4);
    /* one dominant entry: the row becomes (almost) one-hot */
    for (size_t c = 0; c < cols; c++) x[c] = 80.0f;
    x[100] = 88.7f;
    run_softmax_case("dominant", 1, cols, 0, x, 0);
    free(x);
}

/* Causal mask over several sequences: rows = 3 sequences x 5 queries. */
static void test_softmax_causal(void **state) {
    (void)state;
    const size_t L = 5, rows = 3 * L;
    float x[3 * 5 * 5];
    tu_fill_random(x, rows * L, 600, 4.0f);
    run_softmax_case("causal", rows, L, L, x, 0);
    run_softmax_case("causal", rows, L, L, x, 13);
    /* masked positions hold huge values: they must not take part */
    for (size_t r = 0; r < rows; r++)
        for (size_t c = r % L + 1; c < L; c++) x[r * L + c] = 1e30f;
    run_softmax_case("causal+masked huge", rows, L, L, x, 2);
    /* CLIP's text tower shape: 2 sequences x 77 tokens x 2 heads */
    const size_t T = 77, trow = 2 * 2 * T;
    float *xt = xmalloc_f(trow * T);
    tu_fill_random(xt, trow * T, 601, 80.0f);
    run_softmax_case("causal text", trow, T, T, xt, 1);
    free(xt);
}

/* ---- bias + activation ------------------------------------------------------ */

static const char *act_name(stacl_bias_act a) {
    return a == STACL_BIAS_ONLY ? "bias" : a == STACL_BIAS_QUICK_GELU ? "bias+quick_gelu" : "bias+gelu";
}

static void act_tol(stacl_bias_act a, double *atol, double *rtol) {
    if (a == STACL_BIAS_ONLY) *atol = 0.0, *rtol = 0.0;           /* one float add: exact */
    else if (a == STACL_BIAS_QUICK_GELU) *atol = 1e-6, *rtol = 1e-5;
    else *atol = 4e-6, *rtol = 1e-5;
}

/* y: host [rows, cols], bias: [cols]; returns the kernel's result in got. */
static void run_bias_act(stacl_bias_act act, size_t rows, size_t cols, const float *y, const float *bias,
                         size_t y_off, size_t bias_off, float *got) {
    dbuf yb = dbuf_new(y_off + rows * cols + 6), bb = dbuf_new(bias_off + cols + 3);
    const region yr = DENSE(y_off, rows * cols);
    dbuf_put(&yb, yr, y);
    dbuf_put(&bb, DENSE(bias_off, cols), bias);
    dbuf_upload(&yb);
    dbuf_upload(&bb);
    ST_CHECK(stacl_op_bias_act(g_ctx, act, rows, cols, yb.mem, y_off, bb.mem, bias_off));
    dbuf_download(&yb);
    dbuf_download(&bb);
    dbuf_get(&yb, yr, got);
    dbuf_expect_untouched("bias_act output", &yb, &yr, 1);
    dbuf_expect_untouched("bias_act bias", &bb, NULL, 0);
    dbuf_free(&yb);
    dbuf_free(&bb);
}

static void test_bias_act_shapes(void **state) {
    (void)state;
    const size_t shapes[][2] = {{1, 1}, {5, 7}, {3, 33}, {197, 768}, {2, 1000}, {197, 3072}};
    const stacl_bias_act acts[] = {STACL_BIAS_ONLY, STACL_BIAS_QUICK_GELU, STACL_BIAS_GELU};
    const ref_act ref_acts[] = {REF_ACT_NONE, REF_ACT_QUICK_GELU, REF_ACT_GELU};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t rows = shapes[s][0], cols = shapes[s][1];
        float *y = xmalloc_f(rows * cols), *bias = xmalloc_f(cols), *ref = xmalloc_f(rows * cols),
              *got = xmalloc_f(rows * cols);
        tu_fill_random(y, rows * cols, 700 + s, 3.0f);
        tu_fill_random(bias, cols, 710 + s, 3.0f); /* y + bias spans [-6, 6] */
        for (size_t a = 0; a < 3; a++) {
            memcpy(ref, y, rows * cols * sizeof(float));
            ref_bias_act(ref_acts[a], rows, cols, ref, bias);
            run_bias_act(acts[a], rows, cols, y, bias, 9 + a, 4, got);
            double atol, rtol;
            act_tol(acts[a], &atol, &rtol);
            char what[96];
            snprintf(what, sizeof what, "%s %zux%zu", act_name(acts[a]), rows, cols);
            expect_close(what, got, ref, rows * cols, atol, rtol);
        }
        free(y);
        free(bias);
        free(ref);
        free(got);
    }
}

/* The two activations on a dense grid of [-6, 6]: each kernel matches its
 * own formula and is clearly distinguishable from the other one. */
static void test_gelu_vs_quick_gelu(void **state) {
    (void)state;
    const size_t rows = 3, cols = 401, n = rows * cols;
    float *y = xmalloc_f(n), *bias = xmalloc_f(cols), *got_q = xmalloc_f(n), *got_g = xmalloc_f(n),
          *ref_q = xmalloc_f(n), *ref_g = xmalloc_f(n);
    tu_fill_random(bias, cols, 800, 0.25f);
    for (size_t i = 0; i < n; i++) y[i] = (float)(-6.0 + 12.0 * (double)i / (double)(n - 1)) - bias[i % cols];
    memcpy(ref_q, y, n * sizeof(float));
    memcpy(ref_g, y, n * sizeof(float));
    ref_bias_act(REF_ACT_QUICK_GELU, rows, cols, ref_q, bias);
    ref_bias_act(REF_ACT_GELU, rows, cols, ref_g, bias);
    run_bias_act(STACL_BIAS_QUICK_GELU, rows, cols, y, bias, 0, 0, got_q);
    run_bias_act(STACL_BIAS_GELU, rows, cols, y, bias, 0, 0, got_g);
    double atol, rtol;
    act_tol(STACL_BIAS_QUICK_GELU, &atol, &rtol);
    expect_close("quick_gelu on [-6, 6]", got_q, ref_q, n, atol, rtol);
    act_tol(STACL_BIAS_GELU, &atol, &rtol);
    expect_close("gelu on [-6, 6]", got_g, ref_g, n, atol, rtol);
    /* GELU and QuickGELU differ by up to ~0.02 on this range */
    const double gap_g = tu_max_abs_diff(got_g, ref_q, n), gap_q = tu_max_abs_diff(got_q, ref_g, n);
    printf("    gelu kernel vs quick_gelu ref %.3g, quick_gelu kernel vs gelu ref %.3g\n", gap_g, gap_q);
    assert_true(gap_g > 1e-2 && gap_q > 1e-2);
    /* sanity of the references at a few points */
    assert_true(fabs(ref_gelu(1.0) - 0.8413447460685429) < 1e-12);
    assert_true(fabs(ref_quick_gelu(1.0) - 1.0 / (1.0 + exp(-1.702))) < 1e-12);
    free(y);
    free(bias);
    free(got_q);
    free(got_g);
    free(ref_q);
    free(ref_g);
}

/* ---- split / merge heads ----------------------------------------------------- */

static void test_split_heads(void **state) {
    (void)state;
    const size_t shapes[][4] = {/* F, L, H, D */ {1, 197, 12, 64}, {2, 197, 4, 32}, {2, 7, 3, 32}, {3, 1, 1, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t F = shapes[s][0], L = shapes[s][1], H = shapes[s][2], D = shapes[s][3];
        const size_t n = F * L * H * D;
        const float scale = 1.0f / sqrtf((float)D);
        float *qkv = xmalloc_f(3 * n), *ref = xmalloc_f(3 * n), *got = xmalloc_f(3 * n);
        tu_fill_random(qkv, 3 * n, 900 + s, 2.0f);
        ref_split_heads(F, L, H, D, scale, qkv, ref, ref + n, ref + 2 * n);

        const size_t qkv_off = 17;
        /* out: [canary 5 | v | canary 3 | q | canary 11 | k | canary 2] */
        const size_t v_off = 5, q_off = v_off + n + 3, k_off = q_off + n + 11;
        dbuf in = dbuf_new(qkv_off + 3 * n + 4), out = dbuf_new(k_off + n + 2);
        dbuf_put(&in, DENSE(qkv_off, 3 * n), qkv);
        dbuf_upload(&in);
        dbuf_upload(&out);
        ST_CHECK(stacl_op_split_heads(g_ctx, F, L, H, D, scale, in.mem, qkv_off, out.mem, q_off, k_off, v_off));
        dbuf_download(&out);
        dbuf_download(&in);
        const region written[3] = {DENSE(q_off, n), DENSE(k_off, n), DENSE(v_off, n)};
        for (int i = 0; i < 3; i++) dbuf_get(&out, written[i], got + (size_t)i * n);
        char what[96];
        snprintf(what, sizeof what, "split_heads F=%zu L=%zu H=%zu D=%zu", F, L, H, D);
        expect_close(what, got, ref, 3 * n, 0.0, 0.0);
        dbuf_expect_untouched(what, &out, written, 3);
        dbuf_expect_untouched("split_heads input", &in, NULL, 0);
        dbuf_free(&in);
        dbuf_free(&out);
        free(qkv);
        free(ref);
        free(got);
    }
}

static void test_merge_heads(void **state) {
    (void)state;
    const size_t shapes[][4] = {{1, 197, 12, 64}, {2, 197, 4, 32}, {2, 7, 3, 32}, {3, 1, 2, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t F = shapes[s][0], L = shapes[s][1], H = shapes[s][2], D = shapes[s][3];
        const size_t n = F * L * H * D, o_off = 3, y_off = 21;
        float *o = xmalloc_f(n), *ref = xmalloc_f(n), *got = xmalloc_f(n);
        tu_fill_random(o, n, 1000 + s, 2.0f);
        ref_merge_heads(F, L, H, D, o, ref);
        dbuf ob = dbuf_new(o_off + n + 5), yb = dbuf_new(y_off + n + 1);
        dbuf_put(&ob, DENSE(o_off, n), o);
        dbuf_upload(&ob);
        dbuf_upload(&yb);
        ST_CHECK(stacl_op_merge_heads(g_ctx, F, L, H, D, ob.mem, o_off, yb.mem, y_off));
        dbuf_download(&yb);
        dbuf_download(&ob);
        const region yr = DENSE(y_off, n);
        dbuf_get(&yb, yr, got);
        char what[96];
        snprintf(what, sizeof what, "merge_heads F=%zu L=%zu H=%zu D=%zu", F, L, H, D);
        expect_close(what, got, ref, n, 0.0, 0.0);
        dbuf_expect_untouched(what, &yb, &yr, 1);
        dbuf_expect_untouched("merge_heads input", &ob, NULL, 0);
        dbuf_free(&ob);
        dbuf_free(&yb);
        free(o);
        free(ref);
        free(got);
    }
}

/* split then merge of the q part is the identity up to the scale. */
static void test_split_merge_roundtrip(void **state) {
    (void)state;
    const size_t F = 2, L = 7, H = 3, D = 32, n = F * L * H * D, W = H * D;
    float *qkv = xmalloc_f(3 * n), *got = xmalloc_f(n);
    tu_fill_random(qkv, 3 * n, 1100, 1.0f);
    dbuf in = dbuf_new(3 * n), heads = dbuf_new(3 * n), y = dbuf_new(n);
    dbuf_put(&in, DENSE(0, 3 * n), qkv);
    dbuf_upload(&in);
    dbuf_upload(&heads);
    dbuf_upload(&y);
    ST_CHECK(stacl_op_split_heads(g_ctx, F, L, H, D, 1.0f, in.mem, 0, heads.mem, 0, n, 2 * n));
    ST_CHECK(stacl_op_merge_heads(g_ctx, F, L, H, D, heads.mem, 2 * n, y.mem, 0)); /* v */
    dbuf_download(&y);
    dbuf_get(&y, DENSE(0, n), got);
    for (size_t row = 0; row < F * L; row++)
        for (size_t c = 0; c < W; c++) assert_true(got[row * W + c] == qkv[row * 3 * W + 2 * W + c]);
    dbuf_free(&in);
    dbuf_free(&heads);
    dbuf_free(&y);
    free(qkv);
    free(got);
}

/* ---- im2col / assemble tokens / conv ------------------------------------------- */

static void test_im2col(void **state) {
    (void)state;
    const size_t shapes[][3] = {/* F, S, p */ {1, 224, 16}, {2, 21, 7}, {1, 23, 7}, {2, 4, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t F = shapes[s][0], S = shapes[s][1], p = shapes[s][2], G = S / p;
        const size_t n_img = F * 3 * S * S, n_cols = F * G * G * 3 * p * p, img_off = 6, cols_off = 10;
        float *img = xmalloc_f(n_img), *ref = xmalloc_f(n_cols), *got = xmalloc_f(n_cols);
        tu_fill_random(img, n_img, 1200 + s, 1.0f);
        ref_im2col(F, S, p, img, ref);
        dbuf ib = dbuf_new(img_off + n_img + 2), cb = dbuf_new(cols_off + n_cols + 3);
        dbuf_put(&ib, DENSE(img_off, n_img), img);
        dbuf_upload(&ib);
        dbuf_upload(&cb);
        ST_CHECK(stacl_op_im2col(g_ctx, F, S, p, ib.mem, img_off, cb.mem, cols_off));
        dbuf_download(&cb);
        dbuf_download(&ib);
        const region cr = DENSE(cols_off, n_cols);
        dbuf_get(&cb, cr, got);
        char what[96];
        snprintf(what, sizeof what, "im2col F=%zu S=%zu patch=%zu", F, S, p);
        expect_close(what, got, ref, n_cols, 0.0, 0.0);
        dbuf_expect_untouched(what, &cb, &cr, 1);
        dbuf_expect_untouched("im2col image", &ib, NULL, 0);
        dbuf_free(&ib);
        dbuf_free(&cb);
        free(img);
        free(ref);
        free(got);
    }
}

static void test_assemble_tokens(void **state) {
    (void)state;
    const size_t shapes[][3] = {/* F, P, W */ {1, 196, 768}, {2, 9, 33}, {3, 1, 1}, {2, 49, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t F = shapes[s][0], P = shapes[s][1], W = shapes[s][2], L = P + 1;
        float *patches = xmalloc_f(F * P * W), *cls = xmalloc_f(W), *pos = xmalloc_f(L * W),
              *ref = xmalloc_f(F * L * W), *got = xmalloc_f(F * L * W);
        tu_fill_random(patches, F * P * W, 1300 + s, 1.0f);
        tu_fill_random(cls, W, 1310 + s, 1.0f);
        tu_fill_random(pos, L * W, 1320 + s, 1.0f);
        ref_assemble_tokens(F, P, W, patches, cls, pos, ref);
        /* params: [canary 2 | pos | canary 3 | cls | canary 1] */
        const size_t pos_off = 2, cls_off = 2 + L * W + 3, patches_off = 8, x_off = 4;
        dbuf params = dbuf_new(cls_off + W + 1), pb = dbuf_new(patches_off + F * P * W + 2),
             xb = dbuf_new(x_off + F * L * W + 5);
        dbuf_put(&params, DENSE(pos_off, L * W), pos);
        dbuf_put(&params, DENSE(cls_off, W), cls);
        dbuf_put(&pb, DENSE(patches_off, F * P * W), patches);
        dbuf_upload(&params);
        dbuf_upload(&pb);
        dbuf_upload(&xb);
        ST_CHECK(stacl_op_assemble_tokens(g_ctx, F, P, W, pb.mem, patches_off, params.mem, cls_off, pos_off, xb.mem,
                                          x_off));
        dbuf_download(&xb);
        dbuf_download(&pb);
        dbuf_download(&params);
        const region xr = DENSE(x_off, F * L * W);
        dbuf_get(&xb, xr, got);
        char what[96];
        snprintf(what, sizeof what, "assemble_tokens F=%zu P=%zu W=%zu", F, P, W);
        expect_close(what, got, ref, F * L * W, 0.0, 0.0);
        dbuf_expect_untouched(what, &xb, &xr, 1);
        dbuf_expect_untouched("assemble_tokens patches", &pb, NULL, 0);
        dbuf_expect_untouched("assemble_tokens params", &params, NULL, 0);
        dbuf_free(&params);
        dbuf_free(&pb);
        dbuf_free(&xb);
        free(patches);
        free(cls);
        free(pos);
        free(ref);
        free(got);
    }
}

/* An int32 device buffer: [canary ints | data | canary ints]. */
static cl_mem int_buffer(const int *data, size_t off, size_t n, size_t total) {
    int *img = malloc(total * sizeof *img);
    assert_non_null(img);
    for (size_t i = 0; i < total; i++) img[i] = (int)CANARY_BITS;
    memcpy(img + off, data, n * sizeof *data);
    cl_int err;
    cl_mem m = clCreateBuffer(g_ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, total * sizeof *img, img, &err);
    CL_CHECK(err);
    free(img);
    return m;
}

static void test_embed_tokens(void **state) {
    (void)state;
    const size_t shapes[][4] = {/* n, ctx, W, vocab */ {2, 77, 64, 1000}, {3, 8, 33, 64}, {1, 1, 1, 2}, {4, 5, 7, 9}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t N = shapes[s][0], L = shapes[s][1], W = shapes[s][2], V = shapes[s][3];
        int *tok = malloc(N * L * sizeof *tok);
        assert_non_null(tok);
        for (size_t i = 0; i < N * L; i++) tok[i] = (int)((i * 7919 + s) % V); /* first and last ids included */
        tok[0] = 0;
        tok[N * L - 1] = (int)V - 1;
        float *table = xmalloc_f(V * W), *pos = xmalloc_f(L * W), *ref = xmalloc_f(N * L * W),
              *got = xmalloc_f(N * L * W);
        tu_fill_random(table, V * W, 1400 + s, 1.0f);
        tu_fill_random(pos, L * W, 1410 + s, 1.0f);
        ref_embed_tokens(N, L, W, tok, table, pos, ref);
        /* params: [canary 3 | table | canary 2 | pos | canary 1]; tokens at 5. */
        const size_t table_off = 3, pos_off = 3 + V * W + 2, x_off = 6, tok_off = 5;
        dbuf params = dbuf_new(pos_off + L * W + 1), xb = dbuf_new(x_off + N * L * W + 4);
        dbuf_put(&params, DENSE(table_off, V * W), table);
        dbuf_put(&params, DENSE(pos_off, L * W), pos);
        dbuf_upload(&params);
        dbuf_upload(&xb);
        cl_mem tb = int_buffer(tok, tok_off, N * L, tok_off + N * L + 3);
        ST_CHECK(stacl_op_embed_tokens(g_ctx, N, L, W, V, tb, tok_off, params.mem, table_off, pos_off, xb.mem, x_off));
        dbuf_download(&xb);
        dbuf_download(&params);
        const region xr = DENSE(x_off, N * L * W);
        dbuf_get(&xb, xr, got);
        char what[96];
        snprintf(what, sizeof what, "embed_tokens N=%zu L=%zu W=%zu V=%zu", N, L, W, V);
        expect_close(what, got, ref, N * L * W, 0.0, 0.0);
        dbuf_expect_untouched(what, &xb, &xr, 1);
        dbuf_expect_untouched("embed_tokens params", &params, NULL, 0);
        clReleaseMemObject(tb);
        dbuf_free(&params);
        dbuf_free(&xb);
        free(tok);
        free(table);
        free(pos);
        free(ref);
        free(got);
    }
}

static void test_gather_rows(void **state) {
    (void)state;
    const size_t shapes[][3] = {/* n, x rows, W */ {4, 308, 512}, {3, 24, 33}, {1, 1, 1}, {5, 9, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t N = shapes[s][0], R = shapes[s][1], W = shapes[s][2];
        int rows[8];
        for (size_t r = 0; r < N; r++) rows[r] = (int)((r * 37 + s * 5) % R);
        rows[N - 1] = (int)R - 1; /* the last row of x */
        float *x = xmalloc_f(R * W), *ref = xmalloc_f(N * W), *got = xmalloc_f(N * W);
        tu_fill_random(x, R * W, 1500 + s, 1.0f);
        ref_gather_rows(N, W, x, rows, ref);
        const size_t x_off = 2, y_off = 9, rows_off = 4;
        dbuf xb = dbuf_new(x_off + R * W + 3), yb = dbuf_new(y_off + N * W + 2);
        dbuf_put(&xb, DENSE(x_off, R * W), x);
        dbuf_upload(&xb);
        dbuf_upload(&yb);
        cl_mem rb = int_buffer(rows, rows_off, N, rows_off + N + 2);
        ST_CHECK(stacl_op_gather_rows(g_ctx, N, W, R, xb.mem, x_off, rb, rows_off, yb.mem, y_off));
        dbuf_download(&yb);
        dbuf_download(&xb);
        const region yr = DENSE(y_off, N * W);
        dbuf_get(&yb, yr, got);
        char what[96];
        snprintf(what, sizeof what, "gather_rows N=%zu R=%zu W=%zu", N, R, W);
        expect_close(what, got, ref, N * W, 0.0, 0.0);
        dbuf_expect_untouched(what, &yb, &yr, 1);
        dbuf_expect_untouched("gather_rows x", &xb, NULL, 0);
        clReleaseMemObject(rb);
        dbuf_free(&xb);
        dbuf_free(&yb);
        free(x);
        free(ref);
        free(got);
    }
}

static void fabs_copy(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = fabsf(src[i]);
}

/* The patch embedding as vit.c runs it (im2col, then cols x W^T through
 * stacl_linear, weights inside a parameter buffer) equals the convolution. */
static void test_im2col_linear_is_conv(void **state) {
    (void)state;
    const size_t shapes[][4] = {/* F, S, p, W */ {2, 21, 7, 33}, {1, 224, 16, 768}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t F = shapes[s][0], S = shapes[s][1], p = shapes[s][2], W = shapes[s][3];
        const size_t G = S / p, P = G * G, K = 3 * p * p, n_img = F * 3 * S * S;
        const size_t img_off = 3, cols_off = 5, w_off = 7, y_off = 2;
        float *img = xmalloc_f(n_img), *w = xmalloc_f(W * K), *ref = xmalloc_f(F * P * W),
              *mag = xmalloc_f(F * P * W), *got = xmalloc_f(F * P * W);
        float *aimg = xmalloc_f(n_img), *aw = xmalloc_f(W * K);
        tu_fill_random(img, n_img, 1400 + s, 2.0f);
        tu_fill_random(w, W * K, 1410 + s, 0.05f);
        ref_conv2d_patch(F, S, p, W, img, w, ref);
        fabs_copy(aimg, img, n_img);
        fabs_copy(aw, w, W * K);
        ref_conv2d_patch(F, S, p, W, aimg, aw, mag); /* sum |img| |w| per output */

        dbuf ib = dbuf_new(img_off + n_img), cb = dbuf_new(cols_off + F * P * K), wb = dbuf_new(w_off + W * K + 1),
             yb = dbuf_new(y_off + F * P * W + 3);
        dbuf_put(&ib, DENSE(img_off, n_img), img);
        dbuf_put(&wb, DENSE(w_off, W * K), w);
        dbuf_upload(&ib);
        dbuf_upload(&cb);
        dbuf_upload(&wb);
        dbuf_upload(&yb);
        ST_CHECK(stacl_op_im2col(g_ctx, F, S, p, ib.mem, img_off, cb.mem, cols_off));
        ST_CHECK(stacl_linear(g_ctx, F * P, K, W, cb.mem, cols_off, wb.mem, w_off, yb.mem, y_off, 0));
        dbuf_download(&yb);
        const region yr = DENSE(y_off, F * P * W);
        dbuf_get(&yb, yr, got);
        char what[96];
        snprintf(what, sizeof what, "im2col+linear vs conv F=%zu S=%zu p=%zu W=%zu", F, S, p, W);
        expect_close_mag(what, got, ref, mag, F * P * W, 2.0 * sqrt((double)K) * U_F32);
        dbuf_expect_untouched(what, &yb, &yr, 1);
        dbuf_free(&ib);
        dbuf_free(&cb);
        dbuf_free(&wb);
        dbuf_free(&yb);
        free(img);
        free(w);
        free(ref);
        free(mag);
        free(got);
        free(aimg);
        free(aw);
    }
}

/* ---- zero-sized launches ---------------------------------------------------------- */

static void test_zero_rows(void **state) {
    (void)state;
    dbuf b = dbuf_new(16);
    dbuf_upload(&b);
    ST_CHECK(stacl_op_layernorm(g_ctx, 0, 8, 1e-5f, b.mem, 0, 8, b.mem, 0, 8, b.mem, 0, 8));
    ST_CHECK(stacl_op_softmax(g_ctx, 0, 8, 0, b.mem, 0));
    ST_CHECK(stacl_op_bias_act(g_ctx, STACL_BIAS_GELU, 0, 8, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_merge_heads(g_ctx, 0, 3, 2, 2, b.mem, 0, b.mem, 4));
    dbuf_download(&b);
    dbuf_expect_untouched("zero-row launches", &b, NULL, 0);
    dbuf_free(&b);
}

/* ---- determinism -------------------------------------------------------------- */

/* The reductions use a fixed tree per work-group size: the same input gives
 * the same bits, run after run and at any buffer offset. */
static void test_reductions_deterministic(void **state) {
    (void)state;
    const size_t rows = 197, cols = 768, n = rows * cols, off2 = n + 37;
    float *x = xmalloc_f(n), *gb = xmalloc_f(2 * cols), *a = xmalloc_f(n), *b = xmalloc_f(n), *c = xmalloc_f(n);
    fill_rows_with_offsets(x, rows, cols, 1500, 1.0f);
    tu_fill_random(gb, 2 * cols, 1501, 1.0f);
    dbuf params = dbuf_new(2 * cols), xb = dbuf_new(2 * n + 40), yb = dbuf_new(2 * n + 40);
    dbuf_put(&params, DENSE(0, 2 * cols), gb);
    dbuf_put(&xb, DENSE(0, n), x);
    dbuf_put(&xb, DENSE(off2, n), x);
    dbuf_upload(&params);
    dbuf_upload(&xb);
    dbuf_upload(&yb);

    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, 1e-5f, xb.mem, 0, cols, yb.mem, 0, cols, params.mem, 0, cols));
    dbuf_download(&yb);
    dbuf_get(&yb, DENSE(0, n), a);
    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, 1e-5f, xb.mem, 0, cols, yb.mem, 0, cols, params.mem, 0, cols));
    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, 1e-5f, xb.mem, off2, cols, yb.mem, off2, cols, params.mem, 0,
                                cols));
    dbuf_download(&yb);
    dbuf_get(&yb, DENSE(0, n), b);
    dbuf_get(&yb, DENSE(off2, n), c);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_memory_equal(a, c, n * sizeof(float));
    printf("    layernorm %zux%zu: identical bits on two runs and at two offsets\n", rows, cols);

    /* softmax is in place: run it on two copies, then once more on a fresh copy */
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, xb.mem, 0));
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, xb.mem, off2));
    dbuf_download(&xb);
    dbuf_get(&xb, DENSE(0, n), a);
    dbuf_get(&xb, DENSE(off2, n), b);
    CL_CHECK(clEnqueueWriteBuffer(g_ctx->queue, xb.mem, CL_TRUE, 0, n * sizeof(float), x, 0, NULL, NULL));
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, xb.mem, 0));
    dbuf_download(&xb);
    dbuf_get(&xb, DENSE(0, n), c);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_memory_equal(a, c, n * sizeof(float));
    printf("    softmax %zux%zu: identical bits on three runs\n", rows, cols);

    dbuf_free(&params);
    dbuf_free(&xb);
    dbuf_free(&yb);
    free(x);
    free(gb);
    free(a);
    free(b);
    free(c);
}

/* ---- profiler ----------------------------------------------------------------- */

static const stacl_op_time *find_op(const stacl_op_time *e, int n, const char *op) {
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].op, op) == 0) return &e[i];
    return NULL;
}

static void test_profiler(void **state) {
    (void)state;
    const size_t rows = 33, cols = 64;
    const size_t n_params = 2 * cols + cols * cols; /* gamma, beta, then a [cols, cols] weight */
    float *x = xmalloc_f(rows * cols), *p = xmalloc_f(n_params);
    tu_fill_random(x, rows * cols, 1600, 1.0f);
    tu_fill_random(p, n_params, 1601, 0.1f);
    dbuf xb = dbuf_new(rows * cols), yb = dbuf_new(rows * cols), params = dbuf_new(n_params);
    dbuf_put(&xb, DENSE(0, rows * cols), x);
    dbuf_put(&params, DENSE(0, n_params), p);
    dbuf_upload(&xb);
    dbuf_upload(&yb);
    dbuf_upload(&params);

    /* not profiling: no slot */
    assert_null(stacl_profile_slot(g_ctx, "none"));

    stacl_profile_begin(g_ctx);
    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, 1e-5f, xb.mem, 0, cols, yb.mem, 0, cols, params.mem, 0, cols));
    ST_CHECK(stacl_op_layernorm(g_ctx, rows, cols, 1e-5f, yb.mem, 0, cols, yb.mem, 0, cols, params.mem, 0, cols));
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, yb.mem, 0));
    ST_CHECK(stacl_op_bias_act(g_ctx, STACL_BIAS_GELU, rows, cols, yb.mem, 0, params.mem, 0));
    ST_CHECK(stacl_op_merge_heads(g_ctx, 1, rows, 2, cols / 2, yb.mem, 0, xb.mem, 0));
    ST_CHECK(stacl_linear(g_ctx, rows, cols, cols, xb.mem, 0, params.mem, 2 * cols, yb.mem, 0, 0));
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, yb.mem, 0));

    stacl_op_time entries[STACL_PROFILE_MAX_OPS];
    int count = -1;
    double total = -1.0;
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, &total));
    double sum = 0.0;
    for (int i = 0; i < count; i++) {
        printf("    profile: %-16s %d launches %.4f ms\n", entries[i].op, entries[i].launches, entries[i].ms);
        assert_true(entries[i].ms >= 0.0);
        assert_true(entries[i].launches >= 1);
        sum += entries[i].ms;
    }
    printf("    profile: total %.4f ms\n", total);
    assert_int_equal(count, 5);
    const struct { const char *op; int launches; } expected[] = {
        {"layernorm", 2}, {"softmax", 2}, {"bias_gelu", 1}, {"merge_heads", 1}, {"gemm", 1}};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        const stacl_op_time *e = find_op(entries, count, expected[i].op);
        if (!e) {
            print_error("profile has no entry for '%s'\n", expected[i].op);
            fail();
        }
        assert_int_equal(e->launches, expected[i].launches);
    }
    assert_true(total >= 0.0);
    assert_true(fabs(total - sum) <= 1e-9 * (1.0 + total));

    /* collect ends profiling: later launches record nothing */
    assert_null(stacl_profile_slot(g_ctx, "none"));
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, yb.mem, 0));
    count = -1;
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, &total));
    assert_int_equal(count, 0);
    assert_true(total == 0.0);

    /* a new session starts from zero */
    stacl_profile_begin(g_ctx);
    ST_CHECK(stacl_op_softmax(g_ctx, rows, cols, 0, yb.mem, 0));
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, NULL));
    assert_int_equal(count, 1);
    assert_string_equal(entries[0].op, "softmax");
    assert_int_equal(entries[0].launches, 1);

    dbuf_free(&xb);
    dbuf_free(&yb);
    dbuf_free(&params);
    free(x);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects_nan),
        cmocka_unit_test(test_layernorm_shapes),
        cmocka_unit_test(test_layernorm_in_place),
        cmocka_unit_test(test_layernorm_class_token),
        cmocka_unit_test(test_softmax_shapes),
        cmocka_unit_test(test_softmax_large_magnitude),
        cmocka_unit_test(test_softmax_causal),
        cmocka_unit_test(test_bias_act_shapes),
        cmocka_unit_test(test_gelu_vs_quick_gelu),
        cmocka_unit_test(test_split_heads),
        cmocka_unit_test(test_merge_heads),
        cmocka_unit_test(test_split_merge_roundtrip),
        cmocka_unit_test(test_im2col),
        cmocka_unit_test(test_assemble_tokens),
        cmocka_unit_test(test_embed_tokens),
        cmocka_unit_test(test_gather_rows),
        cmocka_unit_test(test_im2col_linear_is_conv),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_reductions_deterministic),
        cmocka_unit_test(test_profiler),
    };
    return cmocka_run_group_tests(tests, group_setup, cl_test_group_teardown);
}
