/* bench_gemm.c: `stacl-bench-gemm`: the GEMMs of a CLIP ViT-B/16 forward on T
 * frames through stacl (its GEMM engine on the OpenCL device: stacl's own
 * kernels on CPU devices, CLBlast elsewhere or with STACL_GEMM=clblast; the
 * Linear shapes through stacl_linear, with the weight packed as the model
 * loader packs it) against OpenBLAS
 * (cblas_sgemm on the host CPU), on the same machine in the same run.
 *
 * Per shape: (1) validate: one stacl call and one OpenBLAS call on the same
 * random inputs; the first stacl call also compiles CLBlast's kernels, so its
 * wall time is reported apart as "first call"; stacl's result must match
 * OpenBLAS's to a relative error (max |stacl - openblas| / max |openblas|)
 * of 1e-3, else the shape is not timed and the program exits 1; (2) warm up
 * (--warmup untimed calls of each); (3) N timed runs (--runs), alternating
 * stacl and OpenBLAS so that background load hits both alike.
 *
 * Timing: stacl wall time = the stacl_gemm* call + clFinish (what a caller
 * waits for, including CLBlast's host work and temporary buffers); stacl
 * device time = OpenCL event profiling through stacl_profile_begin/collect,
 * which times each CLBlast call between two queue markers (CLBlast's own
 * event covers only its last kernel). Should a driver's markers not time the
 * work (event time < half the wall time), the row is marked. OpenBLAS time =
 * wall time of the cblas_sgemm calls (synchronous); batched GEMMs are a loop
 * of cblas_sgemm, one per matrix. GFLOP/s = 2*M*N*K*batch / time. The ratio
 * is stacl GFLOP/s over OpenBLAS GFLOP/s (medians): above 1, stacl is faster. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#if !defined(OPENBLAS_VERSION)
typedef int blasint; /* a reference CBLAS header: plain int indices */
#endif

#include "bench_common.h"
#include "ops.h"

#define PROG "stacl-bench-gemm"
/* Largest accepted max|stacl - openblas| / max|openblas|; overridable at
 * build time only to exercise the failure path. */
#ifndef TOLERANCE
#define TOLERANCE 1e-3
#endif

/* CLIP ViT-B/16: width, MLP width, heads, head dim, layers, tokens, patch side. */
enum { VIT_W = 768, VIT_MLP = 3072, VIT_HEADS = 12, VIT_HD = 64, VIT_LAYERS = 12, VIT_PATCHES = 196, VIT_PATCH = 16 };
#define VIT_TOKENS (VIT_PATCHES + 1)

typedef struct gemm_shape {
    const char *name;
    const char *what;
    int batched, trans_b;
    float beta;              /* as in the forward: 1 where the GEMM adds into the residual stream */
    size_t m, n, k, batch;
    size_t lda, ldb, ldc;    /* row-major leading dimensions */
    size_t sa, sb, sc;       /* batch strides (elements) */
    int per_forward;         /* calls in one forward pass */
} gemm_shape;

