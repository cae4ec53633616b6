/* test_train_golden.c: one training step of stacl against the independent
 * PyTorch implementations in tests/reference/:
 *
 * - make_train_golden.py (float64 autograd, attention written out, dropout
 *   off, label smoothing 0.1): on the tiny `hf` backbone with random
 *   non-zero adapters in two placements, the logits, the batch-mean loss and
 *   the gradient of every adapter and head tensor. Tolerances: logits
 *   1e-4 x max(1, max |golden|) (as the other golden tests); loss 1e-5
 *   relative; each gradient tensor 1e-4 x max(1e-2, max |golden of that
 *   tensor|) per element (float32 forward and backward against float64;
 *   measured errors are printed, about 1e-6 relative). The last block's
 *   pre-MLP adapter has an exactly zero gradient in PyTorch (nothing after it
 *   mixes tokens and the head reads the class token) and must be exactly
 *   zero here.
 * - make_adamw_golden.py (torch.optim.AdamW + clip_grad_norm_, float32):
 *   five steps with two parameter groups, clipping on some steps and a
 *   changing learning rate; parameters within 1e-6 absolute, norms 1e-6
 *   relative. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "safetensors.h"
#include "train_internal.h"
#include "test_util.h"
#include "unit/cl_test_util.h"

static stacl_ctx *ctx;
static stacl_model *model;

static int setup(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/models/hf", STACL_TEST_DATA);
    if (stacl_ctx_create(&ctx, NULL) != STACL_OK || stacl_model_load(&model, ctx, path) != STACL_OK) {
        fprintf(stderr, "setup: %s\n", stacl_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return 0;
}


static void data_path(char *buf, size_t cap, const char *c, const char *file) {
    snprintf(buf, cap, "%s/train/%s/%s", STACL_TEST_DATA, c, file);
}

static void run_case(const char *name) {
    char path[600], rel[256];
    data_path(path, sizeof path, name, "adapter.safetensors");
    stacl_adapter *ad = NULL;
    ST_CHECK(stacl_adapter_load(&ad, model, path));
    stacl_npy input = {0}, logits_ref = {0};
    snprintf(rel, sizeof rel, "train/%s/input.npy", name);
    tu_load_npy(rel, &input);
    snprintf(rel, sizeof rel, "train/%s/logits.npy", name);
    tu_load_npy(rel, &logits_ref);
    const int B = (int)input.shape[0], T = (int)input.shape[1], C = ad->info.classes;
    assert_int_equal(logits_ref.shape[1], C);

    stacl_st_file *tf = NULL;
    data_path(path, sizeof path, name, "targets.safetensors");
    ST_CHECK(stacl_st_open(&tf, path));
    int64_t labels64[16];
    float loss_ref = 0.0f;
    const stacl_st_tensor *lt = stacl_st_find(tf, "labels"), *lo = stacl_st_find(tf, "loss");
    assert_true(lt && lo && lt->numel == (uint64_t)B && B <= 16);
    ST_CHECK(stacl_st_read_i64(tf, lt, labels64));
    ST_CHECK(stacl_st_read_f32(tf, lo, &loss_ref));
    stacl_st_close(tf);
    int32_t labels[16];
    for (int i = 0; i < B; i++) labels[i] = (int32_t)labels64[i];

    stacl_train_options opt = stacl_train_options_default();
    opt.dropout = 0.0f;
    opt.label_smoothing = 0.1f;
    stacl_trainer *t = NULL;
    ST_CHECK(stacl_trainer_create(&t, ad, B, T, &opt));
    float *logits = malloc(sizeof(float) * (size_t)B * (size_t)C);
    double loss_sum = 0.0;
    ST_CHECK(stacl_trainer_accumulate(t, input.data, labels, B, 1.0f / (float)B, 1, &loss_sum, logits));
    tu_check_golden(name, "logits", logits, &logits_ref, (size_t)B * (size_t)C);
    const double loss = loss_sum / B;
    printf("    %s: loss %.8f (golden %.8f, rel err %.2e)\n", name, loss, (double)loss_ref,
           fabs(loss - loss_ref) / fabs((double)loss_ref));
    assert_true(fabs(loss - loss_ref) <= 1e-5 * fabs((double)loss_ref));

    /* Gradients: the golden file read into the adapter's layout. */
    const size_t n = ad->total;
    float *g = malloc(n * sizeof *g), *ref = malloc(n * sizeof *ref);
    assert_true(g && ref);
    ST_CHECK(stacl_trainer_gradients(t, g));
    stacl_st_file *gf = NULL;
    data_path(path, sizeof path, name, "grads.safetensors");
    ST_CHECK(stacl_st_open(&gf, path));
    ST_CHECK(stacl_adapter_read_host(ad, gf, "", ref));
    stacl_st_close(gf);
    adapter_tensor *ts = NULL;
    const int count = stacl_adapter_tensors(ad, &ts);
    int bad = 0;
    for (int i = 0; i < count; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= (size_t)ts[i].shape[d];
        const float *a = g + ts[i].off, *b = ref + ts[i].off;
        const double scale = tu_max_abs(b, numel), err = tu_max_abs_diff(a, b, numel);
        const double tol = scale == 0.0 ? 0.0 : 1e-4 * fmax(1e-2, scale);
        printf("    %-50s max|g| %.3e  max|err| %.2e%s\n", ts[i].name, scale, err, err <= tol ? "" : "  FAIL");
        bad += !(err <= tol);
    }
    free(ts);
    assert_int_equal(bad, 0);
    free(g);
    free(ref);
    free(logits);
    stacl_trainer_free(t);
    stacl_adapter_free(ad);
    stacl_npy_release(&input);
    stacl_npy_release(&logits_ref);
}

