/* test_cli_frames.c: `stacl frames` as a user runs it: the clip it writes
 * equals the library's decode + preprocess of the same frames, it goes
 * straight into `stacl forward`, `--views` lists the views, and bad input
 * (missing/empty/non-video files, bad options) gives a clear message and
 * exit 1 (failure) or 2 (usage). Also `stacl check-dataset`'s report. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clip_sampling.h"
#include "npy.h"
#include "preprocess.h"
#include "test_util.h"
#include "video.h"

#define H264 STACL_TEST_DATA "/video/h264.mp4"

static int run(char **out, char **err, ...) {
    const char *argv[24] = {STACL_CLI_PATH};
    int n = 1;
    va_list ap;
    va_start(ap, err);
    const char *arg;
    while (n < 23 && (arg = va_arg(ap, const char *)) != NULL) argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    return tu_run(argv, NULL, out, err);
}

static void expect_fail(int code, const char *needle, char *err) {
    if (!err || !strstr(err, needle)) fail_msg("stderr lacks '%s': %s", needle, err ? err : "(null)");
    (void)code;
}

/* Uniform 8 frames of 24: centers 1 4 7 10 13 16 19 22, 64x48 -> short side
 * 40 (53x40), center crop 32 at x 10, y 4. */
static void test_frames_matches_library(void **s) {
    (void)s;
    char p[600], *out = NULL, *err = NULL;
    TU_PATH(p, "clip.npy");
    int rc = run(&out, &err, "frames", H264, "--out", p, "--size", "32", "--short-side", "40", NULL);
    if (rc != 0) fail_msg("rc %d: %s", rc, err);
    assert_non_null(strstr(out, "frames 1 4 7 10 13 16 19 22"));
    free(out);
    free(err);
    stacl_npy got = {0};
    assert_int_equal(stacl_npy_read_f32(p, &got), STACL_OK);
    assert_int_equal(got.ndim, 4);
    assert_true(got.shape[0] == 8 && got.shape[1] == 3 && got.shape[2] == 32 && got.shape[3] == 32);

    stacl_video *v = NULL;
    assert_int_equal(stacl_video_open(&v, H264, 1), STACL_OK);
    const int64_t idx[8] = {1, 4, 7, 10, 13, 16, 19, 22};
    uint8_t *rgb = malloc(8 * 64 * 48 * 3);
    assert_int_equal(stacl_video_read_frames(v, idx, 8, rgb, NULL), STACL_OK);
    stacl_crop c;
    assert_int_equal(stacl_crop_eval(64, 48, 40, 32, 1, 0, &c), STACL_OK);
    assert_true(c.x0 == 10 && c.y0 == 4);
    float *want = malloc(sizeof(float) * got.numel);
    assert_int_equal(stacl_preprocess_clip(rgb, 8, 64, 48, &c, want), STACL_OK);
    assert_true(tu_max_abs_diff(got.data, want, got.numel) == 0.0);
    free(want);
    free(rgb);
    stacl_video_free(v);
    stacl_npy_release(&got);
}

/* frames -> forward with a random tiny model (32 px): the clip's shape is
 * the model's input. */
static void test_frames_into_forward(void **s) {
    (void)s;
    char m[600], clip[600], emb[600], *out = NULL, *err = NULL;
    TU_PATH(m, "tiny");
    TU_PATH(clip, "tiny_clip.npy");
    TU_PATH(emb, "emb.npy");
    assert_int_equal(run(NULL, &err, "gen-model", "--out", m, "--preset", "tiny", NULL), 0);
    free(err);
    int rc = run(&out, &err, "frames", STACL_TEST_DATA "/video/vp9.webm", "--model", m, "--out", clip, "--num-frames",
                 "4", "--sampling", "dense", "--sampling-rate", "2", NULL);
    if (rc != 0) fail_msg("frames rc %d: %s", rc, err);
    free(out);
    free(err);
    rc = run(&out, &err, "forward", "--model", m, "--input", clip, "--out", emb, "--quiet", NULL);
    if (rc != 0) fail_msg("forward rc %d: %s", rc, err);
    free(out);
    free(err);
    stacl_npy e = {0};
    assert_int_equal(stacl_npy_read_f32(emb, &e), STACL_OK);
    assert_true(e.ndim == 2 && e.shape[0] == 4 && e.shape[1] == 32);
    stacl_npy_release(&e);
}

static void test_views_listing(void **s) {
    (void)s;
    char *out = NULL, *err = NULL;
    int rc = run(&out, &err, "frames", H264, "--views", "--sampling", "dense", "--sampling-rate", "2",
                 "--temporal-views", "2", "--spatial-views", "3", "--size", "32", NULL);
    if (rc != 0) fail_msg("rc %d: %s", rc, err);
    assert_non_null(strstr(out, "6 views (2 temporal x 3 spatial)"));
    assert_non_null(strstr(out, "view 1: temporal 1, crop 0"));
    assert_non_null(strstr(out, "frames 9 11 13 15 17 19 21 23"));
    assert_non_null(strstr(out, "view 5: temporal 1, crop 2"));
    free(out);
    free(err);
}

