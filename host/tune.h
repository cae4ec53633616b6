/* tune.h: CLBlast tuning for one device: the kernel parameters stacl hands
 * to CLBlastOverrideParameters (Xgemm, XgemmDirect), the per-shape choice
 * between CLBlast's two GEMM paths (indirect = pad/transpose + Xgemm, direct
 * = one XgemmDirect kernel), the on-disk cache that holds them per device,
 * the shipped defaults for PoCL CPU devices, and the self-check that guards
 * every applied set. The file format is in docs/performance.md.
 *
 * CLBlast's overrides are per device for the whole process: two contexts on
 * one device in one process share the last set applied (and the path last
 * forced), so use one tuning set per device and process. */
#ifndef STACL_TUNE_H
#define STACL_TUNE_H

#include <stddef.h>

#include "runtime.h"

/* The CLBlast kernel families stacl can override (CLBlast 1.5.3 names). The
 * GEMM routines (Sgemm, SgemmStridedBatched) read Xgemm and XgemmDirect, and
 * Copy/Pad/Transpose/Padtranspose for the indirect path's pre/post kernels. */
typedef enum stacl_tune_family {
    STACL_TUNE_XGEMM,
    STACL_TUNE_XGEMM_DIRECT,
    STACL_TUNE_COPY,
    STACL_TUNE_PAD,
    STACL_TUNE_TRANSPOSE,
    STACL_TUNE_PADTRANSPOSE,
    STACL_TUNE_FAMILIES
} stacl_tune_family;

#define STACL_TUNE_MAX_PARAMS 16

const char *stacl_tune_family_name(stacl_tune_family f);
/* The parameter names of a family, in CLBlast's order; *count set. */
const char *const *stacl_tune_param_names(stacl_tune_family f, int *count);

typedef struct stacl_tune_params {
    int set; /* 0: leave CLBlast's own value */
    size_t v[STACL_TUNE_MAX_PARAMS];
} stacl_tune_params;

typedef enum stacl_gemm_routine {
    STACL_ROUTINE_AUTO = 0, /* by min_indirect (or CLBlast's own rule) */
    STACL_ROUTINE_INDIRECT,
    STACL_ROUTINE_DIRECT
} stacl_gemm_routine;

/* A GEMM shape as gemm.c sees it (row-major), and the path measured best. */
typedef struct stacl_tune_shape {
    char name[16];
    size_t m, n, k, batch;
    int trans_a, trans_b;
    stacl_gemm_routine routine;
    double gflops, other_gflops; /* chosen, the other path as a batched call (0: not measured) */
    /* batch > 1 only: 1 = run as `batch` plain GEMM calls (each on `routine`)
     * instead of one strided-batched call, because that measured faster. */
    int loop;
    double loop_gflops; /* batch > 1: the loop of plain calls on the chosen path (0: not measured) */
} stacl_tune_shape;

#define STACL_TUNE_MAX_SHAPES 32

typedef struct stacl_tune {
    /* Key: a set applies only to the device, driver and CLBlast it was made on. */
    char device[128], driver[64], clblast[32];
    char origin[64]; /* "stacl tune", "builtin", ... (informational) */
    stacl_tune_params fam[STACL_TUNE_FAMILIES];
    /* Shapes not in the table: direct when m n k < min_indirect^3; 0 =
     * CLBlast's own threshold (its GemmRoutine database). */
    size_t min_indirect;
    stacl_tune_shape shapes[STACL_TUNE_MAX_SHAPES];
    int n_shapes;
} stacl_tune;

/* What the context runs with (ctx->tune), set up by stacl_tune_setup. */
typedef struct stacl_tune_state {
    stacl_tune t;
    int active;          /* overrides applied */
    char source[1100];   /* "cache FILE", "builtin", "fallback", "off ...", "none ..." */
    char note[2048];     /* why a cache was ignored or a set rejected ("" if none) */
} stacl_tune_state;

/* The installed CLBlast's version ("1.5.3"), from the shared library's file
 * name; "unknown" when it cannot be told. */
const char *stacl_clblast_version(void);

/* Fills the key of t from a device. */
void stacl_tune_set_key(stacl_tune *t, const stacl_device_info *info);
/* The cache file for a device: <cache dir>/tune-<hash of key>.json, where the
 * cache dir is the kernel cache's ($STACL_CACHE_DIR, ~/.cache/stacl). Fails
 * (STACL_ERR_IO) when caching is off or no folder can be made. */
