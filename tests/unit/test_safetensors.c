/* test_safetensors.c: safetensors round trips, half-precision conversions,
 * and the reader's validation of malformed files (each error must carry the
 * file path and, where there is one, the tensor name). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"
#include "test_util.h"

/* A safetensors file from a literal header and data section; the header is
 * not padded, which the format allows. */
static void write_raw(const char *path, const char *header, const void *data, size_t data_len) {
    size_t hl = strlen(header);
    unsigned char *b = malloc(8 + hl + data_len + 1);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (data_len) memcpy(b + 8 + hl, data, data_len);
    assert_int_equal(tu_write_file(path, b, 8 + hl + data_len), 0);
    free(b);
}

/* Writes the file, expects stacl_st_open to fail with `want`, and checks the
 * message names the file and `mention` (a tensor name, dtype, ...). */
static void expect_open_fails(const char *name, const char *header, size_t data_len, stacl_status want,
                              const char *mention) {
    char p[600];
    TU_PATH(p, name);
    unsigned char data[256] = {0};
    assert_true(data_len <= sizeof data);
    write_raw(p, header, data, data_len);
    stacl_st_file *f = (stacl_st_file *)&f; /* must be reset to NULL */
    stacl_status st = stacl_st_open(&f, p);
    if (st != want) print_error("%s: got %s (%s)\n", name, stacl_status_str(st), stacl_last_error());
    assert_int_equal(st, want);
    assert_null(f);
    tu_expect_message(p, mention);
}

/* ---- half precision ----------------------------------------------------- */

