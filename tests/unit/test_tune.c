/* test_tune.c: CLBlast tuning (host/tune*.c): the cache file round trip and
 * its per-device key, corrupt and foreign files ignored with a clear status,
 * the search rejecting candidates whose results are wrong (an injected
 * wrong kernel, and GEMMK=1, excluded by default), a per-shape routine
 * table applied to GEMMs that stay correct, and the start-up self-check
 * falling back to CLBlast's generic parameters when a set is wrong.
 *
 * No real search here: fixed candidate lists and small shapes. Candidates
 * reuse the builtin set, whose kernels the context's self-check has already
 * compiled. The fallback case runs last: CLBlast keeps overrides for the rest
 * of the process. test_golden runs the whole forward with the set a context
 * picks by default (the builtin set on PoCL, or the device's cache file). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cl_test_util.h"
#include "ops.h"
#include "test_util.h"
#include "tune_search.h"

static const size_t builtin_xgemm[16] = {0, 1, 16, 2, 4, 4, 64, 4, 4, 64, 0, 0, 1, 1, 8, 8};
static const size_t generic_direct[10] = {2, 8, 8, 8, 8, 1, 1, 1, 1, 16};

static stacl_device_info fake_device(const char *name) {
    stacl_device_info d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", name);
    snprintf(d.driver_version, sizeof d.driver_version, "9.9");
    snprintf(d.platform, sizeof d.platform, "Portable Computing Language");
    d.is_cpu = 1;
    return d;
}

static void make_sample(stacl_tune *t, const stacl_device_info *d) {
    memset(t, 0, sizeof *t);
    stacl_tune_set_key(t, d);
    snprintf(t->origin, sizeof t->origin, "test");
    t->fam[STACL_TUNE_XGEMM].set = 1;
    memcpy(t->fam[STACL_TUNE_XGEMM].v, builtin_xgemm, sizeof builtin_xgemm);
    t->fam[STACL_TUNE_XGEMM_DIRECT].set = 1;
    memcpy(t->fam[STACL_TUNE_XGEMM_DIRECT].v, generic_direct, sizeof generic_direct);
    t->min_indirect = 300;
    t->n_shapes = 2;
    t->shapes[0] = (stacl_tune_shape){"fc1", 1576, 3072, 768, 1, 0, 1, STACL_ROUTINE_INDIRECT, 55.5, 12.25, 0, 0};
    t->shapes[1] = (stacl_tune_shape){"qk", 197, 197, 64, 96, 0, 1, STACL_ROUTINE_DIRECT, 20, 0, 1, 25.5};
}

static void test_round_trip(void **state) {
    (void)state;
    stacl_device_info d = fake_device("dev A");
    stacl_tune t, back;
    char path[600];
    make_sample(&t, &d);
    ST_CHECK(stacl_tune_save(&t, TU_PATH(path, "a.json")));
    ST_CHECK(stacl_tune_load(&back, path, &d));
    assert_string_equal(back.device, "dev A");
    assert_string_equal(back.clblast, stacl_clblast_version());
    assert_string_equal(back.origin, "test");
    for (int f = 0; f < STACL_TUNE_FAMILIES; f++) {
        assert_int_equal(back.fam[f].set, t.fam[f].set);
        assert_memory_equal(back.fam[f].v, t.fam[f].v, sizeof t.fam[f].v);
    }
    assert_int_equal(back.min_indirect, 300);
    assert_int_equal(back.n_shapes, 2);
    for (int i = 0; i < 2; i++) {
        const stacl_tune_shape *a = &t.shapes[i], *b = &back.shapes[i];
        assert_string_equal(a->name, b->name);
        assert_true(a->m == b->m && a->n == b->n && a->k == b->k && a->batch == b->batch);
        assert_true(a->trans_a == b->trans_a && a->trans_b == b->trans_b && a->routine == b->routine);
        assert_true(a->gflops == b->gflops && a->other_gflops == b->other_gflops);
        assert_true(a->loop == b->loop && a->loop_gflops == b->loop_gflops);
    }
    assert_int_equal(back.shapes[1].loop, 1); /* "batch_mode": "loop" */
}

