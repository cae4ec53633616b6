/* safetensors.c: reader and writer for the safetensors format (see
 * safetensors.h). The reader maps the file read-only and validates the whole
 * header up front, so later accessors can trust every offset. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "atomic_file.h"
#include "status.h"

/* Tensor bytes are little-endian on disk and are copied as-is. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "stacl's safetensors code assumes a little-endian host"
#endif

/* Same limit as the reference implementation: a larger header is almost
 * certainly a corrupt length field, not a real model. */
#define ST_MAX_HEADER_LEN (100u * 1000u * 1000u)
/* Integers in the header go through cJSON's double; beyond 2^53 they are not
 * exact, and no real file gets near that. */
#define ST_MAX_JSON_INT 9007199254740992.0

struct stacl_st_file {
    char *path;
    void *map;
    size_t map_size;
    const unsigned char *data; /* start of the data section */
    uint64_t data_size;
    int count;
    stacl_st_tensor *tensors; /* sorted by name; names are owned */
    int n_meta;
    char **meta_keys;
    char **meta_values;
};

static const struct {
    const char *name;
    size_t size;
    int is_float;
} dtype_info[] = {
    [STACL_DT_F32] = {"F32", 4, 1},  [STACL_DT_F16] = {"F16", 2, 1},
    [STACL_DT_BF16] = {"BF16", 2, 1}, [STACL_DT_F64] = {"F64", 8, 1},
    [STACL_DT_I64] = {"I64", 8, 0},  [STACL_DT_I32] = {"I32", 4, 0},
    [STACL_DT_I16] = {"I16", 2, 0},  [STACL_DT_I8] = {"I8", 1, 0},
    [STACL_DT_U8] = {"U8", 1, 0},
};
#define N_DTYPES ((int)(sizeof dtype_info / sizeof dtype_info[0]))

static int dtype_valid(stacl_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES; }

const char *stacl_dtype_name(stacl_dtype dt) { return dtype_valid(dt) ? dtype_info[dt].name : "?"; }

size_t stacl_dtype_size(stacl_dtype dt) { return dtype_valid(dt) ? dtype_info[dt].size : 0; }

int stacl_dtype_is_float(stacl_dtype dt) { return dtype_valid(dt) && dtype_info[dt].is_float; }

static int dtype_from_name(const char *name, stacl_dtype *out) {
    for (int i = 0; i < N_DTYPES; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (stacl_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* Dtypes the format defines but stacl does not handle: these are valid files
 * (UNSUPPORTED), unlike a name the format does not know at all (FORMAT). */
static int dtype_in_format(const char *name) {
    static const char *const known[] = {"BOOL", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2",
                                        "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i]) == 0) return 1;
    return 0;
}

static char *dup_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- half precision ---------------------------------------------------- */

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float stacl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13)); /* inf, nan */
    if (exp == 0) {
        if (mant == 0) return bits_to_f32(sign);
        /* Subnormal half: every one is a normal float. Shift the leading 1
         * into the implicit position and lower the exponent to match. */
        uint32_t e = 113; /* f32 biased exponent of 2^-14 */
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        return bits_to_f32(sign | (e << 23) | ((mant & 0x3ffu) << 13));
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

float stacl_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

/* Rounds mant >> shift to nearest, ties to even. */
static uint32_t shift_round_even(uint32_t mant, unsigned shift) {
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

uint16_t stacl_f32_to_f16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) /* nan: keep it quiet and keep some payload */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x1ffu));
    /* 65520 is halfway between 65504 (max half) and 65536; ties-to-even
     * goes up, i.e. to infinity. */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (a >= 0x38800000u) { /* normal half; a carry out of the mantissa
                             * correctly bumps the exponent */
        uint32_t rebased = a - 0x38000000u; /* f32 bias 127 -> half bias 15 */
        return (uint16_t)(sign | shift_round_even(rebased, 13));
    }
    if (a < 0x33000000u) return sign; /* below 2^-25: rounds to zero */
    /* Subnormal half, in units of 2^-24; rounding up to 0x400 yields the
     * smallest normal, which is also the right encoding. */
    uint32_t e = a >> 23;
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_round_even(mant, 126 - e));
}

/* ---- reading ------------------------------------------------------------ */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp(((const stacl_st_tensor *)a)->name, ((const stacl_st_tensor *)b)->name);
}

