/* test_fixed_backward.c: the fixed-point training kernels
 * (kernels/adapter_fixed_backward.cl) against the plain-C reference
 * (tests/unit/reference_fixed.c), bit for bit, and the generator and the
 * stochastic rounding they share with host/fx_rng.h:
 *
 * - Philox4x32-10 reproduces Random123's known-answer vectors
 *   (github.com/DEShawResearch/random123 tests/kat_vectors, the three
 *   "philox4x32 10" lines);
 * - stochastic rounding: only floor / floor + 1 occur, the mean of many
 *   draws is v / 2^s within 5 standard errors (host and device), distinct
 *   keys give distinct streams, a shift of 0 is the identity;
 * - every kernel equals the reference bit for bit on odd shapes (one to two
 *   clips, T = 1..4, grids 1..3, kernels 1x1x1 .. 5x1x3, widths not
 *   multiples of 4, adapter width 1), inputs at odd offsets inside buffers
 *   filled with a canary that must survive (the class-token rows, around
 *   every tensor), the scale slots included;
 * - the exponent slot: all-zero gradients leave STACL_FX_EXP_ZERO, a NaN or
 *   an infinity gives STACL_FX_EXP_NONFINITE;
 * - exact rounding outcomes (u = 0 / ~0, multiples of 2^s, s = 1 and 2
 *   counted against Philox's raw words), distinct device streams;
 * - extremes: quantization of +-inf / NaN / ties / out-of-range values,
 *   gradients that saturate, all-int16-extreme inputs in every sum, a
 *   saturating shift of 0, fx_accumulate_grad at scales -60 and 126;
 * - one site's whole backward as the host sequences it (slots read back
 *   between kernels): the golden files tests/data/fixed_bwd/NAME.bin shared
 *   with HLS (the reference reproduces them byte for byte, the OpenCL
 *   sequence matches them; STACL_FIXED_BWD_GOLDEN_OUT=DIR rewrites them);
 * - accuracy: at W 256, A 64, T 8, grid 7 the fixed backward against the
 *   float backward in double on the same values (bounds ~3x measured), and
 *   the OpenCL sequence == the reference there too. */
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

/* ---- stochastic rounding: exact outcomes ---- */

static void test_sr_exact(void **state) {
    (void)state;
    /* u = 0 rounds up whenever there is a remainder, u = ~0 never does;
     * multiples of 2^s never move. */
    const int64_t vs[] = {1, -1, 5, -5, 32767, -32768, ((int64_t)1 << 50) + 3, -(((int64_t)1 << 50) + 3), 0};
    const unsigned ss[] = {1, 2, 16, 31, 32, 33, 62};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++)
        for (size_t k = 0; k < sizeof ss / sizeof ss[0]; k++) {
            const int64_t v = vs[i];
            const unsigned s = ss[k];
            const int64_t fl = v >= 0 ? v / ((int64_t)1 << s) : -((-v + ((int64_t)1 << s) - 1) / ((int64_t)1 << s));
            const int exact = fl * ((int64_t)1 << s) == v;
            assert_true(stacl_fx_sr_round(v, s, ~(uint64_t)0) == fl);
            assert_true(stacl_fx_sr_round(v, s, 0) == fl + (exact ? 0 : 1));
            assert_true(stacl_fx_sr_round(fl * ((int64_t)1 << s), s, 0) == fl);
        }
    assert_true(stacl_fx_sr_round(INT64_C(-4611686018427387904), 62, 0) == -1);
    /* s = 1, 2: the outcome is decided by the top bits of the draw, which are
     * the top bits of Philox's second output word r1: counted from the raw
     * words, the numbers of round-ups must agree exactly. */
    const uint32_t N = 20000;
    const uint64_t seed = 0x9e3779b97f4a7c15ull, step = 77;
    uint32_t up1 = 0, up1_words = 0, up3 = 0, up3_words = 0;
    for (uint32_t i = 0; i < N; i++) {
        const uint64_t u = stacl_fx_rand64(seed, step, 3, i);
        const int64_t q1 = stacl_fx_sr_round(7, 1, u); /* 3.5 -> 3 or 4 */
        const int64_t q3 = stacl_fx_sr_round(-5, 2, u); /* -1.25 -> -2 (+1 with p = 3/4) */
        assert_true(q1 == 3 || q1 == 4);
        assert_true(q3 == -2 || q3 == -1);
        up1 += q1 == 4, up3 += q3 == -1;
        const uint32_t ctr[4] = {i, 3, (uint32_t)step, (uint32_t)(step >> 32)};
        const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
        uint32_t r[4];
        stacl_philox4x32_10(ctr, key, r);
        up1_words += (r[1] >> 31) < 1;
        up3_words += (r[1] >> 30) < 3;
    }
    printf("  sr(7, 1): %u of %u round up (expected %u +- %.0f); sr(-5, 2): %u (expected %u +- %.0f)\n", up1, N,
           N / 2, sqrt(N * 0.25), up3, N * 3 / 4, sqrt(N * 0.1875));
    assert_int_equal(up1, up1_words);
    assert_int_equal(up3, up3_words);
    assert_true(fabs((double)up1 - N / 2.0) <= 5 * sqrt(N * 0.25));
    assert_true(fabs((double)up3 - N * 0.75) <= 5 * sqrt(N * 0.1875));
}

