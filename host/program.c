/* program.c: builds the kernels embedded from the kernels/ folder for one device,
 * printing nothing but keeping the build log in the error message, and caches
 * the device binary on disk keyed by device, driver, options and source hash,
 * so a second process does not recompile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "runtime.h"

typedef struct { const char *name; const char *source; size_t length; } stacl_kernel_source;
extern const stacl_kernel_source stacl_kernel_sources[];
extern const int stacl_kernel_source_count;

static const char *const kernel_names[K_COUNT] = {
    [K_LAYERNORM] = "layernorm_rows",
    [K_SOFTMAX_ROWS] = "softmax_rows",
    [K_BIAS_ADD] = "bias_add",
    [K_BIAS_QUICK_GELU] = "bias_quick_gelu",
    [K_BIAS_GELU] = "bias_gelu",
    [K_SPLIT_HEADS] = "split_heads",
    [K_MERGE_HEADS] = "merge_heads",
    [K_IM2COL_PATCHES] = "im2col_patches",
    [K_ASSEMBLE_TOKENS] = "assemble_tokens",
    [K_EMBED_TOKENS] = "embed_tokens",
    [K_GATHER_ROWS] = "gather_rows",
    [K_ADAPTER_FC1] = "adapter_fc1",
    [K_ADAPTER_DWCONV3D] = "adapter_dwconv3d",
    [K_ADAPTER_FC2_RESIDUAL] = "adapter_fc2_residual",
    [K_ADAPTER_MEAN_CLS] = "adapter_mean_cls",
    [K_BIAS_ACT_KEEP] = "bias_act_keep",
    [K_ACT_BACKWARD] = "act_backward",
    [K_LAYERNORM_BACKWARD] = "layernorm_backward_rows",
    [K_SOFTMAX_BACKWARD] = "softmax_backward_rows",
    [K_SPLIT_MERGED] = "split_merged",
    [K_JOIN_HEADS] = "join_heads",
    [K_ADAPTER_FC2_BACKWARD_INPUT] = "adapter_fc2_backward_input",
    [K_ADAPTER_FC2_BACKWARD_PARAMS] = "adapter_fc2_backward_params",
    [K_ADAPTER_DWCONV3D_BACKWARD_INPUT] = "adapter_dwconv3d_backward_input",
    [K_ADAPTER_DWCONV3D_BACKWARD_PARAMS] = "adapter_dwconv3d_backward_params",
    [K_ADAPTER_FC1_BACKWARD_INPUT] = "adapter_fc1_backward_input",
    [K_ADAPTER_FC1_BACKWARD_PARAMS] = "adapter_fc1_backward_params",
    [K_ADAPTER_FC1_Q] = "adapter_fc1_q", [K_ADAPTER_DWCONV3D_Q] = "adapter_dwconv3d_q",
    [K_ADAPTER_FC2_RESIDUAL_Q] = "adapter_fc2_residual_q",
    [K_FX_QUANTIZE_ROWS] = "fx_quantize_rows", [K_ADAPTER_FC2_UPDATE_Q] = "adapter_fc2_update_q",
    [K_FX_GRAD_EXPONENT] = "fx_grad_exponent", [K_FX_QUANTIZE_GRAD_SR] = "fx_quantize_grad_sr",
    [K_ADAPTER_FC2_BACKWARD_INPUT_Q] = "adapter_fc2_backward_input_q", [K_FX_NARROW_SR] = "fx_narrow_sr",
    [K_ADAPTER_DWCONV3D_BACKWARD_INPUT_Q] = "adapter_dwconv3d_backward_input_q",
    [K_ADAPTER_FC1_BACKWARD_INPUT_Q] = "adapter_fc1_backward_input_q",
    [K_ADAPTER_FC2_BACKWARD_PARAMS_Q] = "adapter_fc2_backward_params_q",
    [K_ADAPTER_DWCONV3D_BACKWARD_PARAMS_Q] = "adapter_dwconv3d_backward_params_q",
    [K_ADAPTER_FC1_BACKWARD_PARAMS_Q] = "adapter_fc1_backward_params_q",
    [K_FX_ACCUMULATE_GRAD] = "fx_accumulate_grad",
    [K_GEMM_ROWS] = "gemm_rows", [K_GEMM_ROWS_NT] = "gemm_rows_nt", [K_GEMM_PACK_PANELS] = "gemm_pack_panels",
    [K_SOFTMAX_ROWS_WIDE] = "softmax_rows_wide",
};

static const char build_options[] = "-cl-std=CL1.2";

const char *stacl_kernel_name(int k) { return k >= 0 && k < K_COUNT ? kernel_names[k] : NULL; }
const char *stacl_program_options(void) { return build_options; }

uint64_t stacl_kernel_source_hash(void) {
    uint64_t h = STACL_HASH_SEED;
    for (int i = 0; i < stacl_kernel_source_count; i++)
        h = stacl_hash64(h, stacl_kernel_sources[i].source, stacl_kernel_sources[i].length);
    return h;
}
static const char cache_magic[8] = {'S', 'T', 'A', 'C', 'L', 'B', 'I', 'N'};

/* Cache folder: $STACL_CACHE_DIR, else $XDG_CACHE_HOME/stacl, else
 * ~/.cache/stacl. An empty STACL_CACHE_DIR turns caching off. */
