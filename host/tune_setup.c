/* tune_setup.c: which tuning set a new context runs with, and the once per
 * device (and set) self-check with its fallback. Nothing here prints: what
 * was chosen and why a set was refused is kept in ctx->tune (source, note)
 * for tools to show. */
#include <clblast_c.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tune.h"

/* Sets already checked in this process: CLBlast's overrides are process-wide
 * per device, so a second context on the same device with the same set need
 * not check again. */
typedef struct checked {
    cl_device_id device;
    uint64_t set_hash;
    int ok;
} checked;
static checked g_checked[32];
static int g_n_checked;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t set_hash(const stacl_tune *t) {
    uint64_t h = STACL_HASH_SEED;
    for (int f = 0; f < STACL_TUNE_FAMILIES; f++) {
        h = stacl_hash64(h, &t->fam[f].set, sizeof t->fam[f].set);
        if (t->fam[f].set) h = stacl_hash64(h, t->fam[f].v, sizeof t->fam[f].v);
    }
    return h;
}

/* -1 unknown, else the recorded result. */
static int lookup_checked(cl_device_id dev, uint64_t h) {
    int r = -1;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_n_checked; i++)
        if (g_checked[i].device == dev && g_checked[i].set_hash == h) r = g_checked[i].ok;
    pthread_mutex_unlock(&g_lock);
    return r;
}

static void record_checked(cl_device_id dev, uint64_t h, int ok) {
    pthread_mutex_lock(&g_lock);
    if (g_n_checked < (int)(sizeof g_checked / sizeof g_checked[0]))
        g_checked[g_n_checked++] = (checked){dev, h, ok};
    pthread_mutex_unlock(&g_lock);
}

/* Applies t and checks it (once per device and set). */
static stacl_status apply_checked(stacl_ctx *ctx, const stacl_tune *t) {
    char why[256];
    if (stacl_tune_known_bad(&t->fam[STACL_TUNE_XGEMM], why, sizeof why))
        return stacl_fail(STACL_ERR_UNSUPPORTED, "%s", why);
    uint64_t h = set_hash(t);
    stacl_status st = stacl_tune_apply(ctx, t);
    if (st != STACL_OK) return st;
    /* On stacl's own GEMM engine CLBlast runs only under `stacl tune`, which
     * verifies every set it times: the self-check would only cost start-up
     * (CLBlast's programs compile on a first process: about a minute on PoCL). */
    if (ctx->gemm_rows) return STACL_OK;
    int known = lookup_checked(ctx->device, h);
    if (known == 1) return STACL_OK;
    if (known == 0) return stacl_fail(STACL_ERR_BLAS, "this parameter set already failed its self-check on '%s'",
                                      ctx->info.name);
    st = stacl_tune_self_check(ctx);
    /* Record only verdicts about the numbers, not e.g. an out-of-memory. */
    if (st == STACL_OK || st == STACL_ERR_BLAS || st == STACL_ERR_BUILD) record_checked(ctx->device, h, st == STACL_OK);
    return st;
}

stacl_status stacl_tune_setup(stacl_ctx *ctx) {
    stacl_tune_state *ts = calloc(1, sizeof *ts);
    if (!ts) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    ctx->tune = ts;
    const char *env = getenv("STACL_TUNE");
    char path[1024] = "";
    int have = 0;
    if (env && (!strcmp(env, "off") || !strcmp(env, "0"))) {
        snprintf(ts->source, sizeof ts->source, "off (STACL_TUNE=off: CLBlast's own parameters)");
        return STACL_OK;
    }
    if (env && *env && strcmp(env, "builtin") != 0) {
        snprintf(path, sizeof path, "%s", env);
    } else if (!env || !*env) {
        if (stacl_tune_cache_path(&ctx->info, path, sizeof path) != STACL_OK) path[0] = 0;
        stacl_clear_error();
    }
    if (path[0]) {
        FILE *probe = fopen(path, "rb");
        int exists = probe != NULL;
        if (probe) fclose(probe);
        /* An explicit file must exist; the default cache file may not yet. */
        if (exists || (env && *env)) {
            if (stacl_tune_load(&ts->t, path, &ctx->info) == STACL_OK) {
                have = 1;
                snprintf(ts->source, sizeof ts->source, "cache %s", path);
            } else {
                /* A corrupt or foreign cache costs speed, not correctness. */
                snprintf(ts->note, sizeof ts->note, "ignored: %s", stacl_last_error());
                stacl_clear_error();
            }
        }
    }
    if (!have && stacl_tune_builtin(&ctx->info, &ts->t)) {
        have = 1;
        snprintf(ts->source, sizeof ts->source, "builtin");
    }
    if (!have) {
        snprintf(ts->source, sizeof ts->source, "none (CLBlast's own parameters)");
        return STACL_OK;
    }
    ts->active = 1;
    /* The chosen set, then (if that was a file) the builtin one, then
     * CLBlast's generic parameters: the first that passes runs. */
    for (;;) {
        stacl_status st = apply_checked(ctx, &ts->t);
        if (st == STACL_OK) return STACL_OK;
        size_t len = strlen(ts->note);
        snprintf(ts->note + len, sizeof ts->note - len, "%s%s set rejected: %s", len ? "; " : "", ts->source,
                 stacl_last_error());
        stacl_clear_error();
        if (!strcmp(ts->source, "fallback"))
            return stacl_fail_context(st, "CLBlast computes wrong GEMMs on '%s' even with its generic parameters",
                                      ctx->info.name);
        /* Drop the programs built with the bad set before the next one. */
        CLBlastClearCache();
        if (strcmp(ts->source, "builtin") != 0 && stacl_tune_builtin(&ctx->info, &ts->t)) {
            snprintf(ts->source, sizeof ts->source, "builtin");
        } else {
            stacl_tune_fallback(&ts->t, &ctx->info);
            snprintf(ts->source, sizeof ts->source, "fallback");
        }
    }
}

void stacl_tune_release(stacl_ctx *ctx) {
    free(ctx->tune);
    ctx->tune = NULL;
}

const stacl_tune_state *stacl_tune_current(const stacl_ctx *ctx) { return ctx->tune; }