static void test_keyed_per_device(void **state) {
    (void)state;
    stacl_device_info a = fake_device("dev A"), b = fake_device("dev B"), a2 = fake_device("dev A");
    snprintf(a2.driver_version, sizeof a2.driver_version, "10.0");
    char pa[1024], pb[1024], pa2[1024], path[600];
    setenv("STACL_CACHE_DIR", tu_group_dir, 1);
    ST_CHECK(stacl_tune_cache_path(&a, pa, sizeof pa));
    ST_CHECK(stacl_tune_cache_path(&b, pb, sizeof pb));
    ST_CHECK(stacl_tune_cache_path(&a2, pa2, sizeof pa2));
    unsetenv("STACL_CACHE_DIR");
    assert_string_not_equal(pa, pb);
    assert_string_not_equal(pa, pa2); /* a driver update invalidates the tuning */
    assert_non_null(strstr(pa, tu_group_dir));
    stacl_tune t, back;
    make_sample(&t, &a);
    ST_CHECK(stacl_tune_save(&t, TU_PATH(path, "key.json")));
    assert_int_equal(stacl_tune_load(&back, path, &b), STACL_ERR_MISSING);
    tu_expect_message("tuned for device 'dev A'", "stacl tune");
    assert_int_equal(stacl_tune_load(&back, path, &a2), STACL_ERR_MISSING);
    ST_CHECK(stacl_tune_load(&back, path, NULL)); /* no key check asked */
}

static void test_corrupt_files(void **state) {
    (void)state;
    stacl_device_info d = fake_device("dev A");
    stacl_tune t;
    char path[600];
    static const struct { const char *text, *msg; } cases[] = {
        {"{not json", "not valid JSON"},
        {"{\"format\": \"other\"}", "not a stacl tuning file"},
        {"{\"format\": \"stacl-tune/1\"}", "\"key\" needs"},
        {"{\"format\": \"stacl-tune/1\", \"key\": {\"device\": \"dev A\", \"driver\": \"9.9\", \"clblast\": \"x\"},"
         " \"kernels\": {\"Xgemm\": {\"GEMMK\": 0}}}", "kernels.Xgemm.KREG"},
        {"{\"format\": \"stacl-tune/1\", \"key\": {\"device\": \"dev A\", \"driver\": \"9.9\", \"clblast\": \"x\"},"
         " \"kernels\": {\"Nope\": {}}}", "unknown kernel family"},
        {"{\"format\": \"stacl-tune/1\", \"key\": {\"device\": \"dev A\", \"driver\": \"9.9\", \"clblast\": \"x\"},"
         " \"shapes\": [{\"m\": -1}]}", "shapes[0].m"},
        {"{\"format\": \"stacl-tune/1\", \"key\": {\"device\": \"dev A\", \"driver\": \"9.9\", \"clblast\": \"x\"},"
         " \"shapes\": [{\"m\": 1, \"n\": 1, \"k\": 1, \"batch\": 2, \"trans_a\": 0, \"trans_b\": 1, \"routine\": \"auto\","
         " \"batch_mode\": \"unrolled\"}]}", "shapes[0].batch_mode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tu_write_file(TU_PATH(path, "bad.json"), cases[i].text, strlen(cases[i].text)), 0);
        assert_int_equal(stacl_tune_load(&t, path, &d), STACL_ERR_FORMAT);
        tu_expect_message(path, cases[i].msg);
    }
    assert_int_equal(stacl_tune_load(&t, TU_PATH(path, "absent.json"), &d), STACL_ERR_IO);
}

/* A context whose device cache file is corrupt starts with the builtin set
 * (or none) and says why in its note. */
static void test_corrupt_cache_ignored(void **state) {
    (void)state;
    char dir[600], path[1024];
    TU_PATH(dir, "cache");
    assert_int_equal(mkdir(dir, 0755), 0);
    stacl_ctx *probe = NULL;
    ST_CHECK(stacl_ctx_create(&probe, NULL));
    setenv("STACL_CACHE_DIR", dir, 1);
    ST_CHECK(stacl_tune_cache_path(stacl_ctx_device(probe), path, sizeof path));
    stacl_ctx_free(probe);
    assert_int_equal(tu_write_file(path, "garbage", 7), 0);
    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, NULL);
    unsetenv("STACL_CACHE_DIR");
    ST_CHECK(st);
    const stacl_tune_state *ts = stacl_tune_current(ctx);
    assert_non_null(strstr(ts->note, "ignored"));
    assert_non_null(strstr(ts->note, "not valid JSON"));
    assert_null(strstr(ts->source, "cache"));
    stacl_ctx_free(ctx);
}