/* Distinct (seed, step, tensor) give distinct device streams; the same key
 * gives the same bits. */
static void test_sr_device_streams(void **state) {
    (void)state;
    const size_t n = 257;
    int64_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = (int64_t)(i * 2654435761u % 65536) - 32768;
    bbuf ba = bb_new(n, 8, v);
    const stacl_fx_sr keys[5] = {{1, 2, 3}, {1, 2, 4}, {1, 3, 3}, {2, 2, 3}, {1, ((uint64_t)1 << 32) + 2, 3}};
    int16_t out[6][257];
    for (int k = 0; k < 6; k++) {
        bbuf bd = bb_new(n, 2, NULL);
        ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, n, 9, &keys[k % 5], ba.mem, PAD, bd.mem, PAD, NULL, 0));
        bb_download(&bd);
        memcpy(out[k], bd.host + PAD * 2, n * 2);
        bb_free(&bd);
    }
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++) assert_true(memcmp(out[a], out[b], n * 2) != 0);
    assert_memory_equal(out[0], out[5], n * 2);
    bb_free(&ba), free(v);
}

/* ---- extreme values: saturation and the widest sums ---- */

static void test_extremes(void **state) {
    (void)state;
    /* fx_quantize_rows: ties, infinities, NaN, out of range */
    {
        const fx_shape s = {1, 1, 2, 9, 1, 1, 1, 1};
        const size_t NX = 5 * 9;
        float x[45];
        const float vals[9] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 2.5f / 256, -2.5f / 256, 127.998f, -128.0f};
        for (size_t i = 0; i < NX; i++) x[i] = vals[i % 9];
        int16_t ref[45];
        memset(ref, 0, sizeof ref);
        ref_fxb_quantize_rows(&s, 8, x, ref);
        assert_int_equal(ref[9], 32767), assert_int_equal(ref[10], -32768), assert_int_equal(ref[11], 0);
        assert_int_equal(ref[14], 2), assert_int_equal(ref[15], -2), assert_int_equal(ref[17], -32768);
        unsigned char cls[45] = {0};
        memset(cls, 1, 9);
        bbuf bx = bb_new(NX, 4, x), bq = bb_new(NX, 2, NULL);
        ST_CHECK(stacl_op_fx_quantize_rows(g_ctx, 1, 4, 9, 8, bx.mem, PAD, bq.mem, PAD));
        bb_expect("fx_quantize_rows extremes", &bq, ref, cls);
        bb_free(&bx), bb_free(&bq);
    }
    /* fx_quantize_grad_sr: a gradient far above 2^14 (e > 14: frac 0)
     * saturates; beyond 2^46 / 2^16 the float clamp acts first */
    {
        const fx_shape s = {1, 1, 1, 6, 1, 1, 1, 1};
        float g[12] = {0, 0, 0, 0, 0, 0, 1e6f, -1e6f, 3e38f, -3e38f, 16383.9f, -0.75f};
        int16_t ref[6];
        ref_fxb_quantize_grad_sr(&s, 0, 5, 6, 7, g, ref);
        assert_int_equal(ref[0], 32767), assert_int_equal(ref[1], -32768), assert_int_equal(ref[2], 32767);
        assert_int_equal(ref[3], -32768);
        assert_true(ref[4] == 16383 || ref[4] == 16384);
        assert_true(ref[5] == -1 || ref[5] == 0);
        const stacl_fx_sr sr = {5, 6, 7};
        bbuf bg = bb_new(12, 4, g), bu = bb_new(6, 2, NULL);
        ST_CHECK(stacl_op_fx_quantize_grad_sr(g_ctx, 1, 1, 6, 0, &sr, bg.mem, PAD, bu.mem, PAD));
        bb_expect("fx_quantize_grad_sr extremes", &bu, ref, NULL);
        bb_free(&bg), bb_free(&bu);
    }
    /* the int16 extremes in every sum: all -32768 (products 2^30) */
    {
        const fx_shape s = {2, 3, 3, 13, 3, 3, 3, 3};
        const size_t F = 6, P = 9, W = 13, A = 3, K = 27, NX = F * (P + 1) * W, NU = F * P * W, NH = F * P * A;
        int16_t *m16 = malloc(NX * sizeof *m16);
        for (size_t i = 0; i < NX; i++) m16[i] = i % 7 == 3 ? 32767 : -32768;
        int64_t *ref = malloc(NU * sizeof *ref), *ref2 = malloc(NU * sizeof *ref2);
        int zero = 0;
        /* fc2 backward input */
        int bits = ref_fxb_fc2_backward_input(&s, m16, m16, ref);
        assert_true(bits >= 32); /* sums of 13 products of magnitude ~2^30 */
        bbuf bu = bb_new(NU, 2, m16), bw = bb_new(A * W, 2, m16), ba = bb_new(NH, 8, NULL), bs = bb_new(1, 4, &zero);
        ST_CHECK(stacl_op_adapter_fc2_backward_input_q(g_ctx, F, P, W, A, bu.mem, PAD, bw.mem, PAD, ba.mem, PAD,
                                                       bs.mem, PAD));
        bb_expect("fc2 backward input extremes", &ba, ref, NULL);
        bb_expect("fc2 backward input extremes slot", &bs, &bits, NULL);
        /* narrow with shift 0: every value saturates */
        int16_t *nar = malloc(NH * sizeof *nar);
        ref_fxb_narrow_sr(NH, 0, 1, 2, 3, ref, NULL, nar);
        for (size_t i = 0; i < NH; i++) assert_true(nar[i] == 32767 || nar[i] == -32768);
        const stacl_fx_sr sr = {1, 2, 3};
        bbuf bn = bb_new(NH, 2, NULL);
        ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, NH, 0, &sr, ba.mem, PAD, bn.mem, PAD, NULL, 0));
        bb_expect("fx_narrow_sr shift 0 saturating", &bn, nar, NULL);
        /* the transposed conv */
        bits = ref_fxb_dwconv3d_backward_input(&s, m16, m16, ref2);
        bbuf by = bb_new(NH, 2, m16), bc = bb_new(A * K, 2, m16), bg = bb_new(NH, 8, NULL), bs2 = bb_new(1, 4, &zero);
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_input_q(g_ctx, 2, 3, 3, A, 3, 3, 3, by.mem, PAD, bc.mem, PAD,
                                                            bg.mem, PAD, bs2.mem, PAD));
        bb_expect("dwconv3d backward input extremes", &bg, ref2, NULL);
        bb_expect("dwconv3d backward input extremes slot", &bs2, &bits, NULL);
        /* parameter gradients */
        int64_t *dw = malloc(A * K * sizeof *dw), *db = malloc(W * sizeof *db); /* A K > W A */
        bbuf bdw = bb_new(W * A, 8, NULL), bdb = bb_new(W, 8, NULL), bx = bb_new(NX, 2, m16);
        ref_fxb_fc2_backward_params(&s, m16, m16, dw, db);
        ST_CHECK(stacl_op_adapter_fc2_backward_params_q(g_ctx, F, P, W, A, by.mem, PAD, bu.mem, PAD, bdw.mem, PAD,
                                                        bdb.mem, PAD));
        bb_expect("fc2 params extremes dw", &bdw, dw, NULL);
        bb_expect("fc2 params extremes db", &bdb, db, NULL);
        ref_fxb_fc1_backward_params(&s, m16, m16, dw, db);
        bbuf bdw1 = bb_new(W * A, 8, NULL), bdb1 = bb_new(A, 8, NULL);
        ST_CHECK(stacl_op_adapter_fc1_backward_params_q(g_ctx, F, P, W, A, bx.mem, PAD, by.mem, PAD, bdw1.mem, PAD,
                                                        bdb1.mem, PAD));
        bb_expect("fc1 params extremes dw", &bdw1, dw, NULL);
        bb_expect("fc1 params extremes db", &bdb1, db, NULL);
        ref_fxb_dwconv3d_backward_params(&s, m16, m16, dw, db);
        bbuf bdw2 = bb_new(A * K, 8, NULL), bdb2 = bb_new(A, 8, NULL);
        ST_CHECK(stacl_op_adapter_dwconv3d_backward_params_q(g_ctx, 2, 3, 3, A, 3, 3, 3, by.mem, PAD, by.mem, PAD,
                                                             bdw2.mem, PAD, bdb2.mem, PAD));
        bb_expect("dwconv3d params extremes dw", &bdw2, dw, NULL);
        bb_expect("dwconv3d params extremes db", &bdb2, db, NULL);
        /* fx_accumulate_grad at the ends of its scale range */
        const int64_t acc[4] = {INT64_C(1) << 62, -(INT64_C(1) << 40) - 1, 3, -1};
        for (int k = 0; k < 2; k++) {
            const int scale = k ? 126 : -60;
            float grad[4] = {0.5f, -0.25f, 1.0f, 0.0f}, gref[4];
            memcpy(gref, grad, sizeof grad);
            ref_fxb_accumulate_grad(4, scale, acc, gref);
            bbuf bacc = bb_new(4, 8, acc), bgr = bb_new(4, 4, grad);
            ST_CHECK(stacl_op_fx_accumulate_grad(g_ctx, 4, scale, bacc.mem, PAD, bgr.mem, PAD));
            bb_expect("fx_accumulate_grad scale range", &bgr, gref, NULL);
            bb_free(&bacc), bb_free(&bgr);
        }
        assert_int_equal(stacl_op_fx_accumulate_grad(g_ctx, 4, 127, bdw.mem, PAD, bdw.mem, PAD), STACL_ERR_INVALID_ARG);
        bb_free(&bu), bb_free(&bw), bb_free(&ba), bb_free(&bs), bb_free(&bn), bb_free(&by), bb_free(&bc);
        bb_free(&bg), bb_free(&bs2), bb_free(&bdw), bb_free(&bdb), bb_free(&bx), bb_free(&bdw1), bb_free(&bdb1);
        bb_free(&bdw2), bb_free(&bdb2);
        free(m16), free(ref), free(ref2), free(nar), free(dw), free(db);
    }
}