static void test_f16_to_f32_known_values(void **state) {
    (void)state;
    assert_true(stacl_f16_to_f32(0x3c00) == 1.0f);
    assert_true(stacl_f16_to_f32(0xc100) == -2.5f);
    assert_true(stacl_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(stacl_f16_to_f32(0x0400) == ldexpf(1.0f, -14)); /* smallest normal */
    assert_true(stacl_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(stacl_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24)); /* largest subnormal */
    assert_true(stacl_f16_to_f32(0x8001) == -ldexpf(1.0f, -24));
    assert_true(stacl_f16_to_f32(0x3555) == 0.333251953125f);
    assert_true(stacl_f16_to_f32(0x0000) == 0.0f && !signbit(stacl_f16_to_f32(0x0000)));
    assert_true(stacl_f16_to_f32(0x8000) == 0.0f && signbit(stacl_f16_to_f32(0x8000)));
    assert_true(isinf(stacl_f16_to_f32(0x7c00)) && stacl_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(stacl_f16_to_f32(0xfc00)) && stacl_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(stacl_f16_to_f32(0x7e00)));
    assert_true(isnan(stacl_f16_to_f32(0x7c01))); /* signalling nan stays nan */
    assert_true(isnan(stacl_f16_to_f32(0xfe00)));
}

static void test_f32_to_f16_known_values(void **state) {
    (void)state;
    assert_int_equal(stacl_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(stacl_f32_to_f16(-2.5f), 0xc100);
    assert_int_equal(stacl_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(stacl_f32_to_f16(ldexpf(1.0f, -24)), 0x0001);
    assert_int_equal(stacl_f32_to_f16(ldexpf(1023.0f, -24)), 0x03ff);
    assert_int_equal(stacl_f32_to_f16(ldexpf(1.0f, -14)), 0x0400);
    assert_int_equal(stacl_f32_to_f16(0.0f), 0x0000);
    assert_int_equal(stacl_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(stacl_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(stacl_f32_to_f16(-INFINITY), 0xfc00);
    uint16_t h = stacl_f32_to_f16(NAN);
    assert_int_equal(h & 0x7c00, 0x7c00);
    assert_int_not_equal(h & 0x03ff, 0);
}

static void test_f32_to_f16_rounding(void **state) {
    (void)state;
    /* Overflow: 65519 still rounds down to the largest half, 65520 (the
     * midpoint to 65536) ties to even, which is infinity. */
    assert_int_equal(stacl_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(stacl_f32_to_f16(65520.0f), 0x7c00);
    assert_int_equal(stacl_f32_to_f16(-1e6f), 0xfc00);
    assert_int_equal(stacl_f32_to_f16(3.4e38f), 0x7c00);
    /* Ties to even around 1.0 (half spacing there is 2^-10). */
    assert_int_equal(stacl_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    assert_int_equal(stacl_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3c02);
    assert_int_equal(stacl_f32_to_f16(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)), 0x3c01);
    /* Mantissa carry into the exponent: just below 2 rounds to 2. */
    assert_int_equal(stacl_f32_to_f16(nextafterf(2.0f, 0.0f)), 0x4000);
    /* Subnormals: 2^-25 is the midpoint of 0 and 2^-24 (ties to 0), just
     * above it rounds up; 1.5 * 2^-24 ties to 2 * 2^-24. */
    assert_int_equal(stacl_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);
    assert_int_equal(stacl_f32_to_f16(nextafterf(ldexpf(1.0f, -25), 1.0f)), 0x0001);
    assert_int_equal(stacl_f32_to_f16(ldexpf(1.0f, -26)), 0x0000);
    assert_int_equal(stacl_f32_to_f16(ldexpf(3.0f, -25)), 0x0002);
    assert_int_equal(stacl_f32_to_f16(ldexpf(5.0f, -25)), 0x0002);
    assert_int_equal(stacl_f32_to_f16(-ldexpf(1.0f, -30)), 0x8000);
    /* Largest subnormal + half a step rounds up to the smallest normal. */
    assert_int_equal(stacl_f32_to_f16(ldexpf(2047.0f, -25)), 0x0400);
}

static void test_f16_roundtrip_exhaustive(void **state) {
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = stacl_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(stacl_f16_to_f32(stacl_f32_to_f16(f))));
            continue;
        }
        if (stacl_f32_to_f16(f) != h) print_error("half 0x%04x -> %g -> 0x%04x\n", h, f, stacl_f32_to_f16(f));
        assert_int_equal(stacl_f32_to_f16(f), h);
    }
}

static void test_bf16_known_values(void **state) {
    (void)state;
    assert_true(stacl_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(stacl_bf16_to_f32(0xc020) == -2.5f);
    assert_true(stacl_bf16_to_f32(0x477f) == 65280.0f);
    assert_true(stacl_bf16_to_f32(0x7f7f) == ldexpf(255.0f, 120)); /* largest finite */
    assert_true(stacl_bf16_to_f32(0x0001) == ldexpf(1.0f, -133)); /* smallest subnormal */
    assert_true(stacl_bf16_to_f32(0x8000) == 0.0f && signbit(stacl_bf16_to_f32(0x8000)));
    assert_true(isinf(stacl_bf16_to_f32(0x7f80)) && stacl_bf16_to_f32(0x7f80) > 0);
    assert_true(isinf(stacl_bf16_to_f32(0xff80)) && stacl_bf16_to_f32(0xff80) < 0);
    assert_true(isnan(stacl_bf16_to_f32(0x7fc0)));
}

static void test_dtype_table(void **state) {
    (void)state;
    static const struct { stacl_dtype dt; const char *name; size_t size; int is_float; } want[] = {
        {STACL_DT_F32, "F32", 4, 1}, {STACL_DT_F16, "F16", 2, 1}, {STACL_DT_BF16, "BF16", 2, 1},
        {STACL_DT_F64, "F64", 8, 1}, {STACL_DT_I64, "I64", 8, 0}, {STACL_DT_I32, "I32", 4, 0},
        {STACL_DT_I16, "I16", 2, 0}, {STACL_DT_I8, "I8", 1, 0},   {STACL_DT_U8, "U8", 1, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(stacl_dtype_name(want[i].dt), want[i].name);
        assert_int_equal(stacl_dtype_size(want[i].dt), want[i].size);
        assert_int_equal(stacl_dtype_is_float(want[i].dt), want[i].is_float);
    }
}

/* ---- round trips ---------------------------------------------------------- */

static void test_roundtrip_all_dtypes(void **state) {
    (void)state;
    char p[600], tmp[640];
    TU_PATH(p, "all.safetensors");

    const float f32[6] = {1.0f, -2.5f, 0.1f, 65504.0f, -0.0f, 3.0e-8f};
    uint16_t f16[4], bf16[4];
    const float f16_vals[4] = {1.0f, -2.5f, 65504.0f, ldexpf(1.0f, -24)};
    const float bf16_vals[4] = {1.0f, -2.5f, 65280.0f, -ldexpf(1.0f, -100)};
    for (int i = 0; i < 4; i++) {
        f16[i] = stacl_f32_to_f16(f16_vals[i]);
        uint32_t u;
        memcpy(&u, &bf16_vals[i], 4);
        bf16[i] = (uint16_t)(u >> 16); /* exact: these values have short mantissas */
    }
    const double f64[3] = {0.5, -1e10, 1.0 / 3.0};
    const int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
    const int32_t i32[4] = {INT32_MIN, -7, 0, INT32_MAX};
    const int16_t i16[2] = {-32768, 32767};
    const int8_t i8[3] = {-128, 0, 127};
    const uint8_t u8[5] = {0, 1, 128, 254, 255};
    const float scalar = 42.0f;

    /* Given in non-alphabetical order: the file keeps it, stacl_st_at sorts. */
    const stacl_st_entry entries[] = {
        {"w.f32", STACL_DT_F32, 2, {2, 3}, f32},
        {"a.f16", STACL_DT_F16, 2, {2, 2}, f16},
        {"b.bf16", STACL_DT_BF16, 1, {4}, bf16},
        {"c.f64", STACL_DT_F64, 3, {1, 3, 1}, f64},
        {"d.i64", STACL_DT_I64, 1, {3}, i64},
        {"e.i32", STACL_DT_I32, 2, {4, 1}, i32},
        {"f.i16", STACL_DT_I16, 1, {2}, i16},
        {"g.i8", STACL_DT_I8, 1, {3}, i8},
        {"h.u8", STACL_DT_U8, 1, {5}, u8},
        {"scalar", STACL_DT_F32, 0, {0}, &scalar},
        {"empty", STACL_DT_F16, 2, {0, 3}, NULL},
    };
    const int n = (int)(sizeof entries / sizeof entries[0]);
    const char *const keys[] = {"format", "note"};
    const char *const values[] = {"pt", "quote \" backslash \\ newline \n tab \t"};
    assert_int_equal(stacl_st_write(p, entries, n, keys, values, 2), STACL_OK);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(tu_exists(tmp));

    /* Header padded with spaces to a multiple of 8, as the reference does. */
    size_t raw_len;
    char *raw = tu_read_file(p, &raw_len);
    assert_non_null(raw);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (unsigned char)raw[i];
    assert_int_equal(hl % 8, 0);
    free(raw);

    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    assert_string_equal(stacl_st_path(f), p);
    assert_int_equal(stacl_st_count(f), n);
    for (int i = 1; i < n; i++)
        assert_true(strcmp(stacl_st_at(f, i - 1)->name, stacl_st_at(f, i)->name) < 0);
    assert_null(stacl_st_at(f, n));
    assert_null(stacl_st_at(f, -1));
    assert_null(stacl_st_find(f, "nope"));
    assert_string_equal(stacl_st_metadata(f, "format"), "pt");
    assert_string_equal(stacl_st_metadata(f, "note"), values[1]);
    assert_null(stacl_st_metadata(f, "absent"));

    /* Every tensor: same dtype, shape and bytes; offsets contiguous in the
     * order given. */
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const stacl_st_entry *e = &entries[i];
        const stacl_st_tensor *t = stacl_st_find(f, e->name);
        assert_non_null(t);
        assert_string_equal(t->name, e->name);
        assert_int_equal(t->dtype, e->dtype);
        assert_int_equal(t->ndim, e->ndim);
        uint64_t numel = 1;
        for (int d = 0; d < e->ndim; d++) {
            assert_int_equal(t->shape[d], e->shape[d]);
            numel *= (uint64_t)e->shape[d];
        }
        assert_int_equal(t->numel, numel);
        assert_int_equal(t->begin, offset);
        assert_int_equal(t->end, offset + numel * stacl_dtype_size(e->dtype));
        offset = t->end;
        if (numel) assert_memory_equal(stacl_st_data(f, t), e->data, numel * stacl_dtype_size(e->dtype));
    }

    float out[8];
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "w.f32"), out), STACL_OK);
    assert_memory_equal(out, f32, sizeof f32);
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "a.f16"), out), STACL_OK);
    assert_memory_equal(out, f16_vals, sizeof f16_vals);
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "b.bf16"), out), STACL_OK);
    assert_memory_equal(out, bf16_vals, sizeof bf16_vals);
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "c.f64"), out), STACL_OK);
    for (int i = 0; i < 3; i++) assert_true(out[i] == (float)f64[i]);
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "scalar"), out), STACL_OK);
    assert_true(out[0] == 42.0f);
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "empty"), NULL), STACL_OK);

    int64_t iv[8];
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "d.i64"), iv), STACL_OK);
    for (int i = 0; i < 3; i++) assert_true(iv[i] == i64[i]);
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "e.i32"), iv), STACL_OK);
    for (int i = 0; i < 4; i++) assert_true(iv[i] == i32[i]);
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "f.i16"), iv), STACL_OK);
    for (int i = 0; i < 2; i++) assert_true(iv[i] == i16[i]);
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "g.i8"), iv), STACL_OK);
    for (int i = 0; i < 3; i++) assert_true(iv[i] == i8[i]);
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "h.u8"), iv), STACL_OK);
    for (int i = 0; i < 5; i++) assert_true(iv[i] == u8[i]);
    stacl_st_close(f);
}