typedef struct seen {
    int n, rejected[8];
    char reason[8][256];
} seen;

static void record(void *user, const stacl_tune_progress *p) {
    seen *s = user;
    if (strcmp(p->phase, "Xgemm") != 0 || s->n >= 8) return;
    s->rejected[s->n] = !p->accepted;
    snprintf(s->reason[s->n], sizeof s->reason[0], "%s", p->reason);
    s->n++;
}

static int inject_first(void *user, const char *phase, int step) {
    (void)user;
    return !strcmp(phase, "Xgemm") && step == 0;
}

static const stacl_tune_shape small_shapes[] = {
    {"plain", 70, 90, 40, 1, 0, 1, STACL_ROUTINE_AUTO, 0, 0, 0, 0},
    {"batched", 33, 20, 12, 3, 0, 0, STACL_ROUTINE_AUTO, 0, 0, 0, 0},
};

static void test_search_rejects_wrong_candidates(void **state) {
    (void)state;
    /* 0: right parameters, wrong result (injected); 1: GEMMK=1, excluded;
     * 2: right. Only 2 may win. */
    size_t cands[3][16];
    memcpy(cands[0], builtin_xgemm, sizeof builtin_xgemm);
    memcpy(cands[1], builtin_xgemm, sizeof builtin_xgemm);
    cands[1][0] = 1;
    memcpy(cands[2], builtin_xgemm, sizeof builtin_xgemm);
    seen s = {0};
    stacl_tune_options o = {0};
    o.xgemm = (const size_t(*)[16])cands, o.n_xgemm = 3;
    o.direct = (const size_t(*)[10])&generic_direct, o.n_direct = 1;
    o.shapes = small_shapes, o.n_shapes = 2, o.reps = 1;
    o.inject = inject_first, o.progress = record, o.user = &s;
    o.no_layout = 1; /* test_layout_phase */
    stacl_tune out;
    stacl_tune_report rep;
    ST_CHECK(stacl_tune_search(g_ctx, &o, &out, &rep));
    assert_int_equal(s.n, 3);
    assert_true(s.rejected[0]);
    assert_non_null(strstr(s.reason[0], "wrong result on plain"));
    assert_true(s.rejected[1]);
    assert_non_null(strstr(s.reason[1], "GEMMK=1"));
    assert_false(s.rejected[2]);
    assert_int_equal(rep.xgemm.best, 2);
    assert_int_equal(rep.xgemm.rejected, 2);
    assert_true(out.fam[STACL_TUNE_XGEMM].set);
    assert_memory_equal(out.fam[STACL_TUNE_XGEMM].v, builtin_xgemm, sizeof builtin_xgemm);
    assert_int_equal(out.n_shapes, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(out.shapes[i].routine == STACL_ROUTINE_DIRECT || out.shapes[i].routine == STACL_ROUTINE_INDIRECT);
        assert_true(out.shapes[i].gflops > 0);
    }
    /* The batched shape was also timed as a loop of plain calls (verified),
     * and the faster of the two kept; the plain one was not. */
    assert_int_equal(out.shapes[0].loop, 0);
    assert_true(out.shapes[0].loop_gflops == 0);
    assert_true(out.shapes[1].loop_gflops > 0);
    if (out.shapes[1].loop) assert_true(out.shapes[1].gflops == out.shapes[1].loop_gflops);
    else assert_true(out.shapes[1].gflops >= out.shapes[1].loop_gflops);
    printf("    batched 33x20x12 x3: batched call vs loop measured, %s kept (loop %.2f GFLOP/s)\n",
           out.shapes[1].loop ? "loop" : "batched call", out.shapes[1].loop_gflops);
}

/* The layout-kernel phase: each family's starting set (CLBlast's generic
 * values) is verified like any candidate; a wrong result (injected into
 * Padtranspose's) leaves the family unset, the others are recorded. A
 * budget of 1 ms lets each family run only its first candidate. */
typedef struct layout_seen {
    int n;
    char phase[8][16];
    int accepted[8];
} layout_seen;

static void record_layout(void *user, const stacl_tune_progress *p) {
    layout_seen *s = user;
    if (s->n >= 8 || !strcmp(p->phase, "Xgemm") || !strcmp(p->phase, "XgemmDirect") || !strcmp(p->phase, "routine"))
        return;
    snprintf(s->phase[s->n], sizeof s->phase[0], "%s", p->phase);
    s->accepted[s->n++] = p->accepted;
}

