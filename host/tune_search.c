/* tune_search.c: `stacl tune`'s search. Three phases within a time budget:
 *   1. Xgemm parameters, on the indirect path, timed on the plain GEMMs of a
 *      ViT-B/16 forward (patch, qkv, out, fc1, fc2), weighted by calls;
 *   2. XgemmDirect parameters, on the direct path, timed on the batched
 *      attention GEMMs (qk, av);
 *   3. per shape, direct against indirect with the winners.
 * Candidates are visited greedily: next the untried one closest (fewest
 * differing parameters) to the best so far, a local search that suits a
 * budget of a dozen compilations (PoCL compiles each new set for seconds);
 * a winner is then re-timed against the starting set, alternating, and
 * kept only if still faster (background load makes lucky winners).
 * Every candidate's result is checked against a host reference before its
 * time counts; GEMMK=1 is excluded up front (wrong results on CLBlast 1.5.3
 * + PoCL). Nothing is printed: progress goes to the caller's callback. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tune_search.h"

typedef struct shape_data {
    stacl_tune_shape s;
    float beta;
    int weight;            /* calls per forward */
    size_t na, nb, nc;     /* floats per buffer */
    float *a, *b, *c0;     /* host inputs */
    double *ref, *mag;     /* reference on sampled elements (NAN: not sampled) */
    cl_mem da, db, dc;
    int loop;              /* batch > 1: run as a loop of plain calls (phase 3's comparison) */
} shape_data;

typedef struct search {
    stacl_ctx *ctx;
    const stacl_tune_options *o;
    shape_data sh[16];
    int n_sh;
    double t0;
    float *scratch;
} search;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Rows (and batches) the host reference covers: all of them for small
 * shapes; for large ones the edges, where padding bugs show, and every
 * `every`-th, which puts several checked rows in every tile. */
static int sampled(size_t i, size_t n, size_t every) { return i < 4 || i + 4 >= n || i % every == 0; }

static void host_reference(shape_data *d) {
    const stacl_tune_shape *s = &d->s;
    const int full = (double)s->m * s->n * s->k * s->batch < 2e8;
    for (size_t q = 0; q < s->batch; q++)
        for (size_t i = 0; i < s->m; i++) {
            int use = full || (sampled(q, s->batch, 5) && sampled(i, s->m, 3));
            for (size_t j = 0; j < s->n; j++) {
                size_t o = q * s->m * s->n + i * s->n + j;
                if (!use) { d->ref[o] = NAN; continue; }
                double sum = 0, g = 0;
                for (size_t p = 0; p < s->k; p++) {
                    double x = d->a[q * s->m * s->k + (s->trans_a ? p * s->m + i : i * s->k + p)];
                    double y = d->b[q * s->n * s->k + (s->trans_b ? j * s->k + p : p * s->n + j)];
                    sum += x * y;
                    g += fabs(x * y);
                }
                d->ref[o] = sum + d->beta * d->c0[o];
                d->mag[o] = g + fabs(d->beta * d->c0[o]);
            }
        }
}

static void add_shape(search *se, const char *name, size_t m, size_t n, size_t k, size_t batch, int ta, int tb,
                      float beta, int weight) {
    shape_data *d = &se->sh[se->n_sh++];
    memset(d, 0, sizeof *d);
    snprintf(d->s.name, sizeof d->s.name, "%.15s", name);
    d->s.m = m, d->s.n = n, d->s.k = k, d->s.batch = batch, d->s.trans_a = ta, d->s.trans_b = tb;
    d->beta = beta;
    d->weight = weight;
    d->na = batch * m * k, d->nb = batch * n * k, d->nc = batch * m * n;
}

/* The GEMMs of host/vit.c for `frames` frames of ViT-B/16 (bench/ has the
 * same table), with training also those only the backward pass of
 * host/train.c runs (dX = dY W with the weights as stored, and the
 * attention's transposed batched products), or the caller's shapes. */
