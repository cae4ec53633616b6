/* test_fixed_backward.c: the fixed-point training kernels
 * (kernels/adapter_fixed_backward.cl) against the plain-C reference
 * (tests/unit/reference_fixed.c), bit for bit, and the generator and the
 * stochastic rounding they share with host/fx_rng.h:
 *
 * - Philox4x32-10 reproduces Random123's known-answer vectors
 *   (tests/kat_vectors, the three "philox4x32 10" lines);
 * - stochastic rounding: only floor / floor + 1 occur, the mean of many
 *   draws is v / 2^s within 5 standard errors (host and device), distinct
 *   keys give distinct streams, a shift of 0 is the identity;
 * - every kernel equals the reference bit for bit on odd shapes (one to two
 *   clips, T = 1..4, grids 1..3, kernels 1x1x1 .. 5x1x3, widths not
 *   multiples of 4, adapter width 1), inputs at odd offsets inside buffers
 *   filled with a canary that must survive (the class-token rows, around
 *   every tensor), the scale slots included;
 * - the exponent slot: all-zero gradients leave STACL_FX_EXP_ZERO, a NaN or
 *   an infinity gives STACL_FX_EXP_NONFINITE. */
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
#include "fx_rng.h"
#include "ops_fixed_backward.h"
#include "reference_fixed.h"

static void test_philox_kat(void **state) {
    (void)state;
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1}};
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        stacl_philox4x32_10(kat[k], kat[k] + 4, out);
        for (int i = 0; i < 4; i++) assert_int_equal(out[i], kat[k][6 + i]);
    }
    /* The keying: counter (index, tensor, step lo, step hi), key (seed lo, hi). */
    uint32_t out[4];
    stacl_philox4x32_10(kat[2], kat[2] + 4, out);
    const uint64_t seed = ((uint64_t)0x299f31d0 << 32) | 0xa4093822, step = ((uint64_t)0x03707344 << 32) | 0x13198a2e;
    assert_true(stacl_fx_rand64(seed, step, 0x85a308d3, 0x243f6a88) == (((uint64_t)out[1] << 32) | out[0]));
}

static void test_sr_host(void **state) {
    (void)state;
    assert_int_equal(stacl_fx_sr_round(-12345, 0, ~0ull), -12345);
    const struct { int64_t v; unsigned s; } cases[] = {{5, 4}, {-5, 4}, {1, 1}, {-1, 1}, {1000003, 10}, {-7, 3},
                                                       {(int64_t)1 << 40, 41}, {3, 62}};
    const int N = 20000;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const double exact = ldexp((double)cases[k].v, -(int)cases[k].s), lo = floor(exact);
        double mean = 0.0;
        for (int i = 0; i < N; i++) {
            const int64_t q = stacl_fx_sr_round(cases[k].v, cases[k].s, stacl_fx_rand64(9, 4, (uint32_t)k, (uint32_t)i));
            assert_true(q == (int64_t)lo || (q == (int64_t)lo + 1 && exact != lo));
            mean += (double)q / N;
        }
        const double p = exact - lo, se = sqrt(p * (1 - p) / N) + 1e-12;
        printf("  sr(%lld, %u): mean %.5f, exact %.5f (%.1f standard errors)\n", (long long)cases[k].v, cases[k].s,
               mean, exact, fabs(mean - exact) / se);
        assert_true(fabs(mean - exact) <= 5 * se + 1e-12);
    }
    /* Distinct keys, distinct streams. */
    assert_true(stacl_fx_rand64(1, 2, 3, 4) != stacl_fx_rand64(1, 2, 3, 5));
    assert_true(stacl_fx_rand64(1, 2, 3, 4) != stacl_fx_rand64(1, 2, 4, 4));
    assert_true(stacl_fx_rand64(1, 2, 3, 4) != stacl_fx_rand64(1, 3, 3, 4));
    assert_true(stacl_fx_rand64(1, 2, 3, 4) != stacl_fx_rand64(2, 2, 3, 4));
    assert_true(stacl_fx_rand64(1, (uint64_t)1 << 32, 3, 4) != stacl_fx_rand64(1, 0, 3, 4));
}

