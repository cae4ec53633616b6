/* test_text_golden.c: stacl's text tower against the independent PyTorch
 * reference (tests/reference/make_golden.py, float64): the embeddings, every
 * block's residual stream (causal mask at every position) and the pooled,
 * projected features, for both file layouts (OpenAI F16 with heads =
 * width/64, Hugging Face with q/k/v and a [proj, width] projection). Also:
 * texts batched or one at a time and the pass that stops at the last
 * <|endoftext|> give the same numbers, a vision-only model
 * and an unusable text tower give clear errors, ids are range-checked.
 *
 * Tolerance as test_golden.c: max |stacl - golden| <= 1e-4 * max(1, max
 * |golden|). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"
#include "stacl.h"
#include "test_util.h"


static stacl_ctx *ctx;

static int setup(void **state) {
    stacl_status st = stacl_ctx_create(&ctx, NULL);
    if (st != STACL_OK) fprintf(stderr, "stacl_ctx_create: %s\n", stacl_last_error());
    return st == STACL_OK ? tu_group_setup(state) : -1;
}

static int teardown(void **state) {
    stacl_ctx_free(ctx);
    return tu_group_teardown(state);
}

static void load_golden(const char *model, const char *name, stacl_npy *out) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/%s.npy", model, name);
    tu_load_npy(rel, out);
}

static double compare(const char *model, const char *name, const float *got, const stacl_npy *golden, size_t n) {
    return tu_check_golden(model, name, got, golden, n);
}

typedef struct observed {
    const char *model;
    int count;
} observed;

static void check_stage(void *user, const char *name, const float *data, const int64_t *shape, int ndim) {
    observed *o = user;
    stacl_npy golden = {0};
    load_golden(o->model, name, &golden);
    assert_int_equal(ndim, golden.ndim);
    for (int i = 0; i < ndim; i++) assert_int_equal(shape[i], golden.shape[i]);
    compare(o->model, name, data, &golden, golden.numel);
    stacl_npy_release(&golden);
    o->count++;
}

static stacl_model *load_model(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s", STACL_TEST_DATA, name);
    stacl_model *m = NULL;
    if (stacl_model_load(&m, ctx, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    return m;
}

static int32_t *golden_tokens(const char *model, int *n, int *len) {
    stacl_npy t = {0};
    load_golden(model, "text_tokens", &t);
    *n = (int)t.shape[0];
    *len = (int)t.shape[1];
    int32_t *ids = malloc(t.numel * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < t.numel; i++) ids[i] = (int32_t)t.data[i];
    stacl_npy_release(&t);
    return ids;
}

static void run_text(const char *model, int width, int layers, int heads, int proj, stacl_layout layout) {
    stacl_model *m = load_model(model);
    const stacl_text_config *c = stacl_model_text_config(m);
    assert_non_null(c);
    assert_int_equal(c->width, width);
    assert_int_equal(c->layers, layers);
    assert_int_equal(c->heads, heads);
    assert_int_equal(c->proj_dim, proj);
    assert_int_equal(c->context_length, 8);
    assert_int_equal(c->vocab_size, 64);
    assert_int_equal(c->layout, layout);
    int n, len;
    int32_t *tokens = golden_tokens(model, &n, &len);
    assert_int_equal(len, c->context_length);
    stacl_text_state *s = NULL;
    assert_int_equal(stacl_text_state_create(&s, m, n + 1), STACL_OK);
    observed o = {model, 0};
    stacl_text_state_set_observer(s, check_stage, &o);
    size_t per = stacl_text_output_size(m, 1);
    assert_int_equal(per, (size_t)proj);
    float *out = malloc((size_t)n * per * sizeof *out), *one = malloc(per * sizeof *one);
    assert_non_null(out);
    assert_non_null(one);
    if (stacl_text_forward(s, tokens, n, out) != STACL_OK) fail_msg("%s", stacl_last_error());
    assert_int_equal(o.count, 1 + layers);
    stacl_npy golden = {0};
    load_golden(model, "text_features", &golden);
    compare(model, "text_features", out, &golden, (size_t)n * per);
    assert_true(stacl_text_state_last_device_ms(s) > 0.0);

    /* Without an observer a pass runs only the positions up to the last
     * <|endoftext|> (the causal mask makes the rest irrelevant): the same
     * features. */
    stacl_text_state_set_observer(s, NULL, NULL);
    float *fast = malloc((size_t)n * per * sizeof *fast);
    assert_non_null(fast);
    assert_int_equal(stacl_text_forward(s, tokens, n, fast), STACL_OK);
    compare(model, "text_features(short)", fast, &golden, (size_t)n * per);
    free(fast);
    /* One text per pass: the same numbers (texts do not interact). */
    for (int i = 0; i < n; i++) {
        assert_int_equal(stacl_text_forward(s, tokens + (size_t)i * len, 1, one), STACL_OK);
        assert_true(tu_max_abs_diff(one, out + (size_t)i * per, per) <= 1e-5);
    }
    /* What follows <|endoftext|> is masked out: a changed padding gives
     * the same features (row 1 has 3 words, EOT at 4). */
    int32_t *alt = malloc((size_t)len * sizeof *alt);
    memcpy(alt, tokens + len, (size_t)len * sizeof *alt);
    alt[5] = 7;
    alt[6] = 9;
    assert_int_equal(stacl_text_forward(s, alt, 1, one), STACL_OK);
    assert_true(tu_max_abs_diff(one, out + per, per) <= 1e-5);
    /* Out-of-range ids and too many texts are errors, not overruns. */
    alt[2] = 64;
    assert_int_equal(stacl_text_forward(s, alt, 1, one), STACL_ERR_INVALID_ARG);
    tu_expect_message("token id 64", "vocabulary of 64");
    alt[2] = -1;
    assert_int_equal(stacl_text_forward(s, alt, 1, one), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_text_forward(s, tokens, n + 2, out), STACL_ERR_INVALID_ARG);
    free(alt);
    free(one);
    free(out);
    free(tokens);
    stacl_npy_release(&golden);
    stacl_text_state_free(s);
    stacl_model_free(m);
}