/* The GEMMs of host/vit.c for T frames, in the order of a forward pass. */
static int vit_shapes(size_t T, gemm_shape *s) {
    const size_t W = VIT_W, M = VIT_MLP, L = VIT_TOKENS, D = VIT_HD, K = 3 * VIT_PATCH * VIT_PATCH;
    const size_t rows = T * L;
    int n = 0;
    /* nn.Linear: y[rows, out] = x[rows, in] w[out, in]^T, as stacl_linear. */
#define LINEAR(nm, desc, r, in, out, b, per)                                                                 \
    s[n++] = (gemm_shape){nm, desc, 0, 1, b, r, out, in, 1, in, in, out, 0, 0, 0, per}
    LINEAR("patch", "patch embedding: (T*196) x 768 <- 768 (im2col x W^T)", T * VIT_PATCHES, K, W, 0.0f, 1);
    LINEAR("qkv", "attention in-projection: (T*197) x 768 -> 2304", rows, W, 3 * W, 0.0f, VIT_LAYERS);
    s[n++] = (gemm_shape){"qk", "attention scores: (T*12) x [197x64 . 64x197] (q k^T)", 1, 1, 0.0f, L, L, D,
                          T * VIT_HEADS, D, D, L, L * D, L * D, L * L, VIT_LAYERS};
    s[n++] = (gemm_shape){"av", "attention values: (T*12) x [197x197 . 197x64] (p v)", 1, 0, 0.0f, L, D, L,
                          T * VIT_HEADS, L, D, D, L * L, L * D, L * D, VIT_LAYERS};
    LINEAR("out", "attention out-projection: (T*197) x 768 -> 768, += residual", rows, W, W, 1.0f, VIT_LAYERS);
    LINEAR("fc1", "MLP up: (T*197) x 768 -> 3072", rows, W, M, 0.0f, VIT_LAYERS);
    LINEAR("fc2", "MLP down: (T*197) x 3072 -> 768, += residual", rows, M, W, 1.0f, VIT_LAYERS);
#undef LINEAR
    return n;
}
#define N_SHAPES 7

static size_t elems_a(const gemm_shape *s) { return s->batched ? s->sa * s->batch : s->m * s->lda; }
static size_t elems_b(const gemm_shape *s) {
    return s->batched ? s->sb * s->batch : (s->trans_b ? s->n : s->k) * s->ldb;
}
static size_t elems_c(const gemm_shape *s) { return s->batched ? s->sc * s->batch : s->m * s->ldc; }
static double flops(const gemm_shape *s) { return 2.0 * (double)s->m * (double)s->n * (double)s->k * (double)s->batch; }
static double gflops(double flop, double ms) { return ms > 0 ? flop / (ms * 1e6) : 0.0; }

/* Deterministic uniform [-1, 1) fill (xorshift64*). */
static void fill_random(float *x, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t r = s * 0x2545F4914F6CDD1Dull;
        x[i] = (float)((double)(r >> 40) / (double)(1u << 24) * 2.0 - 1.0);
    }
}

/* ---- the two implementations ----------------------------------------------- */

static int is_linear(const gemm_shape *s) { return !s->batched && s->trans_b; }

static stacl_status stacl_call(stacl_ctx *ctx, const gemm_shape *s, cl_mem a, cl_mem b, cl_mem c) {
    if (is_linear(s)) /* as the forward calls it: with the packed weight on stacl's engine */
        return stacl_linear(ctx, s->m, s->k, s->n, a, 0, b, 0, c, 0, s->beta != 0.0f);
    if (s->batched)
        return stacl_gemm_batched(ctx, 0, s->trans_b, s->m, s->n, s->k, 1.0f, a, 0, s->lda, s->sa, b, 0, s->ldb,
                                  s->sb, s->beta, c, 0, s->ldc, s->sc, s->batch);
    return stacl_gemm(ctx, 0, s->trans_b, s->m, s->n, s->k, 1.0f, a, 0, s->lda, b, 0, s->ldb, s->beta, c, 0, s->ldc);
}

/* One stacl GEMM: wall = call + clFinish; dev = sum of its OpenCL events. */
static stacl_status stacl_timed(stacl_ctx *ctx, const gemm_shape *s, cl_mem a, cl_mem b, cl_mem c, double *wall_ms,
                                double *dev_ms) {
    stacl_profile_begin(ctx);
    double t0 = bench_now_ms();
    stacl_status st = stacl_call(ctx, s, a, b, c);
    cl_int err = clFinish(ctx->queue);
    double t1 = bench_now_ms();
    double total = 0.0;
    /* Always collect: it ends profiling and releases the events. */
    stacl_status pst = stacl_profile_collect(ctx, NULL, NULL, &total);
    if (st != STACL_OK) return stacl_fail_context(st, "stacl %s '%s'", s->batched ? "batched GEMM" : "GEMM", s->name);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "clFinish after the GEMM");
    if (pst != STACL_OK) return pst;
    *wall_ms = t1 - t0;
    *dev_ms = total;
    return STACL_OK;
}

