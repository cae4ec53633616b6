/* tune.c: the tuning data: CLBlast's parameter names per kernel family, the
 * per-device key and cache file, the JSON file format (docs/performance.md),
 * and the parameter sets stacl ships (measured on PoCL CPU devices) or falls
 * back to. Applying and checking a set is tune_apply.c; searching is
 * tune_search.c. */
#define _GNU_SOURCE /* dladdr: CLBlast's version from its library's file name */
#include <cJSON.h>
#include <clblast_c.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "tune.h"

#define TUNE_FORMAT "stacl-tune/1"

/* CLBlast 1.5.3's names and order (src/database/kernels/<family>/). */
static const char *const xgemm_names[] = {"GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
                                          "NDIMC", "NWG", "SA", "SB", "STRM", "STRN", "VWM", "VWN"};
static const char *const direct_names[] = {"KWID", "MDIMAD", "MDIMCD", "NDIMBD", "NDIMCD",
                                           "PADA", "PADB", "VWMD", "VWND", "WGD"};
static const char *const copy_names[] = {"COPY_DIMX", "COPY_DIMY", "COPY_VW", "COPY_WPT"};
static const char *const pad_names[] = {"PAD_DIMX", "PAD_DIMY", "PAD_WPTX", "PAD_WPTY"};
static const char *const transpose_names[] = {"TRA_DIM", "TRA_PAD", "TRA_SHUFFLE", "TRA_WPT"};
static const char *const padtranspose_names[] = {"PADTRA_PAD", "PADTRA_TILE", "PADTRA_WPT"};

static const struct {
    const char *name;
    const char *const *params;
    int count;
} families[STACL_TUNE_FAMILIES] = {
    [STACL_TUNE_XGEMM] = {"Xgemm", xgemm_names, 16},
    [STACL_TUNE_XGEMM_DIRECT] = {"XgemmDirect", direct_names, 10},
    [STACL_TUNE_COPY] = {"Copy", copy_names, 4},
    [STACL_TUNE_PAD] = {"Pad", pad_names, 4},
    [STACL_TUNE_TRANSPOSE] = {"Transpose", transpose_names, 4},
    [STACL_TUNE_PADTRANSPOSE] = {"Padtranspose", padtranspose_names, 3},
};

const char *stacl_tune_family_name(stacl_tune_family f) { return families[f].name; }

const char *const *stacl_tune_param_names(stacl_tune_family f, int *count) {
    *count = families[f].count;
    return families[f].params;
}

const char *stacl_clblast_version(void) {
    static char version[32];
    if (version[0]) return version;
    snprintf(version, sizeof version, "unknown");
    Dl_info dl;
    char real[PATH_MAX];
    /* Debian installs libclblast.so.1 -> libclblast.so.1.5.3: the resolved
     * name carries the full version, which is what the key needs. */
    if (dladdr((void *)CLBlastSgemm, &dl) && dl.dli_fname && realpath(dl.dli_fname, real)) {
        const char *p = strstr(real, ".so.");
        if (p && strlen(p + 4) < sizeof version) snprintf(version, sizeof version, "%s", p + 4);
    }
    return version;
}

void stacl_tune_set_key(stacl_tune *t, const stacl_device_info *info) {
    snprintf(t->device, sizeof t->device, "%s", info->name);
    snprintf(t->driver, sizeof t->driver, "%s", info->driver_version);
    snprintf(t->clblast, sizeof t->clblast, "%s", stacl_clblast_version());
}

