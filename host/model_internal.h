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

/* ---- text tower (clip_text_weights.c) ---- */

/* Same canonical layout as the vision tower; the blocks have the same
 * tensors (vision_block_offsets). */
typedef struct text_offsets {
    size_t tok_emb;                /* [V, W] */
    size_t pos;                    /* [L, W] */
    size_t ln_final_w, ln_final_b; /* [W] */
    size_t proj;                   /* [W, P] (OpenAI orientation); unused if P = 0 */
    vision_block_offsets *blocks;  /* [layers], malloc'd */
    size_t total;                  /* floats, counted from 0 */
} text_offsets;

stacl_status stacl_text_plan(const stacl_text_config *cfg, text_offsets *off);
/* Adds base to every offset (the text weights follow the vision ones). */
void stacl_text_offsets_shift(const stacl_text_config *cfg, text_offsets *off, size_t base);
void stacl_text_offsets_free(text_offsets *off);

/* Reads the text tower of the safetensors file `file` (dir: its folder,
 * for config.json). *present = 0 when the file has no text tower (then
 * nothing else is set). A text tower that exists but cannot be used (no
 * head count, bad shapes) is an error. */
stacl_status stacl_clip_read_text(const char *file, const char *dir, int *present, stacl_text_config *cfg,
                                  text_offsets *off, float **params);

/* CLIP's 0-d `logit_scale` (log of the inverse temperature), if present. */
stacl_status stacl_clip_read_logit_scale(const char *file, int *present, float *value);

/* Helpers of clip_weights.c shared with clip_text_weights.c. */
struct stacl_st_file;
struct cJSON;
/* Reads tensor `name`, checking its shape, as f32 into dst. */
stacl_status stacl_clip_load(const struct stacl_st_file *f, const char *name, int ndim, const int64_t *dims,
                             float *dst);
/* Reads residual block l of either tower (prefix names the tower and
 * layout, e.g. "visual.transformer.resblocks"). */
stacl_status stacl_clip_read_block(const struct stacl_st_file *f, stacl_layout layout, const char *prefix, int l,
                                   int64_t w, int64_t m, const vision_block_offsets *b, float *p);
/* Reads one tower's part of a Hugging Face config.json: section
 * ("vision_config", also "<section>_dict", else the top level), the head
 * count (required), layer_norm_eps and hidden_act (quick_gelu or gelu), and
 * checks that the sizes given there agree with the tensors'. label
 * ("vision", "text") names the tower in messages. */
typedef struct stacl_hf_size {
    const char *key;
    int value;
} stacl_hf_size;
stacl_status stacl_hf_tower_config(const char *config_path, const char *section, const char *label,
                                   const stacl_hf_size *sizes, int n_sizes, int *heads, float *ln_eps,
                                   stacl_activation *act);
/* Sets (OpenAI layout: width/64) and checks the head count of a tower;
 * tower is "" or "text " for messages. */
stacl_status stacl_clip_heads(const char *file, const char *tower, stacl_layout layout, int width, int *heads);
/* Reads [rows, cols] into dst as [cols, rows]. */
stacl_status stacl_clip_load_transposed(const struct stacl_st_file *f, const char *name, int64_t rows, int64_t cols,
                                        float *dst);
/* Counts tensors named fmt % 0, 1, ... */
int stacl_clip_count_layers(const struct stacl_st_file *f, const char *fmt);
stacl_status stacl_json_read_file(const char *path, struct cJSON **out);

struct stacl_model {
    stacl_ctx *ctx;
    stacl_vision_config cfg;
    vision_offsets off;
    int has_text;              /* the file has a text tower, loaded below */
    stacl_text_config text_cfg;
    text_offsets text_off;     /* offsets into params, after the vision weights */
    stacl_status text_status;  /* why a text tower in the file is unusable */
    char text_error[1024];     /* (STACL_OK and "" when fine or absent) */
    int has_logit_scale;
    float logit_scale;         /* log of CLIP's inverse temperature (ln 100) */
    char file[4096];           /* the .safetensors file, for messages */
    cl_mem params;             /* every weight, one allocation */
    cl_mem packed;             /* the Linear weights packed for stacl's GEMM
                                * engine (gemm_rows.c), or NULL (CLBlast) */
};

#endif
