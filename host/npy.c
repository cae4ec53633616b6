/* npy.c: NumPy .npy reader (float32) and writers (float32, int32), see npy.h.
 * The header is a Python dict literal; the parser accepts what numpy writes
 * (any key order, any spacing, trailing commas) and nothing more exotic. */
#include "npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "status.h"

/* '<f4' and '<i4' data is copied straight between memory and the file. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "stacl's npy code assumes a little-endian host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64
/* numpy >= 1.23 leaves room after the dict so that the first axis can grow
 * in place; matching it makes our files byte-identical to numpy's. */
#define NPY_GROWTH_AXIS_MAX_DIGITS 21
/* numpy refuses headers past this size unless told otherwise; so do we,
 * since a larger one is a corrupt length field. */
#define NPY_MAX_HEADER_LEN 10000u

/* ---- header parsing ------------------------------------------------------ */

typedef struct npy_header {
    char descr[32];
    int descr_is_structured; /* a list of fields rather than a string */
    int fortran_order;
    int ndim;
    int64_t shape[STACL_NPY_MAX_DIMS];
} npy_header;

typedef struct cursor {
    const char *p, *end;
    const char *path;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int accept(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int accept_word(cursor *c, const char *w) {
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (numpy never writes any in the
 * header); truncated into buf if longer. */
static stacl_status parse_string(cursor *c, char *buf, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: expected a quoted string", c->path);
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (*c->p == '\\')
            return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: escape sequences are not supported", c->path);
        if (n + 1 < cap) buf[n++] = *c->p;
        c->p++;
    }
    if (c->p >= c->end) return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: unterminated string", c->path);
    c->p++;
    buf[n] = '\0';
    return STACL_OK;
}

static stacl_status parse_shape(cursor *c, npy_header *h) {
    if (!accept(c, '('))
        return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: 'shape' is not a tuple", c->path);
    h->ndim = 0;
    for (;;) {
        if (accept(c, ')')) return STACL_OK;
        skip_ws(c);
        if (c->p < c->end && *c->p == '-')
            return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: negative dimension in 'shape'", c->path);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p))
            return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: 'shape' must hold non-negative integers",
                              c->path);
        int64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (INT64_MAX - 9) / 10)
                return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: dimension too large in 'shape'", c->path);
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 long */
        if (h->ndim == STACL_NPY_MAX_DIMS)
            return stacl_fail(STACL_ERR_SHAPE, "%s: array has more than %d dimensions", c->path, STACL_NPY_MAX_DIMS);
        h->shape[h->ndim++] = v;
        if (accept(c, ')')) return STACL_OK;
        if (!accept(c, ','))
            return stacl_fail(STACL_ERR_FORMAT, "%s: malformed header: expected ',' or ')' in 'shape'", c->path);
    }
}

static stacl_status parse_header(const char *path, const char *text, size_t len, npy_header *h) {
    stacl_status st = STACL_OK;
    cursor c = {text, text + len, path};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    memset(h, 0, sizeof *h);
    if (!accept(&c, '{')) FAIL(STACL_ERR_FORMAT, "%s: malformed header: not a dict", path);
    while (!accept(&c, '}')) {
        char key[32];
        TRY(parse_string(&c, key, sizeof key));
        if (!accept(&c, ':')) FAIL(STACL_ERR_FORMAT, "%s: malformed header: expected ':' after '%s'", path, key);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = 1;
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[') {
                /* Structured dtype: rejected later with a clear message;
                 * only its extent matters here. */
                h->descr_is_structured = 1;
                int depth = 0;
                do {
                    if (*c.p == '[' || *c.p == '(') depth++;
                    else if (*c.p == ']' || *c.p == ')') depth--;
                    c.p++;
                } while (c.p < c.end && depth > 0);
                if (depth != 0) FAIL(STACL_ERR_FORMAT, "%s: malformed header: unterminated 'descr'", path);
            } else {
                TRY(parse_string(&c, h->descr, sizeof h->descr));
            }
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = 1;
            if (accept_word(&c, "True")) h->fortran_order = 1;
            else if (accept_word(&c, "False")) h->fortran_order = 0;
            else FAIL(STACL_ERR_FORMAT, "%s: malformed header: 'fortran_order' is not True or False", path);
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            TRY(parse_shape(&c, h));
        } else {
            FAIL(STACL_ERR_FORMAT, "%s: malformed header: unexpected or repeated key '%s'", path, key);
        }
        if (accept(&c, '}')) break;
        if (!accept(&c, ',')) FAIL(STACL_ERR_FORMAT, "%s: malformed header: expected ',' or '}' after '%s'", path, key);
    }
    skip_ws(&c);
    if (c.p != c.end) FAIL(STACL_ERR_FORMAT, "%s: malformed header: trailing characters after the dict", path);
    if (!have_descr || !have_fortran || !have_shape)
        FAIL(STACL_ERR_FORMAT, "%s: malformed header: missing key '%s'", path,
             !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
cleanup:
    return st;
}

