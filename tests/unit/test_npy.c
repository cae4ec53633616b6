/* test_npy.c: .npy reading and writing. The "numpy" files here are rebuilt
 * byte for byte from what numpy 1.24 writes (dict text, padding length and
 * data recorded from real np.save output), so no Python is needed. */
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
#include "test_util.h"

/* A .npy file as numpy lays it out: magic, version, little-endian header
 * length, the dict, `spaces` spaces, '\n', then the data. numpy chooses
 * `spaces` so that the preamble is a multiple of 64 bytes; the tests pass the
 * count numpy used, and malformed-file tests pass anything. */
static unsigned char *npy_bytes(int major, const char *dict, size_t spaces, const void *data, size_t data_len,
                                size_t *len) {
    size_t len_bytes = major == 1 ? 2 : 4;
    size_t header_len = strlen(dict) + spaces + 1;
    size_t pre = 8 + len_bytes + header_len;
    unsigned char *b = malloc(pre + data_len + 1);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    for (size_t i = 0; i < len_bytes; i++) b[8 + i] = (unsigned char)(header_len >> (8 * i));
    memcpy(b + 8 + len_bytes, dict, strlen(dict));
    memset(b + 8 + len_bytes + strlen(dict), ' ', spaces);
    b[pre - 1] = '\n';
    if (data_len) memcpy(b + pre, data, data_len);
    *len = pre + data_len;
    return b;
}

static void write_npy_bytes(const char *path, int major, const char *dict, size_t spaces, const void *data,
                            size_t data_len) {
    size_t n;
    unsigned char *b = npy_bytes(major, dict, spaces, data, data_len, &n);
    assert_int_equal(tu_write_file(path, b, n), 0);
    free(b);
}

static const float k_2x3[6] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 1.5f};
#define DICT_F32_2x3 "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

/* Writes with stacl and checks the bytes equal numpy's for the same array. */
static void check_written_like_numpy(const char *name, int is_i32, const void *data, const int64_t *shape, int ndim,
                                     const char *dict, size_t spaces, size_t data_len) {
    char p[600];
    TU_PATH(p, name);
    stacl_status st = is_i32 ? stacl_npy_write_i32(p, data, shape, ndim) : stacl_npy_write_f32(p, data, shape, ndim);
    assert_int_equal(st, STACL_OK);
    size_t want_len, got_len;
    unsigned char *want = npy_bytes(1, dict, spaces, data, data_len, &want_len);
    char *got = tu_read_file(p, &got_len);
    assert_non_null(got);
    assert_int_equal(want_len - data_len, 128); /* numpy's preamble for all of these */
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    free(got);
    free(want);
    char tmp[640];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(tu_exists(tmp));
}

static void test_write_matches_numpy(void **state) {
    (void)state;
    const int64_t s2x3[] = {2, 3};
    check_written_like_numpy("w_2x3.npy", 0, k_2x3, s2x3, 2, DICT_F32_2x3, 58, sizeof k_2x3);

    const float scalar = 1.5f;
    check_written_like_numpy("w_scalar.npy", 0, &scalar, NULL, 0,
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 62, 4);

    const int32_t ints[5] = {-2, -1, 0, 1, 2};
    const int64_t s5[] = {5};
    check_written_like_numpy("w_i32.npy", 1, ints, s5, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }",
                             60, sizeof ints);

    float zeros[120] = {0};
    const int64_t s5d[] = {1, 2, 3, 4, 5};
    check_written_like_numpy("w_5d.npy", 0, zeros, s5d, 5,
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3, 4, 5), }", 49, sizeof zeros);

    const int64_t s0x3[] = {0, 3};
    check_written_like_numpy("w_0x3.npy", 0, NULL, s0x3, 2,
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 58, 0);
}