static int inject_padtranspose(void *user, const char *phase, int step) {
    (void)user;
    return !strcmp(phase, "Padtranspose") && step == 0;
}

static void test_layout_phase(void **state) {
    (void)state;
    layout_seen s = {0};
    stacl_tune_options o = {0};
    o.xgemm = (const size_t(*)[16])&builtin_xgemm, o.n_xgemm = 1;
    o.direct = (const size_t(*)[10])&generic_direct, o.n_direct = 1;
    o.shapes = small_shapes, o.n_shapes = 2, o.reps = 1, o.budget_s = 0.001;
    o.inject = inject_padtranspose, o.progress = record_layout, o.user = &s;
    stacl_tune out;
    stacl_tune_report rep;
    ST_CHECK(stacl_tune_search(g_ctx, &o, &out, &rep));
    assert_int_equal(s.n, 4);
    static const char *const order[4] = {"Padtranspose", "Transpose", "Pad", "Copy"};
    for (int f = 0; f < 4; f++) {
        assert_string_equal(s.phase[f], order[f]);
        assert_int_equal(s.accepted[f], f != 0);
        assert_int_equal(rep.layout[f].tried, 1);
    }
    assert_int_equal(rep.layout[0].best, -1);
    assert_false(out.fam[STACL_TUNE_PADTRANSPOSE].set);
    static const size_t transpose[4] = {8, 0, 1, 4}, pad[4] = {32, 8, 2, 1}, copy[4] = {16, 8, 4, 1};
    assert_true(out.fam[STACL_TUNE_TRANSPOSE].set && out.fam[STACL_TUNE_PAD].set && out.fam[STACL_TUNE_COPY].set);
    assert_memory_equal(out.fam[STACL_TUNE_TRANSPOSE].v, transpose, sizeof transpose);
    assert_memory_equal(out.fam[STACL_TUNE_PAD].v, pad, sizeof pad);
    assert_memory_equal(out.fam[STACL_TUNE_COPY].v, copy, sizeof copy);
    /* The result still computes right with those sets applied. */
    ST_CHECK(stacl_tune_self_check(g_ctx));
}

/* A file with a routine table: each listed shape takes its path, and the
 * GEMMs still match a host reference. */