stacl_status stacl_tune_cache_path(const stacl_device_info *info, char *path, size_t cap);

/* Writes / reads a tuning file (JSON). load checks the format and, when info
 * is not NULL, that the key matches that device (STACL_ERR_MISSING if not);
 * a malformed file is STACL_ERR_FORMAT, with the reason in the message. */
stacl_status stacl_tune_save(const stacl_tune *t, const char *path);
stacl_status stacl_tune_load(stacl_tune *t, const char *path, const stacl_device_info *info);

/* Shipped defaults: 1 and t filled for devices stacl has measured (PoCL CPU
 * devices), else 0. */
int stacl_tune_builtin(const stacl_device_info *info, stacl_tune *t);

/* CLBlast's generic parameters (its database's "default" entries), applied
 * when a set fails its self-check: CLBlast keeps overrides for the rest of
 * the process, so "back to defaults" means overriding with these. */
void stacl_tune_fallback(stacl_tune *t, const stacl_device_info *info);

/* Known-bad regions, refused before anything runs: GEMMK=1 (Xgemm's second
 * kernel) returns wrong results with CLBlast 1.5.3 on PoCL, and writes out
 * of bounds there (heap corruption, then a crash), so a self-check cannot
 * guard it. Returns 1 with a reason in why. */
int stacl_tune_known_bad(const stacl_tune_params *xgemm, char *why, size_t cap);

/* Applies every set family of t with CLBlastOverrideParameters. */
stacl_status stacl_tune_apply(stacl_ctx *ctx, const stacl_tune *t);
/* Small GEMMs on both paths (plain and strided-batched) against a host
 * reference; STACL_ERR_BLAS with the worst error when one is wrong. */
stacl_status stacl_tune_self_check(stacl_ctx *ctx);

/* Context start-up: picks the set ($STACL_TUNE: unset = the device's cache
 * file, else the builtin set; "off" = CLBlast's own; "builtin"; or a file),
 * applies it, self-checks it once per device and set in the process, and on
 * failure falls back to CLBlast's generic parameters (recorded in note). Only
 * fails when even the fallback computes wrong results. */
stacl_status stacl_tune_setup(stacl_ctx *ctx);
void stacl_tune_release(stacl_ctx *ctx);
/* "builtin", "cache /path", ... and the note, for tools and benchmarks. */
const stacl_tune_state *stacl_tune_current(const stacl_ctx *ctx);

/* The routine gemm.c should force for a shape (AUTO: leave CLBlast's rule). */
stacl_gemm_routine stacl_tune_routine_for(const stacl_ctx *ctx, size_t m, size_t n, size_t k, size_t batch,
                                          int trans_a, int trans_b);
/* 1 when the tuning set says to run this strided-batched shape as a loop of
 * plain GEMM calls (stacl_tune_shape.loop), else 0. */
int stacl_tune_batch_loop(const stacl_ctx *ctx, size_t m, size_t n, size_t k, size_t batch, int trans_a, int trans_b);
/* Forces CLBlast's path for the next GEMM calls on ctx's device (AUTO: no-op). */
stacl_status stacl_tune_force_routine(stacl_ctx *ctx, stacl_gemm_routine r);
/* One GEMM on a given path (gemm.c): CLBlastSgemm, or CLBlastSgemmStridedBatched
 * when batched; for the self-check and the tuner. */
stacl_status stacl_gemm_routine_call(stacl_ctx *ctx, stacl_gemm_routine routine, int batched, int trans_a,
                                     int trans_b, size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off,
                                     size_t lda, size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                     size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                     size_t c_stride, size_t batch);
/* A strided-batched GEMM on a given path, as one CLBlastSgemmStridedBatched
 * call or (loop) as `batch` CLBlastSgemm calls at the strided offsets. */
stacl_status stacl_gemm_batch_call(stacl_ctx *ctx, stacl_gemm_routine routine, int loop, int trans_a, int trans_b,
                                   size_t m, size_t n, size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                   size_t a_stride, cl_mem b, size_t b_off, size_t ldb, size_t b_stride, float beta,
                                   cl_mem c, size_t c_off, size_t ldc, size_t c_stride, size_t batch);

#endif