static void test_bad_input(void **s) {
    (void)s;
    char p[600], q[600], *err = NULL;
    TU_PATH(q, "x.npy");
    assert_int_equal(run(NULL, &err, "frames", TU_PATH(p, "nope.mp4"), "--out", q, NULL), 1);
    expect_fail(1, "nope.mp4: cannot open video", err);
    free(err);
    assert_int_equal(tu_write_file(TU_PATH(p, "empty.webm"), "", 0), 0);
    assert_int_equal(run(NULL, &err, "frames", p, "--out", q, NULL), 1);
    expect_fail(1, "empty.webm: empty file", err);
    free(err);
    assert_int_equal(tu_write_file(TU_PATH(p, "junk.mkv"), "not a video, only words\n", 24), 0);
    assert_int_equal(run(NULL, &err, "frames", p, "--out", q, NULL), 1);
    expect_fail(1, "junk.mkv", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", "--out", q, NULL), 2);
    expect_fail(2, "VIDEO is required", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, NULL), 2);
    expect_fail(2, "--out", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, "--out", q, "--sampling", "random", NULL), 2);
    expect_fail(2, "uniform or dense", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, "--out", q, "--view", "3", NULL), 2);
    expect_fail(2, "--view 3 out of range", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, "--out", q, "--size", "64", "--short-side", "32", NULL), 2);
    expect_fail(2, "smaller than --size", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, H264, "--out", q, NULL), 2);
    expect_fail(2, "one VIDEO only", err);
    free(err);
    assert_int_equal(run(NULL, &err, "frames", H264, "--out", "/nonexistent-dir/x.npy", NULL), 1);
    expect_fail(1, "does not exist", err);
    free(err);
    char *out = NULL;
    assert_int_equal(run(&out, NULL, "frames", "--help", NULL), 0);
    assert_non_null(strstr(out, "usage: stacl frames VIDEO"));
    free(out);
}

/* --train: the same seed gives the same bytes, another seed another clip. */
static void test_frames_train_seeded(void **s) {
    (void)s;
    char a[600], b[600], c[600], *err = NULL;
    TU_PATH(a, "ta.npy");
    TU_PATH(b, "tb.npy");
    TU_PATH(c, "tc.npy");
    assert_int_equal(run(NULL, NULL, "frames", H264, "--out", a, "--size", "32", "--train", "--seed", "5", "--flip", NULL), 0);
    assert_int_equal(run(NULL, NULL, "frames", H264, "--out", b, "--size", "32", "--train", "--seed", "5", "--flip", NULL), 0);
    assert_int_equal(run(NULL, NULL, "frames", H264, "--out", c, "--size", "32", "--train", "--seed", "6", "--flip", NULL), 0);
    size_t na, nb, nc;
    char *da = tu_read_file(a, &na), *db = tu_read_file(b, &nb), *dc = tu_read_file(c, &nc);
    assert_true(da && db && dc && na == nb && na == nc);
    assert_memory_equal(da, db, na);
    assert_true(memcmp(da, dc, na) != 0);
    free(da);
    free(db);
    free(dc);
    assert_int_equal(run(NULL, &err, "frames", H264, "--out", a, "--flip", NULL), 2);
    expect_fail(2, "--flip needs --train", err);
    free(err);
}

/* check-dataset: every problem on stderr with list line and reason, a
 * summary, exit 1; a clean list exits 0. */
static void test_check_dataset(void **s) {
    (void)s;
    char list[600], p[600], text[2048], *out = NULL, *err = NULL;
    assert_int_equal(tu_write_file(TU_PATH(p, "broken.mp4"), "\x00\x00\x00\x18" "ftypmp42", 12), 0);
    snprintf(text, sizeof text, "%s 0\nmissing.webm 1\nbroken.mp4 2\n%s/video/vp9.webm 3\nno_label_here\n", H264,
             STACL_TEST_DATA);
    assert_int_equal(tu_write_file(TU_PATH(list, "check.txt"), text, strlen(text)), 0);
    assert_int_equal(run(&out, &err, "check-dataset", list, "--size", "32", "--num-frames", "2", NULL), 1);
    assert_non_null(strstr(err, "check.txt:5: expected 'path label'"));
    assert_non_null(strstr(err, "check.txt:2 (label 1)"));
    assert_non_null(strstr(err, "missing.webm: cannot open video"));
    assert_non_null(strstr(err, "check.txt:3 (label 2)"));
    assert_non_null(strstr(out, "summary: 2 clips ok, 2 skipped (unreadable or damaged), 1 list entries rejected"));
    free(out);
    free(err);
    snprintf(text, sizeof text, "path,label\n%s,0\n", H264);
    assert_int_equal(tu_write_file(TU_PATH(list, "good.csv"), text, strlen(text)), 0);
    assert_int_equal(run(&out, &err, "check-dataset", list, "--size", "32", "--quiet", NULL), 0);
    assert_non_null(strstr(out, "summary: 1 clips ok, 0 skipped"));
    free(out);
    free(err);
    assert_int_equal(run(NULL, &err, "check-dataset", NULL), 2);
    assert_non_null(strstr(err, "LIST is required"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_matches_library),
        cmocka_unit_test(test_frames_into_forward),
        cmocka_unit_test(test_views_listing),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_check_dataset),
        cmocka_unit_test(test_frames_train_seeded),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