static void test_write_exact_header(void **state) {
    (void)state;
    /* The header layout the reference implementation produces: compact JSON,
     * metadata first, space padding to a multiple of 8. */
    char p[600];
    TU_PATH(p, "exact.safetensors");
    const float v[2] = {1.0f, 2.0f};
    const uint8_t b = 7;
    const stacl_st_entry e[] = {{"x", STACL_DT_F32, 1, {2}, v}, {"a\"b", STACL_DT_U8, 0, {0}, &b}};
    const char *const k[] = {"k"};
    const char *const val[] = {"v"};
    assert_int_equal(stacl_st_write(p, e, 2, k, val, 1), STACL_OK);
    const char header[] = "{\"__metadata__\":{\"k\":\"v\"},"
                          "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"a\\\"b\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[8,9]}}";
    size_t hl = strlen(header);
    size_t padded = (hl + 7) / 8 * 8;
    size_t n;
    char *raw = tu_read_file(p, &n);
    assert_non_null(raw);
    assert_int_equal(n, 8 + padded + 9);
    assert_int_equal((unsigned char)raw[0], padded);
    assert_memory_equal(raw + 1, "\0\0\0\0\0\0\0", 7);
    assert_memory_equal(raw + 8, header, hl);
    for (size_t i = hl; i < padded; i++) assert_int_equal(raw[8 + i], ' ');
    assert_memory_equal(raw + 8 + padded, v, 8);
    assert_int_equal((unsigned char)raw[8 + padded + 8], 7);
    free(raw);

    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    assert_non_null(stacl_st_find(f, "a\"b"));
    stacl_st_close(f);
}

