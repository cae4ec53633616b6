/* test_adapter_golden.c: the ST-Adapter model (stacl_classify_forward)
 * against the independent float64 PyTorch implementation in
 * tests/reference/make_adapter_golden.py, on the tiny `hf` backbone with
 * random non-zero adapters in two placements (pre-MLP in every block with a
 * (3,1,1) kernel; pre-attention + pre-MLP in the last 2 blocks with a
 * (3,3,3) kernel, `visual.`-prefixed names and an ignored backbone tensor).
 * Checks the last-block tokens and the logits, all clips in one pass and
 * clip by clip, with max |stacl - golden| <= 1e-4 * max(1, max |golden|)
 * (as test_golden.c); also the loader's configuration and its errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "safetensors.h"
#include "stacl.h"
#include "test_util.h"


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

static void load_npy(const char *name_case, const char *file, stacl_npy *out) {
    char rel[256];
    snprintf(rel, sizeof rel, "adapter/%s/%s.npy", name_case, file);
    tu_load_npy(rel, out);
}

static void compare(const char *name_case, const char *what, const float *got, const stacl_npy *golden, size_t n) {
    tu_check_golden(name_case, what, got, golden, n);
}

static void run_case(const char *name_case, int n_attn, int n_mlp, int kt, int kh, int kw, int classes) {
    char path[512];
    snprintf(path, sizeof path, "%s/adapter/%s/adapter.safetensors", STACL_TEST_DATA, name_case);
    stacl_adapter *ad = NULL;
    stacl_state *s = NULL;
    stacl_npy input = {0}, tokens = {0}, logits = {0};
    if (stacl_adapter_load(&ad, model, path) != STACL_OK) fail_msg("%s", stacl_last_error());
    stacl_adapter_info info;
    stacl_adapter_get_info(ad, &info);
    assert_int_equal(info.n_pre_attn, n_attn);
    assert_int_equal(info.n_pre_mlp, n_mlp);
    assert_int_equal(info.kernel[0], kt);
    assert_int_equal(info.kernel[1], kh);
    assert_int_equal(info.kernel[2], kw);
    assert_int_equal(info.classes, classes);
    load_npy(name_case, "input", &input);
    load_npy(name_case, "tokens", &tokens);
    load_npy(name_case, "logits", &logits);
    const int clips = (int)input.shape[0], frames = (int)input.shape[1];
    assert_int_equal(stacl_state_create(&s, model, clips * frames), STACL_OK);
    float *out = malloc(stacl_classify_output_size(ad, clips, frames, STACL_OUT_TOKENS) * sizeof *out);
    assert_non_null(out);

    /* All clips in one pass. */
    if (stacl_classify_forward(s, ad, input.data, clips, frames, STACL_OUT_TOKENS, out) != STACL_OK)
        fail_msg("%s", stacl_last_error());
    compare(name_case, "tokens", out, &tokens, tokens.numel);
    if (stacl_classify_forward(s, ad, input.data, clips, frames, STACL_OUT_EMBEDDING, out) != STACL_OK)
        fail_msg("%s", stacl_last_error());
    compare(name_case, "logits", out, &logits, stacl_classify_output_size(ad, clips, frames, STACL_OUT_EMBEDDING));

    /* Clip by clip: the conv must not mix clips. */
    const size_t frame_floats = input.numel / (size_t)(clips * frames);
    for (int b = 0; b < clips; b++)
        assert_int_equal(stacl_classify_forward(s, ad, input.data + (size_t)b * frames * frame_floats, 1, frames,
                                                STACL_OUT_EMBEDDING, out + (size_t)b * classes), STACL_OK);
    compare(name_case, "logits (per clip)", out, &logits, (size_t)clips * classes);

    /* More frames than the state holds: an error, not an overrun. */
    assert_int_equal(stacl_classify_forward(s, ad, input.data, clips + 1, frames, STACL_OUT_EMBEDDING, out),
                     STACL_ERR_INVALID_ARG);
    free(out);
    stacl_npy_release(&input);
    stacl_npy_release(&tokens);
    stacl_npy_release(&logits);
    stacl_state_free(s);
    stacl_adapter_free(ad);
}

static void test_pre_mlp_all(void **state) {
    (void)state;
    run_case("mlp_all", 0, 3, 3, 1, 1, 5);
}

static void test_pre_attn_mlp_last2(void **state) {
    (void)state;
    run_case("attn_mlp", 2, 2, 3, 3, 3, 7);
}

/* Writes a one-adapter checkpoint whose fc2.weight has `fc2_rows` rows. */
static void write_ckpt(const char *path, int fc2_rows, int with_conv) {
    const int W = 64, A = 4;
    static float zeros[64 * 64];
    stacl_st_entry e[6];
    int n = 0;
    const char *p = "transformer.resblocks.1.adapter_pre_mlp.";
    static char names[6][128];
#define ADD(part, nd, ...)                                                                  \
    do {                                                                                    \
        snprintf(names[n], sizeof names[n], "%s%s", p, part);                               \
        e[n] = (stacl_st_entry){.name = names[n], .dtype = STACL_DT_F32, .ndim = nd,           \
                                .shape = {__VA_ARGS__}, .data = zeros};                     \
        n++;                                                                                \
    } while (0)
    ADD("fc1.weight", 2, A, W);
    ADD("fc1.bias", 1, A);
    if (with_conv) ADD("conv.weight", 5, A, 1, 3, 1, 1);
    ADD("conv.bias", 1, A);
    ADD("fc2.weight", 2, fc2_rows, A);
    ADD("fc2.bias", 1, W);
#undef ADD
    assert_int_equal(stacl_st_write(path, e, n, NULL, NULL, 0), STACL_OK);
}

/* Wrong shapes name the tensor, what was expected and what was found; a
 * file with no adapters at all is refused. */
static void test_bad_checkpoints(void **state) {
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", tu_make_temp_dir());
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    stacl_adapter *ad = NULL;
    write_ckpt(path, 63, 1);
    assert_int_equal(stacl_adapter_load(&ad, model, path), STACL_ERR_SHAPE);
    printf("  %s\n", stacl_last_error());
    assert_non_null(strstr(stacl_last_error(), "fc2.weight"));
    assert_non_null(strstr(stacl_last_error(), "[63, 4]"));
    assert_non_null(strstr(stacl_last_error(), "[64, 4]"));
    write_ckpt(path, 64, 0);
    assert_int_not_equal(stacl_adapter_load(&ad, model, path), STACL_OK);
    printf("  %s\n", stacl_last_error());
    write_ckpt(path, 64, 1);
    assert_int_equal(stacl_adapter_load(&ad, model, path), STACL_OK);
    stacl_adapter_info info;
    stacl_adapter_get_info(ad, &info);
    assert_int_equal(info.classes, 0); /* no head: tokens only */
    float dummy[8];
    stacl_state *s = NULL;
    assert_int_equal(stacl_state_create(&s, model, 1), STACL_OK);
    assert_int_equal(stacl_classify_forward(s, ad, dummy, 1, 1, STACL_OUT_EMBEDDING, dummy), STACL_ERR_MISSING);
    stacl_state_free(s);
    stacl_adapter_free(ad);
    tu_remove_tree(dir);
    snprintf(path, sizeof path, "%s/models/hf/model.safetensors", STACL_TEST_DATA);
    assert_int_equal(stacl_adapter_load(&ad, model, path), STACL_ERR_MISSING);
    assert_null(ad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pre_mlp_all),
        cmocka_unit_test(test_pre_attn_mlp_last2),
        cmocka_unit_test(test_bad_checkpoints),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
