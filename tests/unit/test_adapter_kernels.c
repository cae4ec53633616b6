/* test_adapter_kernels.c: the ST-Adapter kernels (kernels/adapter.cl, via
 * host/ops.h) against the double-precision references of reference_ops.c on
 * odd sizes: T = 1 and 3, 197 tokens (grid 14) and a 2x2 grid, kernels
 * (3,1,1) and (3,3,3), widths that are multiples of nothing, at non-zero
 * offsets in buffers whose other elements hold a NaN canary that must come
 * back unchanged (the class token rows of x included: the adapter never
 * touches them). Each kernel is checked on the device's own input of the
 * previous stage, so an error is pinned to one kernel.
 *
 * Tolerance: each output is a float sum of K products accumulated with fma,
 * so |err| <= ~K u sum |terms| (u = 2^-24); we allow 2 (K + 2) u * sum
 * |terms| (the reference's `mag`), tight enough that a missing tap or a
 * shifted index fails by orders of magnitude.
 *
 * fc1 and fc2 also promise their summation order (adapter.cl): each output
 * is one fma chain over the reduction axis in order from 0, then + bias (and
 * for fc2 then added to x); checked bit-exact against that chain in float,
 * whatever the kernels' register tiles.
 *
 * STACL_TEST_TIMING=1: device times of the forward kernels on ViT-B's
 * adapter shape, beside the backward input kernels of the same arithmetic
 * (fc1 ~ fc2_backward_input, fc2 ~ fc1_backward_input). */
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
#include "test_util.h"

#define U_F32 (1.0 / 16777216.0)

static void expect_bounded(const char *what, const float *got, const float *ref, const float *mag, size_t n,
                           size_t k) {
    double max_err = 0.0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - (double)ref[i]);
        const double tol = 2.0 * (double)(k + 2) * U_F32 * (double)mag[i] + 1e-30;
        if (!(d <= tol)) {
            if (!bad) first = i;
            bad++;
        }
        if (!(d <= max_err)) max_err = isnan(d) ? INFINITY : d;
    }
    printf("    %-56s max|err| %.3g\n", what, max_err);
    if (bad) {
        print_error("%s: %zu of %zu out of tolerance; first [%zu] got %.9g ref %.9g\n", what, bad, n, first,
                    (double)got[first], (double)ref[first]);
        fail();
    }
}

/* Fails unless every element of b outside [off, off + n) (and, for x, the
 * class token rows inside it) is bit-for-bit what was uploaded. */
static void expect_untouched(const char *what, const dbuf *b, size_t off, size_t n, size_t row, size_t skip_every) {
    unsigned char *mask = calloc(b->n, 1);
    assert_non_null(mask);
    memset(mask + off, 1, n);
    if (skip_every) /* x: rows of `row` floats; every skip_every-th row (class token) must stay */
        for (size_t r = 0; r < n / row; r += skip_every) memset(mask + off + r * row, 0, row);
    size_t first, changed = dbuf_count_changed(b, mask, &first);
    free(mask);
    if (changed) {
        print_error("%s: %zu elements that must not change did, first at %zu\n", what, changed, first);
        fail();
    }
}

/* out[r, j] == b[j] + fma chain over k in order of in[r, k] wt[j, k] (plus
 * base[r, j] after, when base), bit for bit. in rows are in_ld floats apart,
 * got and base rows out_ld. */
static void expect_fc_exact(const char *what, const float *got, size_t out_ld, const float *base, const float *in,
                            size_t in_ld, const float *wt, const float *b, size_t rows, size_t nk, size_t nj) {
    size_t bad = 0, first = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < nj; j++) {
            float acc = 0.0f;
            for (size_t k = 0; k < nk; k++) acc = fmaf(in[r * in_ld + k], wt[j * nk + k], acc);
            float want = acc + b[j];
            if (base) want = base[r * out_ld + j] + want;
            if (memcmp(&want, &got[r * out_ld + j], sizeof want) != 0 && !bad++) first = r * nj + j;
        }
    if (bad) {
        print_error("%s: %zu of %zu not the in-order fma chain, first [%zu]\n", what, bad, rows * nj, first);
        fail();
    }
}

