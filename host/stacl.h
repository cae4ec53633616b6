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
/* As stacl_ctx_create, with stacl's kernels loaded from a program binary
 * file instead of built from source: one written by stacl_ctx_save_binary
 * (`stacl build-binary`; its device and kernel sources are checked), or a
 * raw device binary (a vendor's offline compiler output). Required for an
 * accelerator (CL_DEVICE_TYPE_ACCELERATOR), where stacl_ctx_create cannot
 * build. The binary must hold the adapter kernels (adapter_fc1,
 * adapter_dwconv3d, adapter_fc2_residual; a missing one is named); an op
 * whose kernel it lacks fails when run. Errors name the file and device. */
stacl_status stacl_ctx_create_from_binary(stacl_ctx **out, const char *device_selector, const char *binary_path);
/* Writes the context's program binary with stacl's header (device, kernel
 * sources, checksum; docs/file-formats.md), atomically. */
stacl_status stacl_ctx_save_binary(const stacl_ctx *ctx, const char *path);
void stacl_ctx_free(stacl_ctx *ctx);
const stacl_device_info *stacl_ctx_device(const stacl_ctx *ctx);
/* Which GEMM engine the context runs the backbone on, in words: stacl's own
 * kernels (the default on CPU devices) or CLBlast (elsewhere);
 * STACL_GEMM=stacl|clblast at context creation overrides. */
const char *stacl_ctx_gemm_engine(const stacl_ctx *ctx);

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
 * files) or a .safetensors file. Weights go to the ctx's device: the vision
 * tower, and the text tower when the file has one. */
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

/* ---- ST-Adapter (inference; see docs/adapters.md) ---------------------- */

/* Adapters and classifier head on a frozen model, in a device buffer of
 * their own. path: a safetensors file with the ST-Adapter reference code's
 * names (transformer.resblocks.N.adapter_pre_attn|adapter_pre_mlp.fc1|conv|
 * fc2.weight|bias, head fc.weight|bias), optionally prefixed `visual.`;
 * other tensors (a full state dict's backbone) are ignored. The
 * configuration comes from the names and shapes. */
typedef struct stacl_adapter stacl_adapter;
typedef struct stacl_adapter_info {
    int width;          /* adapter (bottleneck) channels */
    int kernel[3];      /* depthwise conv kernel (kt, kh, kw) */
    int n_pre_attn;     /* blocks with an adapter before attention */
    int n_pre_mlp;      /* blocks with an adapter before the MLP */
    int classes;        /* rows of fc.weight; 0 when the file has no head */
} stacl_adapter_info;
stacl_status stacl_adapter_load(stacl_adapter **out, stacl_model *model, const char *path);
/* The same with the adapters' parameters on adapter_ctx's device (NULL or
 * the model's ctx: the backbone's device, as stacl_adapter_load). With
 * another device, stacl_classify_forward moves the residual stream to it
 * and back (through host memory) around every adapter and reports the
 * copies' time as op "transfer" in stacl_state_op_times(); the classifier
 * head runs on the backbone's device from a copy of fc. adapter_ctx must
 * outlive the adapter. Inference only: stacl_trainer_create refuses such
 * an adapter. */
stacl_status stacl_adapter_load_on(stacl_adapter **out, stacl_model *model, stacl_ctx *adapter_ctx,
                                   const char *path);
void stacl_adapter_free(stacl_adapter *adapter);
/* An adapter on another device than the backbone's: the residual stream's
 * copies at each adapter are split into `chunks` pieces of whole frames,
 * pipelined so that the copies of one piece overlap the copies and kernels
 * of the next (docs/adapters.md, "Two devices"); 0 (the default) chooses
 * from the stream's size, a count above the frames of a pass is that many.
 * The results do not depend on it. No effect on a one-device adapter. */
stacl_status stacl_adapter_set_transfer_chunks(stacl_adapter *adapter, int chunks);
/* The chunk count a pass of `frames` frames uses (1 for a one-device or a
 * fixed-point adapter). */
int stacl_adapter_transfer_chunks(const stacl_adapter *adapter, int frames);
void stacl_adapter_get_info(const stacl_adapter *adapter, stacl_adapter_info *info);

/* The adapted model on `clips` clips of `frames` frames each (pixels
 * [clips, frames, 3, H, W]; clips * frames <= the state's max_frames).
 * STACL_OUT_EMBEDDING: logits [clips, classes] (eval mode: mean of the class
 * tokens over frames, ln_post, fc; needs a head). STACL_OUT_TOKENS: the last
 * block's tokens [clips * frames, tokens, width]. The state's observer sees
 * the same stages as in stacl_vision_forward. */
size_t stacl_classify_output_size(const stacl_adapter *adapter, int clips, int frames, stacl_output kind);
stacl_status stacl_classify_forward(stacl_state *state, const stacl_adapter *adapter, const float *pixels,
                                    int clips, int frames, stacl_output kind, float *out);

/* ---- ST-Adapter training (see docs/training.md) ------------------------- */