static double openblas_timed(const gemm_shape *s, const float *a, const float *b, float *c) {
    double t0 = bench_now_ms();
    const enum CBLAS_TRANSPOSE tb = s->trans_b ? CblasTrans : CblasNoTrans;
    for (size_t i = 0; i < s->batch; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint)s->m, (blasint)s->n, (blasint)s->k, 1.0f,
                    a + i * s->sa, (blasint)s->lda, b + i * s->sb, (blasint)s->ldb, s->beta, c + i * s->sc,
                    (blasint)s->ldc);
    return bench_now_ms() - t0;
}

/* ---- one shape ---------------------------------------------------------------- */

typedef struct shape_result {
    const gemm_shape *shape;
    int validated, timed;
    double rel_err;
    double stacl_first_ms, blas_first_ms;
    double *wall, *dev, *blas; /* [runs] */
    double wall_med, wall_min, wall_max, dev_med, dev_min, blas_med, blas_min, blas_max;
} shape_result;

static stacl_status create_buffer(stacl_ctx *ctx, const float *host, size_t n, const char *what, cl_mem *out) {
    cl_int err;
    *out = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, n * sizeof(float), (void *)host,
                          &err);
    if (err != CL_SUCCESS) {
        stacl_status st = stacl_cl_fail(ctx, err, "clCreateBuffer");
        return stacl_fail_context(st, "allocating %s (%zu floats)", what, n);
    }
    return STACL_OK;
}

/* Returns STACL_OK also when validation fails (r->validated = 0): the
 * caller reports it and goes on with the other shapes. */
static stacl_status bench_shape(stacl_ctx *ctx, const gemm_shape *s, int runs, int warmup, uint64_t seed,
                                shape_result *r) {
    stacl_status st = STACL_OK;
    const size_t na = elems_a(s), nb = elems_b(s), nc = elems_c(s);
    float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c0 = malloc(nc * sizeof *c0);
    float *c_ref = malloc(nc * sizeof *c_ref), *c_out = malloc(nc * sizeof *c_out);
    cl_mem da = NULL, db = NULL, dc = NULL, packed = NULL;
    r->wall = calloc((size_t)runs, sizeof(double));
    r->dev = calloc((size_t)runs, sizeof(double));
    r->blas = calloc((size_t)runs, sizeof(double));
    if (!a || !b || !c0 || !c_ref || !c_out || !r->wall || !r->dev || !r->blas)
        FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for GEMM '%s' (%zu + %zu + 3 x %zu floats)", s->name, na,
             nb, nc);
    fill_random(a, na, seed * 3 + 1);
    fill_random(b, nb, seed * 3 + 2);
    fill_random(c0, nc, seed * 3 + 3);
    memcpy(c_ref, c0, nc * sizeof *c0);
    TRY(create_buffer(ctx, a, na, "A", &da));
    TRY(create_buffer(ctx, b, nb, "B", &db));
    TRY(create_buffer(ctx, c0, nc, "C", &dc));
    if (is_linear(s) && ctx->gemm_rows) { /* the model loader packs every Linear weight once */
        TRY(stacl_device_buffer(ctx, stacl_gemm_packed_floats(s->n, s->k) * sizeof(float), CL_MEM_READ_WRITE, NULL,
                                "the packed weight", NULL, &packed));
        TRY(stacl_gemm_pack_linear(ctx, db, 0, s->n, s->k, packed, 0));
    }

    /* Validation; the first stacl call includes CLBlast's kernel compilation. */
    double dev_first;
    printf("  %-6s validating (first call)...", s->name);
    fflush(stdout);
    TRY(stacl_timed(ctx, s, da, db, dc, &r->stacl_first_ms, &dev_first));
    r->blas_first_ms = openblas_timed(s, a, b, c_ref);
    cl_int err = clEnqueueReadBuffer(ctx->queue, dc, CL_TRUE, 0, nc * sizeof(float), c_out, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        st = stacl_cl_fail(ctx, err, "reading the result back");
        goto cleanup;
    }
    double max_diff = 0.0, max_ref = 0.0;
    int finite = 1;
    for (size_t i = 0; i < nc; i++) {
        double d = fabs((double)c_out[i] - (double)c_ref[i]), v = fabs((double)c_ref[i]);
        if (!isfinite(c_out[i])) finite = 0;
        max_diff = d > max_diff ? d : max_diff;
        max_ref = v > max_ref ? v : max_ref;
    }
    r->rel_err = !finite ? INFINITY : max_ref > 0 ? max_diff / max_ref : max_diff;
    r->validated = finite && r->rel_err <= TOLERANCE;
    printf(" stacl %.1f ms, OpenBLAS %.1f ms, max rel err %.2e%s\n", r->stacl_first_ms, r->blas_first_ms, r->rel_err,
           r->validated ? "" : "  FAILED");
    fflush(stdout);
    if (!r->validated) goto cleanup;

    for (int i = 0; i < warmup; i++) {
        double w, d;
        TRY(stacl_timed(ctx, s, da, db, dc, &w, &d));
        openblas_timed(s, a, b, c_ref);
    }
    /* Alternate the two so that background load and clock changes hit both. */
    for (int i = 0; i < runs; i++) {
        TRY(stacl_timed(ctx, s, da, db, dc, &r->wall[i], &r->dev[i]));
        r->blas[i] = openblas_timed(s, a, b, c_ref);
    }
    r->wall_med = bench_median(r->wall, runs);
    r->wall_min = bench_min(r->wall, runs);
    r->wall_max = bench_max(r->wall, runs);
    r->dev_med = bench_median(r->dev, runs);
    r->dev_min = bench_min(r->dev, runs);
    r->blas_med = bench_median(r->blas, runs);
    r->blas_min = bench_min(r->blas, runs);
    r->blas_max = bench_max(r->blas, runs);
    r->timed = 1;