static void test_empty_file_and_no_metadata(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "empty.safetensors");
    assert_int_equal(stacl_st_write(p, NULL, 0, NULL, NULL, 0), STACL_OK);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    assert_int_equal(stacl_st_count(f), 0);
    assert_null(stacl_st_at(f, 0));
    assert_null(stacl_st_find(f, "x"));
    assert_null(stacl_st_metadata(f, "x"));
    stacl_st_close(f);
    stacl_st_close(NULL);
}

static void test_unaligned_and_trailing_padding(void **state) {
    (void)state;
    /* Offsets need not be aligned; reads go through memcpy. Trailing bytes
     * after the last tensor are tolerated. */
    char p[600];
    TU_PATH(p, "unaligned.safetensors");
    unsigned char data[1 + 8 + 2 + 3] = {0x55};
    const float v[2] = {-3.25f, 7.5f};
    const int16_t s = -1234;
    memcpy(data + 1, v, 8);
    memcpy(data + 9, &s, 2);
    write_raw(p,
              "{\"b\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]},"
              " \"f\" : {\"shape\":[2],\"dtype\":\"F32\",\"data_offsets\":[1,9]},"
              "\"s\":{\"dtype\":\"I16\",\"shape\":[],\"data_offsets\":[9,11]}}   ",
              data, sizeof data);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    float out[2];
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "f"), out), STACL_OK);
    assert_memory_equal(out, v, sizeof v);
    int64_t iv;
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "s"), &iv), STACL_OK);
    assert_true(iv == -1234);
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "b"), &iv), STACL_OK);
    assert_true(iv == 0x55);
    stacl_st_close(f);
}

