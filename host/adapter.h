/* adapter.h: ST-Adapter internals shared by adapter.c (loading, the
 * per-block adapter) and vit.c (the forward pass that calls it). */
#ifndef STACL_ADAPTER_H
#define STACL_ADAPTER_H

#include "model_internal.h"
#include "transformer.h"

/* One adapter's tensors: element offsets into the adapter's own buffer. */
typedef struct adapter_site {
    int present;
    size_t fc1_w, fc1_b;   /* [W, A] (the file's [A, W] transposed), [A] */
    size_t conv_w, conv_b; /* [A, kt, kh, kw] (the file's [A, 1, kt, kh, kw]), [A] */
    size_t fc2_w, fc2_b;   /* [A, W] (the file's [W, A] transposed), [W] */
} adapter_site;

struct stacl_adapter {
    stacl_model *model;
    stacl_adapter_info info;
    adapter_site *pre_attn, *pre_mlp; /* [layers] each */
    size_t fc_w, fc_b;                /* head [classes, W], [classes] */
    size_t total;                     /* floats in params */
    cl_mem params;                    /* never the frozen model's buffer */
};

/* What the block hook needs to run the adapters of one block on the
 * workspace: the residual stream x [clips * T, 1 + P, W] and two free
 * regions for the bottleneck activations. */
typedef struct adapter_call {
    const stacl_adapter *adapter;
    int layer;
    cl_mem ws;
    size_t x, h, y;
    size_t clips, T;
} adapter_call;

/* stacl_block_hook: runs the adapter of call->layer at `site`, if any. */
stacl_status stacl_adapter_hook(void *call, stacl_block_site site);

#endif