/* Same folder rules as the kernel cache (program.c). */
stacl_status stacl_tune_cache_path(const stacl_device_info *info, char *path, size_t cap) {
    char dir[1024];
    const char *env = getenv("STACL_CACHE_DIR");
    if (env) {
        if (!*env) return stacl_fail(STACL_ERR_IO, "tuning cache is off (STACL_CACHE_DIR is empty)");
        snprintf(dir, sizeof dir, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
        snprintf(dir, sizeof dir, "%s/stacl", env);
    } else if ((env = getenv("HOME")) && *env) {
        snprintf(dir, sizeof dir, "%s/.cache", env);
        mkdir(dir, 0755);
        snprintf(dir, sizeof dir, "%s/.cache/stacl", env);
    } else {
        return stacl_fail(STACL_ERR_IO, "no cache folder: set STACL_CACHE_DIR or HOME");
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return stacl_fail(STACL_ERR_IO, "%s: cannot create the cache folder: %s", dir, strerror(errno));
    stacl_tune key;
    stacl_tune_set_key(&key, info);
    uint64_t h = STACL_HASH_SEED;
    h = stacl_hash64(h, key.device, strlen(key.device) + 1);
    h = stacl_hash64(h, key.driver, strlen(key.driver) + 1);
    h = stacl_hash64(h, key.clblast, strlen(key.clblast) + 1);
    int n = snprintf(path, cap, "%s/tune-%016llx.json", dir, (unsigned long long)h);
    if (n < 0 || (size_t)n >= cap) return stacl_fail(STACL_ERR_IO, "%s: cache path too long", dir);
    return STACL_OK;
}

static const char *routine_name(stacl_gemm_routine r) {
    return r == STACL_ROUTINE_DIRECT ? "direct" : r == STACL_ROUTINE_INDIRECT ? "indirect" : "auto";
}

static cJSON *to_json(const stacl_tune *t) {
    cJSON *root = cJSON_CreateObject(), *key = cJSON_AddObjectToObject(root, "key");
    cJSON_AddStringToObject(root, "format", TUNE_FORMAT);
    cJSON_AddStringToObject(key, "device", t->device);
    cJSON_AddStringToObject(key, "driver", t->driver);
    cJSON_AddStringToObject(key, "clblast", t->clblast);
    cJSON_AddStringToObject(root, "origin", t->origin);
    cJSON *kernels = cJSON_AddObjectToObject(root, "kernels");
    for (int f = 0; f < STACL_TUNE_FAMILIES; f++) {
        if (!t->fam[f].set) continue;
        cJSON *o = cJSON_AddObjectToObject(kernels, families[f].name);
        for (int i = 0; i < families[f].count; i++)
            cJSON_AddNumberToObject(o, families[f].params[i], (double)t->fam[f].v[i]);
    }
    cJSON_AddNumberToObject(root, "min_indirect", (double)t->min_indirect);
    cJSON *shapes = cJSON_AddArrayToObject(root, "shapes");
    for (int i = 0; i < t->n_shapes; i++) {
        const stacl_tune_shape *s = &t->shapes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->name);
        cJSON_AddNumberToObject(o, "m", (double)s->m);
        cJSON_AddNumberToObject(o, "n", (double)s->n);
        cJSON_AddNumberToObject(o, "k", (double)s->k);
        cJSON_AddNumberToObject(o, "batch", (double)s->batch);
        cJSON_AddNumberToObject(o, "trans_a", s->trans_a);
        cJSON_AddNumberToObject(o, "trans_b", s->trans_b);
        cJSON_AddStringToObject(o, "routine", routine_name(s->routine));
        cJSON_AddNumberToObject(o, "gflops", s->gflops);
        cJSON_AddNumberToObject(o, "other_gflops", s->other_gflops);
        if (s->batch > 1) {
            cJSON_AddStringToObject(o, "batch_mode", s->loop ? "loop" : "batched");
            cJSON_AddNumberToObject(o, "loop_gflops", s->loop_gflops);
        }
        cJSON_AddItemToArray(shapes, o);
    }
    return root;
}

stacl_status stacl_tune_save(const stacl_tune *t, const char *path) {
    stacl_status st = STACL_OK;
    stacl_atomic_file af = {0};
    cJSON *root = to_json(t);
    char *text = root ? cJSON_Print(root) : NULL;
    if (!text) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory formatting the tuning file", path);
    TRY(stacl_atomic_open(&af, path, STACL_ATOMIC_PER_PROCESS));
    TRY(stacl_atomic_write(&af, text, strlen(text)));
    TRY(stacl_atomic_write(&af, "\n", 1));
    TRY(stacl_atomic_commit(&af));
cleanup:
    stacl_atomic_abort(&af);
    free(text);
    cJSON_Delete(root);
    return st;
}

/* A whole non-negative number that fits a size_t, else -1. */
static int json_size(const cJSON *v, size_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15 ||
        v->valuedouble != (double)(size_t)v->valuedouble)
        return -1;
    *out = (size_t)v->valuedouble;
    return 0;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static stacl_status parse_shape(const cJSON *o, stacl_tune_shape *s, const char *path, int i) {
    static const char *const fields[] = {"m", "n", "k", "batch", "trans_a", "trans_b"};
    size_t v[6];
    for (int f = 0; f < 6; f++)
        if (json_size(cJSON_GetObjectItemCaseSensitive(o, fields[f]), &v[f]) != 0)
            return stacl_fail(STACL_ERR_FORMAT, "%s: shapes[%d].%s: expected a whole number", path, i, fields[f]);
    const char *r = json_str(o, "routine"), *name = json_str(o, "name");
    if (!r || (strcmp(r, "direct") && strcmp(r, "indirect") && strcmp(r, "auto")))
        return stacl_fail(STACL_ERR_FORMAT, "%s: shapes[%d].routine: expected \"direct\", \"indirect\" or \"auto\"",
                          path, i);
    if (v[0] == 0 || v[1] == 0 || v[2] == 0 || v[3] == 0 || v[4] > 1 || v[5] > 1)
        return stacl_fail(STACL_ERR_FORMAT, "%s: shapes[%d]: sizes must be positive, transposes 0 or 1", path, i);
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->m = v[0], s->n = v[1], s->k = v[2], s->batch = v[3], s->trans_a = (int)v[4], s->trans_b = (int)v[5];
    s->routine = !strcmp(r, "direct") ? STACL_ROUTINE_DIRECT : !strcmp(r, "indirect") ? STACL_ROUTINE_INDIRECT
                                                                                     : STACL_ROUTINE_AUTO;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "gflops"), *og = cJSON_GetObjectItemCaseSensitive(o, "other_gflops");
    s->gflops = cJSON_IsNumber(g) ? g->valuedouble : 0;
    s->other_gflops = cJSON_IsNumber(og) ? og->valuedouble : 0;
    /* Optional (files from before the loop choice): batched. */
    const char *mode = json_str(o, "batch_mode");
    if (mode && strcmp(mode, "batched") && strcmp(mode, "loop"))
        return stacl_fail(STACL_ERR_FORMAT, "%s: shapes[%d].batch_mode: expected \"batched\" or \"loop\"", path, i);
    s->loop = mode && !strcmp(mode, "loop") && s->batch > 1;
    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(o, "loop_gflops");
    s->loop_gflops = cJSON_IsNumber(lg) ? lg->valuedouble : 0;
    return STACL_OK;
}

