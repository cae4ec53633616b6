/* test_backward_kernels.c: the training kernels (kernels/backward.cl,
 * kernels/adapter_backward.cl, via host/ops_backward.h), three ways:
 *
 * 1. Against hand-derived double-precision references (reference_ops.c) on
 *    odd sizes (rows 7, cols 37 / 197 / 768 / 1, heads 3 x head_dim 5,
 *    T = 1 and 3, grid 1, 2, 3 and 14, conv kernels (3,1,1), (3,3,3) and
 *    (5,1,3), widths that are multiples of nothing, so every partial tile of
 *    the blocked adapter kernels is hit), at non-zero offsets in buffers whose
 *    other elements hold a NaN canary that must come back bit-for-bit (the
 *    class token rows of dx included, and the gaps between the gradient
 *    tensors), and with the accumulating outputs pre-filled (result = old +
 *    new).
 * 2. Gradient checks by central finite differences on the host, in double:
 *    for a random direction v, <dL/dinput, v> from the device kernels must
 *    match (L(x + e v) - L(x - e v)) / (2 e), L computed with the double
 *    forward references (LayerNorm, softmax, GELU / QuickGELU, the whole
 *    adapter). This checks the backward formulas independently of the
 *    hand-derived references of 1.
 * 3. Layout identities: split_merged inverts merge_heads, join_heads is the
 *    adjoint of split_heads (<split(a), b> = <a, join(b)>).
 * Also: determinism of the accumulating kernels (same inputs, same bits),
 * empty shapes, and (STACL_TEST_TIMING=1) the adapter kernels' device time
 * on ViT-B's shape, forward and backward.
 *
 * Tolerances (u = 2^-24), stated per check below; an element passes when
 * |got - ref| <= bound, tested as !(d <= bound) fails, so a NaN always fails. */
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
#include "ops_backward.h"
#include "reference_ops.h"
#include "test_util.h"

#define U_F32 (1.0 / 16777216.0)

/* ---- helpers ------------------------------------------------------------------ */

static double *xmalloc_d(size_t n) {
    double *p = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(p);
    return p;
}

static double *to_double(const float *src, size_t n) {
    double *d = xmalloc_d(n);
    for (size_t i = 0; i < n; i++) d[i] = src[i];
    return d;
}

static double dot_d(const double *a, const double *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Passes when |got[i] - ref[i]| <= bound[i] for all i (NaN fails); prints
 * the max error and the largest fraction of its bound used. */
static void expect_within(const char *what, const float *got, const double *ref, const double *bound, size_t n) {
    double max_err = 0.0, max_ratio = 0.0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]);
        if (!(d <= bound[i])) {
            if (!bad) first = i;
            bad++;
        }
        if (!(d <= max_err)) max_err = isnan(d) ? INFINITY : d;
        const double ratio = d == 0.0 ? 0.0 : d / bound[i];
        if (!(ratio <= max_ratio)) max_ratio = isnan(ratio) ? INFINITY : ratio;
    }
    printf("    %-62s max|err| %-9.3g (%.3f of its bound)\n", what, max_err, max_ratio);
    if (bad) {
        print_error("%s: %zu of %zu out of tolerance; first [%zu] got %.9g ref %.9g bound %.3g\n", what, bad, n,
                    first, (double)got[first], ref[first], bound[first]);
        fail();
    }
}

/* Passes when the device's directional derivative matches the finite
 * difference within tol. */
static void expect_fd(const char *what, double analytic, double fd, double tol) {
    const double d = fabs(analytic - fd);
    printf("    FD %-59s <g,v> %-13.9g fd %-13.9g |diff| %.2g (tol %.2g)\n", what, analytic, fd, d, tol);
    if (!(d <= tol)) {
        print_error("%s: gradient %.12g vs finite difference %.12g (|diff| %.3g > %.3g)\n", what, analytic, fd, d,
                    tol);
        fail();
    }
}

/* A strided block of a buffer: `rows` runs of `cols` floats, `stride` apart. */
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

/* Fails unless every element outside the given regions is bit-for-bit what
 * was last uploaded. */
static void expect_untouched(const char *what, const dbuf *b, const region *written, size_t n_written) {
    unsigned char *mask = calloc(b->n ? b->n : 1, 1);
    assert_non_null(mask);
    for (size_t w = 0; w < n_written; w++)
        for (size_t i = 0; i < written[w].rows; i++)
            memset(mask + written[w].off + i * written[w].stride, 1, written[w].cols);
    size_t first, changed = dbuf_count_changed(b, mask, &first);
    free(mask);
    if (changed) {
        print_error("%s: %zu elements outside the output changed, first at %zu (now %g)\n", what, changed, first,
                    (double)b->host[first]);
        fail();
    }
}

/* Additions per partial sum of a row-reduction kernel: each work-item of
 * the group adds ceil(cols / wg) values, then log2(wg) tree levels. */
static double row_sum_terms(size_t cols) {
    const size_t wg = g_ctx->reduce_wg;
    size_t levels = 0;
    while (((size_t)1 << levels) < wg) levels++;
    return (double)((cols + wg - 1) / wg + levels);
}

static size_t count_bit_diffs(const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return bad;
}

/* ---- bias_act_keep ----------------------------------------------------------------- */

/* u must be y + bias exactly (one float add, which the double sum rounded
 * once reproduces), and y bit for bit what the forward kernel
 * (stacl_op_bias_act, tested in test_kernels.c) gives: both use the same
 * float expressions. */
static void test_bias_act_keep(void **state) {
    (void)state;
    static const size_t shapes[][2] = {{7, 37}, {3, 197}, {1, 1}};
    static const char *const names[] = {"bias only", "QuickGELU", "GELU"};
    for (int act = STACL_BIAS_ONLY; act <= STACL_BIAS_GELU; act++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
            const size_t y_off = 5, u_off = 3, b_off = 2;
            float *y = xmalloc_f(n), *bias = xmalloc_f(cols), *want = xmalloc_f(n), *got = xmalloc_f(n);
            tu_fill_random(y, n, 7000 + 10 * (unsigned)s + (unsigned)act, 4.0f);
            tu_fill_random(bias, cols, 7001 + 10 * (unsigned)s, 1.0f);
            dbuf yb = dbuf_new(y_off + n + 4), fb = dbuf_new(y_off + n + 4), ub = dbuf_new(u_off + n + 2),
                 pb = dbuf_new(b_off + cols + 3);
            dbuf_put(&yb, DENSE(y_off, n), y);
            dbuf_put(&fb, DENSE(y_off, n), y);
            dbuf_put(&pb, DENSE(b_off, cols), bias);
            dbuf_upload(&yb);
            dbuf_upload(&fb);
            dbuf_upload(&ub);
            dbuf_upload(&pb);
            ST_CHECK(stacl_op_bias_act_keep(g_ctx, (stacl_bias_act)act, rows, cols, yb.mem, y_off, ub.mem, u_off,
                                            pb.mem, b_off));
            ST_CHECK(stacl_op_bias_act(g_ctx, (stacl_bias_act)act, rows, cols, fb.mem, y_off, pb.mem, b_off));
            dbuf_download(&yb);
            dbuf_download(&fb);
            dbuf_download(&ub);
            dbuf_download(&pb);
            for (size_t i = 0; i < n; i++) want[i] = (float)((double)y[i] + (double)bias[i % cols]);
            dbuf_get(&ub, DENSE(u_off, n), got);
            assert_int_equal(count_bit_diffs(got, want, n), 0);
            assert_int_equal(count_bit_diffs(yb.host + y_off, fb.host + y_off, n), 0);
            printf("    bias_act_keep %-10s %zux%zu: u = y + bias exactly, y = forward bit for bit\n", names[act], rows,
                   cols);
            expect_untouched("bias_act_keep y", &yb, (region[]){DENSE(y_off, n)}, 1);
            expect_untouched("bias_act_keep u", &ub, (region[]){DENSE(u_off, n)}, 1);
            expect_untouched("bias_act_keep bias", &pb, NULL, 0);
            dbuf_free(&yb);
            dbuf_free(&fb);
            dbuf_free(&ub);
            dbuf_free(&pb);
            free(y); free(bias); free(want); free(got);
        }
}

/* ---- act_backward ------------------------------------------------------------------- */

