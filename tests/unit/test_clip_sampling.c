/* test_clip_sampling.c: frame indices of both protocols, by hand-computed
 * values (ST-Adapter's formulas, Python's round-half-to-even included) and
 * edge cases: short videos, one-frame videos, view enumeration, seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "clip_sampling.h"
#include "test_util.h"

static stacl_clip_spec spec(stacl_sampling s, int T, int r, int V) {
    stacl_clip_spec c = {s, T, r, V, 1};
    return c;
}

static void expect_eval(stacl_clip_spec c, int64_t n, int view, const int64_t *want) {
    int64_t got[64];
    assert_int_equal(stacl_sample_eval(&c, n, view, got), STACL_OK);
    for (int i = 0; i < c.num_frames; i++)
        if (got[i] != want[i]) fail_msg("N=%lld view %d: index %d is %lld, want %lld", (long long)n, view, i,
                                        (long long)got[i], (long long)want[i]);
}

static void test_uniform_eval(void **s) {
    (void)s;
    stacl_clip_spec c = spec(STACL_SAMPLING_UNIFORM, 8, 0, 1);
    /* floor((i + 0.5) * N / T) */
    expect_eval(c, 68, 0, (const int64_t[]){4, 12, 21, 29, 38, 46, 55, 63});
    expect_eval(c, 8, 0, (const int64_t[]){0, 1, 2, 3, 4, 5, 6, 7});
    expect_eval(c, 3, 0, (const int64_t[]){0, 0, 0, 1, 1, 2, 2, 2}); /* short: repeats, in order */
    expect_eval(c, 1, 0, (const int64_t[]){0, 0, 0, 0, 0, 0, 0, 0}); /* one frame still makes a clip */
    /* two views at 1/3 and 2/3 of each segment */
    c.temporal_views = 2;
    expect_eval(c, 24, 0, (const int64_t[]){1, 4, 7, 10, 13, 16, 19, 22});
    expect_eval(c, 24, 1, (const int64_t[]){2, 5, 8, 11, 14, 17, 20, 23});
}

static void test_dense_eval(void **s) {
    (void)s;
    stacl_clip_spec c = spec(STACL_SAMPLING_DENSE, 8, 16, 1);
    /* span 113; one view is centered: start (300-113)//2 = 93 */
    expect_eval(c, 300, 0, (const int64_t[]){93, 109, 125, 141, 157, 173, 189, 205});
    /* three views: starts 0, round(187/2 = 93.5) = 94 (half to even), 187 */
    c.temporal_views = 3;
    expect_eval(c, 300, 0, (const int64_t[]){0, 16, 32, 48, 64, 80, 96, 112});
    expect_eval(c, 300, 1, (const int64_t[]){94, 110, 126, 142, 158, 174, 190, 206});
    expect_eval(c, 300, 2, (const int64_t[]){187, 203, 219, 235, 251, 267, 283, 299});
    expect_eval(c, 298, 1, (const int64_t[]){92, 108, 124, 140, 156, 172, 188, 204}); /* 92.5 -> 92 */
    /* shorter than the span: padded with the last frame */
    expect_eval(c, 40, 2, (const int64_t[]){0, 16, 32, 39, 39, 39, 39, 39});
    expect_eval(c, 1, 1, (const int64_t[]){0, 0, 0, 0, 0, 0, 0, 0});
    c.temporal_views = 1;
    expect_eval(c, 113, 0, (const int64_t[]){0, 16, 32, 48, 64, 80, 96, 112}); /* exactly the span */
}

static void test_train(void **s) {
    (void)s;
    stacl_clip_spec u = spec(STACL_SAMPLING_UNIFORM, 8, 0, 1), d = spec(STACL_SAMPLING_DENSE, 8, 4, 1);
    uint64_t r1 = 42, r2 = 42;
    int64_t a[8], b[8];
    int distinct_starts = 0;
    int64_t last_start = -1;
    for (int trial = 0; trial < 100; trial++) {
        int64_t n = 1 + trial * 3;
        assert_int_equal(stacl_sample_train(&u, n, &r1, a), STACL_OK);
        assert_int_equal(stacl_sample_train(&u, n, &r2, b), STACL_OK);
        assert_memory_equal(a, b, sizeof a); /* same seed, same clip */
        for (int i = 0; i < 8; i++) {
            int64_t lo = i * n / 8, hi = (i + 1) * n / 8;
            if (hi > lo) assert_true(a[i] >= lo && a[i] < hi); /* inside its segment */
            else assert_true(a[i] == (lo < n ? lo : n - 1));
            if (i) assert_true(a[i] >= a[i - 1]);
        }
        assert_int_equal(stacl_sample_train(&d, n, &r1, a), STACL_OK);
        assert_int_equal(stacl_sample_train(&d, n, &r2, b), STACL_OK);
        assert_memory_equal(a, b, sizeof a);
        assert_true(a[0] >= 0 && a[0] <= (n > 29 ? n - 29 : 0));
        for (int i = 1; i < 8; i++) assert_true(a[i] == (a[0] + 4 * i < n ? a[0] + 4 * i : n - 1));
        if (a[0] != last_start) distinct_starts++;
        last_start = a[0];
    }
    assert_true(distinct_starts > 50);
}

static void test_views_and_errors(void **s) {
    (void)s;
    stacl_clip_spec c = spec(STACL_SAMPLING_DENSE, 8, 16, 4);
    c.spatial_views = 3;
    assert_int_equal(stacl_clip_num_views(&c), 12);
    int t, sp;
    stacl_clip_view_split(&c, 0, &t, &sp);
    assert_true(t == 0 && sp == 0);
    stacl_clip_view_split(&c, 3, &t, &sp);
    assert_true(t == 3 && sp == 0);
    stacl_clip_view_split(&c, 5, &t, &sp); /* temporal views first */
    assert_true(t == 1 && sp == 1);
    int64_t idx[8];
    assert_int_equal(stacl_sample_eval(&c, 0, 0, idx), STACL_ERR_INVALID_ARG);
    tu_expect_message("0 frames", NULL);
    assert_int_equal(stacl_sample_eval(&c, 10, 4, idx), STACL_ERR_INVALID_ARG);
    c.spatial_views = 2;
    assert_int_equal(stacl_sample_eval(&c, 10, 0, idx), STACL_ERR_INVALID_ARG);
    tu_expect_message("spatial_views", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_eval),
        cmocka_unit_test(test_dense_eval),
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_views_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
