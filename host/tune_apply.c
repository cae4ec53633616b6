/* tune_apply.c: putting a tuning set into effect on a context. CLBlast keeps
 * overrides per device for the whole process (CLBlastOverrideParameters
 * writes its database cache, which CLBlastClearCache does not clear), so a
 * set is applied at context start-up, checked once per device and set
 * against a host reference, and replaced by CLBlast's generic parameters
 * when it computes wrong numbers: a fast wrong GEMM must never run. */
#include <clblast_c.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "tune.h"

/* Shapes without an entry, when the set gives no threshold: CLBlast 1.5.3's
 * value for Intel CPUs, which sends the ViT's projections and MLP to the
 * indirect path and the attention GEMMs to the direct one. */
#define DEFAULT_MIN_INDIRECT 576
/* XGEMM_MIN_INDIRECT_SIZE values that force a path for any realistic shape:
 * CLBlast goes direct when m n k < value^3. */
#define FORCE_DIRECT 65536
#define FORCE_INDIRECT 0

stacl_status stacl_tune_apply(stacl_ctx *ctx, const stacl_tune *t) {
    for (int f = 0; f < STACL_TUNE_FAMILIES; f++) {
        if (!t->fam[f].set) continue;
        int n;
        const char *const *names = stacl_tune_param_names((stacl_tune_family)f, &n);
        CLBlastStatusCode code = CLBlastOverrideParameters(ctx->device, stacl_tune_family_name((stacl_tune_family)f),
                                                           CLBlastPrecisionSingle, (size_t)n, (const char **)names,
                                                           t->fam[f].v);
        if (code != CLBlastSuccess)
            return stacl_fail(STACL_ERR_BLAS, "CLBlastOverrideParameters(%s) failed on device '%s': %d",
                              stacl_tune_family_name((stacl_tune_family)f), ctx->info.name, (int)code);
    }
    return STACL_OK;
}

/* The path last forced per device: the override is process-wide, and
 * skipping a repeat saves CLBlast a database rebuild on every GEMM. */
static struct {
    cl_device_id device;
    stacl_gemm_routine routine;
} g_forced[16];
static pthread_mutex_t g_forced_lock = PTHREAD_MUTEX_INITIALIZER;

stacl_status stacl_tune_force_routine(stacl_ctx *ctx, stacl_gemm_routine r) {
    if (r == STACL_ROUTINE_AUTO) return STACL_OK;
    stacl_status st = STACL_OK;
    pthread_mutex_lock(&g_forced_lock);
    int slot = -1;
    for (int i = 0; i < 16 && slot < 0; i++)
        if (g_forced[i].device == ctx->device || g_forced[i].device == NULL) slot = i;
    if (slot < 0 || g_forced[slot].device != ctx->device || g_forced[slot].routine != r) {
        const char *name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
        const size_t value[] = {r == STACL_ROUTINE_DIRECT ? FORCE_DIRECT : FORCE_INDIRECT};
        CLBlastStatusCode code =
            CLBlastOverrideParameters(ctx->device, "GemmRoutine", CLBlastPrecisionSingle, 1, name, value);
        if (code != CLBlastSuccess)
            st = stacl_fail(STACL_ERR_BLAS, "CLBlastOverrideParameters(GemmRoutine) failed on device '%s': %d",
                            ctx->info.name, (int)code);
        else if (slot >= 0)
            g_forced[slot].device = ctx->device, g_forced[slot].routine = r;
    }
    pthread_mutex_unlock(&g_forced_lock);
    return st;
}

/* Whether a table entry is this GEMM call's shape. */
static int same_shape(const stacl_tune_shape *s, size_t m, size_t n, size_t k, size_t batch, int trans_a,
                      int trans_b) {
    return s->m == m && s->n == n && s->k == k && s->batch == batch && s->trans_a == trans_a && s->trans_b == trans_b;
}

int stacl_tune_batch_loop(const stacl_ctx *ctx, size_t m, size_t n, size_t k, size_t batch, int trans_a, int trans_b) {
    const stacl_tune_state *ts = ctx->tune;
    if (!ts || !ts->active || batch < 2) return 0;
    for (int i = 0; i < ts->t.n_shapes; i++)
        if (same_shape(&ts->t.shapes[i], m, n, k, batch, trans_a, trans_b)) return ts->t.shapes[i].loop;
    return 0;
}

stacl_gemm_routine stacl_tune_routine_for(const stacl_ctx *ctx, size_t m, size_t n, size_t k, size_t batch,
                                          int trans_a, int trans_b) {
    const stacl_tune_state *ts = ctx->tune;
    if (!ts || !ts->active) return STACL_ROUTINE_AUTO;
    for (int i = 0; i < ts->t.n_shapes; i++) {
        const stacl_tune_shape *s = &ts->t.shapes[i];
        if (same_shape(s, m, n, k, batch, trans_a, trans_b) && s->routine != STACL_ROUTINE_AUTO) return s->routine;
    }
    /* Once stacl has forced a path, CLBlast's own threshold is gone for the
     * process: decide every shape here. */
    double t = (double)(ts->t.min_indirect ? ts->t.min_indirect : DEFAULT_MIN_INDIRECT);
    return (double)m * (double)n * (double)k < t * t * t ? STACL_ROUTINE_DIRECT : STACL_ROUTINE_INDIRECT;
}