static void run_shape(size_t clips, size_t T, size_t grid, size_t W, size_t A, size_t kt, size_t kh, size_t kw,
                      unsigned seed) {
    const size_t F = clips * T, P = grid * grid, L = P + 1, K = kt * kh * kw;
    float *x = xmalloc_f(F * L * W), *w1 = xmalloc_f(A * W), *b1 = xmalloc_f(A), *cw = xmalloc_f(A * K),
          *cb = xmalloc_f(A), *w2 = xmalloc_f(W * A), *b2 = xmalloc_f(W);
    float *ref = xmalloc_f(F * L * W), *mag = xmalloc_f(F * L * W), *got = xmalloc_f(F * L * W);
    tu_fill_random(x, F * L * W, seed, 2.0f);
    tu_fill_random(w1, A * W, seed + 1, 0.5f);
    tu_fill_random(b1, A, seed + 2, 0.5f);
    tu_fill_random(cw, A * K, seed + 3, 1.0f);
    tu_fill_random(cb, A, seed + 4, 0.5f);
    tu_fill_random(w2, W * A, seed + 5, 0.5f);
    tu_fill_random(b2, W, seed + 6, 0.5f);
    /* params: [canary 3 | w1 | b1 | cw | cb | w2 | b2 | canary 2] */
    const size_t o_w1 = 3, o_b1 = o_w1 + A * W, o_cw = o_b1 + A, o_cb = o_cw + A * K, o_w2 = o_cb + A,
                 o_b2 = o_w2 + W * A, x_off = 5, h_off = 7, y_off = 2;
    dbuf prm = dbuf_new(o_b2 + W + 2), xb = dbuf_new(x_off + F * L * W + 3), hb = dbuf_new(h_off + F * P * A + 4),
         yb = dbuf_new(y_off + F * P * A + 1);
    /* The kernels take the linear weights transposed (input-major). */
    for (size_t a = 0; a < A; a++)
        for (size_t c = 0; c < W; c++) prm.host[o_w1 + c * A + a] = w1[a * W + c];
    memcpy(prm.host + o_b1, b1, A * sizeof *b1);
    memcpy(prm.host + o_cw, cw, A * K * sizeof *cw);
    memcpy(prm.host + o_cb, cb, A * sizeof *cb);
    for (size_t c = 0; c < W; c++)
        for (size_t a = 0; a < A; a++) prm.host[o_w2 + a * W + c] = w2[c * A + a];
    memcpy(prm.host + o_b2, b2, W * sizeof *b2);
    memcpy(xb.host + x_off, x, F * L * W * sizeof *x);
    dbuf_upload(&prm);
    dbuf_upload(&xb);
    dbuf_upload(&hb);
    dbuf_upload(&yb);
    char what[128];

    ST_CHECK(stacl_op_adapter_fc1(g_ctx, F, P, W, A, xb.mem, x_off, prm.mem, o_w1, o_b1, hb.mem, h_off));
    dbuf_download(&hb);
    ref_adapter_fc1(F, P, W, A, x, w1, b1, ref, mag);
    snprintf(what, sizeof what, "adapter_fc1 F=%zu P=%zu W=%zu A=%zu", F, P, W, A);
    expect_bounded(what, hb.host + h_off, ref, mag, F * P * A, W);
    expect_untouched(what, &hb, h_off, F * P * A, 0, 0);
    for (size_t f = 0; f < F; f++) /* the patch rows of frame f */
        expect_fc_exact(what, hb.host + h_off + f * P * A, A, NULL, x + (f * L + 1) * W, W, w1, b1, P, W, A);

    ST_CHECK(stacl_op_adapter_dwconv3d(g_ctx, clips, T, grid, A, kt, kh, kw, hb.mem, h_off, prm.mem, o_cw, o_cb,
                                       yb.mem, y_off));
    dbuf_download(&yb);
    ref_adapter_dwconv3d(clips, T, grid, A, kt, kh, kw, hb.host + h_off, cw, cb, ref, mag);
    snprintf(what, sizeof what, "adapter_dwconv3d %zux%zu clips, grid %zu, A=%zu, k=(%zu,%zu,%zu)", clips, T, grid,
             A, kt, kh, kw);
    expect_bounded(what, yb.host + y_off, ref, mag, F * P * A, K);
    expect_untouched(what, &yb, y_off, F * P * A, 0, 0);

    ST_CHECK(stacl_op_adapter_fc2_residual(g_ctx, F, P, W, A, yb.mem, y_off, prm.mem, o_w2, o_b2, xb.mem, x_off));
    dbuf_download(&xb);
    memcpy(ref, x, F * L * W * sizeof *x);
    ref_adapter_fc2_residual(F, P, W, A, yb.host + y_off, w2, b2, ref, mag);
    /* Compare the patch rows only; class rows are checked bit-exact below. */
    for (size_t f = 0; f < F; f++) {
        memcpy(got + f * P * W, xb.host + x_off + (f * L + 1) * W, P * W * sizeof *got);
        memmove(ref + f * P * W, ref + (f * L + 1) * W, P * W * sizeof *ref);
    }
    snprintf(what, sizeof what, "adapter_fc2_residual F=%zu P=%zu W=%zu A=%zu", F, P, W, A);
    expect_bounded(what, got, ref, mag, F * P * W, A);
    expect_untouched(what, &xb, x_off, F * L * W, W, L);
    for (size_t f = 0; f < F; f++)
        expect_fc_exact(what, xb.host + x_off + (f * L + 1) * W, W, x + (f * L + 1) * W, yb.host + y_off + f * P * A,
                        A, w2, b2, P, A, W);
    dbuf_download(&prm);
    expect_untouched("adapter params", &prm, 0, 0, 0, 0);

    dbuf_free(&prm);
    dbuf_free(&xb);
    dbuf_free(&hb);
    dbuf_free(&yb);
    free(x); free(w1); free(b1); free(cw); free(cb); free(w2); free(b2);
    free(ref); free(mag); free(got);
}

