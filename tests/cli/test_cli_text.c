/* test_cli_text.c: `stacl tokenize` and `stacl encode-text` as a user runs
 * them: the exact stdout format, the int32 .npy, truncation, invalid UTF-8,
 * usage errors; encode-text on random models with CLIP's real vocabulary in
 * both layouts (the same model written twice must give the same numbers),
 * --texts FILE vs arguments, --normalize, batching, and a vision-only
 * model. */
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

static int run(char **out, char **err, ...) {
    const char *argv[24] = {STACL_CLI_PATH};
    int n = 1;
    const char *arg;
    va_list ap;
    va_start(ap, err);
    while (n < 23 && (arg = va_arg(ap, const char *)) != NULL) argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, NULL, out, err);
}

#define RUN(out, err, ...) run(out, err, __VA_ARGS__, (const char *)NULL)

static void expect(int code, int want, const char *err, const char *needle) {
    if (code != want || (needle && (!err || !strstr(err, needle))))
        fail_msg("exit %d (want %d), stderr: %s (want '%s')", code, want, err ? err : "", needle ? needle : "");
    printf("  ok (exit %d): %s", code, err && *err ? err : "\n");
}

static void test_tokenize_stdout(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(RUN(&out, &err, "tokenize", "a photo of a cat", "Hello, World!"), 0);
    char want[2048] = "49406 320 1125 539 320 2368 49407";
    for (int i = 7; i < 77; i++) strcat(want, " 0");
    strcat(want, "\n49406 3306 267 1002 256 49407");
    for (int i = 6; i < 77; i++) strcat(want, " 0");
    strcat(want, "\n");
    assert_string_equal(out, want);
    assert_string_equal(err, "");
    free(out);
    free(err);

    /* "--" makes the rest texts; --texts FILE lines come first. */
    char path[600];
    TU_PATH(path, "texts.txt");
    assert_int_equal(tu_write_file(path, "a photo of a cat\r\n\n", 19), 0);
    assert_int_equal(RUN(&out, &err, "tokenize", "--texts", path, "--", "--help"), 0);
    const char *l2 = strchr(out, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_int_equal(strncmp(out, "49406 320 1125 539 320 2368 49407 0", 35), 0);
    assert_int_equal(strncmp(l2, "49406 49407 0 0", 15), 0); /* the empty line */
    assert_int_equal(strncmp(l3, "49406 2432 1318 49407 0", 23), 0); /* "--" and "help" */
    free(out);
    free(err);
}

static void test_tokenize_npy_and_errors(void **state) {
    (void)state;
    char *out = NULL, *err = NULL, path[600];
    TU_PATH(path, "ids.npy");
    assert_int_equal(RUN(&out, &err, "tokenize", "--npy", path, "a", "b"), 0);
    assert_string_equal(out, "");
    free(out);
    free(err);
    size_t n = 0;
    char *raw = tu_read_file(path, &n);
    assert_non_null(raw);
    assert_non_null(strstr(raw + 10, "'descr': '<i4'")); /* past the magic's NUL byte */
    assert_non_null(strstr(raw + 10, "'shape': (2, 77)"));
    const int32_t *ids = (const int32_t *)(raw + n - 2 * 77 * 4);
    assert_int_equal(ids[0], 49406);
    assert_int_equal(ids[1], 320);
    assert_int_equal(ids[2], 49407);
    assert_int_equal(ids[77 + 1], 321);
    free(raw);

    char long_text[2048] = "";
    for (int i = 0; i < 80; i++) strcat(long_text, "word ");
    int code = RUN(&out, &err, "tokenize", long_text);
    expect(code, 1, err, "--truncate");
    free(out);
    free(err);
    assert_int_equal(RUN(&out, &err, "tokenize", "--truncate", long_text), 0);
    assert_non_null(strstr(out, " 49407\n"));
    free(out);
    free(err);
    code = RUN(&out, &err, "tokenize", "ok", "bad \xff byte");
    expect(code, 1, err, "text 2: invalid UTF-8 at byte offset 4");
    assert_string_equal(out, "");
    free(out);
    free(err);
    code = RUN(&out, &err, "tokenize");
    expect(code, 2, err, "no texts");
    free(out);
    free(err);
    code = RUN(&out, &err, "tokenize", "--vocab", "/nonexistent.txt.gz", "x");
    expect(code, 1, err, "/nonexistent.txt.gz");
    free(out);
    free(err);
    code = RUN(&out, &err, "tokenize", "--bogus", "x");
    expect(code, 2, err, "unknown option");
    free(out);
    free(err);
    assert_int_equal(RUN(&out, &err, "tokenize", "--help"), 0);
    assert_non_null(strstr(out, "usage: stacl tokenize"));
    free(out);
    free(err);
}

static float *read_npy(const char *path, int64_t rows, int64_t cols) {
    stacl_npy a = {0};
    if (stacl_npy_read_f32(path, &a) != STACL_OK) fail_msg("%s", stacl_last_error());
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], rows);
    assert_int_equal(a.shape[1], cols);
    return a.data;
}