/* Tolerance: |got - dg f'(u)| <= |dg| (atol + rtol |f'(u)|) + u |result|.
 * QuickGELU: s = 1 / (1 + exp(-1.702 v)) is good to ~1e-6 relative for
 * |v| <= 6 (exp of a rounded argument |1.702 v| <= 10.2: 10.2 u, + 4 ulp);
 * 1 - s near s = 1 keeps an absolute error of ~u, times |1.702 v| <= ~17
 * where it matters (beyond, 1 - s rounds to 0 exactly and so does the term):
 * atol 2e-6, rtol 1e-5. GELU: OpenCL's erf may be off by 16 ulp (absolute
 * 0.5 * 16 u = 5e-7 on Phi), v phi(v) <= 0.25 with exp good to ~(4 + v^2/2) u
 * relative: atol 2e-6, rtol 1e-5. */
#define ACT_ATOL 2e-6
#define ACT_RTOL 1e-5

static double act_value(stacl_bias_act act, double v) {
    return act == STACL_BIAS_QUICK_GELU ? ref_quick_gelu(v) : ref_gelu(v);
}

static void test_act_backward(void **state) {
    (void)state;
    static const float special[] = {0.0f, 1e-3f, -1e-3f, -0.7509f, 0.5f, -2.0f, 3.5f, -3.5f, 6.0f, -6.0f,
                                    10.0f, -10.0f, 20.0f, -20.0f, 60.0f, -60.0f, 100.0f, -100.0f};
    const size_t n_special = sizeof special / sizeof special[0];
    const size_t n = 7 * 37, u_off = 4, g_off = 6;
    for (int act = STACL_BIAS_QUICK_GELU; act <= STACL_BIAS_GELU; act++) {
        const char *name = act == STACL_BIAS_QUICK_GELU ? "QuickGELU" : "GELU";
        float *u = xmalloc_f(n), *dg = xmalloc_f(n), *v = xmalloc_f(n), *got = xmalloc_f(n);
        tu_fill_random(u, n, 7100 + (unsigned)act, 6.0f);
        memcpy(u, special, sizeof special);
        tu_fill_random(dg, n, 7110 + (unsigned)act, 1.0f);
        tu_fill_random(v, n, 7120 + (unsigned)act, 1.0f);
        dbuf ub = dbuf_new(u_off + n + 3), gb = dbuf_new(g_off + n + 2);
        dbuf_put(&ub, DENSE(u_off, n), u);
        dbuf_put(&gb, DENSE(g_off, n), dg);
        dbuf_upload(&ub);
        dbuf_upload(&gb);
        ST_CHECK(stacl_op_act_backward(g_ctx, (stacl_bias_act)act, n, ub.mem, u_off, gb.mem, g_off));
        dbuf_download(&ub);
        dbuf_download(&gb);
        dbuf_get(&gb, DENSE(g_off, n), got);
        double *ref = xmalloc_d(n), *bound = xmalloc_d(n);
        double fd_tol = 0.0;
        for (size_t i = 0; i < n; i++) {
            const double d = act == STACL_BIAS_QUICK_GELU ? ref_quick_gelu_grad(u[i]) : ref_gelu_grad(u[i]);
            ref[i] = (double)dg[i] * d;
            bound[i] = fabs((double)dg[i]) * (ACT_ATOL + ACT_RTOL * fabs(d)) + U_F32 * fabs(ref[i]);
            fd_tol += fabs((double)v[i]) * bound[i];
        }
        char what[96];
        snprintf(what, sizeof what, "act_backward %s n=%zu (%zu special values)", name, n, n_special);
        expect_within(what, got, ref, bound, n);
        expect_untouched(what, &gb, (region[]){DENSE(g_off, n)}, 1);
        expect_untouched(what, &ub, NULL, 0);

        /* L(z) = sum dg f(z); the directional derivative along v by central
         * differences at e and e/2 (their difference estimates the O(e^2)
         * truncation and the rounding, both added to the tolerance). */
        double fd[2];
        for (int k = 0; k < 2; k++) {
            const double e = k ? 0.5e-4 : 1e-4;
            double lp = 0.0, lm = 0.0;
            for (size_t i = 0; i < n; i++) {
                lp += (double)dg[i] * act_value((stacl_bias_act)act, (double)u[i] + e * v[i]);
                lm += (double)dg[i] * act_value((stacl_bias_act)act, (double)u[i] - e * v[i]);
            }
            fd[k] = (lp - lm) / (2.0 * e);
        }
        double analytic = 0.0;
        for (size_t i = 0; i < n; i++) analytic += (double)got[i] * v[i];
        snprintf(what, sizeof what, "act_backward %s", name);
        expect_fd(what, analytic, fd[1], fd_tol + 2.0 * fabs(fd[0] - fd[1]));
        dbuf_free(&ub);
        dbuf_free(&gb);
        free(u); free(dg); free(v); free(got); free(ref); free(bound);
    }

    /* The identity: dg stays bit for bit; an unknown activation is refused. */
    float *dg = xmalloc_f(n);
    tu_fill_random(dg, n, 7130, 1.0f);
    dbuf gb = dbuf_new(n + 2);
    dbuf_put(&gb, DENSE(1, n), dg);
    dbuf_upload(&gb);
    ST_CHECK(stacl_op_act_backward(g_ctx, STACL_BIAS_ONLY, n, gb.mem, 1, gb.mem, 1));
    dbuf_download(&gb);
    expect_untouched("act_backward bias only", &gb, NULL, 0);
    assert_int_equal(stacl_op_act_backward(g_ctx, (stacl_bias_act)7, n, gb.mem, 1, gb.mem, 1), STACL_ERR_INVALID_ARG);
    dbuf_free(&gb);
    free(dg);
}

/* ---- layernorm backward --------------------------------------------------------- */

/* Tolerance: reference_ops.h's first-order analysis: with k additions per
 * float sum (row_sum_terms, + 2 for the division and the eps add), the
 * kernel's error is <= (k + 4) u mag; we allow twice that. */
typedef struct lnb_case {
    size_t rows, cols, x_off, x_stride, dy_off, dy_stride, dx_off, dx_stride;
} lnb_case;

static double ln_loss(size_t rows, size_t cols, double eps, const double *x, const double *gamma, const double *beta,
                      const float *dy, double *scratch) {
    double l = 0.0;
    for (size_t r = 0; r < rows; r++) {
        ref_layernorm_row_d(cols, eps, x + r * cols, gamma, beta, scratch);
        for (size_t c = 0; c < cols; c++) l += (double)dy[r * cols + c] * scratch[c];
    }
    return l;
}

