/* stacl.h: the public C API of stacl, a C11 + OpenCL runtime for CLIP-based
 * video models with spatio-temporal adapters.
 *
 * Conventions: every function returns a stacl_status; on failure a message
 * with context (file, tensor, device) is kept per thread and returned by
 * stacl_last_error(). Handles are opaque; *_free(NULL) is a no-op. The library
 * never exits the process. */
#ifndef STACL_H
#define STACL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum stacl_status {
    STACL_OK = 0,
    STACL_ERR_INVALID_ARG,  /* a caller passed something out of range */
    STACL_ERR_IO,           /* a file could not be opened, read or written */
    STACL_ERR_FORMAT,       /* a file is malformed (safetensors, npy, json) */
    STACL_ERR_SHAPE,        /* a tensor has the wrong shape or dtype */
    STACL_ERR_MISSING,      /* a required tensor or key is absent */
    STACL_ERR_NO_DEVICE,    /* no OpenCL platform/device, or no match */
    STACL_ERR_OPENCL,       /* an OpenCL call failed */
    STACL_ERR_BUILD,        /* an OpenCL program failed to build */
    STACL_ERR_OUT_OF_MEMORY,/* host or device allocation failed */
    STACL_ERR_BLAS,         /* a CLBlast call failed */
    STACL_ERR_UNSUPPORTED   /* valid input that stacl does not handle yet */
} stacl_status;

const char *stacl_status_str(stacl_status status);
/* The message of the last failure in the calling thread ("" if none). */
const char *stacl_last_error(void);

const char *stacl_version(void);      /* "0.1.0" */
const char *stacl_git_revision(void); /* short hash at build time, or "unknown" */

/* ---- devices ---------------------------------------------------------- */

typedef struct stacl_device_info {
    int index;                 /* global index over all platforms */
    char platform[128];
    char name[128];
    char vendor[128];
    char driver_version[64];
    char device_version[256];  /* "OpenCL 3.0 PoCL ..." */
    char opencl_c_version[128]; /* "OpenCL C 1.2 ..." */
    int is_gpu, is_cpu, is_accelerator;
    unsigned compute_units;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint64_t local_mem_bytes;
    size_t max_work_group_size;
    int has_fp16, has_fp64;
} stacl_device_info;

/* Lists every device of every platform. *out is malloc'd (free() it). */
stacl_status stacl_list_devices(stacl_device_info **out, int *count);
/* Resolves a selector: NULL/"" = $STACL_DEVICE, else default (first GPU,
 * else first device); a decimal index; or a name substring matching exactly
 * one device. */
stacl_status stacl_select_device(const char *selector, int *index);

/* ---- context: one device, its queue, built kernels, CLBlast ----------- */

typedef struct stacl_ctx stacl_ctx;
stacl_status stacl_ctx_create(stacl_ctx **out, const char *device_selector);
void stacl_ctx_free(stacl_ctx *ctx);
const stacl_device_info *stacl_ctx_device(const stacl_ctx *ctx);

/* ---- frozen CLIP vision tower ----------------------------------------- */

typedef enum stacl_activation {
    STACL_ACT_QUICK_GELU = 0, /* x * sigmoid(1.702 x): OpenAI CLIP */
    STACL_ACT_GELU = 1        /* exact erf GELU */
} stacl_activation;

typedef enum stacl_layout {
    STACL_LAYOUT_OPENAI = 0, /* visual.transformer.resblocks.N.* */
    STACL_LAYOUT_HF = 1      /* vision_model.encoder.layers.N.* */
} stacl_layout;

typedef struct stacl_vision_config {
    int width;        /* d_model, e.g. 768 */
    int layers;       /* residual blocks, e.g. 12 */
    int heads;        /* attention heads, e.g. 12 */
    int mlp_width;    /* hidden width of the MLP, e.g. 3072 */
    int patch;        /* patch size, e.g. 16 */
    int image_size;   /* input side, e.g. 224 */
    int proj_dim;     /* output embedding width; 0 = no projection */
    float ln_eps;     /* 1e-5 */
    stacl_activation act;
    stacl_layout layout; /* the layout the weights came from */
} stacl_vision_config;

/* Tokens per frame: 1 class token + (image/patch)^2 patches. */
int stacl_vision_tokens(const stacl_vision_config *cfg);

typedef struct stacl_model stacl_model;
/* path: a directory with model.safetensors (+ config.json for Hugging Face
 * files) or a .safetensors file. Weights go to the ctx's device. */
stacl_status stacl_model_load(stacl_model **out, stacl_ctx *ctx, const char *path);
void stacl_model_free(stacl_model *model);
const stacl_vision_config *stacl_model_vision_config(const stacl_model *model);

/* Per-batch-shape workspace: every activation buffer of a forward pass over
 * up to max_frames frames, allocated once. */
typedef struct stacl_state stacl_state;
stacl_status stacl_state_create(stacl_state **out, stacl_model *model, int max_frames);
void stacl_state_free(stacl_state *state);

typedef enum stacl_output {
    STACL_OUT_EMBEDDING = 0, /* [frames, proj_dim] (or [frames, width] after
                                ln_post when the model has no projection) */
    STACL_OUT_TOKENS = 1     /* [frames, tokens, width]: last block output */
} stacl_output;

/* Optional observer of intermediate activations (for tests and debugging):
 * called after each stage with a host copy. name: "patch_embed" [F,P,W],
 * "ln_pre" [F,L,W], "block_00".. [F,L,W]. Slows the pass: reads back. */
typedef void (*stacl_observer)(void *user, const char *name, const float *data,
                               const int64_t *shape, int ndim);
void stacl_state_set_observer(stacl_state *state, stacl_observer fn, void *user);

/* frames: host [frames,3,H,W] normalized pixels. out: host buffer of
 * stacl_forward_output_size() floats. */
size_t stacl_forward_output_size(const stacl_model *model, int frames, stacl_output kind);
stacl_status stacl_vision_forward(stacl_state *state, const float *pixels, int frames,
                                  stacl_output kind, float *out);
/* Device time of the last forward in milliseconds (OpenCL event profiling),
 * in total and per op ("gemm", "layernorm", ...). */
double stacl_state_last_device_ms(const stacl_state *state);
typedef struct stacl_op_time {
    const char *op;
    double ms;
    int launches;
} stacl_op_time;
int stacl_state_op_times(const stacl_state *state, const stacl_op_time **times);

#ifdef __cplusplus
}
#endif
#endif