static void roundtrip_f32(const char *name, const int64_t *shape, int ndim) {
    char p[600];
    TU_PATH(p, name);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (uint64_t)shape[d];
    float *x = malloc((numel ? numel : 1) * sizeof *x);
    assert_non_null(x);
    tu_fill_random(x, numel, numel + 7, 3.0f);
    assert_int_equal(stacl_npy_write_f32(p, x, shape, ndim), STACL_OK);

    stacl_npy a;
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_OK);
    assert_int_equal(a.ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(a.shape[d], shape[d]);
    assert_int_equal(a.numel, numel);
    assert_non_null(a.data);
    if (numel) assert_memory_equal(a.data, x, numel * sizeof *x);
    stacl_npy_release(&a);
    assert_null(a.data);
    free(x);

    /* numpy's alignment rule: data starts at a multiple of 64. */
    size_t n;
    char *raw = tu_read_file(p, &n);
    assert_non_null(raw);
    assert_int_equal((n - numel * 4) % 64, 0);
    assert_int_equal(raw[n - numel * 4 - 1], '\n');
    free(raw);
}

static void test_roundtrip_f32_shapes(void **state) {
    (void)state;
    roundtrip_f32("r0.npy", NULL, 0);
    const int64_t s1[] = {7};
    roundtrip_f32("r1.npy", s1, 1);
    const int64_t s2[] = {3, 5};
    roundtrip_f32("r2.npy", s2, 2);
    const int64_t s5[] = {2, 1, 3, 4, 2};
    roundtrip_f32("r5.npy", s5, 5);
    const int64_t s8[] = {1, 2, 1, 2, 1, 2, 1, 3};
    roundtrip_f32("r8.npy", s8, 8);
    const int64_t sz[] = {4, 0, 2};
    roundtrip_f32("rz.npy", sz, 3);
    const int64_t big[] = {1000, 3};
    roundtrip_f32("rbig.npy", big, 2);
}

/* stacl reads only f32, so int32 files are checked at the byte level. */
static void roundtrip_i32(const char *name, const int64_t *shape, int ndim, const char *shape_text) {
    char p[600];
    TU_PATH(p, name);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (uint64_t)shape[d];
    int32_t *x = malloc((numel ? numel : 1) * sizeof *x);
    assert_non_null(x);
    for (uint64_t i = 0; i < numel; i++) x[i] = (int32_t)(i * 2654435761u);
    assert_int_equal(stacl_npy_write_i32(p, x, shape, ndim), STACL_OK);

    size_t n;
    char *raw = tu_read_file(p, &n);
    assert_non_null(raw);
    assert_true(n >= 10 + numel * 4);
    size_t pre = 10 + (size_t)(unsigned char)raw[8] + 256 * (size_t)(unsigned char)raw[9];
    assert_memory_equal(raw, "\x93NUMPY\x01\x00", 8);
    assert_int_equal(pre % 64, 0);
    assert_int_equal(n, pre + numel * 4);
    assert_int_equal(raw[pre - 1], '\n');
    char want[128];
    snprintf(want, sizeof want, "{'descr': '<i4', 'fortran_order': False, 'shape': %s, }", shape_text);
    assert_memory_equal(raw + 10, want, strlen(want));
    if (numel) assert_memory_equal(raw + pre, x, numel * 4);
    free(raw);
    free(x);

    /* And the f32 reader names the dtype it refuses. */
    stacl_npy a;
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_SHAPE);
    tu_expect_message(p, "'<i4'");
    assert_null(a.data);
}

static void test_roundtrip_i32_shapes(void **state) {
    (void)state;
    roundtrip_i32("i0.npy", NULL, 0, "()");
    const int64_t s1[] = {5};
    roundtrip_i32("i1.npy", s1, 1, "(5,)");
    const int64_t s5[] = {2, 3, 1, 4, 2};
    roundtrip_i32("i5.npy", s5, 5, "(2, 3, 1, 4, 2)");
}

static void read_expect_2x3(const char *p, const float *want) {
    stacl_npy a;
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 2);
    assert_int_equal(a.shape[1], 3);
    assert_int_equal(a.numel, 6);
    assert_memory_equal(a.data, want, 6 * sizeof(float));
    stacl_npy_release(&a);
}

static void test_read_numpy_v1(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "np_v1.npy");
    write_npy_bytes(p, 1, DICT_F32_2x3, 58, k_2x3, sizeof k_2x3);
    read_expect_2x3(p, k_2x3);
}