static void test_routine_table_applied(void **state) {
    (void)state;
    stacl_tune t;
    char path[600];
    make_sample(&t, stacl_ctx_device(g_ctx));
    t.shapes[0] = (stacl_tune_shape){"d", 70, 90, 40, 1, 0, 1, STACL_ROUTINE_DIRECT, 0, 0, 0, 0};
    t.shapes[1] = (stacl_tune_shape){"i", 33, 20, 12, 3, 0, 1, STACL_ROUTINE_INDIRECT, 0, 0, 1, 0};
    ST_CHECK(stacl_tune_save(&t, TU_PATH(path, "routines.json")));
    setenv("STACL_TUNE", path, 1);
    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, NULL);
    unsetenv("STACL_TUNE");
    ST_CHECK(st);
    assert_non_null(strstr(stacl_tune_current(ctx)->source, "cache"));
    assert_int_equal(stacl_tune_routine_for(ctx, 70, 90, 40, 1, 0, 1), STACL_ROUTINE_DIRECT);
    assert_int_equal(stacl_tune_routine_for(ctx, 33, 20, 12, 3, 0, 1), STACL_ROUTINE_INDIRECT);
    assert_int_equal(stacl_tune_batch_loop(ctx, 33, 20, 12, 3, 0, 1), 1); /* "i" runs as a loop */
    assert_int_equal(stacl_tune_batch_loop(ctx, 33, 20, 12, 4, 0, 1), 0); /* not listed */
    assert_int_equal(stacl_tune_batch_loop(ctx, 70, 90, 40, 1, 0, 1), 0);
    /* Not listed: by min_indirect = 300 (27e6 > 70*90*40, 400^3 > 27e6). */
    assert_int_equal(stacl_tune_routine_for(ctx, 70, 90, 41, 1, 0, 1), STACL_ROUTINE_DIRECT);
    assert_int_equal(stacl_tune_routine_for(ctx, 400, 400, 400, 1, 0, 1), STACL_ROUTINE_INDIRECT);
    ST_CHECK(stacl_tune_self_check(ctx));
    /* The loop really runs (one "gemm" span per batch entry) and computes
     * c_q = a_q b_q^T + 0.5 c_q at the strided offsets, after an offset. */
    enum { M = 33, N = 20, K = 12, B = 3, OFF = 5 };
    const size_t na = OFF + (size_t)B * M * K, nb = OFF + (size_t)B * N * K, nc = OFF + (size_t)B * M * N + 4;
    float *h = malloc((na + nb + nc) * sizeof *h), *out = malloc(nc * sizeof *out);
    assert_true(h && out);
    uint32_t seed = 7;
    for (size_t i = 0; i < na + nb + nc; i++) {
        seed = seed * 1664525u + 1013904223u;
        h[i] = (float)((seed >> 8) * (1.0 / 16777216.0) - 0.5);
    }
    cl_int err;
    cl_mem buf[3];
    const size_t off[3] = {0, na, na + nb}, len[3] = {na, nb, nc};
    for (int i = 0; i < 3; i++) {
        buf[i] = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, len[i] * sizeof(float),
                                h + off[i], &err);
        CL_CHECK(err);
    }
    stacl_profile_begin(ctx);
    ST_CHECK(stacl_gemm_batched(ctx, 0, 1, M, N, K, 1.0f, buf[0], OFF, K, (size_t)M * K, buf[1], OFF, K,
                                (size_t)N * K, 0.5f, buf[2], OFF, N, (size_t)M * N, B));
    stacl_op_time times[STACL_PROFILE_MAX_OPS];
    int n_times = 0, plain = 0, batched = 0;
    double ms = 0;
    ST_CHECK(stacl_profile_collect(ctx, times, &n_times, &ms));
    for (int i = 0; i < n_times; i++) {
        if (!strcmp(times[i].op, "gemm")) plain = times[i].launches;
        if (!strcmp(times[i].op, "gemm_batched")) batched = times[i].launches;
    }
    assert_int_equal(plain, B);
    assert_int_equal(batched, 0);
    CL_CHECK(clEnqueueReadBuffer(ctx->queue, buf[2], CL_TRUE, 0, nc * sizeof(float), out, 0, NULL, NULL));
    const float *a = h + off[0], *b = h + off[1], *c0 = h + off[2];
    double worst = 0;
    for (size_t i = 0; i < nc; i++) {
        const size_t e = i - OFF, q = e / ((size_t)M * N), r = (e / N) % M, col = e % N;
        if (i < OFF || i >= OFF + (size_t)B * M * N) {
            assert_memory_equal(&out[i], &c0[i], sizeof(float)); /* outside: untouched */
            continue;
        }
        double ref = 0.5 * c0[i];
        for (size_t t = 0; t < K; t++)
            ref += (double)a[OFF + q * M * K + r * K + t] * b[OFF + q * N * K + col * K + t];
        worst = fmax(worst, fabs(out[i] - ref));
    }
    printf("    loop of %d plain GEMMs for a batched shape: max abs error %.3g vs double\n", B, worst);
    assert_true(worst < 1e-5);
    for (int i = 0; i < 3; i++) clReleaseMemObject(buf[i]);
    free(h);
    free(out);
    stacl_ctx_free(ctx);
}

/* Starts a context with STACL_TUNE=path; returns it (ST_CHECKed). */
static stacl_ctx *ctx_with_tune_file(const char *path) {
    setenv("STACL_TUNE", path, 1);
    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, NULL);
    unsetenv("STACL_TUNE");
    ST_CHECK(st);
    return ctx;
}

/* A set that cannot run (or computes wrong numbers) fails the start-up
 * self-check, a GEMMK=1 set is refused before it runs; the context then
 * runs with the builtin set (PoCL) or CLBlast's generic parameters, which
 * pass the self-check. */