/* ---- device buffers of any element size with a byte canary ---- */

#define CANARY_BYTE 0xA5
#define PAD 3 /* elements of canary before and after every tensor */

typedef struct bbuf {
    cl_mem mem;
    size_t n, esz; /* elements (PAD + payload + PAD) */
    unsigned char *host, *sent;
} bbuf;

/* A buffer for `n` elements of esz bytes at offset PAD, canary around;
 * data (may be NULL: all canary) is copied in and uploaded. */
static bbuf bb_new(size_t n, size_t esz, const void *data) {
    bbuf b = {NULL, n + 2 * PAD, esz, NULL, NULL};
    b.host = malloc(b.n * esz);
    b.sent = malloc(b.n * esz);
    assert_true(b.host && b.sent);
    memset(b.host, CANARY_BYTE, b.n * esz);
    if (data) memcpy(b.host + PAD * esz, data, n * esz);
    memcpy(b.sent, b.host, b.n * esz);
    cl_int err;
    b.mem = clCreateBuffer(g_ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, b.n * esz, b.host, &err);
    CL_CHECK(err);
    return b;
}

static void bb_download(bbuf *b) {
    CL_CHECK(clEnqueueReadBuffer(g_ctx->queue, b->mem, CL_TRUE, 0, b->n * b->esz, b->host, 0, NULL, NULL));
}

static void bb_free(bbuf *b) {
    clReleaseMemObject(b->mem);
    free(b->host);
    free(b->sent);
}

/* The payload must equal want (bit for bit) and every byte outside it
 * (and inside it where keep[i] != 0, element-wise) must be unchanged. */
static void bb_expect(const char *what, bbuf *b, const void *want, const unsigned char *keep) {
    bb_download(b);
    const size_t n = b->n - 2 * PAD;
    size_t bad = 0, first = 0, touched = 0;
    for (size_t i = 0; i < b->n; i++) {
        const unsigned char *got = b->host + i * b->esz;
        const int inside = i >= PAD && i < PAD + n;
        const int must_keep = !inside || (keep && keep[i - PAD]);
        if (must_keep) {
            if (memcmp(got, b->sent + i * b->esz, b->esz) != 0) touched++;
        } else if (memcmp(got, (const unsigned char *)want + (i - PAD) * b->esz, b->esz) != 0) {
            if (!bad) first = i - PAD;
            bad++;
        }
    }
    if (bad || touched) {
        print_error("%s: %zu of %zu differ from the reference (first at %zu), %zu protected elements changed\n",
                    what, bad, n, first, touched);
        fail();
    }
}

typedef struct bwd_case {
    fx_shape s;
    stacl_fx_format f;
    uint64_t seed;
} bwd_case;

static uint64_t rng_state;
static int32_t rnd(int32_t m) { /* uniform in [-m, m] */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int32_t)((rng_state >> 33) % (uint64_t)(2 * (int64_t)m + 1)) - m;
}
static int16_t *rnd16(size_t n, int32_t m) {
    int16_t *v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (int16_t)rnd(m);
    return v;
}