/* ---- one site's whole backward: the host sequence of the trainer ---- */

/* Runs steps 1-8 on the device on c's inputs, the host reading the slots
 * between them as the trainer does; fills c's computed fields and outputs
 * (not gx_acc: fc1's sums go straight into the float gradient). Every
 * tensor sits at an odd offset in a canary-filled buffer; the canaries and
 * the class-token rows must survive. */
static void run_sequence_cl(fxb_case *c) {
    const fx_shape *s = &c->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw, K = s->kt * s->kh * s->kw;
    const size_t NX = F * (P + 1) * W, NU = F * P * W, NH = F * P * A;
    unsigned char *cls = calloc(NX, 1);
    for (size_t f = 0; f < F; f++) memset(cls + f * (P + 1) * W, 1, W);
    bbuf bg = bb_new(NX, 4, c->g_in), bxq = bb_new(NX, 2, c->xq), bh = bb_new(NH, 2, c->h), by = bb_new(NH, 2, c->y);
    bbuf bw1 = bb_new(W * A, 2, c->w1t), bcw = bb_new(A * K, 2, c->cw), bw2 = bb_new(A * W, 2, c->w2t);
    bbuf bgu = bb_new(NU, 2, NULL), bgya = bb_new(NH, 8, NULL), bgy = bb_new(NH, 2, NULL), bgha = bb_new(NH, 8, NULL);
    bbuf bgh = bb_new(NH, 2, NULL), bslots = bb_new(3, 4, NULL);
    bbuf bdw2 = bb_new(A * W, 8, NULL), bdb2 = bb_new(W, 8, NULL), bdcw = bb_new(A * K, 8, NULL);
    bbuf bdcb = bb_new(A, 8, NULL), bdw1 = bb_new(W * A, 8, NULL), bdb1 = bb_new(A, 8, NULL);
    int slots[3];
    /* 1 */
    ST_CHECK(stacl_op_fx_fill_slots(g_ctx, bslots.mem, PAD, 1, STACL_FX_EXP_ZERO));
    ST_CHECK(stacl_op_fx_fill_slots(g_ctx, bslots.mem, PAD + 1, 2, 0));
    ST_CHECK(stacl_op_fx_grad_exponent(g_ctx, F, P, W, bg.mem, PAD, bslots.mem, PAD));
    bb_download(&bslots);
    memcpy(slots, bslots.host + PAD * 4, sizeof slots);
    assert_int_equal(slots[1], 0), assert_int_equal(slots[2], 0);
    c->e_g = slots[0];
    assert_int_not_equal(c->e_g, STACL_FX_EXP_NONFINITE);
    const int fg = 14 - c->e_g;
    c->frac_gu = fg < 0 ? 0 : fg > 48 ? 48 : fg;
    /* 2 */
    stacl_fx_sr sr = {c->seed, c->step, c->t_gu};
    ST_CHECK(stacl_op_fx_quantize_grad_sr(g_ctx, F, P, W, c->frac_gu, &sr, bg.mem, PAD, bgu.mem, PAD));
    /* 3-4 */
    ST_CHECK(stacl_op_adapter_fc2_backward_input_q(g_ctx, F, P, W, A, bgu.mem, PAD, bw2.mem, PAD, bgya.mem, PAD,
                                                   bslots.mem, PAD + 1));
    bb_download(&bslots);
    memcpy(slots, bslots.host + PAD * 4, sizeof slots);
    c->b_gy = (uint32_t)slots[1];
    c->s_gy = slots[1] > 14 ? (uint32_t)slots[1] - 14 : 0;
    sr.tensor = c->t_gy;
    ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, NH, c->s_gy, &sr, bgya.mem, PAD, bgy.mem, PAD, by.mem, PAD));
    /* 5-6 */
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_input_q(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                        bgy.mem, PAD, bcw.mem, PAD, bgha.mem, PAD, bslots.mem,
                                                        PAD + 2));
    bb_download(&bslots);
    memcpy(slots, bslots.host + PAD * 4, sizeof slots);
    c->b_gh = (uint32_t)slots[2];
    c->s_gh = slots[2] > 14 ? (uint32_t)slots[2] - 14 : 0;
    sr.tensor = c->t_gh;
    ST_CHECK(stacl_op_fx_narrow_sr(g_ctx, NH, c->s_gh, &sr, bgha.mem, PAD, bgh.mem, PAD, bh.mem, PAD));
    /* 7 */
    ST_CHECK(stacl_op_adapter_fc1_backward_input_q(g_ctx, F, P, W, A, fxb_case_frac_gh(c) + c->f.frac_w1, bgh.mem,
                                                   PAD, bw1.mem, PAD, bxq.mem, PAD, bg.mem, PAD));
    /* 8 */
    ST_CHECK(stacl_op_adapter_fc2_backward_params_q(g_ctx, F, P, W, A, by.mem, PAD, bgu.mem, PAD, bdw2.mem, PAD,
                                                    bdb2.mem, PAD));
    ST_CHECK(stacl_op_adapter_dwconv3d_backward_params_q(g_ctx, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw,
                                                         bh.mem, PAD, bgy.mem, PAD, bdcw.mem, PAD, bdcb.mem, PAD));
    ST_CHECK(stacl_op_adapter_fc1_backward_params_q(g_ctx, F, P, W, A, bxq.mem, PAD, bgh.mem, PAD, bdw1.mem, PAD,
                                                    bdb1.mem, PAD));
    /* Outputs, canaries and untouched inputs. */
    struct { bbuf *b; void *dst; } outs[] = {{&bgu, c->gu},   {&bgya, c->gy_acc}, {&bgy, c->gy},   {&bgha, c->gh_acc},
                                             {&bgh, c->gh},   {&bg, c->g_out},    {&bdw2, c->dw2}, {&bdb2, c->db2},
                                             {&bdcw, c->dcw}, {&bdcb, c->dcb},    {&bdw1, c->dw1t}, {&bdb1, c->db1}};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        bbuf *b = outs[i].b;
        bb_download(b);
        memcpy(outs[i].dst, b->host + PAD * b->esz, (b->n - 2 * PAD) * b->esz);
        /* canaries around every output, and g's class rows */
        const unsigned char *keep = b == &bg ? cls : NULL;
        bb_expect("sequence output canaries", b, b->host + PAD * b->esz, keep);
    }
    bb_download(&bslots);
    bb_expect("sequence slot canaries", &bslots, bslots.host + PAD * 4, NULL);
    bbuf *ins[] = {&bxq, &bh, &by, &bw1, &bcw, &bw2};
    for (size_t i = 0; i < sizeof ins / sizeof ins[0]; i++)
        bb_expect("sequence input unchanged", ins[i], ins[i]->sent + PAD * ins[i]->esz, NULL);
    bbuf *all[] = {&bg, &bxq, &bh, &by, &bw1, &bcw, &bw2, &bgu, &bgya, &bgy, &bgha, &bgh, &bslots,
                   &bdw2, &bdb2, &bdcw, &bdcb, &bdw1, &bdb1};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) bb_free(all[i]);
    free(cls);
}

