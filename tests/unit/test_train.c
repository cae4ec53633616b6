/* test_train.c: the trainer (host/train.c, host/train_optim.c) on the tiny
 * `hf` backbone (width 64, 3 blocks, 2 heads, 7x7 patches).
 *
 * - Whole-model gradients by central finite differences: for each adapter
 *   and head tensor, a random direction v restricted to that tensor; the
 *   directional derivative <grad, v> from the backward pass must match
 *   (L(p + e v) - L(p - e v)) / 2e of the float32 forward pass. With
 *   e = 1e-2 (relative to weights of scale ~0.1-0.3), the truncation error
 *   is O(e^2) and the float32 rounding error about 1e-7 L / e, so both are
 *   far below the tolerance 2e-3 |<g, v>| + 2e-4 (measured values are
 *   printed). Run with dropout on (a fixed mask is a fixed function) and
 *   label smoothing, so both backward paths are covered; three placements
 *   (all sites in every block, the last block's pre-attention adapter
 *   alone, the head alone).
 * - Recomputation (checkpointing per block) gives bit-identical gradients.
 * - Two clips in one pass = the same two clips in two passes (gradients
 *   accumulate).
 * - The adapter and optimizer-state files round-trip exactly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_internal.h"
#include "test_util.h"
#include "cl_test_util.h"

static stacl_ctx *ctx;
static stacl_model *model;

static int setup(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/hf", STACL_TEST_DATA);
    if (stacl_ctx_create(&ctx, NULL) != STACL_OK || stacl_model_load(&model, ctx, path) != STACL_OK) {
        fprintf(stderr, "setup: %s\n", stacl_last_error());
        return -1;
    }
    return tu_group_setup(state);
}

static int teardown(void **state) {
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return tu_group_teardown(state);
}


enum { CLIPS = 2, T = 3, S = 28 };

typedef struct fixture {
    stacl_adapter *ad;
    float *pixels;
    int32_t labels[CLIPS];
} fixture;

/* An adapter with every parameter random and non-zero (the reference init
 * zeroes the conv, which would hide most of the backward pass). */
static void make_fixture(fixture *fx, int layers, int pre_attn, int pre_mlp, int kt, int kh, int kw, uint64_t seed) {
    const stacl_adapter_config cfg = {8, {kt, kh, kw}, layers, pre_attn, pre_mlp, 5};
    ST_CHECK(stacl_adapter_create(&fx->ad, model, &cfg, seed));
    float *p = malloc(fx->ad->total * sizeof *p);
    assert_non_null(p);
    tu_fill_random(p, fx->ad->total, seed + 1, 0.15f);
    ST_CHECK(stacl_adapter_upload(fx->ad, p));
    free(p);
    fx->pixels = malloc(sizeof(float) * CLIPS * T * 3 * S * S);
    assert_non_null(fx->pixels);
    tu_fill_random(fx->pixels, (size_t)CLIPS * T * 3 * S * S, seed + 2, 1.5f);
    fx->labels[0] = 3;
    fx->labels[1] = 1;
}

static void free_fixture(fixture *fx) {
    stacl_adapter_free(fx->ad);
    free(fx->pixels);
}

static double loss_at(stacl_trainer *t, const fixture *fx, uint64_t dropout_seed) {
    double loss = 0.0;
    ST_CHECK(stacl_trainer_accumulate(t, fx->pixels, fx->labels, CLIPS, 1.0f, dropout_seed, &loss, NULL));
    return loss;
}

