/* runtime.h: the internals shared by the host runtime: the context (one
 * device, its in-order profiling queue, the built kernel program) and the
 * helpers that launch kernels and name OpenCL errors. */
#ifndef STACL_RUNTIME_H
#define STACL_RUNTIME_H

#include <CL/cl.h>

#include "stacl.h"
#include "status.h"

/* Every kernel stacl launches, by function name in the kernels/ folder. */
typedef enum stacl_kernel_id {
    K_LAYERNORM,
    K_SOFTMAX_ROWS,
    K_BIAS_ADD,
    K_BIAS_QUICK_GELU,
    K_BIAS_GELU,
    K_SPLIT_HEADS,
    K_MERGE_HEADS,
    K_IM2COL_PATCHES,
    K_ASSEMBLE_TOKENS,
    K_EMBED_TOKENS,
    K_GATHER_ROWS,
    K_ADAPTER_FC1,
    K_ADAPTER_DWCONV3D,
    K_ADAPTER_FC2_RESIDUAL,
    K_ADAPTER_MEAN_CLS,
    K_BIAS_ACT_KEEP,
    K_ACT_BACKWARD,
    K_LAYERNORM_BACKWARD,
    K_SOFTMAX_BACKWARD,
    K_SPLIT_MERGED,
    K_JOIN_HEADS,
    K_ADAPTER_FC2_BACKWARD_INPUT,
    K_ADAPTER_FC2_BACKWARD_PARAMS,
    K_ADAPTER_DWCONV3D_BACKWARD_INPUT,
    K_ADAPTER_DWCONV3D_BACKWARD_PARAMS,
    K_ADAPTER_FC1_BACKWARD_INPUT,
    K_ADAPTER_FC1_BACKWARD_PARAMS,
    K_ADAPTER_FC1_Q, K_ADAPTER_DWCONV3D_Q, K_ADAPTER_FC2_RESIDUAL_Q, /* adapter_fixed.cl */
    K_FX_QUANTIZE_ROWS, K_ADAPTER_FC2_UPDATE_Q, K_FX_GRAD_EXPONENT, K_FX_QUANTIZE_GRAD_SR, /* adapter_fixed_backward.cl */
    K_ADAPTER_FC2_BACKWARD_INPUT_Q, K_FX_NARROW_SR, K_ADAPTER_DWCONV3D_BACKWARD_INPUT_Q,
    K_ADAPTER_FC1_BACKWARD_INPUT_Q, K_ADAPTER_FC2_BACKWARD_PARAMS_Q, K_ADAPTER_DWCONV3D_BACKWARD_PARAMS_Q,
    K_ADAPTER_FC1_BACKWARD_PARAMS_Q, K_FX_ACCUMULATE_GRAD,
    K_GEMM_ROWS, K_GEMM_ROWS_NT, K_GEMM_PACK_PANELS, /* gemm_rows.cl */
    K_SOFTMAX_ROWS_WIDE,
    K_COUNT
} stacl_kernel_id;

struct stacl_ctx {
    stacl_device_info info;
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue; /* in-order, profiling enabled */
    int program_from_cache; /* the binary came from the on-disk cache */
    cl_program program;     /* all of the kernels/ folder in one program */
    cl_kernel kernels[K_COUNT];
    size_t reduce_wg;       /* work-group size for row reductions (power of 2) */
    struct stacl_tune_state *tune; /* CLBlast tuning in effect (tune_setup.c) */
    /* GEMM engine (gemm_rows.c): 1 = stacl's own kernels (CPU devices by
     * default), 0 = CLBlast; and the packed copies of frozen weights that
     * stacl_linear uses instead of the originals on the former. */
    int gemm_rows;
    size_t gemm_group; /* work-group size of its GEMM kernels */
    struct stacl_packed_weight *packed;
    size_t n_packed, cap_packed;
    /* Profiling: while on, every launch appends a record (see ops.c). */
    int profiling;
    struct stacl_profile_record *records;
    size_t n_records, cap_records;
};

const char *stacl_cl_error_name(cl_int err);
/* Records "<what> failed on <device>: CL_ERROR_NAME (code)" and returns the
 * matching status (OUT_OF_MEMORY for allocation errors, OPENCL otherwise). */
stacl_status stacl_cl_fail(const stacl_ctx *ctx, cl_int err, const char *what);

/* Allocates one device buffer of `bytes`, copying `host` when non-NULL.
 * Checks the device's largest-buffer limit first, so the message can say
 * what was asked for: `what` names the buffer ("the workspace for 8
 * frames"), `hint` (may be NULL) what the caller can do about it. */
stacl_status stacl_device_buffer(stacl_ctx *ctx, size_t bytes, cl_mem_flags flags, const void *host, const char *what,
                                 const char *hint, cl_mem *out);

/* Builds (or loads from the on-disk cache) the program of embedded kernels;
 * refused for an accelerator (no build from source there). */
stacl_status stacl_program_build(stacl_ctx *ctx);
/* Loads ctx->program from a program binary file (program_binary.c): stacl's
 * own format (stacl build-binary, docs/file-formats.md) or a raw device
 * binary; checks the device and the kernels. */
stacl_status stacl_program_load_binary(stacl_ctx *ctx, const char *path);
/* Writes ctx->program's device binary in stacl's format, atomically. */
stacl_status stacl_program_save_binary(const stacl_ctx *ctx, const char *path);
/* Creates the kernels of ctx->program and sizes the reductions. With
 * binary_path (a program loaded from that file), only the adapter's kernels
 * are required (a missing one is named); other missing kernels stay NULL. */
stacl_status stacl_program_kernels(stacl_ctx *ctx, const char *binary_path);
/* Kernel k's name; the build options; the hash of the embedded sources. */
const char *stacl_kernel_name(int k);
const char *stacl_program_options(void);
uint64_t stacl_kernel_source_hash(void);
void stacl_program_release(stacl_ctx *ctx);
/* Builds a program from sources for ctx's device; on failure returns
 * STACL_ERR_BUILD with the build log in the message. */
stacl_status stacl_program_from_source(stacl_ctx *ctx, const char **sources, const size_t *lengths, int n,
                                       cl_program *out);

/* Device discovery internals: platform/device handles for a global index. */
stacl_status stacl_device_handles(int index, cl_platform_id *platform, cl_device_id *device,
                                  stacl_device_info *info);

/* Rounds global size up to a multiple of local. */
static inline size_t stacl_round_up(size_t n, size_t multiple) {
    return (n + multiple - 1) / multiple * multiple;
}

/* 64-bit FNV-1a, for cache keys. */
uint64_t stacl_hash64(uint64_t h, const void *data, size_t n);
#define STACL_HASH_SEED 0xcbf29ce484222325ull

#endif