static int cmp_tensor_range(const void *pa, const void *pb) {
    const stacl_st_tensor *a = *(const stacl_st_tensor *const *)pa;
    const stacl_st_tensor *b = *(const stacl_st_tensor *const *)pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return 0;
}

/* A JSON number that is a whole number in [0, 2^53]. */
static int json_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return 0;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= ST_MAX_JSON_INT) || v != (double)(uint64_t)v) return 0;
    *out = (uint64_t)v;
    return 1;
}

static stacl_status parse_metadata(stacl_st_file *f, const cJSON *meta) {
    stacl_status st = STACL_OK;
    if (!cJSON_IsObject(meta)) FAIL(STACL_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
    int n = cJSON_GetArraySize(meta);
    if (n > 0) {
        f->meta_keys = calloc((size_t)n, sizeof *f->meta_keys);
        f->meta_values = calloc((size_t)n, sizeof *f->meta_values);
        if (!f->meta_keys || !f->meta_values)
            FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory reading __metadata__", f->path);
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            FAIL(STACL_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", f->path, item->string);
        f->meta_keys[f->n_meta] = dup_string(item->string);
        f->meta_values[f->n_meta] = dup_string(item->valuestring);
        f->n_meta++;
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1])
            FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory reading __metadata__", f->path);
    }
cleanup:
    return st;
}

/* Fills t (except the name) from one header entry. */
static stacl_status parse_tensor(const stacl_st_file *f, const char *name, const cJSON *entry,
                                 stacl_st_tensor *t) {
    stacl_status st = STACL_OK;
    if (!cJSON_IsObject(entry)) FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", f->path, name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    if (!cJSON_IsString(dtype))
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", f->path, name);
    if (!dtype_from_name(dtype->valuestring, &t->dtype)) {
        if (dtype_in_format(dtype->valuestring))
            FAIL(STACL_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported by stacl", f->path, name,
                 dtype->valuestring);
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", f->path, name, dtype->valuestring);
    }

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    if (!cJSON_IsArray(shape)) FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", f->path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > STACL_ST_MAX_DIMS)
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': shape has %d dimensions (at most %d)", f->path, name, ndim,
             STACL_ST_MAX_DIMS);
    t->ndim = ndim;
    t->numel = 1;
    /* Overflow of the element count is tracked rather than failed at once,
     * so that a later zero dimension still gives the right (empty) size. */
    int numel_overflow = 0;
    for (int d = 0; d < ndim; d++) {
        const cJSON *dim = cJSON_GetArrayItem(shape, d);
        uint64_t v;
        if (!json_uint(dim, &v)) {
            if (cJSON_IsNumber(dim) && dim->valuedouble < 0)
                FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': negative dimension %g in shape", f->path, name,
                     dim->valuedouble);
            FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': shape entry %d is not a non-negative integer", f->path, name, d);
        }
        t->shape[d] = (int64_t)v;
        if (v != 0 && t->numel > UINT64_MAX / v) numel_overflow = 1;
        t->numel *= v;
    }
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] == 0) numel_overflow = 0;
    size_t esize = dtype_info[t->dtype].size;
    if (numel_overflow || t->numel > UINT64_MAX / esize)
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': shape is too large", f->path, name);

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(cJSON_GetArrayItem(offs, 0), &t->begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), &t->end))
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative integers",
             f->path, name);
    if (t->begin > t->end)
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] have begin > end", f->path, name,
             (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > f->data_size)
        FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] exceed the data section (%llu bytes)",
             f->path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)f->data_size);
    if (t->end - t->begin != t->numel * esize)
        FAIL(STACL_ERR_FORMAT,
             "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes but %s shape of %llu elements needs %llu",
             f->path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)(t->end - t->begin), dtype_info[t->dtype].name, (unsigned long long)t->numel,
             (unsigned long long)(t->numel * esize));
cleanup:
    return st;
}