static void test_read_numpy_v2_v3(void **state) {
    (void)state;
    /* np.lib.format.write_array(f, np.arange(6, dtype=np.float32).reshape(2, 3), version=(2, 0)) */
    const float want[6] = {0, 1, 2, 3, 4, 5};
    char p[600];
    TU_PATH(p, "np_v2.npy");
    write_npy_bytes(p, 2, DICT_F32_2x3, 56, want, sizeof want);
    read_expect_2x3(p, want);
    /* 3.0 differs only in allowing a UTF-8 header. */
    TU_PATH(p, "np_v3.npy");
    write_npy_bytes(p, 3, DICT_F32_2x3, 56, want, sizeof want);
    read_expect_2x3(p, want);
}

static void test_read_numpy_scalar(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "np_scalar.npy");
    const float v = 1.5f;
    write_npy_bytes(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 62, &v, 4);
    stacl_npy a;
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_OK);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.numel, 1);
    assert_true(a.data[0] == 1.5f);
    stacl_npy_release(&a);
}

static void test_read_header_variants(void **state) {
    (void)state;
    /* Key order, spacing, quotes and trailing commas vary between writers
     * (and numpy versions); all describe the same (4,) array. */
    static const char *const dicts[] = {
        "{'shape': (4,), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(4,)}",
        "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 4 , ) , }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4L,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}\t\r",
    };
    const float v[4] = {1, -2, 3, -4};
    char p[600];
    TU_PATH(p, "variants.npy");
    for (size_t i = 0; i < sizeof dicts / sizeof dicts[0]; i++) {
        write_npy_bytes(p, 1, dicts[i], 3, v, sizeof v);
        stacl_npy a;
        stacl_status st = stacl_npy_read_f32(p, &a);
        if (st != STACL_OK) print_error("dict %s: %s\n", dicts[i], stacl_last_error());
        assert_int_equal(st, STACL_OK);
        assert_int_equal(a.ndim, 1);
        assert_int_equal(a.shape[0], 4);
        assert_memory_equal(a.data, v, sizeof v);
        stacl_npy_release(&a);
    }
}

/* Writes a (2,) array with the given dict and expects the given failure. */
static void expect_read_fails(const char *name, const char *dict, size_t data_len, stacl_status want,
                              const char *mention) {
    char p[600];
    TU_PATH(p, name);
    const unsigned char data[32] = {0};
    assert_true(data_len <= sizeof data);
    write_npy_bytes(p, 1, dict, 7, data, data_len);
    stacl_npy a;
    memset(&a, 0x5a, sizeof a);
    assert_int_equal(stacl_npy_read_f32(p, &a), want);
    assert_null(a.data);
    tu_expect_message(p, mention);
}

static void test_wrong_dtype(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "f64.npy");
    expect_read_fails("f64.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, STACL_ERR_SHAPE,
                      "'<f8'");
    char want[800];
    snprintf(want, sizeof want,
             "%s: dtype '<f8' is not supported; stacl reads float32 ('<f4'): convert with x.astype(numpy.float32)", p);
    assert_string_equal(stacl_last_error(), want);

    expect_read_fails("i4.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", 8, STACL_ERR_SHAPE,
                      "'<i4'");
    expect_read_fails("f2.npy", "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", 4, STACL_ERR_SHAPE,
                      "'<f2'");
    expect_read_fails("obj.npy", "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16, STACL_ERR_SHAPE,
                      "'|O'");
    expect_read_fails("rec.npy", "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }",
                      16, STACL_ERR_SHAPE, "structured");
}

static void test_big_endian(void **state) {
    (void)state;
    expect_read_fails("be.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, STACL_ERR_SHAPE,
                      "'>f4'");
}

static void test_fortran_order(void **state) {
    (void)state;
    expect_read_fails("fortran.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
                      STACL_ERR_SHAPE, "Fortran");
}

static void test_truncated_and_extra_data(void **state) {
    (void)state;
    expect_read_fails("trunc.npy", DICT_F32_2x3, 20, STACL_ERR_FORMAT,
                      "truncated: expected 24 bytes of data, found 20");
    expect_read_fails("trunc0.npy", DICT_F32_2x3, 0, STACL_ERR_FORMAT, "found 0");
    expect_read_fails("extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 16, STACL_ERR_FORMAT,
                      "4 unexpected bytes");
}