static stacl_status from_json(stacl_tune *t, const cJSON *root, const char *path) {
    const char *fmt = json_str(root, "format");
    if (!fmt || strcmp(fmt, TUNE_FORMAT) != 0)
        return stacl_fail(STACL_ERR_FORMAT, "%s: not a stacl tuning file (\"format\" is not \"%s\")", path, TUNE_FORMAT);
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(root, "key");
    const char *dev = json_str(key, "device"), *drv = json_str(key, "driver"), *blas = json_str(key, "clblast");
    if (!dev || !drv || !blas)
        return stacl_fail(STACL_ERR_FORMAT, "%s: \"key\" needs strings device, driver and clblast", path);
    snprintf(t->device, sizeof t->device, "%s", dev);
    snprintf(t->driver, sizeof t->driver, "%s", drv);
    snprintf(t->clblast, sizeof t->clblast, "%s", blas);
    const char *origin = json_str(root, "origin");
    snprintf(t->origin, sizeof t->origin, "%s", origin ? origin : "");
    const cJSON *kernels = cJSON_GetObjectItemCaseSensitive(root, "kernels"), *fam;
    if (kernels && !cJSON_IsObject(kernels)) return stacl_fail(STACL_ERR_FORMAT, "%s: \"kernels\" is not an object", path);
    cJSON_ArrayForEach(fam, kernels) {
        int f = 0;
        while (f < STACL_TUNE_FAMILIES && strcmp(families[f].name, fam->string) != 0) f++;
        if (f == STACL_TUNE_FAMILIES)
            return stacl_fail(STACL_ERR_FORMAT, "%s: unknown kernel family \"%s\"", path, fam->string);
        /* CLBlast rejects incomplete sets: check here, with a clearer message. */
        for (int i = 0; i < families[f].count; i++)
            if (json_size(cJSON_GetObjectItemCaseSensitive(fam, families[f].params[i]), &t->fam[f].v[i]) != 0)
                return stacl_fail(STACL_ERR_FORMAT, "%s: kernels.%s.%s: missing or not a whole number", path,
                                  fam->string, families[f].params[i]);
        t->fam[f].set = 1;
    }
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(root, "min_indirect");
    if (mi && json_size(mi, &t->min_indirect) != 0)
        return stacl_fail(STACL_ERR_FORMAT, "%s: \"min_indirect\" is not a whole number", path);
    const cJSON *shapes = cJSON_GetObjectItemCaseSensitive(root, "shapes"), *s;
    if (shapes && !cJSON_IsArray(shapes)) return stacl_fail(STACL_ERR_FORMAT, "%s: \"shapes\" is not an array", path);
    cJSON_ArrayForEach(s, shapes) {
        if (t->n_shapes == STACL_TUNE_MAX_SHAPES)
            return stacl_fail(STACL_ERR_FORMAT, "%s: more than %d shapes", path, STACL_TUNE_MAX_SHAPES);
        stacl_status st = parse_shape(s, &t->shapes[t->n_shapes], path, t->n_shapes);
        if (st != STACL_OK) return st;
        t->n_shapes++;
    }
    return STACL_OK;
}