static void run_case(const bwd_case *c) {
    const fx_shape *s = &c->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    const size_t K = s->kt * s->kh * s->kw, NX = F * (P + 1) * W, NU = F * P * W, NH = F * P * A;
    rng_state = c->seed;
    /* keep mask of the class-token rows of [F, 1 + P, W] */
    unsigned char *cls = calloc(NX, 1);
    for (size_t f = 0; f < F; f++) memset(cls + f * (P + 1) * W, 1, W);
    float *x = malloc(NX * sizeof *x), *g = malloc(NX * sizeof *g);
    for (size_t i = 0; i < NX; i++) {
        x[i] = (float)rnd(1 << 20) / 4096.0f;  /* +-256: saturates at q8.8 sometimes */
        g[i] = (float)rnd(1 << 20) * 1e-9f;    /* small gradients, exponent about -9 */
    }
    x[W + 1] = 0.5f / 256.0f;  /* a tie: rounds to even (0) */
    x[W + 2] = 1.5f / 256.0f;  /* a tie: rounds to even (2) */
    x[W + 3] = NAN;            /* -> 0 */
    int16_t *y = rnd16(NH, 32767), *h = rnd16(NH, 32767), *w1t = rnd16(W * A, 32767), *cw = rnd16(A * K, 32767),
            *w2t = rnd16(A * W, 32767), *gu = rnd16(NU, 1 << 14), *gy = rnd16(NH, 1 << 14), *gh = rnd16(NH, 1 << 14);
    int32_t *b2 = malloc(W * sizeof *b2);
    for (size_t i = 0; i < W; i++) b2[i] = rnd(1 << 30);
    const stacl_fx_sr sr = {c->seed * 7 + 1, ((uint64_t)3 << 32) + 17, 5};

    /* fx_quantize_rows */
    {
        int16_t *ref = malloc(NX * sizeof *ref);
        ref_fxb_quantize_rows(s, c->f.frac_x, x, ref);
        bbuf bx = bb_new(NX, 4, x), bq = bb_new(NX, 2, NULL);
        ST_CHECK(stacl_op_fx_quantize_rows(g_ctx, F, P, W, c->f.frac_x, bx.mem, PAD, bq.mem, PAD));
        bb_expect("fx_quantize_rows", &bq, ref, cls);
        bb_expect("fx_quantize_rows input", &bx, x, NULL);
        bb_free(&bx), bb_free(&bq), free(ref);
    }
    /* adapter_fc2_update_q */
    {
        float *ref = malloc(NX * sizeof *ref);
        memcpy(ref, x, NX * sizeof *ref);
        for (size_t i = 0; i < NX; i++)
            if (isnan(ref[i])) ref[i] = x[i] = 1.0f;
        ref_fxb_fc2_update(&c->f, s, y, w2t, b2, ref);
        bbuf by = bb_new(NH, 2, y), bw = bb_new(A * W, 2, w2t), bb = bb_new(W, 4, b2), bx = bb_new(NX, 4, x);
        ST_CHECK(stacl_op_adapter_fc2_update_q(g_ctx, &c->f, F, P, W, A, by.mem, PAD, bw.mem, PAD, bb.mem, PAD, bx.mem,
                                               PAD));
        bb_expect("adapter_fc2_update_q", &bx, ref, cls);
        bb_free(&by), bb_free(&bw), bb_free(&bb), bb_free(&bx), free(ref);
    }
    /* fx_grad_exponent + fx_quantize_grad_sr */
    {
        const int e_ref = ref_fxb_grad_exponent(s, g);
        int slots[1] = {STACL_FX_EXP_ZERO};
        bbuf bg = bb_new(NX, 4, g), bs = bb_new(1, 4, slots);
        ST_CHECK(stacl_op_fx_grad_exponent(g_ctx, F, P, W, bg.mem, PAD, bs.mem, PAD));
        bb_expect("fx_grad_exponent", &bs, &e_ref, NULL);
        const int frac = 14 - e_ref;
        int16_t *ref = malloc(NU * sizeof *ref);
        ref_fxb_quantize_grad_sr(s, frac, sr.seed, sr.step, sr.tensor, g, ref);
        bbuf bu = bb_new(NU, 2, NULL);
        ST_CHECK(stacl_op_fx_quantize_grad_sr(g_ctx, F, P, W, frac, &sr, bg.mem, PAD, bu.mem, PAD));
        bb_expect("fx_quantize_grad_sr", &bu, ref, NULL);
        bb_free(&bg), bb_free(&bs), bb_free(&bu), free(ref);
    }
    /* fc2 backward input + narrowing */
    {
        int64_t *ref = malloc(NH * sizeof *ref);
        const int bits = ref_fxb_fc2_backward_input(s, gu, w2t, ref);
        int zero = 0;
        bbuf bu = bb_new(NU, 2, gu), bw = bb_new(A * W, 2, w2t), ba = bb_new(NH, 8, NULL), bs = bb_new(1, 4, &zero);
        ST_CHECK(stacl_op_adapter_fc2_backward_input_q(g_ctx, F, P, W, A, bu.mem, PAD, bw.mem, PAD, ba.mem, PAD,
                                                       bs.mem, PAD));
        bb_expect("adapter_fc2_backward_input_q", &ba, ref, NULL);
        bb_expect("adapter_fc2_backward_input_q slot", &bs, &bits, NULL);
        const unsigned shift = bits > 14 ? (unsigned)bits - 14 : 0;
        int16_t *nar = malloc(NH * sizeof *nar);
        ref_fxb_narrow_sr(NH, shift, sr.seed, sr.step, sr.tensor + 1, ref, NULL, nar);
        bbuf bn = bb_new(NH, 2, NULL);
        const stacl_fx_sr sr1 = {sr.seed, sr.step, sr.tensor + 1};
        ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, NH, shift, &sr1, ba.mem, PAD, bn.mem, PAD, NULL, 0));
        bb_expect("fx_narrow_sr", &bn, nar, NULL);
        /* with the forward activations: zero where they saturated (y has
         * some of its +-32767 values pinned to the limits) */
        for (size_t i = 0; i < NH; i += 3) y[i] = (int16_t)(i % 2 ? 32767 : -32768);
        ref_fxb_narrow_sr(NH, shift, sr.seed, sr.step, sr.tensor + 1, ref, y, nar);
        size_t zeroed = 0;
        for (size_t i = 0; i < NH; i += 3) zeroed += nar[i] == 0;
        assert_true(zeroed == (NH + 2) / 3);
        bbuf bact = bb_new(NH, 2, y), bn2 = bb_new(NH, 2, NULL);
        ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, NH, shift, &sr1, ba.mem, PAD, bn2.mem, PAD, bact.mem, PAD));
        bb_expect("fx_narrow_sr with saturation mask", &bn2, nar, NULL);
        bb_free(&bact), bb_free(&bn2);
        bb_free(&bu), bb_free(&bw), bb_free(&ba), bb_free(&bs), bb_free(&bn), free(ref), free(nar);
    }
    /* conv backward input */
    {
        int64_t *ref = malloc(NH * sizeof *ref);
        const int bits = ref_fxb_dwconv3d_backward_input(s, gy, cw, ref);
        int zero = 0;
        bbuf by = bb_new(NH, 2, gy), bw = bb_new(A * K, 2, cw), ba = bb_new(NH, 8, NULL), bs = bb_new(1, 4, &zero);
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_input_q(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                            by.mem, PAD, bw.mem, PAD, ba.mem, PAD, bs.mem, PAD));
        bb_expect("adapter_dwconv3d_backward_input_q", &ba, ref, NULL);
        bb_expect("adapter_dwconv3d_backward_input_q slot", &bs, &bits, NULL);
        bb_free(&by), bb_free(&bw), bb_free(&ba), bb_free(&bs), free(ref);
    }
    /* fc1 backward input (into the float gradient) */
    {
        float *ref = malloc(NX * sizeof *ref);
        memcpy(ref, g, NX * sizeof *ref);
        const int scale = 30;
        int16_t *xq = malloc(NX * sizeof *xq);
        for (size_t i = 0; i < NX; i++) xq[i] = (int16_t)(i % 5 == 0 ? (i % 2 ? 32767 : -32768) : rnd(32766));
        ref_fxb_fc1_backward_input(s, scale, gh, w1t, xq, ref);
        bbuf bh = bb_new(NH, 2, gh), bw = bb_new(W * A, 2, w1t), bg = bb_new(NX, 4, g), bx = bb_new(NX, 2, xq);
        ST_CHECK(stacl_op_adapter_fc1_backward_input_q(g_ctx, F, P, W, A, scale, bh.mem, PAD, bw.mem, PAD, bx.mem, PAD,
                                                       bg.mem, PAD));
        bb_expect("adapter_fc1_backward_input_q", &bg, ref, cls);
        bb_free(&bh), bb_free(&bw), bb_free(&bg), bb_free(&bx), free(ref), free(xq);
    }
    /* parameter gradients + accumulation */
    {
        int16_t *xq = malloc(NX * sizeof *xq);
        for (size_t i = 0; i < NX; i++) xq[i] = (int16_t)rnd(32767);
        const size_t nw = (W * A > A * K ? W * A : A * K);
        int64_t *dw = malloc(nw * sizeof *dw), *db = malloc((W > A ? W : A) * sizeof *db);
        bbuf bdw = bb_new(nw, 8, NULL), bdb = bb_new(W > A ? W : A, 8, NULL);
        unsigned char *tail = calloc(nw, 1);
        /* fc2 */
        ref_fxb_fc2_backward_params(s, y, gu, dw, db);
        bbuf by = bb_new(NH, 2, y), bu = bb_new(NU, 2, gu);
        ST_CHECK(stacl_op_adapter_fc2_backward_params_q(g_ctx, F, P, W, A, by.mem, PAD, bu.mem, PAD, bdw.mem, PAD,
                                                        bdb.mem, PAD));
        memset(tail, 0, nw);
        memset(tail + A * W, 1, nw - A * W);
        bb_expect("adapter_fc2_backward_params_q dw", &bdw, dw, tail);
        /* accumulate: grad += dw * 2^-40 */
        float *grad = malloc(A * W * sizeof *grad), *gref = malloc(A * W * sizeof *gref);
        for (size_t i = 0; i < A * W; i++) grad[i] = gref[i] = (float)rnd(1000) * 1e-4f;
        ref_fxb_accumulate_grad(A * W, 40, dw, gref);
        bbuf bgr = bb_new(A * W, 4, grad);
        ST_CHECK(stacl_op_fx_accumulate_grad(g_ctx, A * W, 40, bdw.mem, PAD, bgr.mem, PAD));
        bb_expect("fx_accumulate_grad", &bgr, gref, NULL);
        bb_free(&bgr), free(grad), free(gref);
        bb_download(&bdb);
        assert_memory_equal(bdb.host + PAD * 8, db, W * 8);
        /* conv */
        ref_fxb_dwconv3d_backward_params(s, h, gy, dw, db);
        bbuf bh = bb_new(NH, 2, h), bgy = bb_new(NH, 2, gy);
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_params_q(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                             bh.mem, PAD, bgy.mem, PAD, bdw.mem, PAD, bdb.mem, PAD));
        bb_download(&bdw);
        bb_download(&bdb);
        assert_memory_equal(bdw.host + PAD * 8, dw, A * K * 8);
        assert_memory_equal(bdb.host + PAD * 8, db, A * 8);
        /* fc1 */
        ref_fxb_fc1_backward_params(s, xq, gh, dw, db);
        bbuf bx = bb_new(NX, 2, xq), bgh = bb_new(NH, 2, gh);
        ST_CHECK(stacl_op_adapter_fc1_backward_params_q(g_ctx, F, P, W, A, bx.mem, PAD, bgh.mem, PAD, bdw.mem, PAD,
                                                        bdb.mem, PAD));
        bb_download(&bdw);
        bb_download(&bdb);
        assert_memory_equal(bdw.host + PAD * 8, dw, W * A * 8);
        assert_memory_equal(bdb.host + PAD * 8, db, A * 8);
        /* canaries before and after */
        for (size_t i = 0; i < PAD * 8; i++) assert_int_equal(bdw.host[i], CANARY_BYTE);
        bb_free(&by), bb_free(&bu), bb_free(&bh), bb_free(&bgy), bb_free(&bx), bb_free(&bgh);
        bb_free(&bdw), bb_free(&bdb), free(tail), free(dw), free(db), free(xq);
    }
    free(cls), free(x), free(g), free(y), free(h), free(w1t), free(cw), free(w2t), free(gu), free(gy), free(gh);
    free(b2);
}

