/* test_cli.c: the stacl command-line tool as a user runs it: help and
 * version, `forward` against the golden outputs (single clip, batch,
 * tokens; with --adapter, the ST-Adapter goldens), and bad input, which must give a clear message on stderr and a
 * non-zero exit, never a crash: missing options, unreadable or corrupt
 * model files, missing or mis-shaped tensors, wrong .npy dtype or shape,
 * unwritable output, no OpenCL platform. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "npy.h"
#include "safetensors.h"
#include "stacl.h"
#include "test_util.h"

static char tmp[512];

static int setup(void **state) {
    (void)state;
    snprintf(tmp, sizeof tmp, "%s", tu_make_temp_dir());
    return 0;
}

static int teardown(void **state) {
    (void)state;
    tu_remove_tree(tmp);
    return 0;
}

static int vrun(char **out, char **err, const char *const *env, va_list ap) {
    const char *argv[16] = {STACL_CLI_PATH};
    int n = 1;
    const char *arg;
    while (n < 15 && (arg = va_arg(ap, const char *)) != NULL) argv[n++] = arg;
    argv[n] = NULL;
    return tu_run(argv, env, out, err);
}

/* Runs stacl with up to 14 arguments (NULL-terminated); returns the exit code. */
static int run(char **out, char **err, const char *const *env, ...) {
    va_list ap;
    va_start(ap, env);
    int code = vrun(out, err, env, ap);
    va_end(ap);
    return code;
}

/* Runs stacl and expects exit code `expected` with `needle` in stderr. */
static void expect_failure(int expected, const char *needle, const char *const *env, ...) {
    char *out = NULL, *err = NULL;
    va_list ap;
    va_start(ap, env);
    int code = vrun(&out, &err, env, ap);
    va_end(ap);
    if (code != expected || !strstr(err, needle))
        fail_msg("expected exit %d and '%s' in stderr; got exit %d, stderr:\n%s", expected, needle, code, err);
    printf("  ok (exit %d): %s", code, err);
    free(out);
    free(err);
}

static const char *data(const char *rel) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", STACL_TEST_DATA, rel);
    return buf[k];
}