/* ---- reading --------------------------------------------------------------- */

static int read_exact(FILE *f, void *buf, size_t n) { return fread(buf, 1, n, f) == n; }

void stacl_npy_release(stacl_npy *npy) {
    if (!npy) return;
    free(npy->data);
    memset(npy, 0, sizeof *npy);
}

stacl_status stacl_npy_read_f32(const char *path, stacl_npy *out) {
    stacl_status st = STACL_OK;
    FILE *f = NULL;
    char *header = NULL;
    float *data = NULL;
    if (!path || !out) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_npy_read_f32: NULL argument");
    memset(out, 0, sizeof *out);

    f = fopen(path, "rb");
    if (!f) FAIL(STACL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) FAIL(STACL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) FAIL(STACL_ERR_IO, "%s: not a regular file", path);
    uint64_t file_size = (uint64_t)sb.st_size;

    unsigned char pre[12];
    if (file_size < NPY_MAGIC_LEN + 4 || !read_exact(f, pre, NPY_MAGIC_LEN + 4) ||
        memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        FAIL(STACL_ERR_FORMAT, "%s: not a .npy file (missing the \\x93NUMPY magic)", path);
    int major = pre[6], minor = pre[7];
    uint64_t header_len, preamble;
    if (major == 1 && minor == 0) {
        header_len = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        preamble = NPY_MAGIC_LEN + 4;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (file_size < NPY_MAGIC_LEN + 6 || !read_exact(f, pre + 10, 2))
            FAIL(STACL_ERR_FORMAT, "%s: truncated .npy header", path);
        header_len = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        preamble = NPY_MAGIC_LEN + 6;
    } else {
        FAIL(STACL_ERR_FORMAT, "%s: unsupported .npy format version %d.%d (stacl reads 1.0, 2.0 and 3.0)", path,
             major, minor);
    }
    if (header_len > NPY_MAX_HEADER_LEN)
        FAIL(STACL_ERR_FORMAT, "%s: header length %llu is larger than the %u-byte limit", path,
             (unsigned long long)header_len, NPY_MAX_HEADER_LEN);
    if (header_len > file_size - preamble)
        FAIL(STACL_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%llu bytes)", path,
             (unsigned long long)header_len, (unsigned long long)file_size);
    header = malloc((size_t)header_len + 1);
    if (!header) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (!read_exact(f, header, (size_t)header_len)) FAIL(STACL_ERR_IO, "%s: cannot read the header", path);
    header[header_len] = '\0';

    npy_header h;
    TRY(parse_header(path, header, (size_t)header_len, &h));
    if (h.descr_is_structured)
        FAIL(STACL_ERR_SHAPE,
             "%s: dtype is a structured (record) type, which is not supported; stacl reads float32 ('<f4')", path);
    if (strcmp(h.descr, "<f4") != 0) {
        const char *hint = strcmp(h.descr, ">f4") == 0 ? "x.astype('<f4')" : "x.astype(numpy.float32)";
        FAIL(STACL_ERR_SHAPE, "%s: dtype '%s' is not supported; stacl reads float32 ('<f4'): convert with %s", path,
             h.descr, hint);
    }
    if (h.fortran_order)
        FAIL(STACL_ERR_SHAPE,
             "%s: array is in Fortran order, which is not supported; save numpy.ascontiguousarray(x) instead", path);

    uint64_t numel = 1;
    int overflow = 0, has_zero = 0;
    for (int d = 0; d < h.ndim; d++) {
        uint64_t v = (uint64_t)h.shape[d];
        if (v == 0) has_zero = 1;
        else if (numel > UINT64_MAX / v) overflow = 1;
        numel *= v;
    }
    if (has_zero) numel = 0;
    else if (overflow || numel > SIZE_MAX / sizeof(float))
        FAIL(STACL_ERR_FORMAT, "%s: shape is too large", path);
    uint64_t expected = numel * sizeof(float);
    uint64_t found = file_size - preamble - header_len;
    if (found < expected)
        FAIL(STACL_ERR_FORMAT, "%s: truncated: expected %llu bytes of data, found %llu", path,
             (unsigned long long)expected, (unsigned long long)found);
    if (found > expected)
        FAIL(STACL_ERR_FORMAT, "%s: %llu unexpected bytes after the %llu bytes of data", path,
             (unsigned long long)(found - expected), (unsigned long long)expected);

    /* At least one byte so that an empty array still has a non-NULL buffer. */
    data = malloc(expected ? (size_t)expected : 1);
    if (!data) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory for %llu bytes", path, (unsigned long long)expected);
    if (expected && !read_exact(f, data, (size_t)expected))
        FAIL(STACL_ERR_IO, "%s: cannot read %llu bytes of data", path, (unsigned long long)expected);

    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof out->shape);
    out->numel = numel;
    out->data = data;
    data = NULL;
