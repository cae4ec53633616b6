/* vit_internal.h: the vision tower's workspace plan and the steps of its
 * forward pass that the inference path (vit.c) and the trainer (train.c)
 * share. */
#ifndef STACL_VIT_INTERNAL_H
#define STACL_VIT_INTERNAL_H

#include "model_internal.h"
#include "transformer.h"

/* Offsets (floats) of every activation in the workspace. F frames,
 * L tokens, P patches, W width, M MLP width, H heads, D head dim. */
typedef struct workspace_plan {
    size_t pixels;  /* [F, 3, S, S] */
    size_t cols;    /* [F*P, 3*p*p] */
    size_t patches; /* [F*P, W] */
    size_t x;       /* [F, L, W] residual stream */
    size_t h;       /* [F, L, W] normed input / merged heads */
    size_t qkv;     /* [F, L, 3W] */
    size_t q, k, v; /* [F, H, L, D] each */
    size_t scores;  /* [F*H, L, L] */
    size_t attn;    /* [F, H, L, D] */
    size_t mlp;     /* [F, L, M] */
    size_t cls;     /* [F, W] ln_post(class tokens) */
    size_t out;     /* [F, max(P_proj, W)] */
    size_t total;
} workspace_plan;

/* The workspace of a pass over F frames (offsets from 0). */
workspace_plan stacl_vit_plan(const stacl_vision_config *c, size_t F);

/* The dimensions and workspace regions of a residual block over F frames. */
stacl_block_dims stacl_vit_block_dims(const stacl_vision_config *c, size_t F);
stacl_block_ws stacl_vit_block_ws(cl_mem ws, const workspace_plan *w);

/* Uploads pixels [F, 3, S, S] and runs patch embedding, class token,
 * positional embedding and ln_pre: the residual stream lands in w->x, the
 * patch embeddings stay in w->patches. */
stacl_status stacl_vit_embed(const stacl_model *m, cl_mem ws, const workspace_plan *w, const float *pixels, size_t F);

#endif