/* Compares every output array of two cases (and the slot-derived fields);
 * gx_acc too when with_gx. */
static void expect_same_outputs(const char *what, const fxb_case *a, const fxb_case *b, int with_gx) {
    assert_int_equal(a->e_g, b->e_g), assert_int_equal(a->frac_gu, b->frac_gu);
    assert_int_equal(a->b_gy, b->b_gy), assert_int_equal(a->s_gy, b->s_gy);
    assert_int_equal(a->b_gh, b->b_gh), assert_int_equal(a->s_gh, b->s_gh);
    const fx_shape *s = &a->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw, K = s->kt * s->kh * s->kw;
    const size_t NX = F * (P + 1) * W, NU = F * P * W, NH = F * P * A;
    const struct { const char *name; const void *x, *y; size_t bytes; } arr[] = {
        {"gu", a->gu, b->gu, NU * 2},         {"gy_acc", a->gy_acc, b->gy_acc, NH * 8},
        {"gy", a->gy, b->gy, NH * 2},         {"gh_acc", a->gh_acc, b->gh_acc, NH * 8},
        {"gh", a->gh, b->gh, NH * 2},         {"gx_acc", a->gx_acc, b->gx_acc, with_gx ? NU * 8 : 0},
        {"g_out", a->g_out, b->g_out, NX * 4}, {"dw2", a->dw2, b->dw2, A * W * 8},
        {"db2", a->db2, b->db2, W * 8},       {"dcw", a->dcw, b->dcw, A * K * 8},
        {"dcb", a->dcb, b->dcb, A * 8},       {"dw1t", a->dw1t, b->dw1t, W * A * 8},
        {"db1", a->db1, b->db1, A * 8}};
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++)
        if (memcmp(arr[i].x, arr[i].y, arr[i].bytes) != 0) {
            print_error("%s: %s differs\n", what, arr[i].name);
            fail();
        }
}