static stacl_status check_overlaps(const stacl_st_file *f) {
    stacl_status st = STACL_OK;
    const stacl_st_tensor **by_range = NULL;
    if (f->count < 2) return STACL_OK;
    by_range = malloc((size_t)f->count * sizeof *by_range);
    if (!by_range) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
    for (int i = 0; i < f->count; i++) by_range[i] = &f->tensors[i];
    qsort(by_range, (size_t)f->count, sizeof *by_range, cmp_tensor_range);
    /* Empty tensors occupy no bytes, so they cannot overlap anything. */
    const stacl_st_tensor *prev = NULL;
    for (int i = 0; i < f->count; i++) {
        const stacl_st_tensor *t = by_range[i];
        if (t->begin == t->end) continue;
        if (prev && t->begin < prev->end)
            FAIL(STACL_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s' [%llu, %llu]",
                 f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end, prev->name,
                 (unsigned long long)prev->begin, (unsigned long long)prev->end);
        if (!prev || t->end > prev->end) prev = t;
    }
cleanup:
    free(by_range);
    return st;
}

static stacl_status parse_header(stacl_st_file *f, const char *text, size_t len) {
    stacl_status st = STACL_OK;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        /* cJSON reports where parsing stopped; the offset helps find it. */
        long long off = (end && end >= text && end <= text + len) ? (long long)(end - text) : -1;
        FAIL(STACL_ERR_FORMAT, "%s: header is not valid JSON (error near byte %lld of %zu)", f->path, off, len);
    }
    /* The reference writer pads with spaces; anything else after the JSON
     * value means the length or the JSON is wrong. */
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            FAIL(STACL_ERR_FORMAT, "%s: header has trailing data after the JSON value (byte %lld of %zu)", f->path,
                 (long long)(p - text), len);
    if (!cJSON_IsObject(root)) FAIL(STACL_ERR_FORMAT, "%s: header is not a JSON object", f->path);

    int n_items = cJSON_GetArraySize(root);
    if (n_items > 0) {
        f->tensors = calloc((size_t)n_items, sizeof *f->tensors);
        if (!f->tensors) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory for %d tensors", f->path, n_items);
    }
    int seen_meta = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            if (seen_meta) FAIL(STACL_ERR_FORMAT, "%s: header has __metadata__ twice", f->path);
            seen_meta = 1;
            TRY(parse_metadata(f, item));
            continue;
        }
        stacl_st_tensor *t = &f->tensors[f->count];
        TRY(parse_tensor(f, item->string, item, t));
        char *name = dup_string(item->string);
        if (!name) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", f->path);
        t->name = name;
        f->count++;
    }
    if (f->count > 1) qsort(f->tensors, (size_t)f->count, sizeof *f->tensors, cmp_tensor_name);
    for (int i = 1; i < f->count; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            FAIL(STACL_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", f->path, f->tensors[i].name);
    TRY(check_overlaps(f));
cleanup:
    cJSON_Delete(root);
    return st;
}

stacl_status stacl_st_open(stacl_st_file **out, const char *path) {
    stacl_status st = STACL_OK;
    stacl_st_file *f = NULL;
    int fd = -1;
    if (!out || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_st_open: NULL argument");
    *out = NULL;

    f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_string(path))) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) FAIL(STACL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) FAIL(STACL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) FAIL(STACL_ERR_IO, "%s: not a regular file", path);
    uint64_t file_size = (uint64_t)sb.st_size;
    if (file_size < 8)
        FAIL(STACL_ERR_FORMAT, "%s: file is %llu bytes, too short for a safetensors header length (8 bytes)", path,
             (unsigned long long)file_size);
    if (file_size > SIZE_MAX) FAIL(STACL_ERR_IO, "%s: file is too large to map", path);

    f->map_size = (size_t)file_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        FAIL(STACL_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    }
    const unsigned char *bytes = f->map;
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | bytes[i];
    if (header_len > file_size - 8)
        FAIL(STACL_ERR_FORMAT, "%s: header length %llu exceeds the file size (%llu bytes)", path,
             (unsigned long long)header_len, (unsigned long long)file_size);
    if (header_len > ST_MAX_HEADER_LEN)
        FAIL(STACL_ERR_FORMAT, "%s: header length %llu exceeds the limit of %u bytes", path,
             (unsigned long long)header_len, ST_MAX_HEADER_LEN);
    f->data = bytes + 8 + header_len;
    f->data_size = file_size - 8 - header_len;
    TRY(parse_header(f, (const char *)bytes + 8, (size_t)header_len));

    *out = f;
    f = NULL;
cleanup:
    if (fd >= 0) close(fd); /* the mapping stays valid without the descriptor */
    stacl_st_close(f);
    return st;
}