static void test_kernels_vs_reference(void **state) {
    (void)state;
    const stacl_fx_format f1 = STACL_FX_FORMAT_DEFAULT, f2 = {10, 14, 7, 9, 12, 3};
    const bwd_case cases[] = {
        {{1, 3, 3, 5, 3, 3, 3, 3}, f1, 11},
        {{2, 1, 2, 7, 1, 5, 1, 3}, f2, 12},
        {{1, 4, 1, 9, 2, 3, 1, 1}, f1, 13},
        {{2, 2, 3, 6, 4, 1, 1, 1}, f2, 14},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("  case %zu: clips %zu T %zu grid %zu W %zu A %zu kernel %zux%zux%zu\n", i, cases[i].s.clips,
               cases[i].s.T, cases[i].s.grid, cases[i].s.width, cases[i].s.aw, cases[i].s.kt, cases[i].s.kh,
               cases[i].s.kw);
        run_case(&cases[i]);
    }
}

static void test_exponent_edges(void **state) {
    (void)state;
    const fx_shape s = {1, 2, 2, 5, 1, 1, 1, 1};
    const size_t NX = 2 * 5 * 5;
    float g[50] = {0};
    for (int k = 0; k < 3; k++) {
        if (k == 1) g[5 + 3] = NAN;       /* a patch row */
        if (k == 2) g[5 + 3] = -INFINITY;
        g[0] = 1e30f; /* a class-token row: never read */
        const int want = k == 0 ? STACL_FX_EXP_ZERO : STACL_FX_EXP_NONFINITE;
        assert_int_equal(ref_fxb_grad_exponent(&s, g), want);
        int slot = STACL_FX_EXP_ZERO;
        bbuf bg = bb_new(NX, 4, g), bs = bb_new(1, 4, &slot);
        ST_CHECK(stacl_op_fx_grad_exponent(g_ctx, 2, 4, 5, bg.mem, PAD, bs.mem, PAD));
        bb_expect("fx_grad_exponent edge", &bs, &want, NULL);
        bb_free(&bg), bb_free(&bs);
    }
}