static void test_layernorm_backward(void **state) {
    (void)state;
    static const lnb_case cases[] = {
        {7, 37, 3, 40, 1, 37, 5, 41},
        {3, 197, 0, 197, 2, 199, 1, 197},
        {5, 768, 4, 768, 0, 770, 3, 768},
        {2, 1, 1, 1, 1, 2, 0, 3},
    };
    const float eps = 1e-5f;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const lnb_case *c = &cases[ci];
        const size_t rows = c->rows, cols = c->cols, n = rows * cols, g_off = 3;
        float *x = xmalloc_f(n), *gamma = xmalloc_f(cols), *dy = xmalloc_f(n), *old = xmalloc_f(n),
              *got = xmalloc_f(n), *ref = xmalloc_f(n), *mag = xmalloc_f(n), *v = xmalloc_f(n);
        const unsigned seed = 7200 + 10 * (unsigned)ci;
        tu_fill_random(x, n, seed, 2.0f);
        for (size_t r = 0; r < rows; r++) /* per-row offsets: the centred statistics matter */
            for (size_t j = 0; j < cols; j++) x[r * cols + j] += (float)((int)(r % 3) - 1);
        tu_fill_random(gamma, cols, seed + 1, 0.5f);
        for (size_t j = 0; j < cols; j++) gamma[j] += 1.0f;
        tu_fill_random(dy, n, seed + 2, 1.0f);
        tu_fill_random(old, n, seed + 3, 1.0f);
        tu_fill_random(v, n, seed + 4, 1.0f);
        dbuf xb = dbuf_new(c->x_off + rows * c->x_stride + 2), pb = dbuf_new(g_off + 2 * cols + 1),
             dyb = dbuf_new(c->dy_off + rows * c->dy_stride + 1), dxb = dbuf_new(c->dx_off + rows * c->dx_stride + 2);
        const region xr = BLOCK(c->x_off, rows, cols, c->x_stride), dyr = BLOCK(c->dy_off, rows, cols, c->dy_stride),
                     dxr = BLOCK(c->dx_off, rows, cols, c->dx_stride);
        dbuf_put(&xb, xr, x);
        dbuf_put(&pb, DENSE(g_off, cols), gamma);
        dbuf_put(&dyb, dyr, dy);
        dbuf_put(&dxb, dxr, old);
        dbuf_upload(&xb);
        dbuf_upload(&pb);
        dbuf_upload(&dyb);
        dbuf_upload(&dxb);
        ST_CHECK(stacl_op_layernorm_backward(g_ctx, rows, cols, eps, xb.mem, c->x_off, c->x_stride, pb.mem, g_off,
                                             dyb.mem, c->dy_off, c->dy_stride, dxb.mem, c->dx_off, c->dx_stride));
        dbuf_download(&xb);
        dbuf_download(&pb);
        dbuf_download(&dyb);
        dbuf_download(&dxb);
        dbuf_get(&dxb, dxr, got);
        memcpy(ref, old, n * sizeof *ref);
        ref_layernorm_backward(rows, cols, eps, x, cols, gamma, dy, cols, ref, cols, mag);
        double *refd = to_double(ref, n), *bound = xmalloc_d(n);
        const double k = row_sum_terms(cols) + 2.0;
        for (size_t i = 0; i < n; i++) bound[i] = 2.0 * (k + 4.0) * U_F32 * (double)mag[i];
        char what[96];
        snprintf(what, sizeof what, "layernorm_backward %zux%zu (dx += ...)", rows, cols);
        expect_within(what, got, refd, bound, n);
        expect_untouched(what, &dxb, &dxr, 1);
        expect_untouched(what, &xb, NULL, 0);
        expect_untouched(what, &pb, NULL, 0);
        expect_untouched(what, &dyb, NULL, 0);
        /* deterministic: the same old values give the same bits again */
        float *first = xmalloc_f(n);
        memcpy(first, got, n * sizeof *first);
        dbuf_put(&dxb, dxr, old);
        dbuf_upload(&dxb);
        ST_CHECK(stacl_op_layernorm_backward(g_ctx, rows, cols, eps, xb.mem, c->x_off, c->x_stride, pb.mem, g_off,
                                             dyb.mem, c->dy_off, c->dy_stride, dxb.mem, c->dx_off, c->dx_stride));
        dbuf_download(&dxb);
        dbuf_get(&dxb, dxr, got);
        assert_int_equal(count_bit_diffs(first, got, n), 0);
        free(first);

        /* Finite differences: dx from zero, L(x) = sum dy LayerNorm(x). The
         * bound of each element (old = 0) times |v|, + the FD's own error
         * (estimated from e and e/2). */
        for (size_t i = 0; i < n; i++) old[i] = 0.0f;
        dbuf_put(&dxb, dxr, old);
        dbuf_upload(&dxb);
        ST_CHECK(stacl_op_layernorm_backward(g_ctx, rows, cols, eps, xb.mem, c->x_off, c->x_stride, pb.mem, g_off,
                                             dyb.mem, c->dy_off, c->dy_stride, dxb.mem, c->dx_off, c->dx_stride));
        dbuf_download(&dxb);
        dbuf_get(&dxb, dxr, got);
        memset(ref, 0, n * sizeof *ref);
        ref_layernorm_backward(rows, cols, eps, x, cols, gamma, dy, cols, ref, cols, mag);
        double tol = 0.0, analytic = 0.0;
        for (size_t i = 0; i < n; i++) {
            tol += fabs((double)v[i]) * 2.0 * (k + 4.0) * U_F32 * (double)mag[i];
            analytic += (double)got[i] * v[i];
        }
        double *xd = to_double(x, n), *gd = to_double(gamma, cols), *beta = xmalloc_d(cols), *xp = xmalloc_d(n),
               *scratch = xmalloc_d(cols);
        for (size_t j = 0; j < cols; j++) beta[j] = 0.25;
        double fd[2];
        for (int kk = 0; kk < 2; kk++) {
            const double e = kk ? 0.5e-4 : 1e-4;
            for (size_t i = 0; i < n; i++) xp[i] = xd[i] + e * v[i];
            const double lp = ln_loss(rows, cols, eps, xp, gd, beta, dy, scratch);
            for (size_t i = 0; i < n; i++) xp[i] = xd[i] - e * v[i];
            const double lm = ln_loss(rows, cols, eps, xp, gd, beta, dy, scratch);
            fd[kk] = (lp - lm) / (2.0 * e);
        }
        snprintf(what, sizeof what, "layernorm_backward %zux%zu", rows, cols);
        expect_fd(what, analytic, fd[1], tol + 2.0 * fabs(fd[0] - fd[1]) + 1e-12);
        dbuf_free(&xb);
        dbuf_free(&pb);
        dbuf_free(&dyb);
        dbuf_free(&dxb);
        free(x); free(gamma); free(dy); free(old); free(got); free(ref); free(mag); free(v);
        free(refd); free(bound); free(xd); free(gd); free(beta); free(xp); free(scratch);
    }
}

/* ---- softmax backward ---------------------------------------------------------- */

/* Tolerance: the row sum s = sum p dp has k additions (row_sum_terms): error
 * <= (k + 1) u sum |p dp|; then dp - s and the product round once each:
 * error <= (k + 3) u mag, mag = p (|dp| + sum |p dp|); we allow twice that.
 * Masked entries (p = 0) have mag 0: they must be exactly 0. For the finite
 * differences, p is softmax(z) rounded to float (u p relative), which moves
 * the result by <= 2 u mag more. */
typedef struct smb_case {
    size_t rows, cols, causal, p_off, dp_off;
} smb_case;

static double softmax_loss(size_t rows, size_t cols, size_t causal, const double *z, const float *w, double *scratch) {
    double l = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const size_t valid = causal && r % causal + 1 < cols ? r % causal + 1 : cols;
        ref_softmax_row_d(cols, valid, z + r * cols, scratch);
        for (size_t c = 0; c < cols; c++) l += (double)w[r * cols + c] * scratch[c];
    }
    return l;
}