static void test_adapter_shapes(void **state) {
    (void)state;
    /* clips, T, grid, W, A, kt, kh, kw */
    static const size_t shapes[][8] = {
        {1, 1, 14, 33, 7, 3, 1, 1},  /* 197 tokens, one frame: temporal taps all padding */
        {1, 3, 14, 64, 12, 3, 3, 3}, /* 197 tokens, T = 3 */
        {2, 3, 2, 17, 5, 3, 3, 3},   /* 2x2 grid: most spatial taps fall in the padding */
        {2, 3, 3, 8, 3, 3, 1, 1},    /* two clips: the conv must not cross clips */
        {3, 1, 2, 5, 1, 3, 3, 3},    /* T = 1, adapter width 1 */
        {1, 5, 2, 9, 4, 5, 1, 3},    /* a wider, non-cubic kernel */
        {1, 1, 1, 3, 2, 1, 1, 1},    /* one token: fewer rows than a work-item's block */
        {1, 7, 1, 6, 5, 3, 1, 1},    /* 7 rows: a partial last block */
        {1, 3, 3, 37, 19, 3, 1, 1},  /* 27 rows; W, A past one vector block with a partial one after */
        {1, 2, 4, 32, 16, 3, 3, 3},  /* 32 rows, W, A whole vector blocks: no partial tile anywhere */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t *v = shapes[s];
        run_shape(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], 4000 + 10 * (unsigned)s);
    }
}

