/* random_clip.h: writes small (or full-size) random CLIP models in the real
 * file layouts, for tests, the demo and benchmarks: no weights can be
 * downloaded on CI machines. */
#ifndef STACL_RANDOM_CLIP_H
#define STACL_RANDOM_CLIP_H

#include <stdint.h>

#include "stacl.h"

typedef struct stacl_random_clip_spec {
    stacl_layout layout;   /* OpenAI names in model.safetensors, or HF names + config.json */
    int width, layers, heads, mlp_width, patch, image_size, proj_dim; /* proj_dim 0: no projection */
    stacl_activation act;  /* HF: written as hidden_act; OpenAI layout is always QuickGELU */
    int f16;               /* store float tensors as F16 instead of F32 */
    uint64_t seed;
    /* Text tower (written when text_layers > 0; needs proj_dim > 0): heads =
     * text_width / 64 in both layouts, MLP 4 * text_width, QuickGELU. */
    int text_width, text_layers, text_context, text_vocab; /* e.g. 512, 12, 77, 49408 */
} stacl_random_clip_spec;

/* Defaults: ViT-B/16 shape (768 wide, 12 layers, 12 heads, 3072 MLP, patch 16,
 * image 224, proj 512), OpenAI layout, QuickGELU, F32, seed 0, no text tower
 * (text_layers 0; width 512, context 77, vocab 49408 when enabled). */
stacl_random_clip_spec stacl_random_clip_default_spec(void);
/* The named shapes of the CLI and the benchmarks: "vit-b16" (the default
 * spec), "small" (width 192, 4 blocks, 3 heads, MLP 768, proj 128, text
 * width 128) and "tiny" (width 64, 2 blocks, 1 head, MLP 256, patch 8,
 * 32x32 images, proj 32, text width 64). Returns 0 for an unknown name. */
int stacl_random_clip_preset(const char *name, stacl_random_clip_spec *spec);

/* Creates dir if needed and writes dir/model.safetensors (+ dir/config.json
 * for the HF layout). Errors: INVALID_ARG (inconsistent spec, e.g. width not
 * divisible by heads, or OpenAI layout with heads != width/64), IO. */
stacl_status stacl_random_clip_write(const char *dir, const stacl_random_clip_spec *spec);

#endif