static void test_softmax_backward(void **state) {
    (void)state;
    static const smb_case cases[] = {{7, 37, 0, 3, 5}, {3, 197, 0, 0, 2}, {14, 7, 7, 1, 1}, {4, 1, 0, 2, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const smb_case *c = &cases[ci];
        const size_t rows = c->rows, cols = c->cols, n = rows * cols;
        const unsigned seed = 7300 + 10 * (unsigned)ci;
        float *z = xmalloc_f(n), *p = xmalloc_f(n), *dp = xmalloc_f(n), *ref = xmalloc_f(n), *mag = xmalloc_f(n),
              *got = xmalloc_f(n), *v = xmalloc_f(n);
        tu_fill_random(z, n, seed, 4.0f);
        tu_fill_random(dp, n, seed + 1, 1.0f);
        tu_fill_random(v, n, seed + 2, 1.0f);
        ref_softmax(rows, cols, c->causal, z, p);
        dbuf pb = dbuf_new(c->p_off + n + 3), db = dbuf_new(c->dp_off + n + 2);
        dbuf_put(&pb, DENSE(c->p_off, n), p);
        dbuf_put(&db, DENSE(c->dp_off, n), dp);
        dbuf_upload(&pb);
        dbuf_upload(&db);
        ST_CHECK(stacl_op_softmax_backward(g_ctx, rows, cols, pb.mem, c->p_off, db.mem, c->dp_off));
        dbuf_download(&pb);
        dbuf_download(&db);
        dbuf_get(&db, DENSE(c->dp_off, n), got);
        memcpy(ref, dp, n * sizeof *ref);
        ref_softmax_backward(rows, cols, p, ref, mag);
        const double k = row_sum_terms(cols);
        double *refd = to_double(ref, n), *bound = xmalloc_d(n);
        double tol = 0.0, analytic = 0.0;
        size_t masked = 0;
        for (size_t i = 0; i < n; i++) {
            bound[i] = 2.0 * (k + 3.0) * U_F32 * (double)mag[i];
            tol += fabs((double)v[i]) * (bound[i] + 2.0 * U_F32 * (double)mag[i]);
            analytic += (double)got[i] * v[i];
            masked += p[i] == 0.0f;
        }
        char what[96];
        snprintf(what, sizeof what, "softmax_backward %zux%zu%s (%zu masked)", rows, cols,
                 c->causal ? " causal" : "", masked);
        expect_within(what, got, refd, bound, n);
        expect_untouched(what, &db, (region[]){DENSE(c->dp_off, n)}, 1);
        expect_untouched(what, &pb, NULL, 0);

        /* L(z) = sum dp softmax(z) (the mask as the forward's). */
        double *zd = to_double(z, n), *zp = xmalloc_d(n), *scratch = xmalloc_d(cols);
        double fd[2];
        for (int kk = 0; kk < 2; kk++) {
            const double e = kk ? 0.5e-4 : 1e-4;
            for (size_t i = 0; i < n; i++) zp[i] = zd[i] + e * v[i];
            const double lp = softmax_loss(rows, cols, c->causal, zp, dp, scratch);
            for (size_t i = 0; i < n; i++) zp[i] = zd[i] - e * v[i];
            const double lm = softmax_loss(rows, cols, c->causal, zp, dp, scratch);
            fd[kk] = (lp - lm) / (2.0 * e);
        }
        snprintf(what, sizeof what, "softmax_backward %zux%zu%s", rows, cols, c->causal ? " causal" : "");
        expect_fd(what, analytic, fd[1], tol + 2.0 * fabs(fd[0] - fd[1]) + 1e-12);
        dbuf_free(&pb);
        dbuf_free(&db);
        free(z); free(p); free(dp); free(ref); free(mag); free(got); free(v);
        free(refd); free(bound); free(zd); free(zp); free(scratch);
    }
}

/* ---- head layouts ---------------------------------------------------------------- */

/* Copies and one float multiply by q_scale, which the references reproduce
 * exactly: bit-exact. Adjointness in double: <split(a), b> and <a, join(b)>
 * differ only by the roundings of a_q s and b_q s: <= 2 u sum |a_q s b_q|. */
static void test_head_layouts(void **state) {
    (void)state;
    static const size_t shapes[][4] = {{2, 7, 3, 5}, {1, 197, 2, 4}, {3, 1, 1, 1}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t F = shapes[si][0], L = shapes[si][1], H = shapes[si][2], D = shapes[si][3];
        const size_t n = F * L * H * D;
        const float q_scale = 1.0f / sqrtf((float)D + 0.5f);
        const unsigned seed = 7400 + 10 * (unsigned)si;
        char what[96];

        /* split_merged against the reference, then merge_heads o split_merged and
         * split_merged o merge_heads: the identity. */
        float *y = xmalloc_f(n), *o = xmalloc_f(n), *ref = xmalloc_f(n), *got = xmalloc_f(n);
        tu_fill_random(y, n, seed, 2.0f);
        tu_fill_random(o, n, seed + 1, 2.0f);
        dbuf yb = dbuf_new(3 + n + 2), ob = dbuf_new(2 + n + 3), tb = dbuf_new(n + 1);
        dbuf_put(&yb, DENSE(3, n), y);
        dbuf_upload(&yb);
        dbuf_upload(&ob);
        dbuf_upload(&tb);
        ST_CHECK(stacl_op_split_merged(g_ctx, F, L, H, D, yb.mem, 3, ob.mem, 2));
        dbuf_download(&ob);
        dbuf_download(&yb);
        ref_split_merged(F, L, H, D, y, ref);
        dbuf_get(&ob, DENSE(2, n), got);
        assert_int_equal(count_bit_diffs(got, ref, n), 0);
        snprintf(what, sizeof what, "split_merged F=%zu L=%zu H=%zu D=%zu", F, L, H, D);
        expect_untouched(what, &ob, (region[]){DENSE(2, n)}, 1);
        expect_untouched(what, &yb, NULL, 0);
        ST_CHECK(stacl_op_merge_heads(g_ctx, F, L, H, D, ob.mem, 2, tb.mem, 0));
        dbuf_download(&tb);
        assert_int_equal(count_bit_diffs(tb.host, y, n), 0); /* merge(split_merged(y)) = y */
        dbuf_put(&ob, DENSE(2, n), o);
        dbuf_upload(&ob);
        ST_CHECK(stacl_op_merge_heads(g_ctx, F, L, H, D, ob.mem, 2, tb.mem, 0));
        ST_CHECK(stacl_op_split_merged(g_ctx, F, L, H, D, tb.mem, 0, yb.mem, 3));
        dbuf_download(&yb);
        dbuf_get(&yb, DENSE(3, n), got);
        assert_int_equal(count_bit_diffs(got, o, n), 0); /* split_merged(merge(o)) = o */
        printf("    %-62s bit-exact, inverse of merge_heads both ways\n", what);

        /* join_heads against the reference; dq, dk, dv with gaps in one buffer */
        const size_t dq_off = 1, dk_off = dq_off + n + 2, dv_off = dk_off + n + 1, j_off = 4;
        float *dq = xmalloc_f(n), *dk = xmalloc_f(n), *dv = xmalloc_f(n), *a = xmalloc_f(3 * n),
              *jref = xmalloc_f(3 * n), *jgot = xmalloc_f(3 * n);
        tu_fill_random(dq, n, seed + 2, 1.0f);
        tu_fill_random(dk, n, seed + 3, 1.0f);
        tu_fill_random(dv, n, seed + 4, 1.0f);
        tu_fill_random(a, 3 * n, seed + 5, 1.0f);
        dbuf gb = dbuf_new(dv_off + n + 2), jb = dbuf_new(j_off + 3 * n + 3), ab = dbuf_new(2 + 3 * n),
             sb = dbuf_new(3 * n + 5);
        dbuf_put(&gb, DENSE(dq_off, n), dq);
        dbuf_put(&gb, DENSE(dk_off, n), dk);
        dbuf_put(&gb, DENSE(dv_off, n), dv);
        dbuf_put(&ab, DENSE(2, 3 * n), a);
        dbuf_upload(&gb);
        dbuf_upload(&jb);
        dbuf_upload(&ab);
        dbuf_upload(&sb);
        ST_CHECK(stacl_op_join_heads(g_ctx, F, L, H, D, q_scale, gb.mem, dq_off, dk_off, dv_off, jb.mem, j_off));
        ST_CHECK(stacl_op_split_heads(g_ctx, F, L, H, D, q_scale, ab.mem, 2, sb.mem, 0, n + 2, 2 * n + 5));
        dbuf_download(&gb);
        dbuf_download(&jb);
        dbuf_download(&sb);
        ref_join_heads(F, L, H, D, q_scale, dq, dk, dv, jref);
        dbuf_get(&jb, DENSE(j_off, 3 * n), jgot);
        assert_int_equal(count_bit_diffs(jgot, jref, 3 * n), 0);
        snprintf(what, sizeof what, "join_heads F=%zu L=%zu H=%zu D=%zu", F, L, H, D);
        expect_untouched(what, &jb, (region[]){DENSE(j_off, 3 * n)}, 1);
        expect_untouched(what, &gb, NULL, 0);

        /* <split(a), (dq, dk, dv)> = <a, join(dq, dk, dv)> */
        const float *sq = sb.host, *sk = sb.host + n + 2, *sv = sb.host + 2 * n + 5;
        double lhs = 0.0, rhs = 0.0, scale = 0.0;
        for (size_t i = 0; i < n; i++) {
            lhs += (double)sq[i] * dq[i] + (double)sk[i] * dk[i] + (double)sv[i] * dv[i];
            scale += fabs((double)sq[i] * dq[i]);
        }
        for (size_t i = 0; i < 3 * n; i++) rhs += (double)a[i] * jgot[i];
        const double tol = 2.0 * U_F32 * scale + 1e-13;
        printf("    %-62s bit-exact; <split a, b> %.9g <a, join b> %.9g (|diff| %.2g, tol %.2g)\n", what, lhs, rhs,
               fabs(lhs - rhs), tol);
        assert_true(fabs(lhs - rhs) <= tol);

        /* with q_scale 1, join(split(a)) = a exactly */
        ST_CHECK(stacl_op_split_heads(g_ctx, F, L, H, D, 1.0f, ab.mem, 2, sb.mem, 0, n + 2, 2 * n + 5));
        ST_CHECK(stacl_op_join_heads(g_ctx, F, L, H, D, 1.0f, sb.mem, 0, n + 2, 2 * n + 5, jb.mem, j_off));
        dbuf_download(&jb);
        dbuf_get(&jb, DENSE(j_off, 3 * n), jgot);
        assert_int_equal(count_bit_diffs(jgot, a, 3 * n), 0);

        dbuf_free(&yb); dbuf_free(&ob); dbuf_free(&tb); dbuf_free(&gb); dbuf_free(&jb); dbuf_free(&ab);
        dbuf_free(&sb);
        free(y); free(o); free(ref); free(got); free(dq); free(dk); free(dv); free(a); free(jref); free(jgot);
    }
}

/* ---- ST-Adapter backward ----------------------------------------------------------- */

/* Per kernel: each output is a float sum of K products (+ the old value of
 * an accumulated gradient); any summation order and fma give |err| <=
 * ~(K + 1) u sum |terms|; we allow 2 (K + 2) u mag, mag = sum |terms|
 * (+ |old|), as test_adapter_kernels.c. Each kernel is checked on the
 * device's own inputs of the previous stage, so an error is pinned to one
 * kernel.
 *
 * Finite differences: L = sum dout * adapter(x) over all rows (class rows:
 * the identity) is affine in x and in each parameter tensor alone, so the
 * central difference along one tensor is exact up to double rounding (e =
 * 0.5, + 1e-13 of sum |dout| |out| for that rounding). The device's error e
 * on a gradient g enters as <e, v> <= |e| |v| (Cauchy-Schwarz); we allow
 * |e| <= 1e-5 |g|: the element checks above bound each element's error to a
 * small fraction of 2 (K + 2) u mag, and the relative 2-norm error of the
 * device gradients against the exact double chain (printed as rho) stays
 * below 1e-6 here, a 10x margin, while a wrong index or
 * term moves <g, v> by ~|b| |v| / sqrt(n) for a change b: anything above
 * ~1e-5 sqrt(n) |g| (a few thousandths of the gradient) fails. Accumulated
 * gradients read back as result - old add <= 2 u |old| per element. */

/* The device buffers of one case and where each tensor lives. */
typedef struct adapter_bufs {
    size_t o_w1, o_b1, o_cw, o_cb, o_w2, o_b2, n_prm; /* prm and grad: same layout, 1-float gaps */
    size_t x_off, h_off, y_off, dx_off, dy_off, dh_off;
    dbuf prm, grad, x, h, y, dx, dy, dh;
} adapter_bufs;

static double adapter_loss(const ref_adapter_shape *s, const double *x, const double *w1, const double *b1,
                           const double *cw, const double *cb, const double *w2, const double *b2,
                           const double *dout, double *h, double *y, double *out) {
    const size_t n = s->clips * s->T * (s->grid * s->grid + 1) * s->width;
    ref_adapter_forward_d(s, x, w1, b1, cw, cb, w2, b2, h, y, out);
    return dot_d(dout, out, n);
}

/* Central difference of L along v for the tensor `t` (one of the seven
 * arrays in `p`, perturbed in place and restored). */
static double adapter_fd(const ref_adapter_shape *s, double *const p[7], int t, const double *v, size_t n,
                         const double *dout, double *h, double *y, double *out) {
    const double e = 0.5;
    double *saved = xmalloc_d(n);
    memcpy(saved, p[t], n * sizeof *saved);
    for (size_t i = 0; i < n; i++) p[t][i] = saved[i] + e * v[i];
    const double lp = adapter_loss(s, p[0], p[1], p[2], p[3], p[4], p[5], p[6], dout, h, y, out);
    for (size_t i = 0; i < n; i++) p[t][i] = saved[i] - e * v[i];
    const double lm = adapter_loss(s, p[0], p[1], p[2], p[3], p[4], p[5], p[6], dout, h, y, out);
    memcpy(p[t], saved, n * sizeof *saved);
    free(saved);
    return (lp - lm) / (2.0 * e);
}

static void run_adapter_backward(const ref_adapter_shape *s, unsigned seed) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, L = P + 1, W = s->width, A = s->aw;
    const size_t K = s->kt * s->kh * s->kw, NX = F * L * W, NA = F * P * A;
    /* host tensors, PyTorch layouts */
    float *x = xmalloc_f(NX), *w1 = xmalloc_f(A * W), *b1 = xmalloc_f(A), *cw = xmalloc_f(A * K), *cb = xmalloc_f(A),
          *w2 = xmalloc_f(W * A), *b2 = xmalloc_f(W), *dout = xmalloc_f(NX), *old = NULL;
    tu_fill_random(x, NX, seed, 2.0f);
    tu_fill_random(w1, A * W, seed + 1, 0.5f);
    tu_fill_random(b1, A, seed + 2, 0.5f);
    tu_fill_random(cw, A * K, seed + 3, 1.0f);
    tu_fill_random(cb, A, seed + 4, 0.5f);
    tu_fill_random(w2, W * A, seed + 5, 0.5f);
    tu_fill_random(b2, W, seed + 6, 0.5f);
    tu_fill_random(dout, NX, seed + 7, 1.0f);

    adapter_bufs b;
    b.o_w1 = 3;
    b.o_b1 = b.o_w1 + A * W + 1;
    b.o_cw = b.o_b1 + A + 1;
    b.o_cb = b.o_cw + A * K + 1;
    b.o_w2 = b.o_cb + A + 1;
    b.o_b2 = b.o_w2 + W * A + 1;
    b.n_prm = b.o_b2 + W + 2;
    b.x_off = 5, b.h_off = 7, b.y_off = 2, b.dx_off = 4, b.dy_off = 3, b.dh_off = 1;
    b.prm = dbuf_new(b.n_prm);
    b.grad = dbuf_new(b.n_prm);
    b.x = dbuf_new(b.x_off + NX + 3);
    b.h = dbuf_new(b.h_off + NA + 4);
    b.y = dbuf_new(b.y_off + NA + 1);
    b.dx = dbuf_new(b.dx_off + NX + 2);
    b.dy = dbuf_new(b.dy_off + NA + 3);
    b.dh = dbuf_new(b.dh_off + NA + 2);
    /* weights transposed as the kernels read them (input-major) */
    for (size_t a = 0; a < A; a++)
        for (size_t c = 0; c < W; c++) {
            b.prm.host[b.o_w1 + c * A + a] = w1[a * W + c];
            b.prm.host[b.o_w2 + a * W + c] = w2[c * A + a];
        }
    dbuf_put(&b.prm, DENSE(b.o_b1, A), b1);
    dbuf_put(&b.prm, DENSE(b.o_cw, A * K), cw);
    dbuf_put(&b.prm, DENSE(b.o_cb, A), cb);
    dbuf_put(&b.prm, DENSE(b.o_b2, W), b2);
    /* gradient buffer: old values in the six tensors, canaries in the gaps */
    const region gregions[6] = {DENSE(b.o_w1, A * W), DENSE(b.o_b1, A), DENSE(b.o_cw, A * K),
                                DENSE(b.o_cb, A),     DENSE(b.o_w2, W * A), DENSE(b.o_b2, W)};
    old = xmalloc_f(b.n_prm);
    tu_fill_random(old, b.n_prm, seed + 8, 1.0f);
    for (int r = 0; r < 6; r++) dbuf_put(&b.grad, gregions[r], old + gregions[r].off);
    memcpy(old, b.grad.host, b.n_prm * sizeof *old); /* canaries included */
    dbuf_put(&b.x, DENSE(b.x_off, NX), x);
    dbuf_put(&b.dx, DENSE(b.dx_off, NX), dout);
    dbuf *all[] = {&b.prm, &b.grad, &b.x, &b.h, &b.y, &b.dx, &b.dy, &b.dh};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_upload(all[i]);

    /* forward on the device (what training keeps), then the six kernels */
    ST_CHECK(stacl_op_adapter_fc1(g_ctx, F, P, W, A, b.x.mem, b.x_off, b.prm.mem, b.o_w1, b.o_b1, b.h.mem, b.h_off));
    ST_CHECK(stacl_op_adapter_dwconv3d(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw, b.h.mem, b.h_off,
                                       b.prm.mem, b.o_cw, b.o_cb, b.y.mem, b.y_off));
    dbuf_download(&b.h);
    dbuf_download(&b.y);
    dbuf_upload(&b.h); /* from here on h and y must stay as they are */
    dbuf_upload(&b.y);
    ST_CHECK(stacl_op_adapter_fc2_backward_input(g_ctx, F, P, W, A, b.dx.mem, b.dx_off, b.prm.mem, b.o_w2, b.dy.mem,
                                                 b.dy_off));
    ST_CHECK(stacl_op_adapter_fc2_backward_params(g_ctx, F, P, W, A, b.y.mem, b.y_off, b.dx.mem, b.dx_off,
                                                  b.grad.mem, b.o_w2, b.o_b2));
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_input(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                      b.dy.mem, b.dy_off, b.prm.mem, b.o_cw, b.dh.mem, b.dh_off));
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_params(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                       b.h.mem, b.h_off, b.dy.mem, b.dy_off, b.grad.mem, b.o_cw,
                                                       b.o_cb));
    ST_CHECK(stacl_op_adapter_fc1_backward_input(g_ctx, F, P, W, A, b.dh.mem, b.dh_off, b.prm.mem, b.o_w1, b.dx.mem,
                                                 b.dx_off));
    ST_CHECK(stacl_op_adapter_fc1_backward_params(g_ctx, F, P, W, A, b.x.mem, b.x_off, b.dh.mem, b.dh_off,
                                                  b.grad.mem, b.o_w1, b.o_b1));
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_download(all[i]);

    /* double copies of the inputs and of the device's intermediates */
    double *xd = to_double(x, NX), *w1d = to_double(w1, A * W), *b1d = to_double(b1, A), *cwd = to_double(cw, A * K),
           *cbd = to_double(cb, A), *w2d = to_double(w2, W * A), *b2d = to_double(b2, W), *dod = to_double(dout, NX);
    double *hdev = to_double(b.h.host + b.h_off, NA), *ydev = to_double(b.y.host + b.y_off, NA),
           *dydev = to_double(b.dy.host + b.dy_off, NA), *dhdev = to_double(b.dh.host + b.dh_off, NA);
    const size_t NMAX = NX > A * W ? (NX > A * K ? NX : A * K) : (A * W > A * K ? A * W : A * K);
    double *ref = xmalloc_d(NMAX), *mag = xmalloc_d(NMAX), *ref2 = xmalloc_d(NMAX), *mag2 = xmalloc_d(NMAX),
           *want = xmalloc_d(NMAX), *bound = xmalloc_d(NMAX);
    float *got = xmalloc_f(NMAX);
    char what[128];
    char shape[64];
    snprintf(shape, sizeof shape, "F=%zu P=%zu W=%zu A=%zu k=(%zu,%zu,%zu)", F, P, W, A, s->kt, s->kh, s->kw);

    /* fc2 input: dy = dout w2 (overwritten) */
    ref_adapter_fc2_backward_input_d(s, dod, w2d, ref, mag);
    for (size_t i = 0; i < NA; i++) bound[i] = 2.0 * (double)(W + 2) * U_F32 * mag[i];
    snprintf(what, sizeof what, "fc2_backward_input %s", shape);
    expect_within(what, b.dy.host + b.dy_off, ref, bound, NA);
    expect_untouched(what, &b.dy, (region[]){DENSE(b.dy_off, NA)}, 1);

    /* fc2 params: grad w2t[a, c] += sum y dout, grad b2 += sum dout */
    ref_adapter_fc2_backward_params_d(s, ydev, dod, ref, ref2, mag, mag2);
    for (size_t a = 0; a < A; a++)
        for (size_t c = 0; c < W; c++) {
            const size_t i = a * W + c;
            want[i] = (double)old[b.o_w2 + i] + ref[c * A + a];
            bound[i] = 2.0 * (double)(F * P + 3) * U_F32 * (mag[c * A + a] + fabs((double)old[b.o_w2 + i]));
        }
    snprintf(what, sizeof what, "fc2_backward_params w2 %s", shape);
    expect_within(what, b.grad.host + b.o_w2, want, bound, A * W);
    for (size_t c = 0; c < W; c++) {
        want[c] = (double)old[b.o_b2 + c] + ref2[c];
        bound[c] = 2.0 * (double)(F * P + 3) * U_F32 * (mag2[c] + fabs((double)old[b.o_b2 + c]));
    }
    snprintf(what, sizeof what, "fc2_backward_params b2 %s", shape);
    expect_within(what, b.grad.host + b.o_b2, want, bound, W);

    /* conv input: dh (overwritten) from the device's dy */
    ref_adapter_dwconv3d_backward_input_d(s, dydev, cwd, ref, mag);
    for (size_t i = 0; i < NA; i++) bound[i] = 2.0 * (double)(K + 2) * U_F32 * mag[i];
    snprintf(what, sizeof what, "dwconv3d_backward_input %s", shape);
    expect_within(what, b.dh.host + b.dh_off, ref, bound, NA);
    expect_untouched(what, &b.dh, (region[]){DENSE(b.dh_off, NA)}, 1);

    /* conv params from the device's h and dy */
    ref_adapter_dwconv3d_backward_params_d(s, hdev, dydev, ref, ref2, mag, mag2);
    for (size_t i = 0; i < A * K; i++) {
        want[i] = (double)old[b.o_cw + i] + ref[i];
        bound[i] = 2.0 * (double)(F * P + 3) * U_F32 * (mag[i] + fabs((double)old[b.o_cw + i]));
    }
    snprintf(what, sizeof what, "dwconv3d_backward_params w %s", shape);
    expect_within(what, b.grad.host + b.o_cw, want, bound, A * K);
    for (size_t a = 0; a < A; a++) {
        want[a] = (double)old[b.o_cb + a] + ref2[a];
        bound[a] = 2.0 * (double)(F * P + 3) * U_F32 * (mag2[a] + fabs((double)old[b.o_cb + a]));
    }
    snprintf(what, sizeof what, "dwconv3d_backward_params b %s", shape);
    expect_within(what, b.grad.host + b.o_cb, want, bound, A);

    /* fc1 input: dx patch rows += dh w1 (dx held dout) */
    ref_adapter_fc1_backward_input_d(s, dhdev, w1d, ref, mag);
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                const size_t i = (f * P + p) * W + c, xi = (f * L + 1 + p) * W + c;
                want[i] = (double)dout[xi] + ref[i];
                bound[i] = 2.0 * (double)(A + 2) * U_F32 * (mag[i] + fabs((double)dout[xi]));
            }
    const region patch_rows = BLOCK(b.dx_off + W, F, P * W, L * W);
    dbuf_get(&b.dx, patch_rows, got);
    snprintf(what, sizeof what, "fc1_backward_input (dx += ...) %s", shape);
    expect_within(what, got, want, bound, F * P * W);
    expect_untouched(what, &b.dx, &patch_rows, 1); /* class rows and canaries */

    /* fc1 params: grad w1t[c, a] += sum x dh, grad b1 += sum dh */
    ref_adapter_fc1_backward_params_d(s, xd, dhdev, ref, ref2, mag, mag2);
    for (size_t c = 0; c < W; c++)
        for (size_t a = 0; a < A; a++) {
            const size_t i = c * A + a;
            want[i] = (double)old[b.o_w1 + i] + ref[a * W + c];
            bound[i] = 2.0 * (double)(F * P + 3) * U_F32 * (mag[a * W + c] + fabs((double)old[b.o_w1 + i]));
        }
    snprintf(what, sizeof what, "fc1_backward_params w1 %s", shape);
    expect_within(what, b.grad.host + b.o_w1, want, bound, W * A);
    for (size_t a = 0; a < A; a++) {
        want[a] = (double)old[b.o_b1 + a] + ref2[a];
        bound[a] = 2.0 * (double)(F * P + 3) * U_F32 * (mag2[a] + fabs((double)old[b.o_b1 + a]));
    }
    snprintf(what, sizeof what, "fc1_backward_params b1 %s", shape);
    expect_within(what, b.grad.host + b.o_b1, want, bound, A);

    expect_untouched("adapter backward: gradient gaps", &b.grad, gregions, 6);
    expect_untouched("adapter backward: params", &b.prm, NULL, 0);
    expect_untouched("adapter backward: x", &b.x, NULL, 0);
    expect_untouched("adapter backward: h", &b.h, NULL, 0);
    expect_untouched("adapter backward: y", &b.y, NULL, 0);

    /* Determinism: the parameter kernels again on the same old values give
     * the same bits. */
    float *first = xmalloc_f(b.n_prm);
    memcpy(first, b.grad.host, b.n_prm * sizeof *first);
    memcpy(b.grad.host, old, b.n_prm * sizeof *old);
    dbuf_upload(&b.grad);
    dbuf_put(&b.dx, DENSE(b.dx_off, NX), dout); /* fc1_backward_input changed dx in place */
    dbuf_upload(&b.dx);
    ST_CHECK(stacl_op_adapter_fc2_backward_params(g_ctx, F, P, W, A, b.y.mem, b.y_off, b.dx.mem, b.dx_off,
                                                  b.grad.mem, b.o_w2, b.o_b2));
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_params(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                       b.h.mem, b.h_off, b.dy.mem, b.dy_off, b.grad.mem, b.o_cw,
                                                       b.o_cb));
    ST_CHECK(stacl_op_adapter_fc1_backward_params(g_ctx, F, P, W, A, b.x.mem, b.x_off, b.dh.mem, b.dh_off,
                                                  b.grad.mem, b.o_w1, b.o_b1));
    dbuf_download(&b.grad);
    assert_int_equal(count_bit_diffs(first, b.grad.host, b.n_prm), 0);
    free(first);

    /* Finite differences through the double forward. Device gradients: dx
     * over all rows (class rows: dout, the residual), the parameters as
     * result - old, back in PyTorch layouts. */
    double *gdev[7];
    const size_t nt[7] = {NX, A * W, A, A * K, A, W * A, W};
    for (int t = 0; t < 7; t++) gdev[t] = xmalloc_d(nt[t]);
    /* dx: the first run's result (`got`; the rerun restored dout in the buffer) */
    for (size_t i = 0; i < NX; i++) gdev[0][i] = dout[i];
    for (size_t f = 0; f < F; f++)
        for (size_t i = 0; i < P * W; i++) gdev[0][(f * L + 1) * W + i] = (double)got[f * P * W + i];
    for (size_t a = 0; a < A; a++)
        for (size_t c = 0; c < W; c++) {
            gdev[1][a * W + c] = (double)b.grad.host[b.o_w1 + c * A + a] - old[b.o_w1 + c * A + a];
            gdev[5][c * A + a] = (double)b.grad.host[b.o_w2 + a * W + c] - old[b.o_w2 + a * W + c];
        }
    for (size_t a = 0; a < A; a++) {
        gdev[2][a] = (double)b.grad.host[b.o_b1 + a] - old[b.o_b1 + a];
        gdev[4][a] = (double)b.grad.host[b.o_cb + a] - old[b.o_cb + a];
    }
    for (size_t i = 0; i < A * K; i++) gdev[3][i] = (double)b.grad.host[b.o_cw + i] - old[b.o_cw + i];
    for (size_t c = 0; c < W; c++) gdev[6][c] = (double)b.grad.host[b.o_b2 + c] - old[b.o_b2 + c];
    const size_t old_at[7] = {0, b.o_w1, b.o_b1, b.o_cw, b.o_cb, b.o_w2, b.o_b2};

    /* the exact gradients (hand-derived chain on the double forward), only
     * to report the device's relative error rho */
    double *hx = xmalloc_d(NA), *yx = xmalloc_d(NA), *outx = xmalloc_d(NX), *dyx = xmalloc_d(NA),
           *dhx = xmalloc_d(NA), *dxpx = xmalloc_d(F * P * W);
    double *gx[7];
    for (int t = 0; t < 7; t++) gx[t] = xmalloc_d(nt[t]);
    ref_adapter_forward_d(s, xd, w1d, b1d, cwd, cbd, w2d, b2d, hx, yx, outx);
    ref_adapter_fc2_backward_input_d(s, dod, w2d, dyx, NULL);
    ref_adapter_fc2_backward_params_d(s, yx, dod, gx[5], gx[6], NULL, NULL);
    ref_adapter_dwconv3d_backward_input_d(s, dyx, cwd, dhx, NULL);
    ref_adapter_dwconv3d_backward_params_d(s, hx, dyx, gx[3], gx[4], NULL, NULL);
    ref_adapter_fc1_backward_input_d(s, dhx, w1d, dxpx, NULL);
    ref_adapter_fc1_backward_params_d(s, xd, dhx, gx[1], gx[2], NULL, NULL);
    memcpy(gx[0], dod, NX * sizeof(double));
    for (size_t f = 0; f < F; f++)
        for (size_t i = 0; i < P * W; i++) gx[0][(f * L + 1) * W + i] += dxpx[f * P * W + i];
    double loss_scale = 0.0; /* sum |dout| |out|: the double rounding of L */
    for (size_t i = 0; i < NX; i++) loss_scale += fabs(dod[i] * outx[i]);

    double *params[7] = {xd, w1d, b1d, cwd, cbd, w2d, b2d};
    static const char *const tname[7] = {"x", "w1", "b1", "conv w", "conv b", "w2", "b2"};
    double *hs = xmalloc_d(NA), *ys = xmalloc_d(NA), *outs = xmalloc_d(NX);
    for (int t = 0; t < 7; t++) {
        double *v = xmalloc_d(nt[t]);
        float *vf = xmalloc_f(nt[t]);
        tu_fill_random(vf, nt[t], seed + 20 + (unsigned)t, 1.0f);
        for (size_t i = 0; i < nt[t]; i++) v[i] = vf[i];
        const double fd = adapter_fd(s, params, t, v, nt[t], dod, hs, ys, outs);
        double old_term = 0.0, e2 = 0.0, g2 = 0.0;
        for (size_t i = 0; i < nt[t]; i++) {
            if (t > 0) old_term += fabs(v[i]) * 2.0 * U_F32 * fabs((double)old[old_at[t] + i]);
            e2 += (gdev[t][i] - gx[t][i]) * (gdev[t][i] - gx[t][i]);
            g2 += gx[t][i] * gx[t][i];
        }
        const double tol = 1e-5 * sqrt(dot_d(gdev[t], gdev[t], nt[t]) * dot_d(v, v, nt[t])) + old_term +
                           1e-13 * loss_scale;
        snprintf(what, sizeof what, "adapter d/d%s %s rho %.1e", tname[t], shape, sqrt(e2 / g2));
        expect_fd(what, dot_d(gdev[t], v, nt[t]), fd, tol);
        free(v);
        free(vf);
    }

    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_free(all[i]);
    for (int t = 0; t < 7; t++) {
        free(gdev[t]);
        free(gx[t]);
    }
    free(x); free(w1); free(b1); free(cw); free(cb); free(w2); free(b2); free(dout); free(old);
    free(xd); free(w1d); free(b1d); free(cwd); free(cbd); free(w2d); free(b2d); free(dod);
    free(hdev); free(ydev); free(dydev); free(dhdev);
    free(ref); free(mag); free(ref2); free(mag2); free(want); free(bound); free(got);
    free(hx); free(yx); free(outx); free(dyx); free(dhx); free(dxpx); free(hs); free(ys); free(outs);
}

