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
    stacl_ctx *ctx;                   /* where params live: model->ctx, or another
                                         device's (stacl_adapter_load_on) */
    stacl_adapter_info info;
    adapter_site *pre_attn, *pre_mlp; /* [layers] each */
    size_t fc_w, fc_b;                /* head [classes, W], [classes] */
    size_t total;                     /* floats in params */
    cl_mem params;                    /* never the frozen model's buffer */
    /* Two devices (ctx != model->ctx): a copy of the head (fc_w, fc_b) on
     * the backbone's device, [classes * W + classes] floats, and the
     * adapter device's workspace and host staging (adapter_remote.c),
     * created on first use. Used by one forward pass at a time. */
    cl_mem head;
    struct adapter_remote *remote;
    /* Fixed point (adapter_fixed.h): the integer weights the kernels use;
     * NULL for a float adapter. */
    struct adapter_fixed *fx;
};

/* Whether the adapter's parameters live on another device than the
 * backbone's (stacl_adapter_load_on with another ctx). */
static inline int stacl_adapter_is_remote(const stacl_adapter *ad) { return ad->ctx != ad->model->ctx; }

/* The whole parameter buffer (adapter sites and head, ad->total floats) on
 * the adapter's own device, to or from the host, blocking; unlike the
 * training API (stacl_adapter_download/upload) also for a remote adapter:
 * callers that change the head must also update the backbone device's head
 * copy. */
stacl_status stacl_adapter_read_params(const stacl_adapter *ad, float *host);
stacl_status stacl_adapter_write_params(stacl_adapter *ad, const float *host);
/* The head's fc weight and bias as the backbone's device holds them:
 * the parameter buffer itself, or the head copy of a remote adapter. */
void stacl_adapter_head_on_backbone(const stacl_adapter *ad, cl_mem *buf, size_t *fc_w, size_t *fc_b);

/* One tensor of the adapter as the reference code names and shapes it,
 * and where it lives in the adapter's buffer. */
typedef struct adapter_tensor {
    char name[96];
    size_t off;        /* element offset in params */
    int ndim;
    int64_t shape[5];  /* the file's shape */
    int transposed;    /* the buffer holds the 2-D file tensor transposed */
    int decay;         /* a weight (weight decay applies), not a bias */
} adapter_tensor;

/* Every tensor of the adapter, adapters by block then the head; *out is
 * malloc'd (free()). Returns the count, or -1 when out of memory. */
int stacl_adapter_tensors(const stacl_adapter *ad, adapter_tensor **out);
/* Writes host arrays laid out as the adapter's buffer (params, a
 * gradient, optimizer moments) to one safetensors file (atomically) with
 * the reference names, array a's names prefixed with prefixes[a]. */
stacl_status stacl_adapter_write_host(const stacl_adapter *ad, int n_arrays, const float *const *arrays,
                                      const char *const *prefixes, const char *path, const char *const *meta_keys,
                                      const char *const *meta_values, int n_meta);
/* Reads the tensors `prefix` + name of an open file into a host array
 * laid out as the adapter's buffer (shapes checked). */
struct stacl_st_file;
stacl_status stacl_adapter_read_host(const stacl_adapter *ad, const struct stacl_st_file *f, const char *prefix,
                                     float *host);
/* Host <-> device copies of the whole parameter buffer (blocking), for
 * training: STACL_ERR_UNSUPPORTED for an adapter on another device than
 * the backbone (training runs on one device). */
stacl_status stacl_adapter_download(const stacl_adapter *ad, float *host);
stacl_status stacl_adapter_upload(stacl_adapter *ad, const float *host);
/* The first block with an adapter (layers when there is none). */
int stacl_adapter_first_layer(const stacl_adapter *ad);

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

/* Runs one adapter on the residual stream x [clips * T, 1 + P, W] of ws,
 * its bottleneck activations written to h (fc1) and y (conv), [F, P, A].
 * A fixed-point adapter writes int16 h and y there and also needs its
 * quantized input (int16 [F, 1 + P, W]) right after h: h must have room
 * for F * P * A + F * (1 + P) * W / 2 floats (the inference plan's qkv
 * region has).
 * For a remote adapter (ws on the backbone's device), x goes through host
 * staging to the adapter's own workspace on its device, the adapter runs
 * there (h and y unused), and x comes back; the copies are profiled as
 * "transfer" on both queues. */
stacl_status stacl_adapter_run_site(const stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x, size_t h,
                                    size_t y, size_t clips, size_t T);

/* The three adapter kernels (fc1, conv, fc2 + residual) on ctx, on the
 * residual stream x of ws, bottleneck activations in h and y (adapter.c). */
stacl_status stacl_adapter_run_kernels(const stacl_adapter *ad, stacl_ctx *ctx, const adapter_site *s, cl_mem ws,
                                       size_t x, size_t h, size_t y, size_t clips, size_t T);
/* adapter_remote.c: stacl_adapter_run_site for a remote adapter (ws on the
 * backbone's device), and the release of its workspace and staging (from
 * stacl_adapter_free). */
stacl_status stacl_adapter_run_site_remote(stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x,
                                           size_t clips, size_t T);
void stacl_adapter_remote_free(stacl_adapter *ad);

/* stacl_block_hook: runs the adapter of call->layer at `site`, if any. */
stacl_status stacl_adapter_hook(void *call, stacl_block_site site);

#endif