/* ---- wrong kind of read ---------------------------------------------------- */

static void test_read_wrong_kind(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "kinds.safetensors");
    const int64_t ids[2] = {3, 4};
    const float w[1] = {1.0f};
    const stacl_st_entry e[] = {{"token_ids", STACL_DT_I64, 1, {2}, ids}, {"weight", STACL_DT_F32, 1, {1}, w}};
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_OK);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    float out[2];
    assert_int_equal(stacl_st_read_f32(f, stacl_st_find(f, "token_ids"), out), STACL_ERR_SHAPE);
    tu_expect_message(p, "'token_ids'");
    tu_expect_message("I64", NULL);
    int64_t iv[2];
    assert_int_equal(stacl_st_read_i64(f, stacl_st_find(f, "weight"), iv), STACL_ERR_SHAPE);
    tu_expect_message(p, "'weight'");
    tu_expect_message("F32", NULL);
    stacl_st_close(f);
}

/* ---- malformed files ----------------------------------------------------- */

#define T_OK(name, dtype, shape, offsets) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static void test_too_short(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "short.safetensors");
    assert_int_equal(tu_write_file(p, "\x02\0\0\0\0", 5), 0);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "too short");
    assert_int_equal(tu_write_file(p, "", 0), 0);
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "0 bytes");
}

static void test_header_length_past_end(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "hlen.safetensors");
    const unsigned char b[8 + 10] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(tu_write_file(p, b, sizeof b), 0);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "header length 100 exceeds the file size (18 bytes)");
    assert_null(f);

    /* A length with high bits set must not wrap around. */
    const unsigned char huge[8 + 2] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    assert_int_equal(tu_write_file(p, huge, sizeof huge), 0);
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "exceeds the file size");
}

static void test_header_too_large(void **state) {
    (void)state;
    /* A sparse file: the 100 MB limit is checked before the JSON is read. */
    char p[600];
    TU_PATH(p, "bighdr.safetensors");
    const uint64_t len = 100u * 1000u * 1000u + 8u;
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(len >> (8 * i));
    assert_int_equal(tu_write_file(p, b, 8), 0);
    assert_int_equal(truncate(p, (off_t)(8 + len)), 0);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "limit");
}

static void test_header_not_json(void **state) {
    (void)state;
    expect_open_fails("notjson.safetensors", "{\"a\": {\"dtype\": ", 0, STACL_ERR_FORMAT, "not valid JSON");
    expect_open_fails("garbage.safetensors", "\x01\x02garbage", 0, STACL_ERR_FORMAT, "not valid JSON");
    expect_open_fails("emptyhdr.safetensors", "", 0, STACL_ERR_FORMAT, "not valid JSON");
    expect_open_fails("trailing.safetensors", "{} {}", 0, STACL_ERR_FORMAT, "trailing");
}

static void test_header_not_object(void **state) {
    (void)state;
    expect_open_fails("array.safetensors", "[1, 2, 3]", 0, STACL_ERR_FORMAT, "not a JSON object");
    expect_open_fails("string.safetensors", "\"hello\"", 0, STACL_ERR_FORMAT, "not a JSON object");
    expect_open_fails("entry.safetensors", "{\"t\": 5}", 0, STACL_ERR_FORMAT, "'t'");
}