static int cache_path(const stacl_ctx *ctx, char *path, size_t cap) {
    char dir[1024];
    const char *env = getenv("STACL_CACHE_DIR");
    if (env) {
        if (!*env) return 0;
        snprintf(dir, sizeof dir, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
        snprintf(dir, sizeof dir, "%s/stacl", env);
    } else if ((env = getenv("HOME")) && *env) {
        snprintf(dir, sizeof dir, "%s/.cache", env);
        mkdir(dir, 0755);
        snprintf(dir, sizeof dir, "%s/.cache/stacl", env);
    } else {
        return 0;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return 0;
    uint64_t h = STACL_HASH_SEED;
    const char *parts[] = {ctx->info.platform, ctx->info.name, ctx->info.vendor, ctx->info.driver_version,
                           ctx->info.device_version, build_options};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) h = stacl_hash64(h, parts[i], strlen(parts[i]) + 1);
    for (int i = 0; i < stacl_kernel_source_count; i++)
        h = stacl_hash64(h, stacl_kernel_sources[i].source, stacl_kernel_sources[i].length);
    int n = snprintf(path, cap, "%s/kernels-%016llx.bin", dir, (unsigned long long)h);
    return n > 0 && (size_t)n < cap;
}

static cl_program load_cached(stacl_ctx *ctx, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    cl_program program = NULL;
    unsigned char *binary = NULL;
    char magic[8];
    uint64_t size = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, cache_magic, 8) != 0) goto done;
    if (fread(&size, sizeof size, 1, f) != 1 || size == 0 || size > (1u << 30)) goto done;
    binary = malloc(size);
    if (!binary || fread(binary, 1, size, f) != size) goto done;
    size_t len = (size_t)size;
    const unsigned char *bins[1] = {binary};
    cl_int bin_status = CL_SUCCESS, err = CL_SUCCESS;
    program = clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, bins, &bin_status, &err);
    if (err != CL_SUCCESS || bin_status != CL_SUCCESS) { program = NULL; goto done; }
    if (clBuildProgram(program, 1, &ctx->device, build_options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(program);
        program = NULL;
    }
done:
    free(binary);
    fclose(f);
    return program;
}

/* Best effort: a cache that cannot be written only costs a rebuild later. */
static void store_cached(stacl_ctx *ctx, cl_program program, const char *path) {
    size_t size = 0;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0)
        return;
    unsigned char *binary = malloc(size);
    if (!binary) return;
    unsigned char *bins[1] = {binary};
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        /* Per-process tmp name: processes may fill the cache at once. Quiet:
         * a failure here must not replace the caller's last error. */
        stacl_atomic_file af = {0};
        uint64_t size64 = size;
        if (stacl_atomic_open(&af, path, STACL_ATOMIC_PER_PROCESS | STACL_ATOMIC_QUIET) == STACL_OK &&
            stacl_atomic_write(&af, cache_magic, 8) == STACL_OK &&
            stacl_atomic_write(&af, &size64, sizeof size64) == STACL_OK &&
            stacl_atomic_write(&af, binary, size) == STACL_OK)
            (void)stacl_atomic_commit(&af);
        stacl_atomic_abort(&af);
    }
    (void)ctx;
    free(binary);
}

stacl_status stacl_program_from_source(stacl_ctx *ctx, const char **sources, const size_t *lengths, int n,
                                       cl_program *out) {
    cl_int err;
    cl_program program = clCreateProgramWithSource(ctx->context, (cl_uint)n, sources, lengths, &err);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "clCreateProgramWithSource");
    err = clBuildProgram(program, 1, &ctx->device, build_options, NULL, NULL);
    if (err != CL_SUCCESS) {
        size_t log_size = 0;
        clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
        char *log = calloc(log_size + 1, 1);
        if (log) clGetProgramBuildInfo(program, ctx->device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
        stacl_fail(STACL_ERR_BUILD, "building kernels (%s) for device '%s' failed: %s (%d); build log:\n%s",
                   build_options, ctx->info.name, stacl_cl_error_name(err), (int)err, log ? log : "(none)");
        free(log);
        clReleaseProgram(program);
        return STACL_ERR_BUILD;
    }
    *out = program;
    return STACL_OK;
}