static void test_openai_f16(void **state) {
    (void)state;
    run_text("openai_f16", 64, 2, 1, 32, STACL_LAYOUT_OPENAI);
}

static void test_hf(void **state) {
    (void)state;
    run_text("hf", 32, 1, 2, 24, STACL_LAYOUT_HF);
}

static void test_vision_only(void **state) {
    (void)state;
    stacl_model *m = load_model("hf_vision_gelu");
    assert_null(stacl_model_text_config(m));
    stacl_text_state *s = NULL;
    assert_int_equal(stacl_text_state_create(&s, m, 1), STACL_ERR_MISSING);
    tu_expect_message("no text tower", "token_embedding");
    assert_null(s);
    stacl_model_free(m);
}

/* A text tower without a head count (config.json lacks text_config): the
 * vision tower still loads and works; text requests say why not. */
static void test_unusable_text_tower(void **state) {
    (void)state;
    char dir[600], src[600], dst[700], cfg[700];
    TU_PATH(dir, "no_text_heads");
    snprintf(cfg, sizeof cfg, "mkdir -p '%s'", dir);
    assert_int_equal(system(cfg), 0);
    snprintf(src, sizeof src, "%s/models/hf/model.safetensors", STACL_TEST_DATA);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    assert_int_equal(symlink(src, dst), 0);
    snprintf(src, sizeof src, "%s/models/hf/config.json", STACL_TEST_DATA);
    size_t len = 0;
    char *json = tu_read_file(src, &len);
    assert_non_null(json);
    char *tc = strstr(json, "\"text_config\"");
    assert_non_null(tc);
    memcpy(tc, "\"text_c0nfig\"", 13);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    assert_int_equal(tu_write_file(cfg, json, len), 0);
    free(json);
    stacl_model *m = NULL;
    assert_int_equal(stacl_model_load(&m, ctx, dir), STACL_OK);
    assert_int_equal(stacl_model_vision_config(m)->proj_dim, 24);
    assert_null(stacl_model_text_config(m));
    stacl_text_state *s = NULL;
    assert_int_equal(stacl_text_state_create(&s, m, 1), STACL_ERR_MISSING);
    tu_expect_message("text tower cannot be used", "num_attention_heads");
    stacl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_f16),
        cmocka_unit_test(test_hf),
        cmocka_unit_test(test_vision_only),
        cmocka_unit_test(test_unusable_text_tower),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