/* A new adapter set for training, initialized as the reference code does:
 * fc1/fc2 weights as nn.Linear's default (uniform in +-1/sqrt(fan_in)),
 * their biases, the conv weight and bias zero (every adapter starts as the
 * identity); head fc.weight normal(0, 0.02), fc.bias 0. Adapters go in the
 * last `layers` blocks, before attention and/or before the MLP; layers = 0
 * (or neither site) gives the frozen backbone with a linear head (the
 * frame-averaged baseline). Same seed, same weights. */
typedef struct stacl_adapter_config {
    int width;     /* bottleneck channels (384 for ViT-B) */
    int kernel[3]; /* depthwise conv (kt, kh, kw), odd: (3, 1, 1) */
    int layers;    /* the last `layers` blocks get adapters */
    int pre_attn;  /* adapter_pre_attn in those blocks */
    int pre_mlp;   /* adapter_pre_mlp in those blocks */
    int classes;   /* head outputs */
} stacl_adapter_config;
stacl_status stacl_adapter_create(stacl_adapter **out, stacl_model *model, const stacl_adapter_config *cfg,
                                  uint64_t seed);
/* Writes the adapter and head tensors (reference names, F32) to a
 * safetensors file, atomically (temp file + rename). */
stacl_status stacl_adapter_save(const stacl_adapter *adapter, const char *path);

/* One training step is: stacl_trainer_accumulate() over the micro-batches
 * of the batch (gradients add up), then stacl_trainer_step() (AdamW). */
/* Fixed-point adapters (docs/fpga.md, "Fixed-point training"): converts
 * fc1, conv and fc2 of every adapter site to `format` from their float
 * values (round half to even): "qI.F" with I + F = 16 (q8.8, q4.12, ...)
 * for 16-bit weights with F fractional bits, or "int8" for 8-bit weights
 * with a power-of-two scale per output channel; activations are q8.8 and
 * the head stays float. From then on the adapters run in integer kernels
 * (the residual stream stays float) and stacl_adapter_save writes an
 * integer checkpoint, which stacl_adapter_load reads back as fixed point.
 * The adapter must be on the backbone's device. */
stacl_status stacl_adapter_set_fixed_point(stacl_adapter *adapter, const char *format);
/* STACL_OK when `format` names a fixed-point format (as above). */
stacl_status stacl_adapter_fixed_format_check(const char *format);
/* The fixed-point format's name, or NULL for a float adapter. */
const char *stacl_adapter_fixed_point(const stacl_adapter *adapter);

typedef struct stacl_train_options {
    float weight_decay;    /* decoupled, on weights only (not biases): 0.01 */
    float beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    float label_smoothing; /* 0 */
    float dropout;         /* before the head's fc during training: 0.5 */
    float clip_norm;       /* global gradient norm cap; 0 = off */
    int recompute;         /* keep only each block's input and recompute
                              the block in the backward pass (less memory) */
    /* Fixed-point adapters (stacl_adapter_set_fixed_point) train with the
     * integer forward and backward kernels; the update is either applied
     * to an fp32 master copy that is quantized after each step (0), or
     * applied to the fixed-point weights with stochastic rounding, no
     * master copy (1). fixed_seed keys every stochastic rounding. */
    int fixed_sr_update;
    uint64_t fixed_seed;
} stacl_train_options;
stacl_train_options stacl_train_options_default(void);

typedef struct stacl_trainer stacl_trainer;
/* A trainer for `adapter` (which it updates in place), for micro-batches
 * of up to max_clips clips of `frames` frames. */
stacl_status stacl_trainer_create(stacl_trainer **out, stacl_adapter *adapter, int max_clips, int frames,
                                  const stacl_train_options *opt);
void stacl_trainer_free(stacl_trainer *t);
/* Device memory the trainer holds (workspace + gradients), in bytes. */
size_t stacl_trainer_device_bytes(const stacl_trainer *t);
/* Forward (training mode: dropout drawn from dropout_seed) and backward of
 * `clips` clips (pixels [clips, frames, 3, H, W], labels [clips]); the
 * gradients of loss_scale * (sum of the clips' cross-entropies) are added
 * to the accumulated ones (loss_scale = 1 / batch for a batch mean).
 * Optional outputs: loss_sum (unscaled sum of the clips' losses), logits
 * [clips, classes]. */
stacl_status stacl_trainer_accumulate(stacl_trainer *t, const float *pixels, const int32_t *labels, int clips,
                                      float loss_scale, uint64_t dropout_seed, double *loss_sum, float *logits);
/* AdamW with learning rate lr on the accumulated gradients times
 * grad_scale (1 / clips for a mean when accumulate ran with loss_scale 1),
 * clipped to the global norm cap first; then clears them. grad_norm: the
 * norm before clipping (may be NULL). */
stacl_status stacl_trainer_step(stacl_trainer *t, float lr, float grad_scale, double *grad_norm);
/* The accumulated gradients (before a step) as safetensors with the
 * adapter's tensor names; for checks against other implementations. */
