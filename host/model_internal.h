/* model_internal.h: where each frozen vision weight lives inside the
 * model's single parameter buffer (element offsets), and the loader that
 * fills that buffer from a CLIP checkpoint in either layout. */
#ifndef STACL_MODEL_INTERNAL_H
#define STACL_MODEL_INTERNAL_H

#include "runtime.h"

/* Canonical layout: linear weights [out, in] as nn.Linear; the attention
 * projection fused as [3W, W] (q, k, v rows, OpenAI's in_proj order). */
typedef struct vision_block_offsets {
    size_t ln1_w, ln1_b;   /* [W] */
    size_t qkv_w, qkv_b;   /* [3W, W], [3W] */
    size_t out_w, out_b;   /* [W, W], [W] */
    size_t ln2_w, ln2_b;   /* [W] */
    size_t fc1_w, fc1_b;   /* [M, W], [M] */
    size_t fc2_w, fc2_b;   /* [W, M], [W] */
} vision_block_offsets;

typedef struct vision_offsets {
    size_t patch_w;             /* [W, 3*p*p] */
    size_t cls;                 /* [W] */
    size_t pos;                 /* [L, W] */
    size_t ln_pre_w, ln_pre_b;  /* [W] */
    size_t ln_post_w, ln_post_b;/* [W] */
    size_t proj;                /* [W, P] (OpenAI orientation); unused if P = 0 */
    vision_block_offsets *blocks; /* [layers], malloc'd */
    size_t total;               /* floats in the buffer */
} vision_offsets;

/* Computes offsets for a config (allocates off->blocks). */
stacl_status stacl_vision_plan(const stacl_vision_config *cfg, vision_offsets *off);
void stacl_vision_offsets_free(vision_offsets *off);

/* Reads the vision tower of the CLIP checkpoint at path (directory or
 * .safetensors file): fills cfg, plans off and returns the parameters in a
 * malloc'd host array of off->total floats. */
stacl_status stacl_clip_read_vision(const char *path, stacl_vision_config *cfg, vision_offsets *off,
                                    float **params, char *resolved_path, size_t resolved_cap);

struct stacl_model {
    stacl_ctx *ctx;
    stacl_vision_config cfg;
    vision_offsets off;
    cl_mem params; /* every vision weight, one allocation */
};

#endif
