/* test_golden.c: stacl's vision tower against the independent PyTorch
 * reference (tests/reference/make_golden.py, float64): every intermediate
 * activation (patch embedding, ln_pre, each block), the last-block tokens
 * and the final embeddings, for three models that cover both file layouts,
 * F16 storage, fused and separate q/k/v, head_dim 64/32/16, QuickGELU and
 * exact GELU, with and without projection.
 *
 * Tolerance (TU_GOLDEN_REL_TOL in test_util.h): max |stacl - golden| <=
 * 1e-4 * max(1, max |golden|). The
 * golden values are float64; stacl computes in float32 with reductions in a
 * different order, so errors of ~1e-6 relative are expected (measured: about
 * 2e-6 absolute on values of scale 5); 1e-4 leaves room for other devices'
 * math libraries while still catching any real mistake (a wrong layout,
 * a missing bias or a wrong eps gives errors > 1e-2). */
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
#include "stacl.h"
#include "test_util.h"


static stacl_ctx *ctx;

static int setup(void **state) {
    (void)state;
    stacl_status st = stacl_ctx_create(&ctx, NULL);
    if (st != STACL_OK) fprintf(stderr, "stacl_ctx_create: %s\n", stacl_last_error());
    return st == STACL_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    stacl_ctx_free(ctx);
    return 0;
}

static void load_golden(const char *model, const char *name, stacl_npy *out) {
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/%s.npy", model, name);
    tu_load_npy(rel, out);
}

static void compare(const char *model, const char *name, const float *got, const stacl_npy *golden, size_t n) {
    tu_check_golden(model, name, got, golden, n);
}

typedef struct observed {
    const char *model;
    int count;
} observed;

/* Checks each intermediate activation as the forward pass produces it. */
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

static void run_model(const char *model, int expect_layers, int expect_heads, int expect_proj) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/%s", STACL_TEST_DATA, model);
    stacl_model *m = NULL;
    stacl_state *s = NULL;
    stacl_npy input = {0}, golden = {0};
    stacl_status st = stacl_model_load(&m, ctx, path);
    if (st != STACL_OK) fail_msg("%s", stacl_last_error());
    const stacl_vision_config *c = stacl_model_vision_config(m);
    assert_int_equal(c->layers, expect_layers);
    assert_int_equal(c->heads, expect_heads);
    assert_int_equal(c->proj_dim, expect_proj);
    load_golden(model, "input", &input);
    int frames = (int)input.shape[0];
    assert_int_equal(stacl_state_create(&s, m, frames), STACL_OK);

    /* Intermediate stages + final embedding in one pass. */
    observed o = {model, 0};
    stacl_state_set_observer(s, check_stage, &o);
    float *out = malloc(stacl_forward_output_size(m, frames, STACL_OUT_TOKENS) * sizeof *out);
    assert_non_null(out);
    st = stacl_vision_forward(s, input.data, frames, STACL_OUT_EMBEDDING, out);
    if (st != STACL_OK) fail_msg("%s", stacl_last_error());
    assert_int_equal(o.count, 2 + expect_layers); /* patch_embed, ln_pre, blocks */
    load_golden(model, "embed", &golden);
    compare(model, "embed", out, &golden, stacl_forward_output_size(m, frames, STACL_OUT_EMBEDDING));
    stacl_npy_release(&golden);

    /* Tokens output, without the observer. */
    stacl_state_set_observer(s, NULL, NULL);
    assert_int_equal(stacl_vision_forward(s, input.data, frames, STACL_OUT_TOKENS, out), STACL_OK);
    load_golden(model, "tokens", &golden);
    compare(model, "tokens", out, &golden, stacl_forward_output_size(m, frames, STACL_OUT_TOKENS));
    stacl_npy_release(&golden);
    assert_true(stacl_state_last_device_ms(s) > 0.0);

    free(out);
    stacl_npy_release(&input);
    stacl_state_free(s);
    stacl_model_free(m);
}

static void test_openai_f16(void **state) {
    (void)state;
    run_model("openai_f16", 2, 2, 32);
}

static void test_hf(void **state) {
    (void)state;
    run_model("hf", 3, 2, 24);
}

static void test_hf_vision_gelu(void **state) {
    (void)state;
    run_model("hf_vision_gelu", 1, 3, 0);
}

/* A state sized for more frames than a pass uses gives the same answer, and
 * clips of a batch are independent of each other. */
static void test_hf_batch(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/models/hf", STACL_TEST_DATA);
    stacl_model *m = NULL;
    stacl_state *s = NULL;
    stacl_npy input = {0}, golden = {0};
    assert_int_equal(stacl_model_load(&m, ctx, path), STACL_OK);
    load_golden("hf", "input_batch", &input);
    load_golden("hf", "embed_batch", &golden);
    int clips = (int)input.shape[0], frames = (int)input.shape[1];
    assert_int_equal(stacl_state_create(&s, m, 2 * frames), STACL_OK);
    size_t per_clip = stacl_forward_output_size(m, frames, STACL_OUT_EMBEDDING);
    float *out = malloc((size_t)clips * per_clip * sizeof *out);
    assert_non_null(out);
    size_t frame_floats = (size_t)input.numel / (size_t)(clips * frames);
    for (int b = 0; b < clips; b++)
        assert_int_equal(stacl_vision_forward(s, input.data + (size_t)b * frames * frame_floats, frames,
                                              STACL_OUT_EMBEDDING, out + (size_t)b * per_clip), STACL_OK);
    compare("hf", "embed_batch", out, &golden, (size_t)clips * per_clip);
    /* All clips' frames in one pass: same numbers. */
    float *together = malloc((size_t)clips * per_clip * sizeof *together);
    assert_non_null(together);
    assert_int_equal(stacl_vision_forward(s, input.data, clips * frames, STACL_OUT_EMBEDDING, together), STACL_OK);
    compare("hf", "embed_batch(1 pass)", together, &golden, (size_t)clips * per_clip);
    /* More frames than the state holds: an error, not an overrun. */
    assert_int_equal(stacl_vision_forward(s, input.data, 2 * frames + 1, STACL_OUT_EMBEDDING, together),
                     STACL_ERR_INVALID_ARG);
    free(out);
    free(together);
    stacl_npy_release(&input);
    stacl_npy_release(&golden);
    stacl_state_free(s);
    stacl_model_free(m);
}

/* The model given as the .safetensors file itself, not its folder. */
static void test_model_file_path(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/models/openai_f16/model.safetensors", STACL_TEST_DATA);
    stacl_model *m = NULL;
    assert_int_equal(stacl_model_load(&m, ctx, path), STACL_OK);
    const stacl_vision_config *c = stacl_model_vision_config(m);
    assert_int_equal(c->width, 128);
    assert_int_equal(c->image_size, 48);
    assert_int_equal(c->patch, 8);
    assert_int_equal(c->layout, STACL_LAYOUT_OPENAI);
    stacl_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_f16),      cmocka_unit_test(test_hf),
        cmocka_unit_test(test_hf_vision_gelu),  cmocka_unit_test(test_hf_batch),
        cmocka_unit_test(test_model_file_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