int stacl_tune_default_shapes(int frames, int training, stacl_tune_shape *out, int *weights, int cap) {
    const size_t T = (size_t)(frames > 0 ? frames : 8), W = 768, L = 197, D = 64, H = 12;
    const struct { const char *name; size_t m, n, k, batch; int ta, tb, weight, training; } t[] = {
        {"patch", T * 196, W, W, 1, 0, 1, 1, 0},
        {"qkv", T * L, 3 * W, W, 1, 0, 1, 12, 0},
        {"out", T * L, W, W, 1, 0, 1, 12, 0},
        {"fc1", T * L, 4 * W, W, 1, 0, 1, 12, 0},
        {"fc2", T * L, W, 4 * W, 1, 0, 1, 12, 0},
        {"qk", L, L, D, T * H, 0, 1, 12, 0},     /* also the backward's dP = dO V^T */
        {"av", L, D, L, T * H, 0, 0, 12, 0},     /* also dQ = dS K */
        {"mlp_dh", T * L, 4 * W, W, 1, 0, 0, 12, 1},
        {"mlp_dx", T * L, W, 4 * W, 1, 0, 0, 12, 1},
        {"out_dx", T * L, W, W, 1, 0, 0, 12, 1},
        {"qkv_dx", T * L, W, 3 * W, 1, 0, 0, 12, 1},
        {"attn_dt", L, D, L, T * H, 1, 0, 24, 1}, /* dV = P^T dO and dK = dS^T Q */
    };
    int n = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0] && n < cap; i++) {
        if (t[i].training && !training) continue;
        stacl_tune_shape *s = &out[n];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", t[i].name);
        s->m = t[i].m, s->n = t[i].n, s->k = t[i].k, s->batch = t[i].batch;
        s->trans_a = t[i].ta, s->trans_b = t[i].tb;
        if (weights) weights[n] = t[i].weight;
        n++;
    }
    return n;
}

static void make_shapes(search *se) {
    const stacl_tune_options *o = se->o;
    if (o->n_shapes > 0) {
        for (int i = 0; i < o->n_shapes && i < 16; i++) {
            const stacl_tune_shape *s = &o->shapes[i];
            add_shape(se, s->name, s->m, s->n, s->k, s->batch, s->trans_a, s->trans_b, 0.0f, 1);
        }
        return;
    }
    stacl_tune_shape shapes[16];
    int weights[16];
    const int n = stacl_tune_default_shapes(o->frames, o->training, shapes, weights, 16);
    for (int i = 0; i < n; i++) {
        const stacl_tune_shape *s = &shapes[i];
        /* the residual adds (out, fc2) accumulate into C: beta 1 */
        const float beta = strcmp(s->name, "out") == 0 || strcmp(s->name, "fc2") == 0 ? 1.0f : 0.0f;
        add_shape(se, s->name, s->m, s->n, s->k, s->batch, s->trans_a, s->trans_b, beta, weights[i]);
    }
}

static stacl_status prepare(search *se) {
    stacl_status st = STACL_OK;
    size_t max_nc = 0;
    uint32_t seed = 2024;
    for (int i = 0; i < se->n_sh; i++) {
        shape_data *d = &se->sh[i];
        d->a = malloc((d->na + d->nb + d->nc) * sizeof(float));
        d->ref = malloc(2 * d->nc * sizeof(double));
        if (!d->a || !d->ref) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory preparing the tuning shapes");
        d->b = d->a + d->na, d->c0 = d->b + d->nb, d->mag = d->ref + d->nc;
        for (size_t j = 0; j < d->na + d->nb + d->nc; j++) {
            seed = seed * 1664525u + 1013904223u;
            d->a[j] = (float)((seed >> 8) * (1.0 / 16777216.0) * 2.0 - 1.0);
        }
        host_reference(d);
        cl_mem *bufs[3] = {&d->da, &d->db, &d->dc};
        const float *src[3] = {d->a, d->b, d->c0};
        const size_t n[3] = {d->na, d->nb, d->nc};
        for (int b = 0; b < 3; b++) {
            cl_int err;
            *bufs[b] = clCreateBuffer(se->ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n[b] * sizeof(float),
                                      (void *)src[b], &err);
            if (err != CL_SUCCESS) { st = stacl_cl_fail(se->ctx, err, "clCreateBuffer (tuning)"); goto cleanup; }
        }
        if (d->nc > max_nc) max_nc = d->nc;
    }
    se->scratch = malloc(max_nc * sizeof(float));
    if (!se->scratch) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory preparing the tuning shapes");
cleanup:
    return st;
}