static void test_encode_text(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    char oa[600], hf[600], e1[600], e2[600], e3[600], e4[600], texts[600];
    TU_PATH(oa, "tiny_openai");
    TU_PATH(hf, "tiny_hf");
    TU_PATH(e1, "e1.npy");
    TU_PATH(e2, "e2.npy");
    TU_PATH(e3, "e3.npy");
    TU_PATH(e4, "e4.npy");
    TU_PATH(texts, "classes.txt");
    assert_int_equal(RUN(&out, &err, "gen-model", "--preset", "tiny", "--text", "--out", oa), 0);
    free(out);
    free(err);
    assert_int_equal(RUN(&out, &err, "gen-model", "--preset", "tiny", "--text", "--layout", "hf", "--out", hf), 0);
    free(out);
    free(err);
    const char *t1 = "a video of a dog.", *t2 = "someone playing the violin", *t3 = "Ærøskøbing 🎉";
    assert_int_equal(RUN(&out, &err, "encode-text", "--model", oa, "--out", e1, t1, t2, t3), 0);
    assert_non_null(strstr(out, "encoded 3 texts"));
    free(out);
    free(err);
    /* The same random model in the Hugging Face layout, one text per pass,
     * texts from a file. */
    char file[256];
    snprintf(file, sizeof file, "%s\n%s\n%s\n", t1, t2, t3);
    assert_int_equal(tu_write_file(texts, file, strlen(file)), 0);
    assert_int_equal(RUN(&out, &err, "encode-text", "--model", hf, "--texts", texts, "--out", e2, "--batch", "1",
                         "--quiet"), 0);
    assert_string_equal(out, "");
    free(out);
    free(err);
    float *a = read_npy(e1, 3, 32), *b = read_npy(e2, 3, 32);
    double diff = tu_max_abs_diff(a, b, 3 * 32), scale = tu_max_abs(a, 3 * 32);
    printf("  openai vs hf layout: max abs diff %.3e (scale %.3f)\n", diff, scale);
    assert_true(scale > 0.1 && diff <= 1e-5 * scale);
    /* Different texts give different embeddings. */
    assert_true(tu_max_abs_diff(a, a + 32, 32) > 1e-3);

    assert_int_equal(RUN(&out, &err, "encode-text", "--model", oa, "--out", e3, "--normalize", t1, t2, t3), 0);
    free(out);
    free(err);
    float *c = read_npy(e3, 3, 32);
    for (int i = 0; i < 3; i++) {
        double ss = 0.0, na = 0.0;
        for (int j = 0; j < 32; j++) ss += (double)c[i * 32 + j] * c[i * 32 + j], na += (double)a[i * 32 + j] * a[i * 32 + j];
        assert_true(fabs(ss - 1.0) < 1e-5);
        for (int j = 0; j < 32; j++) assert_true(fabs(c[i * 32 + j] - a[i * 32 + j] / sqrt(na)) < 1e-6);
    }
    free(a);
    free(b);
    free(c);

    /* Errors: vision-only model, too-long text, nothing to encode. */
    char vision_only[600];
    snprintf(vision_only, sizeof vision_only, "%s/models/hf_vision_gelu", STACL_TEST_DATA);
    int code = RUN(&out, &err, "encode-text", "--model", vision_only, "--out", e4, t1);
    expect(code, 1, err, "no text tower");
    free(out);
    free(err);
    char long_text[2048] = "";
    for (int i = 0; i < 80; i++) strcat(long_text, "word ");
    code = RUN(&out, &err, "encode-text", "--model", oa, "--out", e4, long_text);
    expect(code, 1, err, "--truncate");
    free(out);
    free(err);
    assert_int_equal(RUN(&out, &err, "encode-text", "--model", oa, "--out", e4, "--truncate", long_text), 0);
    free(out);
    free(err);
    code = RUN(&out, &err, "encode-text", "--model", oa, "--out", e4);
    expect(code, 2, err, "no texts");
    free(out);
    free(err);
    code = RUN(&out, &err, "encode-text", "x");
    expect(code, 2, err, "--model and --out are required");
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_stdout),
        cmocka_unit_test(test_tokenize_npy_and_errors),
        cmocka_unit_test(test_encode_text),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