static void test_malformed_header(void **state) {
    (void)state;
    expect_read_fails("h1.npy", "{'descr': '<f4', 'fortran_order': False}", 8, STACL_ERR_FORMAT, "shape");
    expect_read_fails("h2.npy", "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", 8, STACL_ERR_FORMAT,
                      "fortran_order");
    expect_read_fails("h3.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8,
                      STACL_ERR_FORMAT, "'x'");
    expect_read_fails("h4.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", 8, STACL_ERR_FORMAT,
                      "negative");
    expect_read_fails("h5.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", 8, STACL_ERR_FORMAT,
                      "trailing");
    expect_read_fails("h6.npy", "['descr', '<f4']", 8, STACL_ERR_FORMAT, "not a dict");
    expect_read_fails("h7.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'a')}", 8, STACL_ERR_FORMAT,
                      "shape");
    expect_read_fails("h8.npy", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
                      STACL_ERR_FORMAT, "repeated");
    expect_read_fails("h9.npy", "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, STACL_ERR_FORMAT,
                      "header");
    expect_read_fails("h10.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 2)}", 8,
                      STACL_ERR_SHAPE, "8 dimensions");
}

static void test_bad_magic_and_version(void **state) {
    (void)state;
    char p[600];
    stacl_npy a;

    TU_PATH(p, "magic.npy");
    size_t n;
    unsigned char *b = npy_bytes(1, DICT_F32_2x3, 58, k_2x3, sizeof k_2x3, &n);
    b[1] = 'n';
    assert_int_equal(tu_write_file(p, b, n), 0);
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_FORMAT);
    tu_expect_message(p, "magic");

    TU_PATH(p, "version.npy");
    b[1] = 'N';
    b[6] = 4;
    assert_int_equal(tu_write_file(p, b, n), 0);
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_FORMAT);
    tu_expect_message(p, "version 4.0");

    TU_PATH(p, "empty.npy");
    assert_int_equal(tu_write_file(p, "", 0), 0);
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_FORMAT);
    tu_expect_message(p, "magic");

    TU_PATH(p, "short_header.npy");
    b[6] = 1;
    assert_int_equal(tu_write_file(p, b, 60), 0); /* header length says 118 */
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_FORMAT);
    tu_expect_message(p, "past the end");
    free(b);

    TU_PATH(p, "does_not_exist.npy");
    assert_int_equal(stacl_npy_read_f32(p, &a), STACL_ERR_IO);
    tu_expect_message(p, NULL);
}

static void test_write_errors(void **state) {
    (void)state;
    char p[600], tmp[640];
    const float v[2] = {1, 2};
    const int64_t shape[] = {2};

    TU_PATH(p, "no/such/dir/x.npy");
    assert_int_equal(stacl_npy_write_f32(p, v, shape, 1), STACL_ERR_IO);
    tu_expect_message(p, NULL);
    assert_false(tu_exists(p));

    /* The tmp file can be written but the rename cannot (a folder is in the
     * way): the tmp file must not be left behind. */
    TU_PATH(p, "a_folder.npy");
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(stacl_npy_write_i32(p, (const int32_t *)v, shape, 1), STACL_ERR_IO);
    tu_expect_message(p, NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(tu_exists(tmp));

    TU_PATH(p, "bad_args.npy");
    const int64_t neg[] = {-1};
    assert_int_equal(stacl_npy_write_f32(p, v, neg, 1), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_npy_write_f32(p, v, shape, 9), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_npy_write_f32(p, NULL, shape, 1), STACL_ERR_INVALID_ARG);
    assert_false(tu_exists(p));
}

static void test_release_is_safe(void **state) {
    (void)state;
    stacl_npy a;
    memset(&a, 0, sizeof a);
    stacl_npy_release(&a);
    stacl_npy_release(&a);
    stacl_npy_release(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_matches_numpy),
        cmocka_unit_test(test_roundtrip_f32_shapes),
        cmocka_unit_test(test_roundtrip_i32_shapes),
        cmocka_unit_test(test_read_numpy_v1),
        cmocka_unit_test(test_read_numpy_v2_v3),
        cmocka_unit_test(test_read_numpy_scalar),
        cmocka_unit_test(test_read_header_variants),
        cmocka_unit_test(test_wrong_dtype),
        cmocka_unit_test(test_big_endian),
        cmocka_unit_test(test_fortran_order),
        cmocka_unit_test(test_truncated_and_extra_data),
        cmocka_unit_test(test_malformed_header),
        cmocka_unit_test(test_bad_magic_and_version),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_release_is_safe),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