static void test_self_check_fallback(void **state) {
    (void)state;
    stacl_tune t, builtin;
    char path[600];
    const int has_builtin = stacl_tune_builtin(stacl_ctx_device(g_ctx), &builtin);
    make_sample(&t, stacl_ctx_device(g_ctx));
    /* MWG = 24 is no multiple of MDIMC * VWM = 32: CLBlast cannot run it. */
    t.fam[STACL_TUNE_XGEMM].v[6] = 24;
    t.n_shapes = 0;
    ST_CHECK(stacl_tune_save(&t, TU_PATH(path, "bad-set.json")));
    stacl_ctx *ctx = ctx_with_tune_file(path);
    const stacl_tune_state *ts = stacl_tune_current(ctx);
    assert_string_equal(ts->source, has_builtin ? "builtin" : "fallback");
    assert_non_null(strstr(ts->note, "set rejected"));
    assert_non_null(strstr(ts->note, "self-check"));
    stacl_ctx_free(ctx);

    t.fam[STACL_TUNE_XGEMM].v[6] = 64;
    t.fam[STACL_TUNE_XGEMM].v[0] = 1; /* GEMMK=1 */
    ST_CHECK(stacl_tune_save(&t, TU_PATH(path, "gemmk1.json")));
    ctx = ctx_with_tune_file(path);
    ts = stacl_tune_current(ctx);
    assert_string_equal(ts->source, has_builtin ? "builtin" : "fallback");
    assert_non_null(strstr(ts->note, "excluded: GEMMK=1"));
    stacl_ctx_free(ctx);

    /* The last resort itself: CLBlast's generic set passes the self-check. */
    stacl_tune fb;
    stacl_tune_fallback(&fb, stacl_ctx_device(g_ctx));
    assert_string_equal(fb.origin, "fallback (CLBlast generic defaults)");
    ST_CHECK(stacl_tune_apply(g_ctx, &fb));
    ST_CHECK(stacl_tune_self_check(g_ctx));
}

/* The command's help and usage errors (a real search is too slow here). */
/* The default shapes: the forward's 7, and with training the 5 GEMMs only
 * the backward pass runs, each matching a call of host/train.c. */
static void test_default_shapes(void **state) {
    (void)state;
    stacl_tune_shape sh[16];
    int w[16];
    assert_int_equal(stacl_tune_default_shapes(8, 0, sh, w, 16), 7);
    assert_int_equal(stacl_tune_default_shapes(8, 1, sh, w, 16), 12);
    int found = 0;
    for (int i = 0; i < 12; i++) {
        if (strcmp(sh[i].name, "mlp_dx") == 0) { /* dX = dU fc1_w: [1576, 3072] x [3072, 768] */
            assert_true(sh[i].m == 1576 && sh[i].n == 768 && sh[i].k == 3072 && !sh[i].trans_a && !sh[i].trans_b);
            found++;
        }
        if (strcmp(sh[i].name, "attn_dt") == 0) { /* dV = P^T dO per (frame, head), twice per block */
            assert_true(sh[i].m == 197 && sh[i].n == 64 && sh[i].k == 197 && sh[i].batch == 96 && sh[i].trans_a);
            assert_int_equal(w[i], 24);
            found++;
        }
    }
    assert_int_equal(found, 2);
    assert_int_equal(stacl_tune_default_shapes(4, 1, sh, NULL, 3), 3); /* capped */
    assert_int_equal(sh[0].m, 4 * 196);
}

static void test_cli_usage(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    const char *help[] = {STACL_CLI_PATH, "tune", "--help", NULL};
    assert_int_equal(tu_run(help, NULL, &out, &err), 0);
    assert_non_null(strstr(out, "usage: stacl tune"));
    assert_non_null(strstr(out, "--budget SECONDS"));
    free(out);
    free(err);
    const char *bad[] = {STACL_CLI_PATH, "tune", "--budget", "0", NULL};
    assert_int_equal(tu_run(bad, NULL, &out, &err), 2);
    assert_non_null(strstr(err, "--budget"));
    free(out);
    free(err);
}

int main(void) {
    /* These tests are about CLBlast's tuning as the runtime applies it: keep
     * stacl_gemm* on CLBlast even on CPU devices (whose default engine is
     * stacl's own kernels, test_gemm). */
    setenv("STACL_GEMM", "clblast", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_cli_usage),
        cmocka_unit_test(test_default_shapes),
        cmocka_unit_test(test_keyed_per_device),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_corrupt_cache_ignored),
        cmocka_unit_test(test_search_rejects_wrong_candidates),
        cmocka_unit_test(test_layout_phase),
        cmocka_unit_test(test_routine_table_applied),
        cmocka_unit_test(test_self_check_fallback),
    };
    if (tu_group_setup(NULL) != 0 || cl_test_ctx_create() != 0) return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    cl_test_group_teardown(NULL);
    tu_group_teardown(NULL);
    return failed;
}