static stacl_status build_embedded(stacl_ctx *ctx, cl_program *out) {
    const char *sources[32];
    size_t lengths[32];
    int n = stacl_kernel_source_count;
    if (n > 32) return stacl_fail(STACL_ERR_BUILD, "too many embedded kernel files (%d)", n);
    for (int i = 0; i < n; i++) {
        sources[i] = stacl_kernel_sources[i].source;
        lengths[i] = stacl_kernel_sources[i].length;
    }
    return stacl_program_from_source(ctx, sources, lengths, n, out);
}

static size_t floor_pow2(size_t n) {
    size_t p = 1;
    while (p * 2 <= n) p *= 2;
    return p;
}

stacl_status stacl_program_build(stacl_ctx *ctx) {
    stacl_status st = STACL_OK;
    char path[1100];
    if (ctx->info.is_accelerator && !ctx->info.is_gpu && !ctx->info.is_cpu)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "device '%s' (%s) is an accelerator (CL_DEVICE_TYPE_ACCELERATOR): "
                          "stacl cannot build its kernels from source there; give a program binary made for it "
                          "(--adapter-binary FILE, stacl_ctx_create_from_binary; see docs/adapters.md)",
                          ctx->info.name, ctx->info.platform);
    int cached = cache_path(ctx, path, sizeof path);
    ctx->program = cached ? load_cached(ctx, path) : NULL;
    ctx->program_from_cache = ctx->program != NULL;
    if (!ctx->program) {
        TRY(build_embedded(ctx, &ctx->program));
        if (cached) store_cached(ctx, ctx->program, path);
    }
    TRY(stacl_program_kernels(ctx, NULL));
cleanup:
    return st;
}

stacl_status stacl_program_kernels(stacl_ctx *ctx, const char *binary_path) {
    stacl_status st = STACL_OK;
    /* What the adapter device runs: a program binary must have these; any
     * other kernel it lacks stays NULL and its op fails when launched. */
    static const stacl_kernel_id required[] = {K_ADAPTER_FC1, K_ADAPTER_DWCONV3D, K_ADAPTER_FC2_RESIDUAL};
    for (int k = 0; k < K_COUNT; k++) {
        cl_int err;
        ctx->kernels[k] = clCreateKernel(ctx->program, kernel_names[k], &err);
        if (err == CL_SUCCESS) continue;
        ctx->kernels[k] = NULL;
        int needed = !binary_path;
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) needed |= required[i] == (stacl_kernel_id)k;
        if (!needed) continue;
        if (binary_path && (err == CL_INVALID_KERNEL_NAME || err == CL_INVALID_KERNEL_DEFINITION))
            FAIL(STACL_ERR_MISSING, "%s: the program binary has no kernel '%s', which stacl needs on device '%s' "
                 "(%s)", binary_path, kernel_names[k], ctx->info.name, stacl_cl_error_name(err));
        st = stacl_cl_fail(ctx, err, "clCreateKernel");
        stacl_fail_context(st, "kernel '%s'", kernel_names[k]);
        goto cleanup;
    }
    /* Row reductions use one work-group per row: the largest power of two the
     * device and every reduction kernel allows, whose local scratch fits the
     * device's local memory, at most 256 on GPUs and 16 on CPUs, where each
     * work-item is a loop iteration and barriers cost (measured on PoCL, small
     * preset: layernorm 31 ms at 256 vs 3.3 ms at 16, softmax 54 vs 16.5). */
    size_t wg = ctx->info.max_work_group_size ? ctx->info.max_work_group_size : 1;
    const stacl_kernel_id reducers[] = {K_LAYERNORM, K_SOFTMAX_ROWS, K_LAYERNORM_BACKWARD, K_SOFTMAX_BACKWARD};
    for (size_t i = 0; i < sizeof reducers / sizeof reducers[0]; i++) {
        size_t kwg = 0;
        if (clGetKernelWorkGroupInfo(ctx->kernels[reducers[i]], ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                     sizeof kwg, &kwg, NULL) == CL_SUCCESS && kwg > 0 && kwg < wg)
            wg = kwg;
    }
    const size_t cap = ctx->info.is_cpu ? 16 : 256;
    if (wg > cap) wg = cap;
    while (wg > 1 && ctx->info.local_mem_bytes > 0 && 2 * wg * sizeof(float) > ctx->info.local_mem_bytes) wg /= 2;
    ctx->reduce_wg = floor_pow2(wg);
cleanup:
    return st;
}

void stacl_program_release(stacl_ctx *ctx) {
    for (int k = 0; k < K_COUNT; k++) {
        if (ctx->kernels[k]) clReleaseKernel(ctx->kernels[k]);
        ctx->kernels[k] = NULL;
    }
    if (ctx->program) clReleaseProgram(ctx->program);
    ctx->program = NULL;
}