cleanup:
    if (da) clReleaseMemObject(da);
    if (db) clReleaseMemObject(db);
    if (dc) clReleaseMemObject(dc);
    if (packed) {
        stacl_gemm_forget_packed(ctx, db);
        clReleaseMemObject(packed);
    }
    free(a);
    free(b);
    free(c0);
    free(c_ref);
    free(c_out);
    return st;
}

/* ---- report ------------------------------------------------------------------- */

/* CLBlast runs large GEMMs as pad/transpose kernels + the main kernel (+ an
 * un-pad kernel) and returns the event of the last one only: an event time
 * far below the wall time means the event missed most of the work. */
static int event_partial(const shape_result *r) { return r->dev_med < 0.5 * r->wall_med; }

static void dims(const gemm_shape *s, char *buf, size_t n) {
    if (s->batched) snprintf(buf, n, "%zux %zux%zux%zu", s->batch, s->m, s->n, s->k);
    else snprintf(buf, n, "%zux%zux%zu", s->m, s->n, s->k);
}

static void print_tables(const shape_result *res, int n, int runs) {
    char d[48];
    int partial = 0;
    printf("\nTime per call, ms: median [min-max] of %d run(s) (stacl wall = call + clFinish; event = OpenCL "
           "profiling between markers around the CLBlast call)\n", runs);
    printf("%-6s %-20s %9s | %10s %-21s %10s | %10s %-21s\n", "shape", "M x N x K", "GFLOP", "stacl 1st",
           "stacl wall", "event", "BLAS 1st", "OpenBLAS");
    for (int i = 0; i < n; i++) {
        const shape_result *r = &res[i];
        const gemm_shape *s = r->shape;
        dims(s, d, sizeof d);
        if (!r->timed) {
            printf("%-6s %-20s %9.3f | %10.1f %-21s %10s | %10.1f %-21s\n", s->name, d, flops(s) * 1e-9,
                   r->stacl_first_ms, r->validated ? "not run" : "VALIDATION FAILED", "-", r->blas_first_ms, "-");
            continue;
        }
        char w[48], b[48];
        snprintf(w, sizeof w, "%.2f [%.2f-%.2f]", r->wall_med, r->wall_min, r->wall_max);
        snprintf(b, sizeof b, "%.2f [%.2f-%.2f]", r->blas_med, r->blas_min, r->blas_max);
        printf("%-6s %-20s %9.3f | %10.1f %-21s %9.2f%c | %10.1f %-21s\n", s->name, d, flops(s) * 1e-9,
               r->stacl_first_ms, w, r->dev_med, event_partial(r) ? '*' : ' ', r->blas_first_ms, b);
        partial |= event_partial(r);
    }
    printf("\nThroughput, GFLOP/s: median [min-max] of %d run(s); ratio = stacl / OpenBLAS (medians; > 1: stacl "
           "faster)\n", runs);
    printf("%-6s %-22s %10s | %-22s | %10s %10s | %9s\n", "shape", "stacl wall", "event", "OpenBLAS", "ratio",
           "ratio(ev)", "rel.err");
    for (int i = 0; i < n; i++) {
        const shape_result *r = &res[i];
        const gemm_shape *s = r->shape;
        if (!r->timed) {
            printf("%-6s %-22s %10s | %-22s | %10s %10s | %9.2e\n", s->name, "-", "-", "-", "-", "-", r->rel_err);
            continue;
        }
        const double f = flops(s);
        char w[48], b[48];
        snprintf(w, sizeof w, "%.1f [%.1f-%.1f]", gflops(f, r->wall_med), gflops(f, r->wall_max),
                 gflops(f, r->wall_min));
        snprintf(b, sizeof b, "%.1f [%.1f-%.1f]", gflops(f, r->blas_med), gflops(f, r->blas_max),
                 gflops(f, r->blas_min));
        const char mark = event_partial(r) ? '*' : ' ';
        printf("%-6s %-22s %9.1f%c | %-22s | %10.3f %9.3f%c | %9.2e\n", s->name, w, gflops(f, r->dev_med), mark, b,
               r->wall_med > 0 ? r->blas_med / r->wall_med : 0.0, r->dev_med > 0 ? r->blas_med / r->dev_med : 0.0,
               mark, r->rel_err);
    }
    if (partial)
        printf("* event time < half the wall time: the markers around this CLBlast call did not time its kernels on\n"
               "  this driver, so the event numbers are not the GEMM's device time; use the wall-time columns.\n");
}