/* ---- golden files shared with HLS (tests/data/fixed_bwd) ---- */

typedef struct fxb_golden_def {
    const char *name;
    fx_shape s;
    stacl_fx_format f;
    uint64_t seed, step;
    uint32_t t_gu, t_gy, t_gh;
    int g_exp;         /* g = uniform integer in +-2^20, times 2^(g_exp - 20) */
    int32_t act, wmax; /* |xq|, |h|, |y| <= act; |weights| <= wmax */
    int pin;           /* every 5th xq, h, y pinned to 32767 / -32768 */
    uint64_t gen;      /* the generator's seed */
} fxb_golden_def;

static const fxb_golden_def fxb_goldens[] = {
    {"k333_t3_g3_q8", {1, 3, 3, 10, 5, 3, 3, 3}, {8, 12, 8, 12, 8, 12}, 0x0123456789abcdefull, 12, 4, 5, 6, -8, 4096,
     4096, 0, 101},
    {"k513_t1_g2_f2_tiny", {2, 1, 2, 7, 3, 5, 1, 3}, {10, 14, 7, 9, 12, 3}, 0xfedcba9876543210ull,
     ((uint64_t)1 << 32) + 3, 7, 8, 9, -40, 32000, 32767, 0, 102},
    {"k311_t2_g1_big", {2, 2, 1, 9, 1, 3, 1, 1}, {8, 12, 8, 12, 8, 12}, 1, 0, 0, 1, 2, 17, 2000, 32767, 0, 103},
    {"k333_t3_g2_f2_sat", {1, 3, 2, 6, 4, 3, 3, 3}, {10, 14, 7, 9, 12, 3}, 42, 99, 12, 13, 14, 0, 32767, 32767, 1,
     104},
};