void stacl_st_close(stacl_st_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < f->count; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

const char *stacl_st_path(const stacl_st_file *f) { return f ? f->path : NULL; }

int stacl_st_count(const stacl_st_file *f) { return f ? f->count : 0; }

const stacl_st_tensor *stacl_st_at(const stacl_st_file *f, int i) {
    return (f && i >= 0 && i < f->count) ? &f->tensors[i] : NULL;
}

const stacl_st_tensor *stacl_st_find(const stacl_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    int lo = 0, hi = f->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0) return &f->tensors[mid];
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const char *stacl_st_metadata(const stacl_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

const void *stacl_st_data(const stacl_st_file *f, const stacl_st_tensor *t) {
    if (!f || !t) return NULL;
    return f->data + t->begin;
}

stacl_status stacl_st_read_f32(const stacl_st_file *f, const stacl_st_tensor *t, float *dst) {
    if (!f || !t || (!dst && t->numel > 0))
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_st_read_f32: NULL argument");
    if (!stacl_dtype_is_float(t->dtype))
        return stacl_fail(STACL_ERR_SHAPE,
                          "%s: tensor '%s': dtype %s is not a float type (expected F32, F16, BF16 or F64)",
                          f->path, t->name, stacl_dtype_name(t->dtype));
    const unsigned char *src = f->data + t->begin;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case STACL_DT_F32:
        if (n) memcpy(dst, src, n * sizeof(float));
        break;
    case STACL_DT_F16:
    case STACL_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, sizeof h);
            dst[i] = t->dtype == STACL_DT_F16 ? stacl_f16_to_f32(h) : stacl_bf16_to_f32(h);
        }
        break;
    case STACL_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, sizeof d);
            dst[i] = (float)d;
        }
        break;
    default:
        break;
    }
    return STACL_OK;
}

stacl_status stacl_st_read_i64(const stacl_st_file *f, const stacl_st_tensor *t, int64_t *dst) {
    if (!f || !t || (!dst && t->numel > 0))
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_st_read_i64: NULL argument");
    if (!dtype_valid(t->dtype) || stacl_dtype_is_float(t->dtype))
        return stacl_fail(STACL_ERR_SHAPE,
                          "%s: tensor '%s': dtype %s is not an integer type (expected I64, I32, I16, I8 or U8)",
                          f->path, t->name, stacl_dtype_name(t->dtype));
    const unsigned char *src = f->data + t->begin;
    size_t n = (size_t)t->numel;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case STACL_DT_I64: memcpy(&dst[i], src + 8 * i, 8); break;
        case STACL_DT_I32: { int32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = v; break; }
        case STACL_DT_I16: { int16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = v; break; }
        case STACL_DT_I8: { int8_t v; memcpy(&v, src + i, 1); dst[i] = v; break; }
        case STACL_DT_U8: dst[i] = src[i]; break;
        default: break;
        }
    }
    return STACL_OK;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->oom = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v) {
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    sb_append(b, tmp, (size_t)n);
}

/* Bytes >= 0x80 pass through, so UTF-8 names stay UTF-8. */
static void sb_json_string(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_append(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_append(b, esc, 6);
        } else {
            sb_append(b, (const char *)p, 1);
        }
    }
    sb_puts(b, "\"");
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the first duplicate among n strings, or NULL. */
static stacl_status find_duplicate(const char *const *strs, int n, const char **dup) {
    *dup = NULL;
    if (n < 2) return STACL_OK;
    const char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(sorted, strs, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    for (int i = 1; i < n && !*dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
    free(sorted);
    return STACL_OK;
}

static stacl_status entry_bytes(const char *path, const stacl_st_entry *e, uint64_t *bytes) {
    if (!e->name) return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor with a NULL name", path);
    if (strcmp(e->name, "__metadata__") == 0)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: '__metadata__' cannot be a tensor name", path);
    if (!dtype_valid(e->dtype))
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor '%s': invalid dtype %d", path, e->name, (int)e->dtype);
    if (e->ndim < 0 || e->ndim > STACL_ST_MAX_DIMS)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor '%s': ndim %d is outside 0..%d", path, e->name, e->ndim,
                          STACL_ST_MAX_DIMS);
    uint64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] < 0)
            return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor '%s': negative dimension %lld", path, e->name,
                              (long long)e->shape[d]);
        uint64_t v = (uint64_t)e->shape[d];
        if (v != 0 && numel > UINT64_MAX / v) overflow = 1;
        numel *= v;
    }
    if (numel == 0) overflow = 0;
    size_t esize = dtype_info[e->dtype].size;
    if (overflow || numel > (UINT64_MAX / 2) / esize)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor '%s': shape is too large", path, e->name);
    if (numel > 0 && !e->data)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: tensor '%s': data is NULL", path, e->name);
    *bytes = numel * esize;
    return STACL_OK;
}

