/* program_binary.c: stacl's kernels from a precompiled program binary
 * (clCreateProgramWithBinary) instead of the embedded sources, for devices
 * that cannot build from source (CL_DEVICE_TYPE_ACCELERATOR) and to ship a
 * build; `stacl build-binary` writes one. The file format (stacl's header,
 * then the device binary, then a checksum) is in docs/file-formats.md; a
 * file without stacl's magic is taken as a raw device binary (a vendor's
 * offline compiler output), which only the driver can check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "runtime.h"

static const char magic[8] = {'S', 'T', 'A', 'C', 'L', 'P', 'R', 'G'};
#define FORMAT_VERSION 1u
#define MAX_HEADER 65536u
#define MAX_BINARY (1ull << 31)

/* The header's text: one "key=value\n" line per field, in this order. */
static int header_text(const stacl_device_info *d, char *out, size_t cap) {
    int n = snprintf(out, cap,
                     "platform=%s\ndevice=%s\nvendor=%s\ndriver=%s\ndevice_version=%s\noptions=%s\n"
                     "kernels=%016llx\nstacl=%s\n",
                     d->platform, d->name, d->vendor, d->driver_version, d->device_version, stacl_program_options(),
                     (unsigned long long)stacl_kernel_source_hash(), stacl_version());
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* The value of `key` in the header text (into out), or 0 when absent. */
static int header_field(const char *text, const char *key, char *out, size_t cap) {
    const size_t kl = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) != 0 || p[kl] != '=') continue;
        const char *v = p + kl + 1, *e = strchr(v, '\n');
        size_t n = e ? (size_t)(e - v) : strlen(v);
        if (n >= cap) n = cap - 1;
        memcpy(out, v, n);
        out[n] = 0;
        return 1;
    }
    return 0;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

stacl_status stacl_program_save_binary(const stacl_ctx *ctx, const char *path) {
    stacl_status st = STACL_OK;
    stacl_atomic_file af = {0};
    unsigned char *binary = NULL;
    size_t size = 0;
    char text[4096];
    cl_int err = clGetProgramInfo(ctx->program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)");
    if (size == 0)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "device '%s' (%s) returns no program binary", ctx->info.name,
                          ctx->info.platform);
    binary = malloc(size);
    if (!binary) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for a %zu-byte program binary", size);
    unsigned char *bins[1] = {binary};
    err = clGetProgramInfo(ctx->program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL);
    if (err != CL_SUCCESS) {
        st = stacl_cl_fail(ctx, err, "clGetProgramInfo(CL_PROGRAM_BINARIES)");
        goto cleanup;
    }
    int tn = header_text(&ctx->info, text, sizeof text);
    if (tn < 0) FAIL(STACL_ERR_UNSUPPORTED, "program binary header too long");
    unsigned char head[16], num[8];
    memcpy(head, magic, 8);
    put_u32(head + 8, FORMAT_VERSION);
    put_u32(head + 12, (uint32_t)tn);
    TRY(stacl_atomic_open(&af, path, 0));
    TRY(stacl_atomic_write(&af, head, sizeof head));
    TRY(stacl_atomic_write(&af, text, (size_t)tn));
    put_u64(num, size);
    TRY(stacl_atomic_write(&af, num, 8));
    TRY(stacl_atomic_write(&af, binary, size));
    put_u64(num, stacl_hash64(STACL_HASH_SEED, binary, size));
    TRY(stacl_atomic_write(&af, num, 8));
    TRY(stacl_atomic_commit(&af));
cleanup:
    stacl_atomic_abort(&af);
    free(binary);
    return st;
}

/* The whole file, malloc'd. */
static stacl_status read_all(const char *path, unsigned char **out, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return stacl_fail(STACL_ERR_IO, "cannot open program binary %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1 << 20;
            if (cap > MAX_BINARY + MAX_HEADER + 64) {
                free(buf);
                fclose(f);
                return stacl_fail(STACL_ERR_FORMAT, "%s: larger than %llu MiB: not a program binary", path,
                                  (unsigned long long)(MAX_BINARY >> 20));
            }
            unsigned char *g = realloc(buf, cap);
            if (!g) {
                free(buf);
                fclose(f);
                return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path);
            }
            buf = g;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return stacl_fail(STACL_ERR_IO, "cannot read program binary %s", path);
    }
    *out = buf;
    *size = n;
    return STACL_OK;
}

/* Checks stacl's header against ctx's device and this stacl's kernels; on
 * success *binary / *size are the device binary inside buf. */