static void test_unknown_dtype(void **state) {
    (void)state;
    expect_open_fails("dtype1.safetensors", "{" T_OK("visual.proj", "Q7", "[2]", "[0,2]") "}", 2, STACL_ERR_FORMAT,
                      "'visual.proj'");
    tu_expect_message("Q7", NULL);
    /* Valid in the format, but not handled by stacl. */
    expect_open_fails("dtype2.safetensors", "{" T_OK("mask", "BOOL", "[2]", "[0,2]") "}", 2, STACL_ERR_UNSUPPORTED,
                      "'mask'");
    tu_expect_message("BOOL", NULL);
    expect_open_fails("dtype3.safetensors", "{" T_OK("q", "F8_E4M3", "[2]", "[0,2]") "}", 2, STACL_ERR_UNSUPPORTED,
                      "F8_E4M3");
    expect_open_fails("dtype4.safetensors", "{\"t\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                      STACL_ERR_FORMAT, "'t'");
    /* Names are case-sensitive, as in the reference. */
    expect_open_fails("dtype5.safetensors", "{" T_OK("t", "f32", "[1]", "[0,4]") "}", 4, STACL_ERR_FORMAT, "'f32'");
}

static void test_size_mismatch(void **state) {
    (void)state;
    expect_open_fails("mismatch.safetensors", "{" T_OK("ln.weight", "F32", "[2,3]", "[0,20]") "}", 24,
                      STACL_ERR_FORMAT, "'ln.weight'");
    tu_expect_message("needs 24", NULL);
    expect_open_fails("mismatch16.safetensors", "{" T_OK("h", "F16", "[4]", "[0,4]") "}", 8, STACL_ERR_FORMAT,
                      "'h'");
    expect_open_fails("scalar.safetensors", "{" T_OK("s", "F64", "[]", "[0,4]") "}", 8, STACL_ERR_FORMAT, "'s'");
    /* Element count that overflows 64 bits. */
    expect_open_fails("overflow.safetensors",
                      "{" T_OK("big", "F32", "[4294967296,4294967296,4294967296]", "[0,0]") "}", 0, STACL_ERR_FORMAT,
                      "'big'");
}

static void test_offsets_past_end(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "model.safetensors");
    expect_open_fails("model.safetensors", "{" T_OK("visual.conv1.weight", "F32", "[25]", "[0,100]") "}", 64,
                      STACL_ERR_FORMAT, "'visual.conv1.weight'");
    char want[800];
    snprintf(want, sizeof want,
             "%s: tensor 'visual.conv1.weight': data_offsets [0, 100] exceed the data section (64 bytes)", p);
    assert_string_equal(stacl_last_error(), want);

    expect_open_fails("begin_gt_end.safetensors", "{" T_OK("t", "U8", "[0]", "[8,4]") "}", 8, STACL_ERR_FORMAT,
                      "'t'");
    expect_open_fails("neg_off.safetensors", "{" T_OK("t", "U8", "[4]", "[-4,0]") "}", 8, STACL_ERR_FORMAT, "'t'");
    expect_open_fails("one_off.safetensors", "{" T_OK("t", "U8", "[4]", "[0]") "}", 8, STACL_ERR_FORMAT, "'t'");
    expect_open_fails("no_off.safetensors", "{\"t\":{\"dtype\":\"U8\",\"shape\":[4]}}", 8, STACL_ERR_FORMAT,
                      "'t'");
}