stacl_status stacl_st_write(const char *path, const stacl_st_entry *entries, int n,
                            const char *const *meta_keys, const char *const *meta_values, int n_meta) {
    stacl_status st = STACL_OK;
    strbuf hdr = {0};
    uint64_t *sizes = NULL;
    const char **names = NULL;
    stacl_atomic_file af = {0};
    if (!path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_st_write: NULL path");
    if (n < 0 || (n > 0 && !entries))
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: invalid tensor list (n = %d)", path, n);
    if (n_meta < 0 || (n_meta > 0 && (!meta_keys || !meta_values)))
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: invalid metadata list (n_meta = %d)", path, n_meta);

    if (n > 0) {
        sizes = malloc((size_t)n * sizeof *sizes);
        names = malloc((size_t)n * sizeof *names);
        if (!sizes || !names) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    for (int i = 0; i < n; i++) {
        TRY(entry_bytes(path, &entries[i], &sizes[i]));
        names[i] = entries[i].name;
    }
    const char *dup;
    TRY(find_duplicate(names, n, &dup));
    if (dup) FAIL(STACL_ERR_INVALID_ARG, "%s: tensor '%s' is given twice", path, dup);
    for (int i = 0; i < n_meta; i++)
        if (!meta_keys[i] || !meta_values[i])
            FAIL(STACL_ERR_INVALID_ARG, "%s: metadata entry %d has a NULL key or value", path, i);
    TRY(find_duplicate(meta_keys, n_meta, &dup));
    if (dup) FAIL(STACL_ERR_INVALID_ARG, "%s: metadata key '%s' is given twice", path, dup);

    /* Metadata first, as the reference writer does. */
    sb_puts(&hdr, "{");
    int first = 1;
    if (n_meta > 0) {
        sb_puts(&hdr, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_puts(&hdr, ",");
            sb_json_string(&hdr, meta_keys[i]);
            sb_puts(&hdr, ":");
            sb_json_string(&hdr, meta_values[i]);
        }
        sb_puts(&hdr, "}");
        first = 0;
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const stacl_st_entry *e = &entries[i];
        if (!first) sb_puts(&hdr, ",");
        first = 0;
        sb_json_string(&hdr, e->name);
        sb_puts(&hdr, ":{\"dtype\":\"");
        sb_puts(&hdr, dtype_info[e->dtype].name);
        sb_puts(&hdr, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) sb_puts(&hdr, ",");
            sb_u64(&hdr, (uint64_t)e->shape[d]);
        }
        sb_puts(&hdr, "],\"data_offsets\":[");
        sb_u64(&hdr, offset);
        sb_puts(&hdr, ",");
        sb_u64(&hdr, offset + sizes[i]);
        sb_puts(&hdr, "]}");
        offset += sizes[i];
    }
    sb_puts(&hdr, "}");
    /* Padding keeps the data section 8-byte aligned within the file. */
    while (!hdr.oom && hdr.len % 8 != 0) sb_puts(&hdr, " ");
    if (hdr.oom) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory building the header", path);

    TRY(stacl_atomic_open(&af, path, 0));
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)hdr.len >> (8 * i));
    TRY(stacl_atomic_write(&af, len_le, 8));
    TRY(stacl_atomic_write(&af, hdr.p, hdr.len));
    for (int i = 0; i < n; i++)
        if (sizes[i] && stacl_write_all(af.fd, entries[i].data, (size_t)sizes[i]) != 0)
            FAIL(STACL_ERR_IO, "%s: cannot write tensor '%s': %s", path, entries[i].name, strerror(errno));
    TRY(stacl_atomic_commit(&af));

cleanup:
    stacl_atomic_abort(&af);
    free(hdr.p);
    free(sizes);
    free(names);
    return st;
}
