/* transformer.h: one pre-LN residual block of CLIP's transformer, shared by
 * the vision tower (vit.c) and the text tower (text.c, with the causal
 * mask): x += attn(ln_1(x)); x += mlp(ln_2(x)). */
#ifndef STACL_TRANSFORMER_H
#define STACL_TRANSFORMER_H

#include "model_internal.h"

typedef struct stacl_block_dims {
    size_t seqs;    /* sequences in the pass (frames, texts) */
    size_t len;     /* tokens per sequence */
    size_t width, heads, mlp;
    float eps;
    stacl_activation act;
    int causal;     /* 1: each token attends only to itself and earlier ones */
} stacl_block_dims;

/* Workspace offsets (floats) of the activations a block uses. */
typedef struct stacl_block_ws {
    cl_mem ws;
    size_t x;       /* [S, L, W] residual stream, updated in place */
    size_t h;       /* [S, L, W] */
    size_t qkv;     /* [S, L, 3W] */
    size_t q, k, v; /* [S, H, L, D] each */
    size_t scores;  /* [S*H, L, L] */
    size_t attn;    /* [S, H, L, D] */
    size_t mlp;     /* [S, L, M] */
    size_t mlp_pre; /* [S, L, M] the MLP's pre-activation kept for training;
                       0: not kept (offset 0 is the pixels, never a block region) */
    int keep_heads; /* 1: q, k, v and attn are written out per head (training's
                       tape); 0: stacl's GEMM engine may read q, k, v straight
                       from qkv and write attn merged, skipping those regions */
} stacl_block_ws;

stacl_status stacl_block_forward(stacl_ctx *ctx, const stacl_block_dims *d, cl_mem params,
                                 const vision_block_offsets *b, const stacl_block_ws *w);

/* Where a block calls its hook: on the residual stream before ln_1 / ln_2
 * (ST-Adapter's adapter_pre_attn / adapter_pre_mlp). While the hook runs,
 * the block's qkv and mlp workspace regions are free for it to use. */
typedef enum { STACL_HOOK_PRE_ATTN, STACL_HOOK_PRE_MLP } stacl_block_site;
typedef stacl_status (*stacl_block_hook)(void *user, stacl_block_site site);
/* stacl_block_forward with a hook (NULL: none). */
stacl_status stacl_block_forward_hooked(stacl_ctx *ctx, const stacl_block_dims *d, cl_mem params,
                                        const vision_block_offsets *b, const stacl_block_ws *w,
                                        stacl_block_hook hook, void *user);

#endif