/* The inputs of a golden case from its definition (deterministic integer
 * generator, floats built exactly with ldexpf); outputs by the reference. */
static void fxb_golden_make(const fxb_golden_def *d, fxb_case *c) {
    memset(c, 0, sizeof *c);
    c->s = d->s, c->f = d->f, c->seed = d->seed, c->step = d->step;
    c->t_gu = d->t_gu, c->t_gy = d->t_gy, c->t_gh = d->t_gh;
    assert_int_equal(fxb_case_alloc(c), 0);
    const fx_shape *s = &c->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw, K = s->kt * s->kh * s->kw;
    const size_t NX = F * (P + 1) * W, NH = F * P * A;
    rng_state = d->gen;
    for (size_t i = 0; i < NX; i++) {
        c->g_in[i] = ldexpf((float)rnd(1 << 20), d->g_exp - 20);
        const int cls = (i / W) % (P + 1) == 0;
        c->xq[i] = cls ? 0 : (int16_t)rnd(d->act);
        if (!cls && d->pin && i % 5 == 0) c->xq[i] = (int16_t)(i % 2 ? 32767 : -32768);
    }
    for (size_t i = 0; i < NH; i++) {
        c->h[i] = (int16_t)rnd(d->act), c->y[i] = (int16_t)rnd(d->act);
        if (d->pin && i % 5 == 1) c->h[i] = (int16_t)(i % 2 ? 32767 : -32768);
        if (d->pin && i % 5 == 2) c->y[i] = (int16_t)(i % 2 ? -32768 : 32767);
    }
    for (size_t i = 0; i < W * A; i++) c->w1t[i] = (int16_t)rnd(d->wmax), c->w2t[i] = (int16_t)rnd(d->wmax);
    for (size_t i = 0; i < A * K; i++) c->cw[i] = (int16_t)rnd(d->wmax);
    if (d->wmax == 32767) c->w2t[0] = -32768, c->cw[0] = -32768, c->w1t[0] = -32768;
    assert_int_equal(fxb_case_run_reference(c), 0);
}

static void test_goldens(void **state) {
    (void)state;
    const char *out_dir = getenv("STACL_FIXED_BWD_GOLDEN_OUT");
    size_t total = 0;
    for (size_t i = 0; i < sizeof fxb_goldens / sizeof fxb_goldens[0]; i++) {
        const fxb_golden_def *d = &fxb_goldens[i];
        fxb_case c;
        fxb_golden_make(d, &c);
        char path[1024];
        if (out_dir) {
            snprintf(path, sizeof path, "%s/%s.bin", out_dir, d->name);
            assert_int_equal(fxb_case_write(&c, path), 0);
            printf("  wrote %s\n", path);
        }
        /* the committed file == the reference's bytes */
        snprintf(path, sizeof path, "%s/fixed_bwd/%s.bin", STACL_TEST_DATA, d->name);
        unsigned char *mine;
        const size_t len = fxb_case_serialize(&c, &mine);
        FILE *fp = fopen(path, "rb");
        if (!fp) {
            print_error("%s: missing (STACL_FIXED_BWD_GOLDEN_OUT=DIR writes it)\n", path);
            fail();
        }
        unsigned char *file = malloc(len + 1);
        const size_t got = fread(file, 1, len + 1, fp);
        fclose(fp);
        if (got != len || memcmp(file, mine, len) != 0) {
            print_error("%s: the reference does not reproduce it (%zu vs %zu bytes)\n", path, got, len);
            fail();
        }
        total += len;
        /* the OpenCL kernels on the file's inputs == the file's outputs */
        fxb_case f, dev;
        assert_int_equal(fxb_case_read(&f, path), 0);
        memset(&dev, 0, sizeof dev);
        dev.s = f.s, dev.f = f.f, dev.seed = f.seed, dev.step = f.step;
        dev.t_gu = f.t_gu, dev.t_gy = f.t_gy, dev.t_gh = f.t_gh;
        assert_int_equal(fxb_case_alloc(&dev), 0);
        const size_t F = f.s.clips * f.s.T, P = f.s.grid * f.s.grid, NX = F * (P + 1) * f.s.width,
                     NH = F * P * f.s.aw, K = f.s.kt * f.s.kh * f.s.kw;
        memcpy(dev.g_in, f.g_in, NX * 4), memcpy(dev.xq, f.xq, NX * 2), memcpy(dev.h, f.h, NH * 2);
        memcpy(dev.y, f.y, NH * 2), memcpy(dev.w1t, f.w1t, f.s.width * f.s.aw * 2);
        memcpy(dev.cw, f.cw, f.s.aw * K * 2), memcpy(dev.w2t, f.w2t, f.s.width * f.s.aw * 2);
        run_sequence_cl(&dev);
        expect_same_outputs(d->name, &f, &dev, 0);
        printf("    %-22s e_g %4d frac_gu %2d b_gy %2u s_gy %2u b_gh %2u s_gh %2u  %5zu bytes: reference == file == "
               "OpenCL\n",
               d->name, f.e_g, f.frac_gu, f.b_gy, f.s_gy, f.b_gh, f.s_gh, len);
        fxb_case_free(&f), fxb_case_free(&dev), fxb_case_free(&c), free(file), free(mine);
    }
    printf("  golden files: %zu bytes in all\n", total);
}