/* Stochastic rounding on the device: unbiased, and only two outcomes. */
static void test_sr_device(void **state) {
    (void)state;
    const size_t n = 20000;
    int64_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = 5; /* 5 / 16 = 0.3125 */
    bbuf ba = bb_new(n, 8, v), bd = bb_new(n, 2, NULL);
    const stacl_fx_sr sr = {123, 456, 7};
    ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, n, 4, &sr, ba.mem, PAD, bd.mem, PAD, NULL, 0));
    bb_download(&bd);
    double mean = 0;
    for (size_t i = 0; i < n; i++) {
        int16_t q;
        memcpy(&q, bd.host + (PAD + i) * 2, 2);
        assert_true(q == 0 || q == 1);
        mean += q / (double)n;
    }
    const double se = sqrt(0.3125 * 0.6875 / n);
    printf("  device sr(5, 4) over %zu elements: mean %.5f (exact 0.3125, %.1f standard errors)\n", n, mean,
           fabs(mean - 0.3125) / se);
    assert_true(fabs(mean - 0.3125) <= 5 * se);
    bb_free(&ba), bb_free(&bd), free(v);
}

static int group_setup(void **state) {
    (void)state;
    return cl_test_ctx_create();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),          cmocka_unit_test(test_sr_host),
        cmocka_unit_test(test_kernels_vs_reference), cmocka_unit_test(test_exponent_edges),
        cmocka_unit_test(test_sr_device),
    };
    return cmocka_run_group_tests(tests, group_setup, cl_test_group_teardown);
}