static void test_adapter_backward(void **state) {
    (void)state;
    /* clips, T, grid, W, A, kt, kh, kw */
    static const size_t shapes[][8] = {
        {1, 1, 14, 33, 7, 3, 1, 1},   /* 197 tokens, one frame: temporal taps all padding */
        {1, 3, 14, 64, 12, 3, 3, 3},  /* 197 tokens, T = 3; full and partial 8-blocks */
        {2, 3, 2, 17, 5, 3, 3, 3},    /* 2x2 grid: most spatial taps in the padding */
        {2, 3, 3, 8, 3, 3, 1, 1},     /* two clips: nothing may cross clips */
        {3, 1, 2, 5, 1, 3, 3, 3},     /* T = 1, adapter width 1 */
        {1, 5, 2, 9, 4, 5, 1, 3},     /* a wider, non-cubic kernel */
        {1, 1, 1, 3, 2, 1, 1, 1},     /* one token: fewer rows than a tile */
        {1, 7, 1, 6, 5, 3, 1, 1},     /* 7 rows: partial row tiles */
        {2, 2, 3, 40, 19, 3, 1, 1},   /* W = 5 full 8-blocks, A = 2 full + 3 */
        {1, 2, 5, 48, 24, 3, 3, 3},   /* every block full */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const size_t *v = shapes[i];
        const ref_adapter_shape s = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
        run_adapter_backward(&s, 7500 + 40 * (unsigned)i);
    }
}