static void test_overlapping_tensors(void **state) {
    (void)state;
    expect_open_fails("overlap.safetensors",
                      "{" T_OK("first", "F32", "[4]", "[0,16]") "," T_OK("second", "F32", "[4]", "[8,24]") "}", 24,
                      STACL_ERR_FORMAT, "'first'");
    tu_expect_message("'second'", "overlap");
    /* Same range twice. */
    expect_open_fails("alias.safetensors",
                      "{" T_OK("a", "F32", "[2]", "[0,8]") "," T_OK("b", "I32", "[2]", "[0,8]") "}", 8,
                      STACL_ERR_FORMAT, "overlap");
    /* A range inside an earlier, longer one. */
    expect_open_fails("nested.safetensors",
                      "{" T_OK("outer", "U8", "[16]", "[0,16]") "," T_OK("x", "U8", "[2]", "[4,6]") ","
                      T_OK("inner", "U8", "[2]", "[10,12]") "}", 16, STACL_ERR_FORMAT, "'outer'");
    /* Empty tensors occupy nothing and may sit anywhere; adjacent ranges are
     * fine. */
    char p[600];
    TU_PATH(p, "adjacent.safetensors");
    unsigned char data[16] = {0};
    write_raw(p,
              "{" T_OK("a", "F32", "[2]", "[0,8]") "," T_OK("b", "F32", "[2]", "[8,16]") ","
              T_OK("z", "F32", "[0]", "[4,4]") "}", data, sizeof data);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    assert_int_equal(stacl_st_count(f), 3);
    stacl_st_close(f);
}

static void test_bad_shapes(void **state) {
    (void)state;
    expect_open_fails("negdim.safetensors", "{" T_OK("pos_embed", "F32", "[-1,4]", "[0,16]") "}", 16,
                      STACL_ERR_FORMAT, "'pos_embed'");
    tu_expect_message("negative", NULL);
    expect_open_fails("fracdim.safetensors", "{" T_OK("t", "F32", "[1.5]", "[0,4]") "}", 16, STACL_ERR_FORMAT, "'t'");
    expect_open_fails("strdim.safetensors", "{" T_OK("t", "F32", "[\"2\"]", "[0,8]") "}", 16, STACL_ERR_FORMAT,
                      "'t'");
    expect_open_fails("ninedims.safetensors", "{" T_OK("t", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 16,
                      STACL_ERR_FORMAT, "'t'");
    expect_open_fails("noshape.safetensors", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                      STACL_ERR_FORMAT, "'t'");
    expect_open_fails("dup.safetensors", "{" T_OK("t", "U8", "[1]", "[0,1]") "," T_OK("t", "U8", "[1]", "[1,2]") "}", 2,
                      STACL_ERR_FORMAT, "twice");
}

static void test_truncated_data_section(void **state) {
    (void)state;
    /* A valid file cut short: the last tensor no longer fits. */
    char p[600];
    TU_PATH(p, "cut.safetensors");
    float v[16];
    tu_fill_random(v, 16, 1, 1.0f);
    const stacl_st_entry e[] = {{"a", STACL_DT_F32, 1, {8}, v}, {"blocks.0.attn", STACL_DT_F32, 2, {2, 4}, v + 8}};
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_OK);
    size_t n;
    char *raw = tu_read_file(p, &n);
    assert_non_null(raw);
    assert_int_equal(tu_write_file(p, raw, n - 3), 0);
    free(raw);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_FORMAT);
    tu_expect_message(p, "'blocks.0.attn'");
    tu_expect_message("data_offsets [32, 64] exceed the data section (61 bytes)", NULL);
}

static void test_bad_metadata(void **state) {
    (void)state;
    expect_open_fails("meta1.safetensors", "{\"__metadata__\":{\"epoch\":3}}", 0, STACL_ERR_FORMAT, "'epoch'");
    tu_expect_message("__metadata__", "not a string");
    expect_open_fails("meta2.safetensors", "{\"__metadata__\":[\"a\"]}", 0, STACL_ERR_FORMAT, "__metadata__");
    expect_open_fails("meta3.safetensors", "{\"__metadata__\":{\"k\":null}}", 0, STACL_ERR_FORMAT, "'k'");
}

static void test_open_io_errors(void **state) {
    (void)state;
    char p[600];
    stacl_st_file *f = NULL;
    TU_PATH(p, "missing.safetensors");
    assert_int_equal(stacl_st_open(&f, p), STACL_ERR_IO);
    tu_expect_message(p, NULL);
    assert_null(f);
    assert_int_equal(stacl_st_open(&f, tu_group_dir), STACL_ERR_IO);
    tu_expect_message(tu_group_dir, NULL);
}

/* ---- write errors ---------------------------------------------------------- */