stacl_status stacl_tune_load(stacl_tune *t, const char *path, const stacl_device_info *info) {
    stacl_status st = STACL_OK;
    char *text = NULL;
    cJSON *root = NULL;
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return stacl_fail(STACL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    long size = (fseek(f, 0, SEEK_END) == 0) ? ftell(f) : -1;
    if (size < 0 || size > (1 << 20) || fseek(f, 0, SEEK_SET) != 0)
        FAIL(STACL_ERR_FORMAT, "%s: unreadable or larger than 1 MiB", path);
    text = malloc((size_t)size + 1);
    if (!text) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (fread(text, 1, (size_t)size, f) != (size_t)size) FAIL(STACL_ERR_IO, "%s: read error", path);
    text[size] = 0;
    root = cJSON_Parse(text);
    if (!root) FAIL(STACL_ERR_FORMAT, "%s: not valid JSON", path);
    TRY(from_json(t, root, path));
    if (info) {
        stacl_tune want;
        stacl_tune_set_key(&want, info);
        if (strcmp(want.device, t->device) || strcmp(want.driver, t->driver) || strcmp(want.clblast, t->clblast))
            FAIL(STACL_ERR_MISSING, "%s: tuned for device '%s', driver %s, CLBlast %s, not for '%s', driver %s, "
                 "CLBlast %s: run 'stacl tune'", path, t->device, t->driver, t->clblast, want.device, want.driver,
                 want.clblast);
    }
cleanup:
    if (st != STACL_OK) memset(t, 0, sizeof *t);
    cJSON_Delete(root);
    free(text);
    fclose(f);
    return st;
}

static void set_family(stacl_tune *t, stacl_tune_family f, const size_t *v) {
    t->fam[f].set = 1;
    memcpy(t->fam[f].v, v, (size_t)families[f].count * sizeof *v);
}

int stacl_tune_builtin(const stacl_device_info *info, stacl_tune *t) {
    memset(t, 0, sizeof *t);
    if (!info->is_cpu || !strstr(info->platform, "Portable Computing Language")) return 0;
    /* Measured with `stacl tune` and stacl-bench-gemm on PoCL 3.1's CPU
     * device (2-core AVX-512 Xeon VM, CLBlast 1.5.3): see docs/performance.md.
     * Xgemm: 64x64 tiles, 16-deep K steps, 8-wide vectors, 4x4 work-items
     * (2.5-4x CLBlast's defaults on the ViT shapes; the search found nothing
     * faster beyond noise); GEMMK=0 (GEMMK=1 is broken on this stack). Paths:
     * the indirect (Xgemm) path down to 128^3, so the batched attention GEMMs
     * (197x197x64) take it too: 2x faster than XgemmDirect there. */
    static const size_t xgemm[16] = {0, 1, 16, 2, 4, 4, 64, 4, 4, 64, 0, 0, 1, 1, 8, 8};
    stacl_tune_set_key(t, info);
    snprintf(t->origin, sizeof t->origin, "builtin (PoCL CPU)");
    set_family(t, STACL_TUNE_XGEMM, xgemm);
    t->min_indirect = 128;
    return 1;
}

void stacl_tune_fallback(stacl_tune *t, const stacl_device_info *info) {
    /* CLBlast 1.5.3's "default" database entries (kDeviceTypeAll): the values
     * it uses for a device it knows nothing about. */
    static const size_t xgemm[16] = {0, 1, 32, 2, 8, 8, 32, 16, 16, 32, 1, 1, 0, 0, 4, 2};
    static const size_t direct[10] = {2, 8, 8, 8, 8, 1, 1, 1, 1, 16};
    memset(t, 0, sizeof *t);
    stacl_tune_set_key(t, info);
    snprintf(t->origin, sizeof t->origin, "fallback (CLBlast generic defaults)");
    set_family(t, STACL_TUNE_XGEMM, xgemm);
    set_family(t, STACL_TUNE_XGEMM_DIRECT, direct);
    /* The layout kernels too, so that a fallback also undoes a cached set's
     * overrides of them (CLBlast keeps overrides for the process); the
     * "default" entries of CLBlast's database. */
    static const size_t copy[4] = {16, 8, 4, 1}, pad[4] = {32, 8, 2, 1}, transpose[4] = {8, 0, 1, 4},
                        padtranspose[3] = {0, 8, 4};
    set_family(t, STACL_TUNE_COPY, copy);
    set_family(t, STACL_TUNE_PAD, pad);
    set_family(t, STACL_TUNE_TRANSPOSE, transpose);
    set_family(t, STACL_TUNE_PADTRANSPOSE, padtranspose);
}

int stacl_tune_known_bad(const stacl_tune_params *xgemm, char *why, size_t cap) {
    if (xgemm->set && xgemm->v[0] == 1) {
        snprintf(why, cap, "excluded: GEMMK=1 gives wrong results and writes out of bounds with CLBlast 1.5.3 on "
                           "PoCL (fixed in CLBlast 1.6.3)");
        return 1;
    }
    return 0;
}