static cJSON *json_shape(const shape_result *r, int runs) {
    const gemm_shape *s = r->shape;
    const double f = flops(s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddStringToObject(o, "description", s->what);
    cJSON_AddBoolToObject(o, "batched", s->batched);
    cJSON_AddNumberToObject(o, "batch", (double)s->batch);
    cJSON_AddNumberToObject(o, "m", (double)s->m);
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    cJSON_AddNumberToObject(o, "k", (double)s->k);
    cJSON_AddBoolToObject(o, "trans_b", s->trans_b);
    cJSON_AddNumberToObject(o, "beta", s->beta);
    cJSON_AddNumberToObject(o, "calls_per_forward", s->per_forward);
    cJSON_AddNumberToObject(o, "flop", f);
    cJSON_AddNumberToObject(o, "max_rel_err", isfinite(r->rel_err) ? r->rel_err : -1.0);
    cJSON_AddBoolToObject(o, "valid", r->validated);
    cJSON *sc = cJSON_AddObjectToObject(o, "stacl");
    cJSON_AddNumberToObject(sc, "first_call_ms", r->stacl_first_ms);
    cJSON *ob = cJSON_AddObjectToObject(o, "openblas");
    cJSON_AddNumberToObject(ob, "first_call_ms", r->blas_first_ms);
    if (!r->timed) return o;
    cJSON_AddItemToObject(sc, "wall_ms", bench_json_array(r->wall, runs));
    cJSON_AddItemToObject(sc, "event_ms", bench_json_array(r->dev, runs));
    cJSON_AddNumberToObject(sc, "wall_ms_median", r->wall_med);
    cJSON_AddNumberToObject(sc, "wall_ms_min", r->wall_min);
    cJSON_AddNumberToObject(sc, "wall_ms_max", r->wall_max);
    cJSON_AddNumberToObject(sc, "event_ms_median", r->dev_med);
    cJSON_AddNumberToObject(sc, "event_ms_min", r->dev_min);
    cJSON_AddNumberToObject(sc, "gflops_wall_median", gflops(f, r->wall_med));
    cJSON_AddNumberToObject(sc, "gflops_wall_min", gflops(f, r->wall_max));
    cJSON_AddNumberToObject(sc, "gflops_wall_max", gflops(f, r->wall_min));
    cJSON_AddNumberToObject(sc, "gflops_event_median", gflops(f, r->dev_med));
    cJSON_AddNumberToObject(sc, "gflops_event_max", gflops(f, r->dev_min));
    /* false: the event time is under half the wall time (see event_partial). */
    cJSON_AddBoolToObject(sc, "event_covers_gemm", !event_partial(r));
    cJSON_AddItemToObject(ob, "ms", bench_json_array(r->blas, runs));
    cJSON_AddNumberToObject(ob, "ms_median", r->blas_med);
    cJSON_AddNumberToObject(ob, "ms_min", r->blas_min);
    cJSON_AddNumberToObject(ob, "ms_max", r->blas_max);
    cJSON_AddNumberToObject(ob, "gflops_median", gflops(f, r->blas_med));
    cJSON_AddNumberToObject(ob, "gflops_min", gflops(f, r->blas_max));
    cJSON_AddNumberToObject(ob, "gflops_max", gflops(f, r->blas_min));
    cJSON_AddNumberToObject(o, "ratio_wall_median", r->blas_med / r->wall_med);
    cJSON_AddNumberToObject(o, "ratio_event_median", r->dev_med > 0 ? r->blas_med / r->dev_med : 0.0);
    cJSON_AddNumberToObject(o, "ratio_wall_best", r->blas_min / r->wall_min);
    return o;
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(void) {
    printf("usage: " PROG " [--frames T] [--runs N] [--warmup W] [--shapes LIST] [--device D] [--json FILE]\n\n"
           "Times the GEMMs of a CLIP ViT-B/16 forward pass over T frames through stacl (CLBlast on the OpenCL\n"
           "device) and through OpenBLAS (cblas_sgemm on this CPU), in the same run. Per shape: validate\n"
           "(stacl against OpenBLAS, max relative error <= %g, else exit 1; the first stacl call includes\n"
           "CLBlast's kernel compilation and is reported apart), W warm-up calls, then N timed runs of each,\n"
           "alternating. Reports median and [min-max] times and GFLOP/s, and the ratio stacl / OpenBLAS.\n\n"
           "  --frames T    frames per clip (default 8): rows M = T*197 (T*196 for the patch embedding)\n"
           "  --runs N      timed runs per shape and implementation (default 5)\n"
           "  --warmup W    untimed calls after validation (default 1)\n"
           "  --shapes L    comma-separated subset, in this order by default:\n"
           "                  patch  (T*196) x 768 <- 768       qkv  (T*197) x 768 -> 2304\n"
           "                  qk     T*12 x 197x197x64 (q k^T)   av   T*12 x 197x64x197 (p v)\n"
           "                  out    (T*197) x 768 -> 768        fc1  (T*197) x 768 -> 3072\n"
           "                  fc2    (T*197) x 3072 -> 768\n"
           "  --device D    OpenCL device index or name substring (default: $STACL_DEVICE, else the first\n"
           "                GPU, else the first device; see 'stacl devices')\n"
           "  --json FILE   also write every measurement as JSON\n"
           "  --help        this text\n\n"
           "OpenBLAS threads follow OPENBLAS_NUM_THREADS (default: all cores). Exit: 0 ok, 1 failure or\n"
           "validation error, 2 usage error.\n",
           TOLERANCE);
}

static void openblas_info(char *config, size_t nc, char *core, size_t ncore, int *threads) {
#if defined(OPENBLAS_VERSION)
    snprintf(config, nc, "%s", openblas_get_config());
    snprintf(core, ncore, "%s", openblas_get_corename());
    *threads = openblas_get_num_threads();
#else
    snprintf(config, nc, "unknown (cblas.h is not OpenBLAS's)");
    snprintf(core, ncore, "unknown");
    *threads = 0;
#endif
}

int main(int argc, char **argv) {
    static const bench_opt opts[] = {{"--frames", 1}, {"--runs", 1}, {"--warmup", 1}, {"--shapes", 1},
                                     {"--device", 1}, {"--json", 1}, {"--help", 0}};
    bench_args a = {argc, argv, 1, PROG};
    const char *device = NULL, *json_path = NULL, *shape_list = NULL, *value;
    int frames = 8, runs = 5, warmup = 1, k;
    while ((k = bench_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: if (!bench_int(PROG, "--frames", value, 1, 256, &frames)) return BENCH_EXIT_USAGE; break;
        case 1: if (!bench_int(PROG, "--runs", value, 1, 1000, &runs)) return BENCH_EXIT_USAGE; break;
        case 2: if (!bench_int(PROG, "--warmup", value, 0, 1000, &warmup)) return BENCH_EXIT_USAGE; break;
        case 3: shape_list = value; break;
        case 4: device = value; break;
        case 5: json_path = value; break;
        case 6: usage(); return 0;
        }
    }
    if (k == -2) return BENCH_EXIT_USAGE;

    gemm_shape all[N_SHAPES];
    const int n_all = vit_shapes((size_t)frames, all);
    const gemm_shape *chosen[N_SHAPES];
    int n = 0;
    if (!shape_list) {
        for (int i = 0; i < n_all; i++) chosen[n++] = &all[i];
    } else {
        char *copy = strdup(shape_list), *save = NULL;
        if (!copy) { fprintf(stderr, PROG ": error: out of host memory\n"); return BENCH_EXIT_FAILURE; }
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            int found = -1;
            for (int i = 0; i < n_all; i++)
                if (strcmp(tok, all[i].name) == 0) found = i;
            if (found < 0) {
                bench_usage_error(PROG, "unknown shape '%s' in --shapes (patch, qkv, qk, av, out, fc1, fc2)", tok);
                free(copy);
                return BENCH_EXIT_USAGE;
            }
            int dup = 0;
            for (int i = 0; i < n; i++) dup |= chosen[i] == &all[found];
            if (!dup) chosen[n++] = &all[found];
        }
        free(copy);
        if (n == 0) return bench_usage_error(PROG, "--shapes names no shape");
    }
    if (json_path && bench_check_writable(PROG, json_path)) return BENCH_EXIT_FAILURE;

    bench_host host;
    bench_host_info(&host);
    char blas_config[256], blas_core[64];
    int blas_threads;
    openblas_info(blas_config, sizeof blas_config, blas_core, sizeof blas_core, &blas_threads);

    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st != STACL_OK) return bench_fail(PROG, st);
    const stacl_device_info *dev = stacl_ctx_device(ctx);
    printf(PROG ": CLIP ViT-B/16 GEMMs for T = %d frames, %d timed run%s per shape, %d warm-up\n", frames, runs,
           runs > 1 ? "s" : "", warmup);
    printf("host:     %s, %ld CPUs online, %s\n", host.cpu, host.nproc, host.date);
    printf("stacl:    %s (%s) on [%d] %s (%s, %s, driver %s)\n", stacl_version(), stacl_git_revision(), dev->index,
           dev->name, dev->platform, dev->device_version, dev->driver_version);
    printf("tuning:   %s\n", bench_tuning(ctx));
    printf("OpenBLAS: %s, core %s, %d thread%s\n", blas_config, blas_core, blas_threads, blas_threads == 1 ? "" : "s");
    fflush(stdout);

    shape_result res[N_SHAPES];
    memset(res, 0, sizeof res);
    int rc = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        res[i].shape = chosen[i];
        st = bench_shape(ctx, chosen[i], runs, warmup, (uint64_t)(chosen[i] - all) + 1, &res[i]);
        if (st != STACL_OK) {
            rc = bench_fail(PROG, st);
            n = i + 1;
            break;
        }
        if (!res[i].validated) {
            fprintf(stderr, PROG ": error: shape '%s': stacl's result differs from OpenBLAS's: max relative "
                    "error %.3e > %g\n", chosen[i]->name, res[i].rel_err, TOLERANCE);
            failed++;
        }
    }
    print_tables(res, n, runs);

    /* GEMM time of one forward, from the medians and the calls per forward. */
    double f_fwd = 0, stacl_fwd = 0, ev_fwd = 0, blas_fwd = 0;
    int all_timed = 1;
    for (int i = 0; i < n; i++) {
        if (!res[i].timed) { all_timed = 0; continue; }
        const int c = res[i].shape->per_forward;
        f_fwd += c * flops(res[i].shape);
        stacl_fwd += c * res[i].wall_med;
        ev_fwd += c * res[i].dev_med;
        blas_fwd += c * res[i].blas_med;
    }
    if (stacl_fwd > 0) {
        printf("\nGEMMs of one forward pass of T = %d frames (%s; median x calls per forward: patch 1, others %d):"
               "\n  %.1f GFLOP: stacl %.0f ms wall (%.1f GFLOP/s), OpenBLAS %.0f ms (%.1f GFLOP/s), ratio %.3f\n",
               frames, all_timed && n == n_all ? "all shapes" : "only the shapes timed", VIT_LAYERS, f_fwd * 1e-9,
               stacl_fwd, gflops(f_fwd, stacl_fwd), blas_fwd, gflops(f_fwd, blas_fwd), blas_fwd / stacl_fwd);
    }
    printf("Timings on a shared machine are noisy: compare medians and ratios from one run, not absolute numbers "
           "across runs.\n");
    if (failed) rc = BENCH_EXIT_FAILURE;

    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "benchmark", PROG);
        cJSON_AddStringToObject(root, "model", "CLIP ViT-B/16 (width 768, 12 layers, 12 heads, MLP 3072, 197 tokens)");
        cJSON_AddNumberToObject(root, "frames", frames);
        cJSON_AddNumberToObject(root, "runs", runs);
        cJSON_AddNumberToObject(root, "warmup", warmup);
        cJSON_AddNumberToObject(root, "tolerance", TOLERANCE);
        cJSON_AddItemToObject(root, "host", bench_json_host(&host));
        cJSON_AddItemToObject(root, "device", bench_json_device(dev));
        cJSON_AddStringToObject(root, "tuning", bench_tuning(ctx));
        cJSON *ob = cJSON_AddObjectToObject(root, "openblas");
        cJSON_AddStringToObject(ob, "config", blas_config);
        cJSON_AddStringToObject(ob, "corename", blas_core);
        cJSON_AddNumberToObject(ob, "threads", blas_threads);
        cJSON *arr = cJSON_AddArrayToObject(root, "shapes");
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, json_shape(&res[i], runs));
        if (stacl_fwd > 0) {
            cJSON *fw = cJSON_AddObjectToObject(root, "per_forward");
            cJSON_AddBoolToObject(fw, "all_shapes", all_timed && n == n_all);
            cJSON_AddNumberToObject(fw, "flop", f_fwd);
            cJSON_AddNumberToObject(fw, "stacl_wall_ms", stacl_fwd);
            cJSON_AddNumberToObject(fw, "stacl_event_ms", ev_fwd);
            cJSON_AddNumberToObject(fw, "openblas_ms", blas_fwd);
            cJSON_AddNumberToObject(fw, "ratio", blas_fwd / stacl_fwd);
        }
        cJSON_AddBoolToObject(root, "ok", rc == 0);
        int jrc = bench_json_write(PROG, json_path, root);
        cJSON_Delete(root);
        if (jrc && !rc) rc = jrc;
    }
    for (int i = 0; i < n; i++) {
        free(res[i].wall);
        free(res[i].dev);
        free(res[i].blas);
    }
    stacl_ctx_free(ctx);
    return rc;
}