static void test_write_into_missing_directory(void **state) {
    (void)state;
    char p[600], tmp[640];
    TU_PATH(p, "no/such/dir/out.safetensors");
    const float v = 1.0f;
    const stacl_st_entry e[] = {{"t", STACL_DT_F32, 0, {0}, &v}};
    assert_int_equal(stacl_st_write(p, e, 1, NULL, NULL, 0), STACL_ERR_IO);
    tu_expect_message(p, "No such file or directory");
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(tu_exists(p));
    assert_false(tu_exists(tmp));

    /* The tmp file is written but the rename fails (a folder is in the way):
     * nothing may be left behind. */
    TU_PATH(p, "folder.safetensors");
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(stacl_st_write(p, e, 1, NULL, NULL, 0), STACL_ERR_IO);
    tu_expect_message(p, NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    assert_false(tu_exists(tmp));
}

static void test_write_replaces_existing(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "replace.safetensors");
    assert_int_equal(tu_write_file(p, "old contents", 12), 0);
    const int32_t v[3] = {1, 2, 3};
    const stacl_st_entry e[] = {{"v", STACL_DT_I32, 1, {3}, v}};
    assert_int_equal(stacl_st_write(p, e, 1, NULL, NULL, 0), STACL_OK);
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, p), STACL_OK);
    assert_int_equal(stacl_st_count(f), 1);
    stacl_st_close(f);
}

static void test_write_invalid_entries(void **state) {
    (void)state;
    char p[600];
    TU_PATH(p, "invalid.safetensors");
    const float v[4] = {0};
    stacl_st_entry e[2] = {{"a", STACL_DT_F32, 1, {2}, v}, {"a", STACL_DT_F32, 1, {2}, v}};
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    tu_expect_message(p, "'a'");

    e[1].name = "b";
    e[1].ndim = 9;
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    tu_expect_message(p, "'b'");
    e[1].ndim = -1;
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    e[1].ndim = 2;
    e[1].shape[0] = -2;
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    tu_expect_message(p, "'b'");
    e[1].shape[0] = 2;
    e[1].shape[1] = 1;
    e[1].data = NULL;
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    tu_expect_message(p, "'b'");
    e[1].data = v;
    e[1].dtype = (stacl_dtype)42;
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    e[1].dtype = STACL_DT_F32;
    e[1].name = "__metadata__";
    assert_int_equal(stacl_st_write(p, e, 2, NULL, NULL, 0), STACL_ERR_INVALID_ARG);
    e[1].name = "b";

    const char *const keys[] = {"k", "k"};
    const char *const vals[] = {"1", "2"};
    assert_int_equal(stacl_st_write(p, e, 2, keys, vals, 2), STACL_ERR_INVALID_ARG);
    tu_expect_message(p, "'k'");
    const char *const null_vals[] = {"1", NULL};
    const char *const keys2[] = {"k", "j"};
    assert_int_equal(stacl_st_write(p, e, 2, keys2, null_vals, 2), STACL_ERR_INVALID_ARG);
    assert_false(tu_exists(p));

    /* The fixed-up entries do write. */
    assert_int_equal(stacl_st_write(p, e, 2, keys2, vals, 2), STACL_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_known_values),
        cmocka_unit_test(test_f32_to_f16_known_values),
        cmocka_unit_test(test_f32_to_f16_rounding),
        cmocka_unit_test(test_f16_roundtrip_exhaustive),
        cmocka_unit_test(test_bf16_known_values),
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_roundtrip_all_dtypes),
        cmocka_unit_test(test_write_exact_header),
        cmocka_unit_test(test_empty_file_and_no_metadata),
        cmocka_unit_test(test_unaligned_and_trailing_padding),
        cmocka_unit_test(test_read_wrong_kind),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_header_length_past_end),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_header_not_json),
        cmocka_unit_test(test_header_not_object),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_size_mismatch),
        cmocka_unit_test(test_offsets_past_end),
        cmocka_unit_test(test_overlapping_tensors),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_truncated_data_section),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_open_io_errors),
        cmocka_unit_test(test_write_into_missing_directory),
        cmocka_unit_test(test_write_replaces_existing),
        cmocka_unit_test(test_write_invalid_entries),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