static void test_adapter_mean_cls(void **state) {
    (void)state;
    static const size_t shapes[][4] = {/* clips, T, tokens, W */ {1, 1, 197, 33}, {2, 3, 5, 7}, {3, 8, 2, 1}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t B = shapes[s][0], T = shapes[s][1], L = shapes[s][2], W = shapes[s][3];
        float *x = xmalloc_f(B * T * L * W), *ref = xmalloc_f(B * W), *mag = xmalloc_f(B * W);
        tu_fill_random(x, B * T * L * W, 4100 + (unsigned)s, 3.0f);
        ref_adapter_mean_cls(B, T, L, W, x, ref);
        for (size_t i = 0; i < B * W; i++) {
            double m = 0.0;
            for (size_t t = 0; t < T; t++) m += fabs((double)x[((i / W) * T + t) * L * W + i % W]);
            mag[i] = (float)(m / (double)T);
        }
        dbuf xb = dbuf_new(1 + B * T * L * W), mb = dbuf_new(4 + B * W + 1);
        memcpy(xb.host + 1, x, B * T * L * W * sizeof *x);
        dbuf_upload(&xb);
        dbuf_upload(&mb);
        ST_CHECK(stacl_op_adapter_mean_cls(g_ctx, B, T, L, W, xb.mem, 1, mb.mem, 4));
        dbuf_download(&mb);
        dbuf_download(&xb);
        char what[96];
        snprintf(what, sizeof what, "adapter_mean_cls B=%zu T=%zu L=%zu W=%zu", B, T, L, W);
        expect_bounded(what, mb.host + 4, ref, mag, B * W, T);
        expect_untouched(what, &mb, 4, B * W, 0, 0);
        expect_untouched(what, &xb, 0, 0, 0, 0);
        dbuf_free(&xb);
        dbuf_free(&mb);
        free(x); free(ref); free(mag);
    }
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
    dbuf prm = dbuf_new(n_prm), x = dbuf_new(NX), dx = dbuf_new(NX), h = dbuf_new(NA), y = dbuf_new(NA),
         dy = dbuf_new(NA);
    tu_fill_random(prm.host, n_prm, 1, 0.05f);
    tu_fill_random(x.host, NX, 2, 1.0f);
    tu_fill_random(dx.host, NX, 3, 1.0f);
    dbuf *all[] = {&prm, &x, &dx, &h, &y, &dy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_upload(all[i]);
    const int reps = 5;
    for (int r = 0; r <= reps; r++) {
        if (r == 1) stacl_profile_begin(g_ctx); /* run 0 warms up */
        ST_CHECK(stacl_op_adapter_fc1(g_ctx, F, P, W, A, x.mem, 0, prm.mem, o_w1, o_b1, h.mem, 0));
        ST_CHECK(stacl_op_adapter_fc2_backward_input(g_ctx, F, P, W, A, dx.mem, 0, prm.mem, o_w2, dy.mem, 0));
        ST_CHECK(stacl_op_adapter_dwconv3d(g_ctx, clips, T, grid, A, kt, kh, kw, h.mem, 0, prm.mem, o_cw, o_cb, y.mem,
                                           0));
        ST_CHECK(stacl_op_adapter_fc2_residual(g_ctx, F, P, W, A, y.mem, 0, prm.mem, o_w2, o_b2, x.mem, 0));
        ST_CHECK(stacl_op_adapter_fc1_backward_input(g_ctx, F, P, W, A, dy.mem, 0, prm.mem, o_w1, dx.mem, 0));
        if (r == 0) assert_int_equal(clFinish(g_ctx->queue), CL_SUCCESS);
    }
    stacl_op_time entries[STACL_PROFILE_MAX_OPS];
    int count = 0;
    double total = 0.0;
    ST_CHECK(stacl_profile_collect(g_ctx, entries, &count, &total));
    printf("    ViT-B adapter forward (F=%zu P=%zu W=%zu A=%zu, kernel %zux%zux%zu), mean of %d runs on %s:\n", F, P, W,
           A, kt, kh, kw, reps, stacl_ctx_device(g_ctx)->name);
    double ms_of[4] = {0.0, 0.0, 0.0, 0.0}; /* fc1, fc2_backward_input, fc2, fc1_backward_input */
    static const char *const names[4] = {"adapter_fc1", "adapter_fc2_backward_input", "adapter_fc2",
                                         "adapter_fc1_backward_input"};
    for (int i = 0; i < count; i++) {
        const double ms = entries[i].ms / entries[i].launches;
        printf("      %-34s %8.2f ms\n", entries[i].op, ms);
        for (int k = 0; k < 4; k++)
            if (strcmp(entries[i].op, names[k]) == 0) ms_of[k] = ms;
    }
    if (ms_of[1] > 0.0 && ms_of[3] > 0.0)
        printf("      fc1 / fc2_backward_input %.2fx, fc2 / fc1_backward_input %.2fx (same multiply-adds)\n",
               ms_of[0] / ms_of[1], ms_of[2] / ms_of[3]);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dbuf_free(all[i]);
}

static int group_setup(void **state) {
    (void)state;
    return cl_test_ctx_create();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_shapes),
        cmocka_unit_test(test_adapter_mean_cls),
        cmocka_unit_test(test_adapter_timing),
    };
    return cmocka_run_group_tests(tests, group_setup, cl_test_group_teardown);
}