/* Empty shapes launch nothing and touch nothing. */
static void test_empty_shapes(void **state) {
    (void)state;
    dbuf b = dbuf_new(64);
    dbuf_upload(&b);
    ST_CHECK(stacl_op_bias_act_keep(g_ctx, STACL_BIAS_GELU, 0, 8, b.mem, 0, b.mem, 8, b.mem, 16));
    ST_CHECK(stacl_op_act_backward(g_ctx, STACL_BIAS_GELU, 0, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_layernorm_backward(g_ctx, 0, 8, 1e-5f, b.mem, 0, 8, b.mem, 0, b.mem, 8, 8, b.mem, 16, 8));
    ST_CHECK(stacl_op_softmax_backward(g_ctx, 0, 8, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_split_merged(g_ctx, 0, 3, 2, 2, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_join_heads(g_ctx, 2, 0, 2, 2, 0.5f, b.mem, 0, 4, 8, b.mem, 16));
    ST_CHECK(stacl_op_adapter_fc2_backward_input(g_ctx, 0, 4, 3, 2, b.mem, 0, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_adapter_fc2_backward_params(g_ctx, 2, 0, 3, 2, b.mem, 0, b.mem, 0, b.mem, 8, 20));
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_input(g_ctx, 0, 2, 2, 2, 3, 1, 1, b.mem, 0, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_adapter_fc1_backward_input(g_ctx, 2, 0, 3, 2, b.mem, 0, b.mem, 0, b.mem, 8));
    ST_CHECK(stacl_op_adapter_fc1_backward_params(g_ctx, 0, 4, 3, 2, b.mem, 0, b.mem, 0, b.mem, 8, 20));
    CL_CHECK(clFinish(g_ctx->queue));
    dbuf_download(&b);
    expect_untouched("empty launches", &b, NULL, 0);
    /* past the 32-bit range of the kernels' offsets: refused */
    assert_int_equal(stacl_op_adapter_fc1_backward_params(g_ctx, 1, 1, 1, 1, b.mem, 0xffffffffu, b.mem, 0, b.mem,
                                                          0, 4),
                     STACL_ERR_UNSUPPORTED);
    dbuf_free(&b);
}

/* ---- timing (STACL_TEST_TIMING=1): ViT-B's adapter shape ------------------------- */

static void test_adapter_timing(void **state) {
    (void)state;
    const char *env = getenv("STACL_TEST_TIMING");
    if (!env || !*env || strcmp(env, "0") == 0) {
        printf("    (set STACL_TEST_TIMING=1 for the ViT-B adapter timings)\n");
        return;
    }
    const size_t clips = 1, T = 8, grid = 14, W = 768, A = 384, kt = 3, kh = 1, kw = 1;
    const size_t F = clips * T, P = grid * grid, NX = F * (P + 1) * W, NA = F * P * A, K = kt * kh * kw;
    const size_t o_w1 = 0, o_b1 = W * A, o_cw = o_b1 + A, o_cb = o_cw + A * K, o_w2 = o_cb + A, o_b2 = o_w2 + A * W,
                 n_prm = o_b2 + W;
    float *tmp = xmalloc_f(NX > n_prm ? NX : n_prm);
    dbuf prm = dbuf_new(n_prm), grad = dbuf_new(n_prm), x = dbuf_new(NX), dx = dbuf_new(NX), h = dbuf_new(NA),
         y = dbuf_new(NA), dy = dbuf_new(NA), dh = dbuf_new(NA);
    tu_fill_random(tmp, n_prm, 1, 0.05f);
    dbuf_put(&prm, DENSE(0, n_prm), tmp);
    memset(grad.host, 0, n_prm * sizeof(float));
    tu_fill_random(tmp, NX, 2, 1.0f);
    dbuf_put(&x, DENSE(0, NX), tmp);
    tu_fill_random(tmp, NX, 3, 1.0f);
    dbuf_put(&dx, DENSE(0, NX), tmp);
    dbuf *all[] = {&prm, &grad, &x, &dx, &h, &y, &dy, &dh};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_upload(all[i]);
    const int reps = 3;
    for (int r = 0; r <= reps; r++) {
        if (r == 1) stacl_profile_begin(g_ctx); /* run 0 warms up */
        ST_CHECK(stacl_op_adapter_fc1(g_ctx, F, P, W, A, x.mem, 0, prm.mem, o_w1, o_b1, h.mem, 0));
        ST_CHECK(stacl_op_adapter_dwconv3d(g_ctx, clips, T, grid, A, kt, kh, kw, h.mem, 0, prm.mem, o_cw, o_cb, y.mem,
                                           0));
        ST_CHECK(stacl_op_adapter_fc2_residual(g_ctx, F, P, W, A, y.mem, 0, prm.mem, o_w2, o_b2, x.mem, 0));
        ST_CHECK(stacl_op_adapter_fc2_backward_input(g_ctx, F, P, W, A, dx.mem, 0, prm.mem, o_w2, dy.mem, 0));
        ST_CHECK(stacl_op_adapter_fc2_backward_params(g_ctx, F, P, W, A, y.mem, 0, dx.mem, 0, grad.mem, o_w2, o_b2));
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_input(g_ctx, clips, T, grid, A, kt, kh, kw, dy.mem, 0, prm.mem,
                                                          o_cw, dh.mem, 0));
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_params(g_ctx, clips, T, grid, A, kt, kh, kw, h.mem, 0, dy.mem, 0,
                                                           grad.mem, o_cw, o_cb));
        ST_CHECK(stacl_op_adapter_fc1_backward_input(g_ctx, F, P, W, A, dh.mem, 0, prm.mem, o_w1, dx.mem, 0));
        ST_CHECK(stacl_op_adapter_fc1_backward_params(g_ctx, F, P, W, A, x.mem, 0, dh.mem, 0, grad.mem, o_w1, o_b1));
        if (r == 0) assert_int_equal(clFinish(g_ctx->queue), CL_SUCCESS);
    }
    stacl_op_time entries[STACL_PROFILE_MAX_OPS];
    int count = 0;
    double total = 0.0;
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, &total));
    double fwd = 0.0, bwd = 0.0;
    printf("    ViT-B adapter (F=%zu P=%zu W=%zu A=%zu, kernel %zux%zux%zu), mean of %d runs on %s:\n", F, P, W, A, kt,
           kh, kw, reps, stacl_ctx_device(g_ctx)->name);
    for (int i = 0; i < count; i++) {
        const double ms = entries[i].ms / entries[i].launches;
        printf("      %-34s %8.2f ms\n", entries[i].op, ms);
        if (strstr(entries[i].op, "backward")) bwd += ms;
        else fwd += ms;
    }
    printf("      forward total %.2f ms, backward total %.2f ms (%.2fx)\n", fwd, bwd, bwd / fwd);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_free(all[i]);
    free(tmp);
}

static int group_setup(void **state) {
    (void)state;
    if (cl_test_ctx_create() != 0) return -1;
    printf("device: %s (reduce work-group %zu)\n", stacl_ctx_device(g_ctx)->name, g_ctx->reduce_wg);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bias_act_keep),
        cmocka_unit_test(test_act_backward),
        cmocka_unit_test(test_layernorm_backward),
        cmocka_unit_test(test_softmax_backward),
        cmocka_unit_test(test_head_layouts),
        cmocka_unit_test(test_adapter_backward),
        cmocka_unit_test(test_empty_shapes),
        cmocka_unit_test(test_adapter_timing),
    };
    return cmocka_run_group_tests(tests, group_setup, cl_test_group_teardown);
}