static stacl_status check_header(const stacl_ctx *ctx, const char *path, const unsigned char *buf, size_t n,
                                 const unsigned char **binary, size_t *size, char *driver, size_t driver_cap) {
    const stacl_device_info *d = &ctx->info;
    if (n < 16)
        return stacl_fail(STACL_ERR_FORMAT, "%s is truncated: %zu bytes, shorter than stacl's program binary header "
                          "(rebuild it with 'stacl build-binary')", path, n);
    const uint32_t version = get_u32(buf + 8), tn = get_u32(buf + 12);
    if (version != FORMAT_VERSION)
        return stacl_fail(STACL_ERR_FORMAT, "%s: stacl program binary format version %u, this stacl reads version %u "
                          "(rebuild it with 'stacl build-binary')", path, version, FORMAT_VERSION);
    if (tn > MAX_HEADER) return stacl_fail(STACL_ERR_FORMAT, "%s is corrupt: header length %u", path, tn);
    if (n < 16 + (size_t)tn + 8)
        return stacl_fail(STACL_ERR_FORMAT, "%s is truncated: %zu bytes, its header needs %zu (rebuild it with "
                          "'stacl build-binary')", path, n, (size_t)16 + tn + 8);
    char *text = malloc((size_t)tn + 1);
    if (!text) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path);
    memcpy(text, buf + 16, tn);
    text[tn] = 0;
    stacl_status st = STACL_OK;
    const uint64_t bsize = get_u64(buf + 16 + tn);
    const size_t want = (size_t)16 + tn + 8 + (bsize <= MAX_BINARY ? (size_t)bsize : 0) + 8;
    char platform[256] = "?", name[256] = "?", kernels[64] = "?", version_s[64] = "?", options[256] = "?";
    header_field(text, "platform", platform, sizeof platform);
    header_field(text, "device", name, sizeof name);
    header_field(text, "kernels", kernels, sizeof kernels);
    header_field(text, "stacl", version_s, sizeof version_s);
    header_field(text, "options", options, sizeof options);
    if (!header_field(text, "driver", driver, driver_cap)) snprintf(driver, driver_cap, "?");
    if (bsize == 0 || bsize > MAX_BINARY)
        FAIL(STACL_ERR_FORMAT, "%s is corrupt: program binary size %llu", path, (unsigned long long)bsize);
    if (n < want)
        FAIL(STACL_ERR_FORMAT, "%s is truncated: %zu bytes, expected %zu (a %llu-byte program binary); rebuild it "
             "with 'stacl build-binary'", path, n, want, (unsigned long long)bsize);
    if (n > want)
        FAIL(STACL_ERR_FORMAT, "%s is corrupt: %zu bytes after the end of the program binary", path, n - want);
    const unsigned char *b = buf + 16 + tn + 8;
    if (stacl_hash64(STACL_HASH_SEED, b, (size_t)bsize) != get_u64(b + bsize))
        FAIL(STACL_ERR_FORMAT, "%s is corrupt: the program binary's checksum does not match (rebuild it with "
             "'stacl build-binary')", path);
    if (strcmp(name, d->name) != 0 || strcmp(platform, d->platform) != 0)
        FAIL(STACL_ERR_INVALID_ARG, "%s was built for device '%s' (%s), not for device [%d] '%s' (%s): build one for "
             "it with 'stacl build-binary --device %d -o FILE'", path, name, platform, d->index, d->name, d->platform,
             d->index);
    char ours[32];
    snprintf(ours, sizeof ours, "%016llx", (unsigned long long)stacl_kernel_source_hash());
    if (strcmp(kernels, ours) != 0 || strcmp(options, stacl_program_options()) != 0)
        FAIL(STACL_ERR_INVALID_ARG, "%s holds other kernels (sources %s, options '%s', stacl %s) than this stacl's "
             "(%s, '%s', stacl %s): rebuild it with 'stacl build-binary --device %d -o FILE'", path, kernels, options,
             version_s, ours, stacl_program_options(), stacl_version(), d->index);
    *binary = b;
    *size = (size_t)bsize;
cleanup:
    free(text);
    return st;
}

stacl_status stacl_program_load_binary(stacl_ctx *ctx, const char *path) {
    stacl_status st = STACL_OK;
    unsigned char *buf = NULL;
    size_t n = 0, size = 0;
    const unsigned char *binary = NULL;
    char driver[128] = "";
    const stacl_device_info *d = &ctx->info;
    TRY(read_all(path, &buf, &n));
    const int ours = n >= 8 && memcmp(buf, magic, 8) == 0;
    if (ours) {
        TRY(check_header(ctx, path, buf, n, &binary, &size, driver, sizeof driver));
    } else {
        if (n == 0) FAIL(STACL_ERR_FORMAT, "%s is empty", path);
        binary = buf; /* a raw device binary: the driver checks it */
        size = n;
    }
    /* The driver version a stacl binary was built with, when it differs. */
    char note[256] = "";
    if (ours && strcmp(driver, d->driver_version) != 0)
        snprintf(note, sizeof note, " (built with driver %s, the device has %s)", driver, d->driver_version);
    const char *kind = ours ? "" : " (no stacl header: taken as a raw device binary)";
    cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
    ctx->program = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &size, &binary, &bin_status, &err);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) {
        if (ctx->program) clReleaseProgram(ctx->program);
        ctx->program = NULL;
        cl_int e = err != CL_SUCCESS ? err : bin_status;
        FAIL(e == CL_OUT_OF_HOST_MEMORY || e == CL_OUT_OF_RESOURCES ? STACL_ERR_OUT_OF_MEMORY : STACL_ERR_BUILD,
             "%s%s: device [%d] '%s' (%s) rejected the program binary: %s (%d)%s", path, kind, d->index, d->name,
             d->platform, stacl_cl_error_name(e), (int)e, note);
    }
    err = clBuildProgram(ctx->program, 1, &ctx->device, stacl_program_options(), NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_size = 0;
        clGetProgramBuildInfo(ctx->program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
        char *log = calloc(log_size + 1, 1);
        if (log) clGetProgramBuildInfo(ctx->program, ctx->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
        stacl_fail(STACL_ERR_BUILD, "%s%s: building the program binary for device [%d] '%s' (%s) failed: %s (%d)%s; "
                   "build log:\n%s", path, kind, d->index, d->name, d->platform, stacl_cl_error_name(err), (int)err,
                   note, log && *log ? log : "(none)");
        free(log);
        clReleaseProgram(ctx->program);
        ctx->program = NULL;
        st = STACL_ERR_BUILD;
        goto cleanup;
    }
    TRY(stacl_program_kernels(ctx, path));
cleanup:
    free(buf);
    return st;
}