cleanup:
    if (f) fclose(f);
    free(header);
    free(data);
    return st;
}

/* ---- writing --------------------------------------------------------------- */

/* Builds the preamble as numpy does (magic, version, length, dict, growth
 * padding, spaces, '\n') into buf; returns its length, or 0 if too big. */
static size_t build_preamble(char *buf, size_t cap, const char *descr, const int64_t *shape, int ndim) {
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, d ? ", %lld" : "%lld", (long long)shape[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        for (int i = digits; i < NPY_GROWTH_AXIS_MAX_DIGITS; i++) dict[n++] = ' ';
    }
    size_t dict_len = (size_t)n;

    /* Version 1.0 has a 2-byte length; fall back to 2.0's 4-byte one. */
    int major = 1;
    size_t len_bytes = 2;
    size_t hlen = dict_len + 1; /* + '\n' */
    size_t pad = NPY_ALIGN - (NPY_MAGIC_LEN + 2 + len_bytes + hlen) % NPY_ALIGN;
    if (hlen + pad > 0xffff) {
        major = 2;
        len_bytes = 4;
        pad = NPY_ALIGN - (NPY_MAGIC_LEN + 2 + len_bytes + hlen) % NPY_ALIGN;
    }
    size_t total = NPY_MAGIC_LEN + 2 + len_bytes + hlen + pad;
    if (total > cap) return 0;
    uint64_t stored = hlen + pad;
    char *p = buf;
    memcpy(p, NPY_MAGIC, NPY_MAGIC_LEN);
    p += NPY_MAGIC_LEN;
    *p++ = (char)major;
    *p++ = 0;
    for (size_t i = 0; i < len_bytes; i++) *p++ = (char)(unsigned char)(stored >> (8 * i));
    memcpy(p, dict, dict_len);
    p += dict_len;
    memset(p, ' ', pad);
    p += pad;
    *p++ = '\n';
    return total;
}

static stacl_status write_npy(const char *path, const void *data, size_t elem_size, const char *descr,
                              const int64_t *shape, int ndim) {
    stacl_status st = STACL_OK;
    stacl_atomic_file af = {0};
    if (!path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_npy_write: NULL path");
    if (ndim < 0 || ndim > STACL_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: ndim %d is outside 0..%d", path, ndim, STACL_NPY_MAX_DIMS);
    uint64_t numel = 1;
    int overflow = 0, has_zero = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return stacl_fail(STACL_ERR_INVALID_ARG, "%s: negative dimension %lld", path, (long long)shape[d]);
        uint64_t v = (uint64_t)shape[d];
        if (v == 0) has_zero = 1;
        else if (numel > UINT64_MAX / v) overflow = 1;
        numel *= v;
    }
    if (has_zero) numel = 0;
    else if (overflow || numel > SIZE_MAX / elem_size)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: shape is too large", path);
    if (numel > 0 && !data) return stacl_fail(STACL_ERR_INVALID_ARG, "%s: data is NULL", path);

    /* 8 dims of 20 digits keep the header far below 1 KiB. */
    char pre[1024];
    size_t pre_len = build_preamble(pre, sizeof pre, descr, shape, ndim);
    if (pre_len == 0) return stacl_fail(STACL_ERR_INVALID_ARG, "%s: header too large", path);

    TRY(stacl_atomic_open(&af, path, 0));
    TRY(stacl_atomic_write(&af, pre, pre_len));
    if (numel) TRY(stacl_atomic_write(&af, data, (size_t)numel * elem_size));
    TRY(stacl_atomic_commit(&af));
cleanup:
    stacl_atomic_abort(&af);
    return st;
}

stacl_status stacl_npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim) {
    return write_npy(path, data, sizeof(float), "<f4", shape, ndim);
}

stacl_status stacl_npy_write_i32(const char *path, const int32_t *data, const int64_t *shape, int ndim) {
    return write_npy(path, data, sizeof(int32_t), "<i4", shape, ndim);
}