static void release(search *se) {
    for (int i = 0; i < se->n_sh; i++) {
        shape_data *d = &se->sh[i];
        free(d->a);
        free(d->ref);
        if (d->da) clReleaseMemObject(d->da);
        if (d->db) clReleaseMemObject(d->db);
        if (d->dc) clReleaseMemObject(d->dc);
    }
    free(se->scratch);
}

static stacl_status call(search *se, shape_data *d, stacl_gemm_routine r) {
    const stacl_tune_shape *s = &d->s;
    size_t lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n;
    if (s->batch > 1)
        return stacl_gemm_batch_call(se->ctx, r, d->loop, s->trans_a, s->trans_b, s->m, s->n, s->k, 1.0f, d->da, 0,
                                     lda, s->m * s->k, d->db, 0, ldb, s->n * s->k, d->beta, d->dc, 0, s->n,
                                     s->m * s->n, s->batch);
    return stacl_gemm_routine_call(se->ctx, r, 0, s->trans_a, s->trans_b, s->m, s->n, s->k, 1.0f, d->da, 0, lda, 0,
                                   d->db, 0, ldb, 0, d->beta, d->dc, 0, s->n, 0, 1);
}

/* One call from fresh inputs, compared with the reference. *err: the worst
 * relative error (INFINITY for NaN). */