static void test_step_mlp_all(void **state) {
    (void)state;
    run_case("mlp_all");
}

static void test_step_attn_mlp(void **state) {
    (void)state;
    run_case("attn_mlp");
}

static void test_adamw(void **state) {
    (void)state;
    static const char *const names[] = {"blk.fc1.weight", "blk.fc1.bias", "blk.conv.weight",
                                        "blk.conv.bias",  "fc.weight",    "fc.bias"};
    enum { N_T = 6, STEPS = 5 };
    stacl_st_file *p0 = NULL, *gr = NULL, *ex = NULL, *sc = NULL;
    char path[600];
    data_path(path, sizeof path, "adamw", "params0.safetensors");
    ST_CHECK(stacl_st_open(&p0, path));
    data_path(path, sizeof path, "adamw", "grads.safetensors");
    ST_CHECK(stacl_st_open(&gr, path));
    data_path(path, sizeof path, "adamw", "expected.safetensors");
    ST_CHECK(stacl_st_open(&ex, path));
    data_path(path, sizeof path, "adamw", "schedule.safetensors");
    ST_CHECK(stacl_st_open(&sc, path));
    size_t off[N_T + 1] = {0};
    unsigned char decay[256];
    for (int i = 0; i < N_T; i++) {
        const stacl_st_tensor *x = stacl_st_find(p0, names[i]);
        assert_non_null(x);
        off[i + 1] = off[i] + x->numel;
        memset(decay + off[i], x->ndim >= 2, x->numel);
    }
    const size_t n = off[N_T];
    assert_true(n <= 256);
    float p[256], g[256], m[256] = {0}, v[256] = {0}, want[256];
    for (int i = 0; i < N_T; i++) ST_CHECK(stacl_st_read_f32(p0, stacl_st_find(p0, names[i]), p + off[i]));
    float lrs[STEPS], norms[STEPS];
    ST_CHECK(stacl_st_read_f32(sc, stacl_st_find(sc, "lrs"), lrs));
    ST_CHECK(stacl_st_read_f32(sc, stacl_st_find(sc, "norms"), norms));
    stacl_train_options opt = stacl_train_options_default();
    opt.weight_decay = 0.05f;
    double worst = 0.0;
    for (int s = 0; s < STEPS; s++) {
        char key[64];
        for (int i = 0; i < N_T; i++) {
            snprintf(key, sizeof key, "step%d/%s", s, names[i]);
            ST_CHECK(stacl_st_read_f32(gr, stacl_st_find(gr, key), g + off[i]));
            ST_CHECK(stacl_st_read_f32(ex, stacl_st_find(ex, key), want + off[i]));
        }
        double sq = 0.0;
        for (size_t j = 0; j < n; j++) sq += (double)g[j] * g[j];
        const double norm = sqrt(sq);
        assert_true(fabs(norm - norms[s]) <= 1e-6 * norms[s]);
        stacl_adamw_update(n, p, g, m, v, decay, s + 1, lrs[s], stacl_clip_coef(norm, 1.0f), &opt);
        const double err = tu_max_abs_diff(p, want, n);
        printf("    step %d: lr %.5f norm %.4f  max |p - torch| %.2e\n", s + 1, (double)lrs[s], norm, err);
        worst = err > worst ? err : worst;
    }
    stacl_st_close(p0);
    stacl_st_close(gr);
    stacl_st_close(ex);
    stacl_st_close(sc);
    assert_true(worst <= 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_mlp_all),
        cmocka_unit_test(test_step_attn_mlp),
        cmocka_unit_test(test_adamw),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