/* ---- accuracy against the float adapter's backward in double ---- */

/* Bounds on the worst error relative to the tensor's max |grad|, about 3x
 * the measured worst (2^-14.3 for fc2's gradients, 2^-12 for the conv's,
 * fc1's and gx: they carry one or two more 15-bit stochastic roundings). */
#define FXB_ACC_BOUND_FC2 0.000173 /* 2^-12.5 */
#define FXB_ACC_BOUND 0.000691     /* 2^-10.5 */

static double max_abs(const double *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* worst |fixed - exact| over the tensor, relative to max |exact| */
static double rel_err(const char *name, const int64_t *q, int scale, const double *ref, size_t n, double bound) {
    const double m = max_abs(ref, n);
    double worst = 0, mean = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs(ldexp((double)q[i], -scale) - ref[i]);
        worst = fmax(worst, e), mean += e / (double)n;
    }
    printf("    %-5s max |grad| %.3e  worst error %.3e = 2^%.2f of max (mean 2^%.2f), bound 2^%.2f\n", name, m, worst,
           log2(worst / m), log2(mean / m), log2(bound));
    assert_true(m > 0);
    assert_true(worst <= bound * m);
    return worst / m;
}

static void test_accuracy_vs_float(void **state) {
    (void)state;
    const size_t kernels[2][3] = {{3, 1, 1}, {3, 3, 3}};
    for (int kc = 0; kc < 2; kc++) {
        fxb_case c;
        memset(&c, 0, sizeof c);
        c.s = (fx_shape){1, 8, 7, 256, 64, kernels[kc][0], kernels[kc][1], kernels[kc][2]};
        c.f = (stacl_fx_format){8, 12, 8, 12, 8, 12};
        c.seed = 2024, c.step = 5, c.t_gu = 0, c.t_gy = 1, c.t_gh = 2;
        assert_int_equal(fxb_case_alloc(&c), 0);
        const fx_shape *s = &c.s;
        const size_t F = 8, P = 49, W = 256, A = 64, K = s->kt * s->kh * s->kw, R = F * P, NX = F * (P + 1) * W;
        const size_t NH = R * A;
        rng_state = 77 + (uint64_t)kc;
        /* x ~ U(-2, 2) at q8.8; h, y ~ U(-4, 4) at q8.8; fc weights
         * U(+-2/sqrt(fan_in)), conv U(+-1/sqrt(K)) at q4.12; g ~ U(-1, 1) 2^-10 */
        for (size_t i = 0; i < NX; i++) {
            c.g_in[i] = ldexpf((float)rnd(1 << 20), -30);
            c.xq[i] = (i / W) % (P + 1) == 0 ? 0 : (int16_t)rnd(512);
        }
        for (size_t i = 0; i < NH; i++) c.h[i] = (int16_t)rnd(1024), c.y[i] = (int16_t)rnd(1024);
        for (size_t i = 0; i < W * A; i++) c.w1t[i] = (int16_t)rnd(512), c.w2t[i] = (int16_t)rnd(1024);
        for (size_t i = 0; i < A * K; i++) c.cw[i] = (int16_t)rnd((int32_t)(4096 / sqrt((double)K)));
        assert_int_equal(fxb_case_run_reference(&c), 0);
        /* the device runs the same sequence bit for bit */
        fxb_case dev = c;
        dev.gu = NULL;
        memset(&dev.g_in, 0, sizeof dev - offsetof(fxb_case, g_in));
        assert_int_equal(fxb_case_alloc(&dev), 0);
        memcpy(dev.g_in, c.g_in, NX * 4), memcpy(dev.xq, c.xq, NX * 2), memcpy(dev.h, c.h, NH * 2);
        memcpy(dev.y, c.y, NH * 2), memcpy(dev.w1t, c.w1t, W * A * 2), memcpy(dev.cw, c.cw, A * K * 2);
        memcpy(dev.w2t, c.w2t, A * W * 2);
        run_sequence_cl(&dev);
        expect_same_outputs("ViT-like shape, OpenCL vs reference", &c, &dev, 0);
        fxb_case_free(&dev);

        /* The float backward in double on the same (dequantized) values. */
        double *g = calloc(R * W, 8), *gy = calloc(NH, 8), *gh = calloc(NH, 8), *gx = calloc(R * W, 8);
        double *dw2 = calloc(A * W, 8), *db2 = calloc(W, 8), *dcw = calloc(A * K, 8), *dcb = calloc(A, 8);
        double *dw1 = calloc(W * A, 8), *db1 = calloc(A, 8);
        const double sx = ldexp(1, -8), sw = ldexp(1, -12);
        for (size_t r = 0; r < R; r++)
            for (size_t ch = 0; ch < W; ch++) g[r * W + ch] = c.g_in[((r / P) * (P + 1) + 1 + r % P) * W + ch];
        for (size_t r = 0; r < R; r++)
            for (size_t a = 0; a < A; a++) {
                double v = 0;
                for (size_t ch = 0; ch < W; ch++) v += g[r * W + ch] * c.w2t[a * W + ch] * sw;
                gy[r * A + a] = v;
            }
        for (size_t r = 0; r < R; r++)
            for (size_t ch = 0; ch < W; ch++) {
                db2[ch] += g[r * W + ch];
                for (size_t a = 0; a < A; a++) dw2[a * W + ch] += c.y[r * A + a] * sx * g[r * W + ch];
            }
        /* the conv: y[o] = sum over taps of h[o + off(tap)] cw[tap] */
        const long G = 7, T = 8, kt = (long)s->kt, kh = (long)s->kh, kw = (long)s->kw;
        for (long t = 0; t < T; t++)
            for (long rr = 0; rr < G; rr++)
                for (long cc = 0; cc < G; cc++)
                    for (long dt = 0; dt < kt; dt++)
                        for (long dh = 0; dh < kh; dh++)
                            for (long dwi = 0; dwi < kw; dwi++) {
                                const long t2 = t + dt - kt / 2, r2 = rr + dh - kh / 2, c2 = cc + dwi - kw / 2;
                                if (t2 < 0 || t2 >= T || r2 < 0 || r2 >= G || c2 < 0 || c2 >= G) continue;
                                const size_t o = (size_t)((t * G + rr) * G + cc) * A,
                                             in = (size_t)((t2 * G + r2) * G + c2) * A,
                                             tap = (size_t)((dt * kh + dh) * kw + dwi);
                                for (size_t a = 0; a < A; a++) {
                                    gh[in + a] += gy[o + a] * c.cw[a * K + tap] * sw;
                                    dcw[a * K + tap] += gy[o + a] * c.h[in + a] * sx;
                                }
                            }
        for (size_t i = 0; i < NH; i++) dcb[i % A] += gy[i];
        for (size_t r = 0; r < R; r++)
            for (size_t a = 0; a < A; a++) {
                db1[a] += gh[r * A + a];
                for (size_t ch = 0; ch < W; ch++) {
                    gx[r * W + ch] += gh[r * A + a] * c.w1t[ch * A + a] * sw;
                    dw1[ch * A + a] += c.xq[((r / P) * (P + 1) + 1 + r % P) * W + ch] * sx * gh[r * A + a];
                }
            }
        const int fgu = c.frac_gu, fgy = fxb_case_frac_gy(&c), fgh = fxb_case_frac_gh(&c);
        printf("  W %zu A %zu T %zu grid 7 kernel %zux%zux%zu, q8.8 / q4.12: e_g %d frac_gu %d s_gy %u frac_gy %d "
               "s_gh %u frac_gh %d\n",
               W, A, (size_t)T, s->kt, s->kh, s->kw, c.e_g, fgu, c.s_gy, fgy, c.s_gh, fgh);
        rel_err("dw2", c.dw2, 8 + fgu, dw2, A * W, FXB_ACC_BOUND_FC2);
        rel_err("db2", c.db2, fgu, db2, W, FXB_ACC_BOUND_FC2);
        rel_err("dcw", c.dcw, 8 + fgy, dcw, A * K, FXB_ACC_BOUND);
        rel_err("dcb", c.dcb, fgy, dcb, A, FXB_ACC_BOUND);
        rel_err("dw1", c.dw1t, 8 + fgh, dw1, W * A, FXB_ACC_BOUND);
        rel_err("db1", c.db1, fgh, db1, A, FXB_ACC_BOUND);
        rel_err("gx", c.gx_acc, fgh + 12, gx, R * W, FXB_ACC_BOUND);
        /* and gx as it lands in the float gradient: g_out - g_in */
        double worst = 0;
        for (size_t r = 0; r < R; r++)
            for (size_t ch = 0; ch < W; ch++) {
                const size_t at = ((r / P) * (P + 1) + 1 + r % P) * W + ch;
                worst = fmax(worst, fabs(((double)c.g_out[at] - (double)c.g_in[at]) - gx[r * W + ch]));
            }
        printf("    g_out - g_in vs gx: worst 2^%.2f of max |gx|\n", log2(worst / max_abs(gx, R * W)));
        assert_true(worst <= FXB_ACC_BOUND * max_abs(gx, R * W));
        free(g), free(gy), free(gh), free(gx), free(dw2), free(db2), free(dcw), free(dcb), free(dw1), free(db1);
        fxb_case_free(&c);
    }
}

static int group_setup(void **state) {
    (void)state;
    return cl_test_ctx_create();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_kat),          cmocka_unit_test(test_sr_host),
        cmocka_unit_test(test_kernels_vs_reference), cmocka_unit_test(test_exponent_edges),
        cmocka_unit_test(test_sr_device),           cmocka_unit_test(test_sr_exact),
        cmocka_unit_test(test_sr_device_streams),   cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_goldens),             cmocka_unit_test(test_accuracy_vs_float),
    };
    return cmocka_run_group_tests(tests, group_setup, cl_test_group_teardown);
}