static void gradient_check(int layers, int pre_attn, int pre_mlp, int kt, int kh, int kw) {
    fixture fx;
    make_fixture(&fx, layers, pre_attn, pre_mlp, kt, kh, kw, 7000 + (uint64_t)(layers * 10 + pre_attn));
    stacl_train_options opt = stacl_train_options_default();
    opt.label_smoothing = 0.1f;
    opt.dropout = 0.5f;
    stacl_trainer *t = NULL;
    ST_CHECK(stacl_trainer_create(&t, fx.ad, CLIPS, T, &opt));
    const size_t n = fx.ad->total;
    float *g = malloc(n * sizeof *g), *p0 = malloc(n * sizeof *p0), *p = malloc(n * sizeof *p);
    float *v = malloc(n * sizeof *v);
    assert_true(g && p0 && p && v);
    const uint64_t dseed = 99;
    loss_at(t, &fx, dseed);
    ST_CHECK(stacl_trainer_gradients(t, g));
    ST_CHECK(stacl_adapter_download(fx.ad, p0));
    adapter_tensor *ts = NULL;
    const int count = stacl_adapter_tensors(fx.ad, &ts);
    assert_true(count > 0);
    const double e = 1e-2;
    int bad = 0;
    double worst = 0.0;
    for (int i = 0; i < count; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= (size_t)ts[i].shape[d];
        memset(v, 0, n * sizeof *v);
        tu_fill_random(v + ts[i].off, numel, 500 + (uint64_t)i, 1.0f);
        double analytic = 0.0;
        for (size_t j = 0; j < n; j++) analytic += (double)g[j] * v[j];
        double side[2];
        for (int s = 0; s < 2; s++) {
            for (size_t j = 0; j < n; j++) p[j] = p0[j] + (float)((s ? -e : e) * v[j]);
            ST_CHECK(stacl_adapter_upload(fx.ad, p));
            memcpy(t->params, p, n * sizeof *p); /* the head reads the host copy */
            side[s] = loss_at(t, &fx, dseed);
        }
        const double fd = (side[0] - side[1]) / (2.0 * e);
        const double err = fabs(fd - analytic), tol = 2e-3 * fabs(analytic) + 2e-4;
        if (err / tol > worst) worst = err / tol;
        printf("    %-44s <g,v> %+.6e  fd %+.6e  err %.1e\n", ts[i].name, analytic, fd, err);
        if (!(err <= tol)) bad++;
        /* The last block's pre-MLP adapter changes only patch tokens after
         * the last token mixing, and the head reads the class token: its
         * gradient is exactly zero (as in PyTorch). Any other zero would
         * check nothing. */
        char dead[96];
        snprintf(dead, sizeof dead, "resblocks.%d.adapter_pre_mlp.", model->cfg.layers - 1);
        if (strstr(ts[i].name, dead)) {
            if (analytic != 0.0) {
                printf("    %s: expected an exactly zero gradient\n", ts[i].name);
                bad++;
            }
        } else if (!(fabs(analytic) > 1e-6)) {
            printf("    %s: zero directional derivative\n", ts[i].name);
            bad++;
        }
    }
    printf("    worst error / tolerance: %.3f\n", worst);
    free(ts);
    free(g);
    free(p0);
    free(p);
    free(v);
    stacl_trainer_free(t);
    free_fixture(&fx);
    assert_int_equal(bad, 0);
}

static void test_gradients_all_sites(void **state) {
    (void)state;
    gradient_check(3, 1, 1, 3, 3, 3);
}

static void test_gradients_last_block_attn(void **state) {
    (void)state;
    gradient_check(1, 1, 0, 3, 1, 1);
}

/* The head-only baseline: only fc gets gradients, no block is taped. */
static void test_gradients_head_only(void **state) {
    (void)state;
    gradient_check(0, 0, 0, 1, 1, 1);
}

static void grads_of(stacl_adapter *ad, const fixture *fx, int recompute, int split, float *out) {
    stacl_train_options opt = stacl_train_options_default();
    opt.recompute = recompute;
    opt.label_smoothing = 0.1f;
    stacl_trainer *t = NULL;
    ST_CHECK(stacl_trainer_create(&t, ad, CLIPS, T, &opt));
    if (!split) {
        ST_CHECK(stacl_trainer_accumulate(t, fx->pixels, fx->labels, CLIPS, 0.5f, 5, NULL, NULL));
    } else {
        const size_t per = (size_t)T * 3 * S * S;
        for (int c = 0; c < CLIPS; c++)
            ST_CHECK(stacl_trainer_accumulate(t, fx->pixels + c * per, fx->labels + c, 1, 0.5f, 5 + (uint64_t)c, NULL,
                                           NULL));
    }
    ST_CHECK(stacl_trainer_gradients(t, out));
    stacl_trainer_free(t);
}

