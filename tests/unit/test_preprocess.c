/* test_preprocess.c: bicubic resize + crop + normalization against PyTorch
 * (ST-Adapter's pipeline, tests/reference/make_preprocess_golden.py), crop
 * geometry, flip, and reproducible training augmentation. */
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

#define PDATA STACL_TEST_DATA "/preprocess"

static void check_case(const char *name, int w, int h, int S, int crop, int views) {
    char path[512];
    snprintf(path, sizeof path, PDATA "/%s.rgb", name);
    size_t n = 0;
    uint8_t *img = (uint8_t *)tu_read_file(path, &n);
    assert_non_null(img);
    assert_int_equal(n, (size_t)w * h * 3);
    float *out = malloc(sizeof(float) * 3 * crop * crop);
    for (int v = 0; v < views; v++) {
        stacl_crop c;
        assert_int_equal(stacl_crop_eval(w, h, S, crop, views, v, &c), STACL_OK);
        assert_int_equal(stacl_preprocess_frame(img, w, h, &c, out, NULL), STACL_OK);
        stacl_npy ref = {0};
        snprintf(path, sizeof path, PDATA "/%s.view%d.npy", name, v);
        assert_int_equal(stacl_npy_read_f32(path, &ref), STACL_OK);
        assert_int_equal(ref.numel, (uint64_t)3 * crop * crop);
        double err = tu_max_abs_diff(out, ref.data, ref.numel), mag = tu_max_abs(ref.data, ref.numel);
        printf("  %-18s view %d: max |stacl - torch| = %.2e (values up to %.2f)\n", name, v, err, mag);
        assert_true(err < 5e-5); /* one 8-bit level is 1/255/std ~ 1.5e-2 here */
        stacl_npy_release(&ref);
    }
    free(out);
    free(img);
}

static void test_vs_torch(void **s) {
    (void)s;
    check_case("down_80x60", 80, 60, 32, 32, 1);
    check_case("down_60x90", 60, 90, 40, 32, 1);
    check_case("up_40x30", 40, 30, 56, 56, 3);
    check_case("down_97x61_3crop", 97, 61, 48, 48, 3);
}

static void test_geometry(void **s) {
    (void)s;
    int rw, rh;
    stacl_resize_dims(320, 240, 224, &rw, &rh);
    assert_int_equal(rw, 298); /* 320*224//240 */
    assert_int_equal(rh, 224);
    stacl_resize_dims(240, 320, 224, &rw, &rh);
    assert_int_equal(rw, 224);
    assert_int_equal(rh, 298);
    stacl_crop c;
    assert_int_equal(stacl_crop_eval(320, 240, 224, 224, 1, 0, &c), STACL_OK);
    assert_int_equal(c.x0, 37);
    assert_int_equal(c.y0, 0);
    assert_int_equal(stacl_crop_eval(320, 240, 224, 224, 3, 2, &c), STACL_OK);
    assert_int_equal(c.x0, 74);
    assert_int_equal(stacl_crop_eval(320, 240, 224, 224, 3, 3, &c), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_crop_eval(320, 240, 224, 225, 1, 0, &c), STACL_ERR_INVALID_ARG);
    tu_expect_message("crop", "short side");
}

/* A flipped crop is the mirror of the unflipped one. */
static void test_flip(void **s) {
    (void)s;
    const int w = 50, h = 40, S = 32, cs = 24;
    uint8_t *img = malloc(w * h * 3);
    for (int i = 0; i < w * h * 3; i++) img[i] = (uint8_t)((i * 37) ^ (i >> 3));
    stacl_crop c;
    assert_int_equal(stacl_crop_eval(w, h, S, cs, 1, 0, &c), STACL_OK);
    float *a = malloc(sizeof(float) * 3 * cs * cs), *b = malloc(sizeof(float) * 3 * cs * cs);
    assert_int_equal(stacl_preprocess_frame(img, w, h, &c, a, NULL), STACL_OK);
    c.flip = 1;
    assert_int_equal(stacl_preprocess_frame(img, w, h, &c, b, NULL), STACL_OK);
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < cs; y++)
            for (int x = 0; x < cs; x++)
                assert_true(a[(p * cs + y) * cs + x] == b[(p * cs + y) * cs + cs - 1 - x]);
    free(a);
    free(b);
    free(img);
}

/* Same seed, same crops; flips only when allowed; S within the range. */
static void test_train_augment(void **s) {
    (void)s;
    stacl_augment aug = {224, 256, 0};
    uint64_t r1 = 7, r2 = 7;
    int seen_flip = 0, seen_min = 300, seen_max = 0;
    for (int i = 0; i < 200; i++) {
        stacl_crop a, b;
        assert_int_equal(stacl_crop_train(340, 256, 224, &aug, &r1, &a), STACL_OK);
        assert_int_equal(stacl_crop_train(340, 256, 224, &aug, &r2, &b), STACL_OK);
        assert_memory_equal(&a, &b, sizeof a);
        assert_int_equal(a.flip, 0);
        if (a.short_side < seen_min) seen_min = a.short_side;
        if (a.short_side > seen_max) seen_max = a.short_side;
        int rw, rh;
        stacl_resize_dims(340, 256, a.short_side, &rw, &rh);
        assert_true(a.x0 >= 0 && a.x0 + 224 <= rw && a.y0 >= 0 && a.y0 + 224 <= rh);
    }
    assert_true(seen_min >= 224 && seen_max <= 256 && seen_max > seen_min + 16);
    aug.flip = 1;
    for (int i = 0; i < 50; i++) {
        stacl_crop a;
        assert_int_equal(stacl_crop_train(340, 256, 224, &aug, &r1, &a), STACL_OK);
        seen_flip += a.flip;
    }
    assert_true(seen_flip > 5 && seen_flip < 45);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vs_torch),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_train_augment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