stacl_status stacl_trainer_save_grads(const stacl_trainer *t, const char *path);
/* Optimizer state (AdamW moments, step count) plus caller metadata
 * (key/value strings: schedule, data position, seeds) in one safetensors
 * file, atomically; load restores it (the moments must match the adapter's
 * tensors) and returns the metadata through get_meta. */
stacl_status stacl_trainer_save_state(const stacl_trainer *t, const char *path, const char *const *keys,
                                      const char *const *values, int n);
stacl_status stacl_trainer_load_state(stacl_trainer *t, const char *path);
/* Metadata of the last loaded state (NULL when absent). */
const char *stacl_trainer_state_meta(const stacl_trainer *t, const char *key);
long long stacl_trainer_steps(const stacl_trainer *t);
/* Device time per op of the last accumulate (as stacl_state_op_times). */
int stacl_trainer_op_times(const stacl_trainer *t, const stacl_op_time **times, double *total_ms);

/* ---- frozen CLIP text tower -------------------------------------------- */

typedef struct stacl_text_config {
    int width;          /* d_model, e.g. 512 */
    int layers;         /* residual blocks, e.g. 12 */
    int heads;          /* attention heads (OpenAI layout: width / 64) */
    int mlp_width;      /* e.g. 2048 */
    int context_length; /* positions, 77 */
    int vocab_size;     /* token embedding rows, 49408 */
    int proj_dim;       /* output embedding width; 0 = no projection */
    float ln_eps;
    stacl_activation act;
    stacl_layout layout;
} stacl_text_config;

/* The text tower's config, or NULL when the model has no usable text tower
 * (then stacl_text_state_create says why). */
const stacl_text_config *stacl_model_text_config(const stacl_model *model);

/* exp(logit_scale): the factor CLIP multiplies cosine similarities by
 * (100 for the released models); 0 when the file has no logit_scale. */
float stacl_model_logit_scale(const stacl_model *model);

/* Workspace for encoding up to max_texts token rows in one pass. */
typedef struct stacl_text_state stacl_text_state;
stacl_status stacl_text_state_create(stacl_text_state **out, stacl_model *model, int max_texts);
void stacl_text_state_free(stacl_text_state *state);
/* Observer as for the vision tower; stages "text_embed" (token + position
 * embeddings) and "text_block_00".. [N, context, width]. */
void stacl_text_state_set_observer(stacl_text_state *state, stacl_observer fn, void *user);
/* tokens: [n, context_length] ids as stacl_tokenize() makes them (with the
 * model's context length). Pooling takes each row's first largest id
 * (<|endoftext|>), as CLIP's argmax. out: [n, proj_dim] floats, not
 * normalized ([n, width] after ln_final without a projection). */
size_t stacl_text_output_size(const stacl_model *model, int n);
stacl_status stacl_text_forward(stacl_text_state *state, const int32_t *tokens, int n, float *out);
double stacl_text_state_last_device_ms(const stacl_text_state *state);

/* ---- CLIP tokenizer (byte-level BPE, openai/CLIP simple_tokenizer) ----- */

#define STACL_CONTEXT_LENGTH 77 /* CLIP's text context */

typedef struct stacl_tokenizer stacl_tokenizer;
/* path: OpenAI's bpe_simple_vocab_16e6.txt.gz, or a folder holding Hugging
 * Face's vocab.json + merges.txt. */
stacl_status stacl_tokenizer_load(stacl_tokenizer **out, const char *path);
void stacl_tokenizer_free(stacl_tokenizer *tok);
/* The vocabulary to use when none is given: the model folder's (or a
 * .safetensors file's folder's) vocab.json + merges.txt or
 * bpe_simple_vocab_16e6.txt.gz, else the OpenAI file installed with stacl.
 * model_path may be NULL. Writes the chosen path into buf. */
stacl_status stacl_tokenizer_default_vocab(const char *model_path, char *buf, size_t cap);
int32_t stacl_tokenizer_sot(const stacl_tokenizer *tok); /* <|startoftext|>, 49406 */
int32_t stacl_tokenizer_eot(const stacl_tokenizer *tok); /* <|endoftext|>, 49407 */
int stacl_tokenizer_vocab_size(const stacl_tokenizer *tok); /* 49408 */
/* The BPE ids of `len` bytes of UTF-8 text, without <|startoftext|> and
 * <|endoftext|>. *ids is malloc'd (free() it; also when *count is 0). Invalid UTF-8 is
 * STACL_ERR_INVALID_ARG naming the byte offset. */
stacl_status stacl_tokenizer_encode(stacl_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *count);
/* One row of context_length ids as clip.tokenize() makes it:
 * <|startoftext|>, the ids, <|endoftext|>, zeros. A text that does not fit
 * is STACL_ERR_INVALID_ARG, or with truncate != 0 is cut and ends with
 * <|endoftext|>. text is NUL-terminated UTF-8. */
stacl_status stacl_tokenize(stacl_tokenizer *tok, const char *text, int context_length, int truncate, int32_t *row);

#ifdef __cplusplus
}
#endif
#endif