static void test_recompute_and_microbatches(void **state) {
    (void)state;
    fixture fx;
    make_fixture(&fx, 2, 1, 1, 3, 1, 1, 4242);
    const size_t n = fx.ad->total;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    assert_true(a && b && c);
    grads_of(fx.ad, &fx, 0, 0, a);
    grads_of(fx.ad, &fx, 1, 0, b);
    assert_memory_equal(a, b, n * sizeof *a); /* recomputation: same kernels on the same inputs */
    /* Dropout draws differ between one pass of two clips and two passes, so
     * compare without dropout. */
    stacl_train_options opt = stacl_train_options_default();
    opt.dropout = 0.0f;
    stacl_trainer *t = NULL;
    ST_CHECK(stacl_trainer_create(&t, fx.ad, CLIPS, T, &opt));
    ST_CHECK(stacl_trainer_accumulate(t, fx.pixels, fx.labels, CLIPS, 0.5f, 1, NULL, NULL));
    ST_CHECK(stacl_trainer_gradients(t, a));
    stacl_trainer_free(t);
    ST_CHECK(stacl_trainer_create(&t, fx.ad, CLIPS, T, &opt));
    const size_t per = (size_t)T * 3 * S * S;
    ST_CHECK(stacl_trainer_accumulate(t, fx.pixels, fx.labels, 1, 0.5f, 1, NULL, NULL));
    ST_CHECK(stacl_trainer_accumulate(t, fx.pixels + per, fx.labels + 1, 1, 0.5f, 1, NULL, NULL));
    ST_CHECK(stacl_trainer_gradients(t, c));
    stacl_trainer_free(t);
    const double diff = tu_max_abs_diff(a, c, n), scale = tu_max_abs(a, n);
    printf("    one pass vs two passes: max |diff| %.3g (max |g| %.3g)\n", diff, scale);
    assert_true(diff <= 1e-5 * scale);
    free(a);
    free(b);
    free(c);
    free_fixture(&fx);
}

/* Saved adapters and optimizer states load back bit for bit; a step
 * changes the parameters and counts. */
static void test_checkpoint_round_trip(void **state) {
    (void)state;
    fixture fx;
    make_fixture(&fx, 2, 0, 1, 3, 1, 1, 77);
    stacl_train_options opt = stacl_train_options_default();
    stacl_trainer *t = NULL;
    ST_CHECK(stacl_trainer_create(&t, fx.ad, CLIPS, T, &opt));
    ST_CHECK(stacl_trainer_accumulate(t, fx.pixels, fx.labels, CLIPS, 0.5f, 3, NULL, NULL));
    ST_CHECK(stacl_trainer_step(t, 1e-3f, 1.0f, NULL));
    assert_int_equal(stacl_trainer_steps(t), 1);
    char ap[600], sp[600];
    TU_PATH(ap, "adapter.safetensors");
    TU_PATH(sp, "train_state.safetensors");
    ST_CHECK(stacl_adapter_save(fx.ad, ap));
    ST_CHECK(stacl_trainer_save_state(t, sp, (const char *const[]){"epoch"}, (const char *const[]){"4"}, 1));
    stacl_adapter *back = NULL;
    ST_CHECK(stacl_adapter_load(&back, model, ap));
    stacl_adapter_info ia, ib;
    stacl_adapter_get_info(fx.ad, &ia);
    stacl_adapter_get_info(back, &ib);
    assert_memory_equal(&ia, &ib, sizeof ia);
    const size_t n = fx.ad->total;
    assert_int_equal(back->total, n);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_true(a && b);
    ST_CHECK(stacl_adapter_download(fx.ad, a));
    ST_CHECK(stacl_adapter_download(back, b));
    assert_memory_equal(a, b, n * sizeof *a);
    stacl_trainer *t2 = NULL;
    ST_CHECK(stacl_trainer_create(&t2, back, CLIPS, T, &opt));
    ST_CHECK(stacl_trainer_load_state(t2, sp));
    assert_int_equal(stacl_trainer_steps(t2), 1);
    assert_string_equal(stacl_trainer_state_meta(t2, "epoch"), "4");
    assert_memory_equal(t->m, t2->m, n * sizeof *a);
    assert_memory_equal(t->v, t2->v, n * sizeof *a);
    /* Both continue identically. */
    ST_CHECK(stacl_trainer_accumulate(t, fx.pixels, fx.labels, CLIPS, 0.5f, 8, NULL, NULL));
    ST_CHECK(stacl_trainer_step(t, 1e-3f, 1.0f, NULL));
    ST_CHECK(stacl_trainer_accumulate(t2, fx.pixels, fx.labels, CLIPS, 0.5f, 8, NULL, NULL));
    ST_CHECK(stacl_trainer_step(t2, 1e-3f, 1.0f, NULL));
    ST_CHECK(stacl_adapter_download(fx.ad, a));
    ST_CHECK(stacl_adapter_download(back, b));
    assert_memory_equal(a, b, n * sizeof *a);
    /* A file that is not a training state is refused with a reason. */
    assert_int_equal(stacl_trainer_load_state(t2, ap), STACL_ERR_FORMAT);
    tu_expect_message(stacl_last_error(), "optimizer_steps");
    free(a);
    free(b);
    stacl_trainer_free(t);
    stacl_trainer_free(t2);
    stacl_adapter_free(back);
    free_fixture(&fx);
}