static const char *tmp_path(const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

/* ---- help and version ---- */

static void test_help(void **state) {
    (void)state;
    char *out, *err;
    assert_int_equal(run(&out, &err, NULL, "--help", NULL), 0);
    assert_non_null(strstr(out, "forward"));
    assert_non_null(strstr(out, "devices"));
    free(out);
    free(err);
    const char *commands[] = {"devices", "forward", "gen-model", "demo"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(run(&out, &err, NULL, commands[i], "--help", NULL), 0);
        assert_non_null(strstr(out, "usage: stacl"));
        free(out);
        free(err);
    }
    assert_int_equal(run(&out, &err, NULL, "frobnicate", NULL), 2);
    assert_non_null(strstr(err, "unknown command"));
    free(out);
    free(err);
}

static void test_version(void **state) {
    (void)state;
    char *out, *err;
    assert_int_equal(run(&out, &err, NULL, "--version", NULL), 0);
    assert_non_null(strstr(out, stacl_version()));
    assert_non_null(strstr(out, "CLBlast"));
    assert_non_null(strstr(out, "OpenCL"));
    free(out);
    free(err);
}

static void test_devices_json(void **state) {
    (void)state;
    char *out, *err;
    assert_int_equal(run(&out, &err, NULL, "devices", "--json", NULL), 0);
    assert_true(out[0] == '[');
    assert_non_null(strstr(out, "\"index\": 0"));
    assert_non_null(strstr(out, "\"fp64\""));
    free(out);
    free(err);
}

/* ---- forward against the goldens ---- */

static void compare_npy(const char *got_path, const char *golden_path) {
    stacl_npy got = {0}, golden = {0};
    assert_int_equal(stacl_npy_read_f32(got_path, &got), STACL_OK);
    assert_int_equal(stacl_npy_read_f32(golden_path, &golden), STACL_OK);
    assert_int_equal(got.ndim, golden.ndim);
    for (int i = 0; i < got.ndim; i++) assert_int_equal(got.shape[i], golden.shape[i]);
    double err = tu_max_abs_diff(got.data, golden.data, got.numel);
    double scale = tu_max_abs(golden.data, golden.numel);
    printf("  %s: max abs err %.3e (scale %.3f)\n", golden_path, err, scale);
    assert_true(err <= 1e-4 * (scale > 1 ? scale : 1));
    stacl_npy_release(&got);
    stacl_npy_release(&golden);
}

static void test_forward_golden(void **state) {
    (void)state;
    char *out, *err;
    int code = run(&out, &err, NULL, "forward", "--model", data("models/openai_f16"), "--input",
                   data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    assert_non_null(strstr(out, "time per clip"));
    free(out);
    free(err);
    compare_npy(tmp_path("y.npy"), data("golden/openai_f16/embed.npy"));

    code = run(&out, &err, NULL, "forward", "--model", data("models/hf"), "--input", data("golden/hf/input_batch.npy"),
               "--out", tmp_path("yb.npy"), "--quiet", NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    assert_string_equal(out, "");
    free(out);
    free(err);
    compare_npy(tmp_path("yb.npy"), data("golden/hf/embed_batch.npy"));

    code = run(&out, &err, NULL, "forward", "--model", data("models/hf_vision_gelu"), "--input",
               data("golden/hf_vision_gelu/input.npy"), "--out", tmp_path("yt.npy"), "--tokens", NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    free(out);
    free(err);
    compare_npy(tmp_path("yt.npy"), data("golden/hf_vision_gelu/tokens.npy"));

    /* No projection: the command says what it writes. */
    code = run(&out, &err, NULL, "forward", "--model", data("models/hf_vision_gelu"), "--input",
               data("golden/hf_vision_gelu/input.npy"), "--out", tmp_path("yn.npy"), NULL);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "no projection"));
    free(out);
    free(err);
    compare_npy(tmp_path("yn.npy"), data("golden/hf_vision_gelu/embed.npy"));
}

/* forward --adapter: logits and tokens of the ST-Adapter model against the
 * goldens of tests/reference/make_adapter_golden.py; one clip [T, 3, H, W]
 * gives logits [classes]. */
static void test_forward_adapter(void **state) {
    (void)state;
    char *out, *err;
    char ckpt[512]; /* data() reuses its buffers */
    snprintf(ckpt, sizeof ckpt, "%s", data("adapter/attn_mlp/adapter.safetensors"));
    int code = run(&out, &err, NULL, "forward", "--model", data("models/hf"), "--adapter", ckpt, "--input",
                   data("adapter/attn_mlp/input.npy"), "--out", tmp_path("logits.npy"), NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    assert_non_null(strstr(out, "2 pre-attention + 2 pre-MLP, 7 classes"));
    free(out);
    free(err);
    compare_npy(tmp_path("logits.npy"), data("adapter/attn_mlp/logits.npy"));
    code = run(&out, &err, NULL, "forward", "--model", data("models/hf"), "--adapter", ckpt, "--input",
               data("adapter/attn_mlp/input.npy"), "--out", tmp_path("tokens.npy"), "--tokens", "--quiet", NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    free(out);
    free(err);
    compare_npy(tmp_path("tokens.npy"), data("adapter/attn_mlp/tokens.npy"));

    /* The first clip alone, as [T, 3, H, W]. */
    stacl_npy x = {0}, golden = {0}, got = {0};
    assert_int_equal(stacl_npy_read_f32(data("adapter/attn_mlp/input.npy"), &x), STACL_OK);
    assert_int_equal(stacl_npy_write_f32(tmp_path("clip.npy"), x.data, x.shape + 1, 4), STACL_OK);
    code = run(&out, &err, NULL, "forward", "--model", data("models/hf"), "--adapter", ckpt, "--input",
               tmp_path("clip.npy"), "--out", tmp_path("one.npy"), "--quiet", NULL);
    if (code != 0) fail_msg("exit %d: %s", code, err);
    free(out);
    free(err);
    assert_int_equal(stacl_npy_read_f32(data("adapter/attn_mlp/logits.npy"), &golden), STACL_OK);
    assert_int_equal(stacl_npy_read_f32(tmp_path("one.npy"), &got), STACL_OK);
    assert_int_equal(got.ndim, 1);
    assert_int_equal(got.shape[0], golden.shape[1]);
    assert_true(tu_max_abs_diff(got.data, golden.data, (size_t)got.numel) <= 1e-4);
    stacl_npy_release(&x);
    stacl_npy_release(&golden);
    stacl_npy_release(&got);

    /* A checkpoint without adapters (the backbone itself): a clear error. */
    expect_failure(1, "no adapter tensors", NULL, "forward", "--model", data("models/hf"), "--adapter",
                   data("models/hf/model.safetensors"), "--input", data("adapter/attn_mlp/input.npy"), "--out",
                   tmp_path("bad.npy"), NULL);
}

static void test_gen_model_then_forward(void **state) {
    (void)state;
    char *out, *err;
    const char *dir = tmp_path("gen");
    assert_int_equal(run(&out, &err, NULL, "gen-model", "--preset", "tiny", "--layout", "hf", "--out", dir, NULL), 0);
    free(out);
    free(err);
    /* A tiny clip of zeros: [2, 3, 32, 32]. */
    float *x = calloc(2 * 3 * 32 * 32, sizeof *x);
    assert_non_null(x);
    assert_int_equal(stacl_npy_write_f32(tmp_path("zeros.npy"), x, (const int64_t[]){2, 3, 32, 32}, 4), STACL_OK);
    free(x);
    assert_int_equal(run(&out, &err, NULL, "forward", "--model", dir, "--input", tmp_path("zeros.npy"), "--out",
                         tmp_path("gen.npy"), "--profile", NULL), 0);
    assert_non_null(strstr(out, "gemm"));
    free(out);
    free(err);
    stacl_npy y = {0};
    assert_int_equal(stacl_npy_read_f32(tmp_path("gen.npy"), &y), STACL_OK);
    assert_int_equal(y.ndim, 2);
    assert_int_equal(y.shape[0], 2);
    assert_int_equal(y.shape[1], 32);
    stacl_npy_release(&y);
}

/* ---- bad input ---- */

static void test_usage_errors(void **state) {
    (void)state;
    expect_failure(2, "required", NULL, "forward", "--model", data("models/hf"), NULL);
    expect_failure(2, "unknown option", NULL, "forward", "--bogus", NULL);
    expect_failure(2, "needs a value", NULL, "forward", "--model", NULL);
    expect_failure(2, "--frames", NULL, "demo", "--frames", "zero", NULL);
    expect_failure(2, "--layout", NULL, "gen-model", "--out", tmp_path("x"), "--layout", "tf", NULL);
}

static void test_missing_model(void **state) {
    (void)state;
    expect_failure(1, "nowhere' does not exist", NULL, "forward", "--model", tmp_path("nowhere"), "--input",
                       data("golden/hf/input.npy"), "--out", tmp_path("y.npy"), NULL);
}

static void write_bytes(const char *path, const void *bytes, size_t n) { assert_int_equal(tu_write_file(path, bytes, n), 0); }

static void test_corrupt_safetensors(void **state) {
    (void)state;
    size_t n = 0;
    char *bytes = tu_read_file(data("models/openai_f16/model.safetensors"), &n);
    assert_non_null(bytes);
    /* Truncated data section: offsets run past the end. */
    write_bytes(tmp_path("trunc.safetensors"), bytes, n / 2);
    expect_failure(1, "trunc.safetensors", NULL, "forward", "--model", tmp_path("trunc.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    /* Garbage. */
    write_bytes(tmp_path("garbage.safetensors"), "this is not a safetensors file at all", 37);
    expect_failure(1, "garbage.safetensors", NULL, "forward", "--model", tmp_path("garbage.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    /* Shorter than its own 8-byte length field. */
    write_bytes(tmp_path("short.safetensors"), bytes, 5);
    expect_failure(1, "short.safetensors", NULL, "forward", "--model", tmp_path("short.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    free(bytes);
}

/* Copies the openai_f16 model to dst, leaving out `skip` and giving
 * `reshape` a wrong shape (same byte count) or dtype. */
static void copy_model_edited(const char *dst, const char *skip, const char *reshape, int to_int) {
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, data("models/openai_f16/model.safetensors")), STACL_OK);
    int n = stacl_st_count(f), k = 0;
    stacl_st_entry *entries = calloc((size_t)n, sizeof *entries);
    assert_non_null(entries);
    for (int i = 0; i < n; i++) {
        const stacl_st_tensor *t = stacl_st_at(f, i);
        if (skip && strcmp(t->name, skip) == 0) continue;
        stacl_st_entry *e = &entries[k++];
        e->name = t->name;
        e->dtype = t->dtype;
        e->ndim = t->ndim;
        memcpy(e->shape, t->shape, sizeof e->shape);
        e->data = stacl_st_data(f, t);
        if (reshape && strcmp(t->name, reshape) == 0) {
            if (to_int) {
                e->dtype = STACL_DT_I16; /* same element size as F16 */
            } else {
                e->ndim = 2;
                e->shape[0] = t->shape[0] / 2;
                e->shape[1] = t->shape[1] * 2;
            }
        }
    }
    assert_int_equal(stacl_st_write(dst, entries, k, NULL, NULL, 0), STACL_OK);
    free(entries);
    stacl_st_close(f);
}

static void test_missing_and_misshaped_tensor(void **state) {
    (void)state;
    copy_model_edited(tmp_path("missing.safetensors"), "visual.transformer.resblocks.1.mlp.c_proj.bias", NULL, 0);
    expect_failure(1, "missing tensor 'visual.transformer.resblocks.1.mlp.c_proj.bias'", NULL, "forward", "--model", tmp_path("missing.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    copy_model_edited(tmp_path("shape.safetensors"), NULL, "visual.transformer.resblocks.0.attn.out_proj.weight", 0);
    expect_failure(1, "'visual.transformer.resblocks.0.attn.out_proj.weight' has shape [64, 256], expected [128, 128]", NULL, "forward", "--model", tmp_path("shape.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    copy_model_edited(tmp_path("dtype.safetensors"), NULL, "visual.ln_pre.weight", 1);
    expect_failure(1, "'visual.ln_pre.weight' has dtype I16", NULL, "forward", "--model", tmp_path("dtype.safetensors"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
}

static void test_hf_without_config(void **state) {
    (void)state;
    size_t n = 0;
    char *bytes = tu_read_file(data("models/hf/model.safetensors"), &n);
    assert_non_null(bytes);
    mkdir(tmp_path("hf_noconfig"), 0755);
    write_bytes(tmp_path("hf_noconfig/model.safetensors"), bytes, n);
    free(bytes);
    expect_failure(1, "config.json", NULL, "forward", "--model", tmp_path("hf_noconfig"), "--input",
                       data("golden/hf/input.npy"), "--out", tmp_path("y.npy"), NULL);
}

static void test_bad_npy(void **state) {
    (void)state;
    /* float64 input. */
    static const char header[] = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }";
    char f8[128] = "\x93NUMPY\x01\x00";
    size_t hlen = 118; /* 10 + 118 = 128 bytes of preamble */
    f8[8] = (char)(hlen & 0xff);
    f8[9] = 0;
    memset(f8 + 10, ' ', hlen);
    memcpy(f8 + 10, header, strlen(header));
    f8[127] = '\n';
    char file[136];
    memcpy(file, f8, 128);
    memset(file + 128, 0, 8);
    write_bytes(tmp_path("f8.npy"), file, sizeof file);
    expect_failure(1, "'<f8'", NULL, "forward", "--model", data("models/hf"), "--input", tmp_path("f8.npy"),
                       "--out", tmp_path("y.npy"), NULL);
    /* Wrong image size for the model (hf is 28 px; give the 48 px frames). */
    expect_failure(1, "does not fit the model", NULL, "forward", "--model", data("models/hf"), "--input",
                       data("golden/openai_f16/input.npy"), "--out", tmp_path("y.npy"), NULL);
    /* Wrong rank. */
    float v[6] = {0};
    assert_int_equal(stacl_npy_write_f32(tmp_path("rank2.npy"), v, (const int64_t[]){2, 3}, 2), STACL_OK);
    expect_failure(1, "found 2 dimensions", NULL, "forward", "--model", data("models/hf"), "--input", tmp_path("rank2.npy"),
                       "--out", tmp_path("y.npy"), NULL);
    /* Missing input file. */
    expect_failure(1, "none.npy", NULL, "forward", "--model", data("models/hf"), "--input", tmp_path("none.npy"),
                       "--out", tmp_path("y.npy"), NULL);
}

static void test_unwritable_output(void **state) {
    (void)state;
    expect_failure(1, "cannot write", NULL, "forward", "--model", data("models/hf"), "--input", data("golden/hf/input.npy"),
                       "--out", tmp_path("no/such/dir/y.npy"), NULL);
    /* Nothing was left behind. */
    struct stat sb;
    assert_int_not_equal(stat(tmp_path("no"), &sb), 0);
}

static void test_no_platform(void **state) {
    (void)state;
    /* The ICD loader finds no vendor files: no OpenCL platform at all. */
    const char *env[] = {"OCL_ICD_VENDORS=/nonexistent-icd-dir", "OCL_ICD_FILENAMES=", NULL};
    expect_failure(1, "pocl-opencl-icd", env, "devices", NULL);
    expect_failure(1, "no OpenCL platform", env, "forward", "--model", data("models/hf"), "--input", data("golden/hf/input.npy"),
                       "--out", tmp_path("y.npy"), NULL);
    const char *bad_device[] = {"STACL_DEVICE=no-such-device", NULL};
    expect_failure(1, "no-such-device", bad_device, "forward", "--model", data("models/hf"), "--input",
                       data("golden/hf/input.npy"), "--out", tmp_path("y.npy"), NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_devices_json),
        cmocka_unit_test(test_forward_golden),
        cmocka_unit_test(test_forward_adapter),
        cmocka_unit_test(test_gen_model_then_forward),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_corrupt_safetensors),
        cmocka_unit_test(test_missing_and_misshaped_tensor),
        cmocka_unit_test(test_hf_without_config),
        cmocka_unit_test(test_bad_npy),
        cmocka_unit_test(test_unwritable_output),
        cmocka_unit_test(test_no_platform),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
