/* test_synthetic.c: the synthetic temporal-action dataset: mirror-time
 * pairs hold the same frames in reverse order (so a frame average cannot
 * separate them), rendering is reproducible, the video writer round-trips
 * through the decoder, and `stacl make-dataset` output loads through the
 * dataset list + loader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "loader.h"
#include "synthetic_actions.h"
#include "test_util.h"
#include "video.h"
#include "video_writer.h"

#define W 40
#define H 32
#define T 12

static void test_pairs_are_time_mirrors(void **s) {
    (void)s;
    const size_t fs = (size_t)W * H * 3;
    uint8_t *a = malloc(T * fs), *b = malloc(T * fs), *c = malloc(T * fs);
    for (int pair = 0; pair < 4; pair++) {
        stacl_synth_render(2 * pair, 5, W, H, T, a);
        stacl_synth_render(2 * pair + 1, 5, W, H, T, b);
        for (int f = 0; f < T; f++) assert_memory_equal(a + f * fs, b + (T - 1 - f) * fs, fs);
        assert_true(memcmp(a, b, fs) != 0); /* but the clips differ in order */
        stacl_synth_render(2 * pair, 5, W, H, T, c);
        assert_memory_equal(a, c, T * fs); /* reproducible */
        stacl_synth_render(2 * pair, 6, W, H, T, c);
        assert_true(memcmp(a, c, T * fs) != 0); /* another seed, another clip */
    }
    free(a);
    free(b);
    free(c);
}

static void test_writer_roundtrip(void **s) {
    (void)s;
    const char *codecs[] = {"ffv1", "mjpeg", "h264", "mpeg4"};
    const char *ext[] = {"mkv", "avi", "mp4", "avi"};
    const size_t fs = (size_t)W * H * 3;
    uint8_t *src = malloc(T * fs), *got = malloc(T * fs);
    stacl_synth_render(4, 1, W, H, T, src);
    for (int k = 0; k < 4; k++) {
        char name[64], p[600];
        snprintf(name, sizeof name, "rt_%s.%s", codecs[k], ext[k]);
        TU_PATH(p, name);
        stacl_video_writer *w = NULL;
        assert_int_equal(stacl_video_writer_open(&w, p, codecs[k], W, H, 10), STACL_OK);
        for (int f = 0; f < T; f++) assert_int_equal(stacl_video_writer_add(w, src + f * fs), STACL_OK);
        assert_int_equal(stacl_video_writer_close(w), STACL_OK);
        stacl_video *v = NULL;
        assert_int_equal(stacl_video_open(&v, p, 1), STACL_OK);
        int64_t n = 0, idx[T];
        assert_int_equal(stacl_video_count_frames(v, &n), STACL_OK);
        assert_int_equal(n, T);
        for (int f = 0; f < T; f++) idx[f] = f;
        assert_int_equal(stacl_video_read_frames(v, idx, T, got, NULL), STACL_OK);
        double sum = 0;
        for (size_t i = 0; i < T * fs; i++) sum += fabs((double)got[i] - src[i]);
        double mean = sum / (double)(T * fs);
        printf("  %-6s mean |decoded - rendered| = %.2f levels\n", codecs[k], mean);
        assert_true(mean < 12.0); /* 4:2:0 chroma on sharp synthetic edges */
        stacl_video_free(v);
    }
    stacl_video_writer *w = NULL;
    char p[600];
    assert_int_equal(stacl_video_writer_open(&w, TU_PATH(p, "x.mp4"), "nosuchcodec", W, H, 10), STACL_ERR_UNSUPPORTED);
    tu_expect_message("x.mp4", "nosuchcodec");
    assert_int_equal(stacl_video_writer_open(&w, TU_PATH(p, "odd.mkv"), "ffv1", 31, H, 10), STACL_ERR_INVALID_ARG);
    free(src);
    free(got);
}

static void test_make_dataset_cli(void **s) {
    (void)s;
    char dir[600], list[700], names[700], *out = NULL, *err = NULL;
    TU_PATH(dir, "synth");
    const char *argv[] = {STACL_CLI_PATH, "make-dataset", "--out", dir, "--per-class", "1", "--val-per-class", "1",
                          "--frames", "8", "--size", "32", "--codec", "mjpeg", "--seed", "3", NULL};
    int rc = tu_run(argv, NULL, &out, &err);
    if (rc != 0) fail_msg("rc %d: %s", rc, err);
    assert_non_null(strstr(out, "16/16 clips"));
    free(out);
    free(err);
    snprintf(list, sizeof list, "%s/val.csv", dir);
    snprintf(names, sizeof names, "%s/classes.csv", dir);
    stacl_dataset *ds = NULL;
    assert_int_equal(stacl_dataset_load(&ds, list, names), STACL_OK);
    assert_int_equal(stacl_dataset_size(ds), 8);
    assert_int_equal(stacl_dataset_num_rejected(ds), 0);
    assert_string_equal(stacl_dataset_class_name(ds, 5), "rotating counter-clockwise");
    stacl_loader_config cfg = stacl_loader_config_default();
    cfg.size = 32;
    cfg.clip.num_frames = 8;
    stacl_loader *l = NULL;
    assert_int_equal(stacl_loader_create(&l, ds, &cfg), STACL_OK);
    const stacl_sample *smp;
    int k = 0;
    while (stacl_loader_next(l, &smp) == STACL_OK && smp) {
        assert_true(smp->ok);
        assert_int_equal(smp->label, k); /* val.csv lists classes 0..7 in order */
        assert_int_equal(smp->n_frames, 8);
        k++;
    }
    assert_int_equal(k, 8);
    stacl_loader_free(l);
    stacl_dataset_free(ds);
    /* usage errors */
    const char *bad[] = {STACL_CLI_PATH, "make-dataset", "--out", dir, "--codec", "gif", NULL};
    assert_int_equal(tu_run(bad, NULL, NULL, &err), 2);
    assert_non_null(strstr(err, "--codec must be"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_are_time_mirrors),
        cmocka_unit_test(test_writer_roundtrip),
        cmocka_unit_test(test_make_dataset_cli),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