/* The reference init: every adapter is the identity (conv zero), so the
 * adapted model's logits equal the head on the frozen backbone. */
static void test_init_is_identity(void **state) {
    (void)state;
    const stacl_adapter_config with = {8, {3, 1, 1}, 3, 1, 1, 5}, without = {8, {3, 1, 1}, 0, 0, 0, 5};
    stacl_adapter *a = NULL, *b = NULL;
    ST_CHECK(stacl_adapter_create(&a, model, &with, 11));
    ST_CHECK(stacl_adapter_create(&b, model, &without, 11));
    stacl_state *s = NULL;
    ST_CHECK(stacl_state_create(&s, model, T));
    float *px = malloc(sizeof(float) * T * 3 * S * S), la[5], lb[5];
    assert_non_null(px);
    tu_fill_random(px, (size_t)T * 3 * S * S, 3, 1.0f);
    ST_CHECK(stacl_classify_forward(s, a, px, 1, T, STACL_OUT_EMBEDDING, la));
    ST_CHECK(stacl_classify_forward(s, b, px, 1, T, STACL_OUT_EMBEDDING, lb));
    printf("    identity init: max |logits diff| %.3g\n", tu_max_abs_diff(la, lb, 5));
    assert_true(tu_max_abs_diff(la, lb, 5) == 0.0);
    assert_true(tu_max_abs(la, 5) > 0.0);
    /* fc1/fc2 weights within nn.Linear's bound 1/sqrt(fan_in). */
    float *p = malloc(a->total * sizeof *p);
    assert_non_null(p);
    ST_CHECK(stacl_adapter_download(a, p));
    const adapter_site *site = &a->pre_mlp[2];
    double m1 = tu_max_abs(p + site->fc1_w, 8 * 64), m2 = tu_max_abs(p + site->fc2_w, 8 * 64);
    assert_true(m1 <= 1.0 / 8.0 && m1 > 0.5 / 8.0);                     /* fan_in 64 */
    assert_true(m2 <= 1.0 / sqrt(8.0) && m2 > 0.5 / sqrt(8.0));        /* fan_in 8 */
    assert_true(tu_max_abs(p + site->conv_w, 8 * 3) == 0.0);
    free(p);
    free(px);
    stacl_state_free(s);
    stacl_adapter_free(a);
    stacl_adapter_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_all_sites),
        cmocka_unit_test(test_gradients_last_block_attn),
        cmocka_unit_test(test_gradients_head_only),
        cmocka_unit_test(test_recompute_and_microbatches),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_init_is_identity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