static stacl_status verify(search *se, shape_data *d, stacl_gemm_routine r, int inject, double *err) {
    stacl_ctx *ctx = se->ctx;
    cl_int e = clEnqueueWriteBuffer(ctx->queue, d->dc, CL_TRUE, 0, d->nc * sizeof(float), d->c0, 0, NULL, NULL);
    if (e != CL_SUCCESS) return stacl_cl_fail(ctx, e, "clEnqueueWriteBuffer (tuning)");
    stacl_status st = call(se, d, r);
    if (st != STACL_OK) return st;
    e = clEnqueueReadBuffer(ctx->queue, d->dc, CL_TRUE, 0, d->nc * sizeof(float), se->scratch, 0, NULL, NULL);
    if (e != CL_SUCCESS) return stacl_cl_fail(ctx, e, "clEnqueueReadBuffer (tuning)");
    if (inject) se->scratch[d->nc - 1] += 1.0f; /* tests: a kernel wrong in one (checked) element */
    double worst = 0;
    for (size_t i = 0; i < d->nc; i++) {
        if (isnan(d->ref[i])) continue;
        double x = fabs((double)se->scratch[i] - d->ref[i]) / (d->mag[i] + 1e-30);
        if (!(x <= worst)) worst = isnan(x) ? INFINITY : x;
    }
    *err = worst;
    return STACL_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fastest wall time (ms) of reps calls, each with clFinish: on a shared
 * machine other work only ever adds time, so the minimum ranks candidates
 * more reliably than the median. */
static stacl_status time_shape(search *se, shape_data *d, stacl_gemm_routine r, double *ms) {
    double t[16];
    int reps = se->o->reps > 0 ? (se->o->reps < 16 ? se->o->reps : 16) : 3;
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        stacl_status st = call(se, d, r);
        if (st != STACL_OK) return st;
        cl_int e = clFinish(se->ctx->queue);
        if (e != CL_SUCCESS) return stacl_cl_fail(se->ctx, e, "clFinish (tuning)");
        t[i] = (now_s() - t0) * 1e3;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    *ms = t[0];
    return STACL_OK;
}

#define VERIFY_LIMIT 1e-4 /* relative to sum |a b|: rounding is ~1e-7, a wrong kernel O(1) */

/* Verifies then times every shape in mask on path r; *ms = weighted sum.
 * Returns STACL_OK with *why set when the candidate is rejected; a status
 * other than OK only for failures that end the search (out of memory). */
static stacl_status evaluate(search *se, unsigned mask, stacl_gemm_routine r, int inject, double *ms, char *why,
                             size_t why_cap) {
    *ms = 0;
    why[0] = 0;
    for (int i = 0; i < se->n_sh; i++) {
        if (!(mask & (1u << i))) continue;
        shape_data *d = &se->sh[i];
        double err = 0, t = 0;
        stacl_status st = verify(se, d, r, inject, &err);
        if (st == STACL_OK && !(err <= VERIFY_LIMIT)) {
            snprintf(why, why_cap, "wrong result on %s: relative error %.3g (limit %g)", d->s.name, err, VERIFY_LIMIT);
            return STACL_OK;
        }
        if (st == STACL_OK) st = time_shape(se, d, r, &t);
        if (st == STACL_ERR_OUT_OF_MEMORY) return st;
        if (st != STACL_OK) {
            snprintf(why, why_cap, "%s", stacl_last_error());
            stacl_clear_error();
            return STACL_OK;
        }
        *ms += t * d->weight;
    }
    return STACL_OK;
}

/* ---- candidate spaces ---- */

static int xgemm_valid(const size_t *v, size_t max_wg) {
    size_t kwg = v[2], kwi = v[3], mdima = v[4], mdimc = v[5], mwg = v[6], ndimb = v[7], ndimc = v[8], nwg = v[9],
           vwm = v[14], vwn = v[15];
    /* CLBlast's tuner constraints for kernel 0 (src/tuning/kernels/xgemm.hpp). */
    return v[0] == 0 && kwg % kwi == 0 && mwg % (mdimc * vwm) == 0 && nwg % (ndimc * vwn) == 0 &&
           mwg % (mdima * vwm) == 0 && nwg % (ndimb * vwn) == 0 && kwg % ((mdimc * ndimc) / mdima) == 0 &&
           kwg % ((mdimc * ndimc) / ndimb) == 0 && mdimc * ndimc <= max_wg;
}

/* The generated spaces: CPU- and GPU-plausible values, MDIMA = MDIMC and
 * NDIMB = NDIMC (CLBlast's own tuner ties them too), GEMMK = 0. out[-1]
 * holds the starting set, which is not repeated. */
static int xgemm_space(size_t (*out)[16], int cap, size_t max_wg) {
    static const size_t wg[] = {32, 64, 128}, kwg[] = {16, 32}, kwi[] = {2, 8}, dim[] = {4, 8, 16}, vw[] = {2, 4, 8};
    int n = 0;
    for (int a = 0; a < 3; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 2; c++) for (int d = 0; d < 2; d++)
    for (int e = 0; e < 3; e++) for (int f = 0; f < 3; f++) for (int g = 0; g < 3; g++) for (int h = 0; h < 3; h++)
    for (int s = 0; s < 2; s++) for (int t = 0; t < 2; t++) {
        size_t v[16] = {0, 1, kwg[c], kwi[d], dim[e], dim[e], wg[a], dim[f], dim[f], wg[b],
                        (size_t)s, (size_t)s, (size_t)t, (size_t)t, vw[g], vw[h]};
        if (xgemm_valid(v, max_wg) && n < cap && memcmp(v, out[-1], sizeof v) != 0) memcpy(out[n++], v, sizeof v);
    }
    return n;
}

static int direct_valid(const size_t *v, size_t max_wg) {
    size_t kwid = v[0], mdimad = v[1], mdimcd = v[2], ndimbd = v[3], ndimcd = v[4], vwmd = v[7], vwnd = v[8], wgd = v[9];
    return wgd % kwid == 0 && wgd % (mdimcd * vwmd) == 0 && wgd % (ndimcd * vwnd) == 0 && wgd % (mdimad * vwmd) == 0 &&
           wgd % (ndimbd * vwnd) == 0 && wgd % ((mdimcd * ndimcd) / mdimad) == 0 &&
           wgd % ((mdimcd * ndimcd) / ndimbd) == 0 && mdimcd * ndimcd <= max_wg;
}

static int direct_space(size_t (*out)[10], int cap, size_t max_wg) {
    static const size_t wgd[] = {8, 16, 32, 64}, dim[] = {4, 8, 16}, kwid[] = {2, 8}, vw[] = {1, 2, 4, 8};
    int n = 0;
    for (int a = 0; a < 4; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 3; c++) for (int d = 0; d < 2; d++)
    for (int e = 0; e < 4; e++) for (int f = 0; f < 4; f++) for (int p = 0; p < 2; p++) {
        size_t v[10] = {kwid[d], dim[b], dim[b], dim[c], dim[c], (size_t)p, (size_t)p, vw[e], vw[f], wgd[a]};
        if (direct_valid(v, max_wg) && n < cap && memcmp(v, out[-1], sizeof v) != 0) memcpy(out[n++], v, sizeof v);
    }
    return n;
}

/* CLBlast's layout kernels, which its indirect path runs around Xgemm to
 * pad, transpose and copy operands into tile multiples (30% of the GEMM time
 * on PoCL, 94% of the attention's q k^T: docs/performance.md): the families
 * in the order searched, CLBlast's generic starting values (the database's
 * "default" entries), and the values tried per parameter, in tune.c's
 * parameter order. A set whose work-group (the first two sizes' product, or
 * the tile squared) exceeds the device's limit is not generated. */
static const struct layout_family {
    stacl_tune_family fam;
    int np;
    size_t start[4];
    size_t values[4][5];
    int n_values[4];
    int wg_a, wg_b; /* the parameters whose product is the work-group size */
} layout_families[4] = {
    {STACL_TUNE_PADTRANSPOSE, 3, {0, 8, 4}, {{0, 1}, {8, 16, 32}, {1, 2, 4, 8, 16}}, {2, 3, 5}, 1, 1},
    {STACL_TUNE_TRANSPOSE, 4, {8, 0, 1, 4}, {{4, 8, 16, 32}, {0, 1}, {0, 1}, {1, 2, 4, 8}}, {4, 2, 2, 4}, 0, 0},
    {STACL_TUNE_PAD, 4, {32, 8, 2, 1}, {{8, 16, 32}, {8, 16, 32}, {1, 2, 4}, {1, 2, 4}}, {3, 3, 3, 3}, 0, 1},
    {STACL_TUNE_COPY, 4, {16, 8, 4, 1}, {{8, 16, 32}, {8, 16, 32}, {1, 2, 4, 8}, {1, 2, 4, 8}}, {3, 3, 4, 4}, 0, 1},
};

/* The starting set then every other valid combination, np values each. */
static int layout_space(const struct layout_family *lf, size_t *out, int cap, size_t max_wg) {
    int n = 0;
    memcpy(out, lf->start, (size_t)lf->np * sizeof *out);
    n = 1;
    int idx[4] = {0, 0, 0, 0};
    for (;;) {
        size_t v[4] = {0, 0, 0, 0};
        for (int p = 0; p < lf->np; p++) v[p] = lf->values[p][idx[p]];
        if (v[lf->wg_a] * v[lf->wg_b] <= max_wg && memcmp(v, lf->start, (size_t)lf->np * sizeof *v) != 0 && n < cap)
            memcpy(out + (size_t)n++ * lf->np, v, (size_t)lf->np * sizeof *v);
        int p = 0;
        while (p < lf->np && ++idx[p] == lf->n_values[p]) idx[p++] = 0;
        if (p == lf->np) break;
    }
    return n;
}

static void describe(stacl_tune_family f, const size_t *v, char *buf, size_t cap) {
    int n;
    const char *const *names = stacl_tune_param_names(f, &n);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len + 1 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s=%zu", i ? " " : "", names[i], v[i]);
}

/* Applies one set of a family and scores it; INFINITY if rejected. */
static stacl_status score_set(search *se, stacl_tune_family fam, const size_t *v, int np, unsigned mask,
                              stacl_gemm_routine r, double *ms) {
    stacl_tune one = {0};
    char why[512];
    one.fam[fam].set = 1;
    memcpy(one.fam[fam].v, v, (size_t)np * sizeof *v);
    stacl_status st = stacl_tune_apply(se->ctx, &one);
    if (st == STACL_OK) st = evaluate(se, mask, r, 0, ms, why, sizeof why);
    if (st == STACL_OK && why[0]) *ms = INFINITY;
    return st;
}

/* A winner found under background load may only have been lucky: re-time
 * it against the starting set (candidate 0) in alternation and keep the
 * starting set unless the winner is still faster. */
static stacl_status confirm(search *se, stacl_tune_family fam, const size_t *cands, int np, unsigned mask,
                            stacl_gemm_routine r, stacl_tune_phase_report *rep) {
    double t_start = INFINITY, t_best = INFINITY, t;
    for (int round = 0; round < 2; round++) {
        stacl_status st = score_set(se, fam, cands, np, mask, r, &t);
        if (st != STACL_OK) return st;
        if (t < t_start) t_start = t;
        st = score_set(se, fam, cands + (size_t)rep->best * np, np, mask, r, &t);
        if (st != STACL_OK) return st;
        if (t < t_best) t_best = t;
    }
    char desc[160];
    snprintf(desc, sizeof desc, "re-timed: starting set %.1f ms, best %.1f ms -> keeping the %s", t_start, t_best,
             t_best < t_start ? "best" : "starting set");
    stacl_tune_progress pr = {stacl_tune_family_name(fam), rep->tried, rep->tried, desc, 1, "",
                              t_best < t_start ? t_best : t_start, 0, now_s() - se->t0};
    if (t_best >= t_start) rep->best = 0;
    /* Report the re-timed pair: the first timing of the starting set may
     * carry one-off costs (CLBlast rebuilding its database, cold caches). */
    rep->first_ms = t_start;
    rep->best_ms = pr.ms;
    pr.best_ms = pr.ms;
    if (se->o->progress) se->o->progress(se->o->user, &pr);
    return STACL_OK;
}

/* One family's search over cands (count n, params per set np): returns the
 * best index (-1: none passed) and its weighted time. */
static stacl_status search_family(search *se, stacl_tune_family fam, size_t *cands, int n, int np, unsigned mask,
                                  stacl_gemm_routine r, double deadline, int ordered, stacl_tune_phase_report *rep) {
    stacl_status st = STACL_OK;
    char *tried = calloc((size_t)n, 1);
    if (!tried) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    rep->best = -1;
    rep->best_ms = INFINITY;
    for (int step = 0; step < n; step++) {
        if (step > 0 && now_s() > deadline) break;
        /* Next: in order, or the untried candidate closest to the best. */
        int next = -1, best_dist = 1 << 30;
        for (int i = 0; i < n; i++) {
            if (tried[i]) continue;
            if (ordered || rep->best < 0) { next = i; break; }
            int dist = 0;
            for (int p = 0; p < np; p++) dist += cands[(size_t)i * np + p] != cands[(size_t)rep->best * np + p];
            if (dist < best_dist) best_dist = dist, next = i;
        }
        if (next < 0) break;
        tried[next] = 1;
        const size_t *v = &cands[(size_t)next * np];
        stacl_tune_progress pr = {stacl_tune_family_name(fam), step + 1, n, "", 0, "", 0, rep->best_ms, 0};
        char desc[256], why[512] = "";
        describe(fam, v, desc, sizeof desc);
        pr.candidate = desc;
        double ms = INFINITY;
        stacl_tune one = {0};
        one.fam[fam].set = 1;
        memcpy(one.fam[fam].v, v, (size_t)np * sizeof *v);
        if (fam == STACL_TUNE_XGEMM && stacl_tune_known_bad(&one.fam[fam], why, sizeof why) &&
            !se->o->allow_known_bad) {
            /* refused before it runs */
        } else {
            why[0] = 0;
            st = stacl_tune_apply(se->ctx, &one);
            if (st == STACL_OK) {
                int inject = se->o->inject && se->o->inject(se->o->user, pr.phase, step);
                st = evaluate(se, mask, r, inject, &ms, why, sizeof why);
            } else {
                snprintf(why, sizeof why, "%s", stacl_last_error());
                stacl_clear_error();
                st = STACL_OK;
            }
            if (st != STACL_OK) break;
        }
        rep->tried++;
        pr.accepted = why[0] == 0;
        if (!pr.accepted) rep->rejected++;
        pr.reason = why;
        pr.ms = ms;
        if (pr.accepted && step == 0) rep->first_ms = ms;
        if (pr.accepted && ms < rep->best_ms) rep->best_ms = ms, rep->best = next;
        pr.best_ms = rep->best_ms;
        pr.elapsed_s = now_s() - se->t0;
        if (se->o->progress) se->o->progress(se->o->user, &pr);
    }
    free(tried);
    if (st == STACL_OK && !ordered && rep->best > 0) st = confirm(se, fam, cands, np, mask, r, rep);
    return st;
}

stacl_status stacl_tune_search(stacl_ctx *ctx, const stacl_tune_options *o, stacl_tune *out,
                               stacl_tune_report *rep) {
    stacl_status st = STACL_OK;
    search se;
    memset(&se, 0, sizeof se);
    se.ctx = ctx, se.o = o, se.t0 = now_s();
    size_t (*xg)[16] = NULL, (*dg)[10] = NULL;
    memset(rep, 0, sizeof *rep);
    memset(out, 0, sizeof *out);
    stacl_tune_set_key(out, &ctx->info);
    snprintf(out->origin, sizeof out->origin, "stacl tune");
    make_shapes(&se);
    TRY(prepare(&se));
    unsigned plain = 0, batched = 0;
    for (int i = 0; i < se.n_sh; i++) *(se.sh[i].s.batch > 1 ? &batched : &plain) |= 1u << i;
    const double budget = o->budget_s > 0 ? o->budget_s : 300;
    const size_t max_wg = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 256;

    /* Phase 1: Xgemm. Start from the set in effect (cache or builtin), so a
     * search can only improve on what the runtime already does. */
    int nx = o->n_xgemm, nd = o->n_direct;
    xg = malloc(sizeof *xg * (size_t)(nx ? nx : 4096));
    dg = malloc(sizeof *dg * (size_t)(nd ? nd : 4096));
    if (!xg || !dg) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (nx) {
        memcpy(xg, o->xgemm, sizeof *xg * (size_t)nx);
    } else {
        stacl_tune start;
        const stacl_tune_state *cur = stacl_tune_current(ctx);
        if (cur && cur->active && cur->t.fam[STACL_TUNE_XGEMM].set) start = cur->t;
        else if (!stacl_tune_builtin(&ctx->info, &start)) stacl_tune_fallback(&start, &ctx->info);
        memcpy(xg[0], start.fam[STACL_TUNE_XGEMM].v, sizeof xg[0]);
        nx = 1 + xgemm_space(xg + 1, 4095, max_wg);
    }
    if (plain) {
        TRY(search_family(&se, STACL_TUNE_XGEMM, &xg[0][0], nx, 16, plain, STACL_ROUTINE_INDIRECT,
                          se.t0 + 0.45 * budget, o->n_xgemm > 0, &rep->xgemm));
        if (rep->xgemm.best < 0) FAIL(STACL_ERR_BLAS, "tuning: no Xgemm candidate passed verification");
        out->fam[STACL_TUNE_XGEMM].set = 1;
        memcpy(out->fam[STACL_TUNE_XGEMM].v, xg[rep->xgemm.best], sizeof xg[0]);
        TRY(stacl_tune_apply(ctx, out));
    }

    /* Phase 2: XgemmDirect, from CLBlast's generic set (the device's own
     * default cannot be read back through CLBlast's API). */
    if (nd) {
        memcpy(dg, o->direct, sizeof *dg * (size_t)nd);
    } else {
        stacl_tune start;
        stacl_tune_fallback(&start, &ctx->info);
        memcpy(dg[0], start.fam[STACL_TUNE_XGEMM_DIRECT].v, sizeof dg[0]);
        nd = 1 + direct_space(dg + 1, 4095, max_wg);
    }
    if (batched) {
        TRY(search_family(&se, STACL_TUNE_XGEMM_DIRECT, &dg[0][0], nd, 10, batched, STACL_ROUTINE_DIRECT,
                          se.t0 + 0.65 * budget, o->n_direct > 0, &rep->direct));
        if (rep->direct.best >= 0) {
            out->fam[STACL_TUNE_XGEMM_DIRECT].set = 1;
            memcpy(out->fam[STACL_TUNE_XGEMM_DIRECT].v, dg[rep->direct.best], sizeof dg[0]);
            TRY(stacl_tune_apply(ctx, out));
        }
    }

    /* Phase 2b: the layout kernels, one family after another (each until its
     * share of 65-90% of the budget), every shape on the indirect path (the
     * only one that runs them), greedy from CLBlast's generic set. */
    if (!o->no_layout) {
        size_t lc[144 * 4];
        for (int f = 0; f < 4; f++) {
            const struct layout_family *lf = &layout_families[f];
            const int n = layout_space(lf, lc, 144, max_wg);
            TRY(search_family(&se, lf->fam, lc, n, lf->np, plain | batched, STACL_ROUTINE_INDIRECT,
                              se.t0 + (0.65 + 0.25 * (f + 1) / 4.0) * budget, 0, &rep->layout[f]));
            if (rep->layout[f].best >= 0) {
                out->fam[lf->fam].set = 1;
                memcpy(out->fam[lf->fam].v, lc + (size_t)rep->layout[f].best * lf->np, (size_t)lf->np * sizeof *lc);
                TRY(stacl_tune_apply(ctx, out));
            }
        }
    }

    /* Phase 3: per shape, the faster path with the winners (both verified);
     * for a batched shape also a loop of plain calls on that path, kept
     * when faster (verified the same way). */
    for (int i = 0; i < se.n_sh; i++) {
        shape_data *d = &se.sh[i];
        double t[2] = {INFINITY, INFINITY};
        const stacl_gemm_routine paths[2] = {STACL_ROUTINE_INDIRECT, STACL_ROUTINE_DIRECT};
        for (int p = 0; p < 2; p++) {
            char why[512];
            TRY(evaluate(&se, 1u << i, paths[p], 0, &t[p], why, sizeof why));
            if (why[0]) t[p] = INFINITY;
        }
        if (isinf(t[0]) && isinf(t[1])) FAIL(STACL_ERR_BLAS, "tuning: shape %s fails on both paths", d->s.name);
        stacl_tune_shape *s = &out->shapes[out->n_shapes++];
        *s = d->s;
        int direct = t[1] < t[0];
        s->routine = direct ? STACL_ROUTINE_DIRECT : STACL_ROUTINE_INDIRECT;
        double flop = 2.0 * (double)d->s.m * d->s.n * d->s.k * d->s.batch * d->weight; /* t is weighted too */
        s->gflops = flop / (t[direct] * 1e-3) * 1e-9;
        s->other_gflops = isinf(t[!direct]) ? 0 : flop / (t[!direct] * 1e-3) * 1e-9;
        double t_loop = INFINITY, t_best = t[direct];
        if (d->s.batch > 1) {
            char why[512];
            d->loop = 1;
            st = evaluate(&se, 1u << i, s->routine, 0, &t_loop, why, sizeof why);
            d->loop = 0;
            TRY(st);
            if (why[0]) t_loop = INFINITY;
            s->loop_gflops = isinf(t_loop) ? 0 : flop / (t_loop * 1e-3) * 1e-9;
            if (t_loop < t_best) {
                s->loop = 1;
                s->gflops = s->loop_gflops;
                t_best = t_loop;
            }
        }
        if (o->progress) {
            char desc[160], loop[48] = "";
            if (d->s.batch > 1) snprintf(loop, sizeof loop, ", loop %.1f", isinf(t_loop) ? 0 : flop / t_loop * 1e-6);
            snprintf(desc, sizeof desc, "%s %zux%zux%zu batch %zu: indirect %.1f, direct %.1f%s GFLOP/s", d->s.name,
                     d->s.m, d->s.n, d->s.k, d->s.batch, isinf(t[0]) ? 0 : flop / t[0] * 1e-6,
                     isinf(t[1]) ? 0 : flop / t[1] * 1e-6, loop);
            stacl_tune_progress pr = {"routine", i + 1, se.n_sh, desc, 1,
                                      s->loop ? (direct ? "direct, loop" : "indirect, loop")
                                              : (direct ? "direct" : "indirect"),
                                      t_best, t_best, now_s() - se.t0};
            o->progress(o->user, &pr);
        }
    }
    rep->elapsed_s = now_s() - se.t0;
cleanup:
    free(xg);
    free(dg);
    release(&se);
    return st;
}