/* ---- self-check ---- */

typedef struct check_case {
    size_t m, n, k, batch;
    stacl_gemm_routine routine;
} check_case;

/* c = alpha a b^T + beta c for each batch (the layout of stacl_linear, and
 * of attention's q k^T), in double. */
static void host_gemm_nt(const check_case *cc, float alpha, const float *a, const float *b, float beta,
                         const float *c0, double *ref, double *mag) {
    for (size_t q = 0; q < cc->batch; q++)
        for (size_t i = 0; i < cc->m; i++)
            for (size_t j = 0; j < cc->n; j++) {
                double s = 0, g = 0;
                for (size_t p = 0; p < cc->k; p++) {
                    double x = a[(q * cc->m + i) * cc->k + p], y = b[(q * cc->n + j) * cc->k + p];
                    s += x * y;
                    g += fabs(x * y);
                }
                size_t o = (q * cc->m + i) * cc->n + j;
                ref[o] = alpha * s + beta * c0[o];
                mag[o] = fabs(alpha) * g + fabs(beta * c0[o]);
            }
}

static stacl_status run_case(stacl_ctx *ctx, const check_case *cc, double *worst) {
    stacl_status st = STACL_OK;
    const size_t na = cc->batch * cc->m * cc->k, nb = cc->batch * cc->n * cc->k, nc = cc->batch * cc->m * cc->n;
    float *h = malloc((na + nb + 2 * nc) * sizeof *h);
    double *ref = malloc(2 * nc * sizeof *ref);
    cl_mem buf[3] = {0};
    if (!h || !ref) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the GEMM self-check");
    float *a = h, *b = a + na, *c = b + nb, *got = c + nc;
    uint32_t seed = 12345;
    for (size_t i = 0; i < na + nb + nc; i++) {
        seed = seed * 1664525u + 1013904223u;
        h[i] = (float)((seed >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
    }
    const size_t sizes[3] = {na, nb, nc};
    const float *src[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        cl_int err;
        buf[i] = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizes[i] * sizeof(float),
                                (void *)src[i], &err);
        if (err != CL_SUCCESS) { st = stacl_cl_fail(ctx, err, "clCreateBuffer (GEMM self-check)"); goto cleanup; }
    }
    const float alpha = 0.75f, beta = 0.5f;
    TRY(stacl_gemm_routine_call(ctx, cc->routine, cc->batch > 1, 0, 1, cc->m, cc->n, cc->k, alpha, buf[0], 0, cc->k,
                                cc->m * cc->k, buf[1], 0, cc->k, cc->n * cc->k, beta, buf[2], 0, cc->n,
                                cc->m * cc->n, cc->batch));
    cl_int err = clEnqueueReadBuffer(ctx->queue, buf[2], CL_TRUE, 0, nc * sizeof(float), got, 0, NULL, NULL);
    if (err != CL_SUCCESS) { st = stacl_cl_fail(ctx, err, "clEnqueueReadBuffer (GEMM self-check)"); goto cleanup; }
    host_gemm_nt(cc, alpha, a, b, beta, c, ref, ref + nc);
    for (size_t i = 0; i < nc; i++) {
        /* Relative to sum |a b|: rounding is ~1e-7 of it, a wrong kernel O(1). */
        double e = fabs((double)got[i] - ref[i]) / (ref[nc + i] + 1e-30);
        if (!(e <= *worst)) *worst = isnan(e) ? INFINITY : e;
    }
cleanup:
    for (int i = 0; i < 3; i++)
        if (buf[i]) clReleaseMemObject(buf[i]);
    free(h);
    free(ref);
    return st;
}

stacl_status stacl_tune_self_check(stacl_ctx *ctx) {
    /* Odd sizes so that every kernel pads and handles edges; both paths, as
     * plain and strided-batched calls (the four programs a forward uses). */
    static const check_case cases[] = {
        {67, 133, 70, 1, STACL_ROUTINE_INDIRECT},
        {67, 133, 70, 1, STACL_ROUTINE_DIRECT},
        {37, 29, 19, 3, STACL_ROUTINE_INDIRECT},
        {37, 29, 19, 3, STACL_ROUTINE_DIRECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const check_case *cc = &cases[i];
        double worst = 0;
        stacl_status st = run_case(ctx, cc, &worst);
        if (st != STACL_OK)
            return stacl_fail_context(st, "GEMM self-check (%s, %zux%zux%zu, batch %zu)",
                                      cc->routine == STACL_ROUTINE_DIRECT ? "direct" : "indirect", cc->m, cc->n,
                                      cc->k, cc->batch);
        if (!(worst <= 1e-4))
            return stacl_fail(STACL_ERR_BLAS, "GEMM self-check (%s, %zux%zux%zu, batch %zu) on '%s': relative "
                              "error %.3g against the host reference (limit 1e-4)",
                              cc->routine == STACL_ROUTINE_DIRECT ? "direct" : "indirect", cc->m, cc->n, cc->k,
                              cc->batch, ctx->info.name, worst);
    }
    return STACL_OK;
}
