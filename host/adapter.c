/* adapter.c: loads ST-Adapter weights (the reference implementation's
 * tensor names, in safetensors) into a device buffer of their own, and runs
 * one adapter on the residual stream through stacl's kernels
 * (kernels/adapter.cl). The forward pass that calls it is in vit.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ops.h"
#include "safetensors.h"

#define SITE_ATTN "adapter_pre_attn"
#define SITE_MLP "adapter_pre_mlp"

/* The name without an optional "visual." prefix (a full CLIP state dict). */
static const char *strip_prefix(const char *name) {
    return strncmp(name, "visual.", 7) == 0 ? name + 7 : name;
}

/* Parses "transformer.resblocks.N.adapter_pre_xxx.REST": returns 1 and sets
 * layer, site (0 attn, 1 mlp) and rest. */
static int parse_site(const char *name, int *layer, int *site, const char **rest) {
    const char *p = strip_prefix(name);
    static const char head[] = "transformer.resblocks.";
    if (strncmp(p, head, sizeof head - 1) != 0) return 0;
    p += sizeof head - 1;
    char *end = NULL;
    long l = strtol(p, &end, 10);
    if (end == p || *end != '.' || l < 0 || l > 100000) return 0;
    p = end + 1;
    if (strncmp(p, SITE_ATTN ".", sizeof SITE_ATTN) == 0) *site = 0, p += sizeof SITE_ATTN;
    else if (strncmp(p, SITE_MLP ".", sizeof SITE_MLP) == 0) *site = 1, p += sizeof SITE_MLP;
    else return 0;
    *layer = (int)l;
    *rest = p;
    return 1;
}

/* Finds the tensor under either naming (plain or "visual."-prefixed). */
static const stacl_st_tensor *find(const stacl_st_file *f, const char *name, char *used, size_t cap) {
    snprintf(used, cap, "%s", name);
    const stacl_st_tensor *t = stacl_st_find(f, used);
    if (t) return t;
    snprintf(used, cap, "visual.%s", name);
    t = stacl_st_find(f, used);
    if (!t) snprintf(used, cap, "%s", name);
    return t;
}

/* Reads `name` (either naming) with the given shape into dst. */
static stacl_status load(const stacl_st_file *f, const char *name, int ndim, const int64_t *dims, float *dst) {
    char used[256];
    find(f, name, used, sizeof used);
    return stacl_clip_load(f, used, ndim, dims, dst);
}

/* Reads `name` [rows, cols] (either naming) into dst transposed, as
 * [cols, rows]: the fc kernels want the weights input-major. */
static stacl_status load_t(const stacl_st_file *f, const char *name, int64_t rows, int64_t cols, float *dst) {
    char used[256];
    find(f, name, used, sizeof used);
    return stacl_clip_load_transposed(f, used, rows, cols, dst);
}

/* Scans the names: which sites exist, the adapter width and kernel (from
 * the first fc1/conv found), the classes (fc.weight rows). */
static stacl_status scan(const stacl_st_file *f, const stacl_vision_config *c, stacl_adapter *ad) {
    stacl_adapter_info *in = &ad->info;
    for (int i = 0; i < stacl_st_count(f); i++) {
        const stacl_st_tensor *t = stacl_st_at(f, i);
        int layer, site;
        const char *rest;
        if (!parse_site(t->name, &layer, &site, &rest)) continue;
        if (layer >= c->layers)
            return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' is for block %d, the model has %d blocks",
                              stacl_st_path(f), t->name, layer, c->layers);
        (site ? ad->pre_mlp : ad->pre_attn)[layer].present = 1;
        if (strcmp(rest, "fc1.weight") == 0 && !in->width && t->ndim == 2) in->width = (int)t->shape[0];
        if (strcmp(rest, "conv.weight") == 0 && !in->kernel[0] && t->ndim == 5)
            for (int k = 0; k < 3; k++) in->kernel[k] = (int)t->shape[2 + k];
    }
    int n = 0;
    for (int l = 0; l < c->layers; l++) n += ad->pre_attn[l].present + ad->pre_mlp[l].present;
    if (!n) return stacl_fail(STACL_ERR_MISSING, "%s: no adapter tensors (transformer.resblocks.N.adapter_pre_attn|"
                              "adapter_pre_mlp.*)", stacl_st_path(f));
    if (in->width <= 0) return stacl_fail(STACL_ERR_MISSING, "%s: no adapter fc1.weight of shape [width, %d]",
                                          stacl_st_path(f), c->width);
    if (in->kernel[0] <= 0) return stacl_fail(STACL_ERR_MISSING, "%s: no adapter conv.weight of shape "
                                              "[%d, 1, kt, kh, kw]", stacl_st_path(f), in->width);
    for (int k = 0; k < 3; k++)
        if (in->kernel[k] % 2 == 0)
            return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: adapter conv kernel (%d, %d, %d): only odd sizes keep the "
                              "token grid's shape", stacl_st_path(f), in->kernel[0], in->kernel[1], in->kernel[2]);
    char used[256];
    const stacl_st_tensor *fc = find(f, "fc.weight", used, sizeof used);
    if (fc) {
        if (fc->ndim != 2 || fc->shape[1] != c->width || fc->shape[0] <= 0)
            return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' has %d dims, expected [classes, %d]",
                              stacl_st_path(f), used, fc->ndim, c->width);
        in->classes = (int)fc->shape[0];
    }
    /* The bottleneck activations borrow the block's qkv [F, L, 3W] and mlp
     * [F, L, M] workspace regions (free while the adapter runs). */
    if (in->width > 3 * c->width || in->width > c->mlp_width)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: adapter width %d exceeds min(3 * width, mlp width) = %d",
                          stacl_st_path(f), in->width, 3 * c->width < c->mlp_width ? 3 * c->width : c->mlp_width);
    return STACL_OK;
}

/* Plans one site's offsets (when present) and counts its floats. */
static void plan_site(adapter_site *s, size_t W, size_t A, size_t K, size_t *cursor) {
    if (!s->present) return;
    s->fc1_w = *cursor; *cursor += A * W;
    s->fc1_b = *cursor; *cursor += A;
    s->conv_w = *cursor; *cursor += A * K;
    s->conv_b = *cursor; *cursor += A;
    s->fc2_w = *cursor; *cursor += W * A;
    s->fc2_b = *cursor; *cursor += W;
}

static stacl_status read_site(const stacl_st_file *f, int layer, const char *site, const adapter_site *s,
                              const stacl_adapter_info *in, int64_t W, float *p) {
    stacl_status st = STACL_OK;
    const int64_t A = in->width;
    char n[256];
#define LOADS(part, ndim, off, ...)                                                   \
    snprintf(n, sizeof n, "transformer.resblocks.%d.%s.%s", layer, site, part);       \
    TRY(load(f, n, ndim, (const int64_t[]){__VA_ARGS__}, p + s->off))
    snprintf(n, sizeof n, "transformer.resblocks.%d.%s.fc1.weight", layer, site);
    TRY(load_t(f, n, A, W, p + s->fc1_w));
    LOADS("fc1.bias", 1, fc1_b, A);
    LOADS("conv.weight", 5, conv_w, A, 1, in->kernel[0], in->kernel[1], in->kernel[2]);
    LOADS("conv.bias", 1, conv_b, A);
    snprintf(n, sizeof n, "transformer.resblocks.%d.%s.fc2.weight", layer, site);
    TRY(load_t(f, n, W, A, p + s->fc2_w));
    LOADS("fc2.bias", 1, fc2_b, W);
#undef LOADS
cleanup:
    return st;
}

stacl_status stacl_adapter_load(stacl_adapter **out, stacl_model *model, const char *path) {
    stacl_status st = STACL_OK;
    stacl_adapter *ad = NULL;
    stacl_st_file *f = NULL;
    float *host = NULL;
    if (!out || !model || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_load: NULL argument");
    *out = NULL;
    const stacl_vision_config *c = &model->cfg;
    ad = calloc(1, sizeof *ad);
    if (ad) {
        ad->pre_attn = calloc((size_t)c->layers, sizeof *ad->pre_attn);
        ad->pre_mlp = calloc((size_t)c->layers, sizeof *ad->pre_mlp);
    }
    if (!ad || !ad->pre_attn || !ad->pre_mlp) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    ad->model = model;
    TRY(stacl_st_open(&f, path));
    TRY(scan(f, c, ad));
    stacl_adapter_info *in = &ad->info;
    const size_t W = (size_t)c->width, A = (size_t)in->width;
    const size_t K = (size_t)in->kernel[0] * (size_t)in->kernel[1] * (size_t)in->kernel[2];
    size_t cursor = 0;
    for (int l = 0; l < c->layers; l++) {
        plan_site(&ad->pre_attn[l], W, A, K, &cursor);
        plan_site(&ad->pre_mlp[l], W, A, K, &cursor);
        in->n_pre_attn += ad->pre_attn[l].present;
        in->n_pre_mlp += ad->pre_mlp[l].present;
    }
    ad->fc_w = cursor; cursor += (size_t)in->classes * W;
    ad->fc_b = cursor; cursor += (size_t)in->classes;
    ad->total = cursor;
    host = malloc(cursor * sizeof *host);
    if (!host) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for %zu adapter parameters", cursor);
    for (int l = 0; l < c->layers; l++) {
        if (ad->pre_attn[l].present) TRY(read_site(f, l, SITE_ATTN, &ad->pre_attn[l], in, (int64_t)W, host));
        if (ad->pre_mlp[l].present) TRY(read_site(f, l, SITE_MLP, &ad->pre_mlp[l], in, (int64_t)W, host));
    }
    if (in->classes) {
        TRY(load(f, "fc.weight", 2, (const int64_t[]){in->classes, (int64_t)W}, host + ad->fc_w));
        TRY(load(f, "fc.bias", 1, (const int64_t[]){in->classes}, host + ad->fc_b));
    }
    TRY(stacl_device_buffer(model->ctx, cursor * sizeof(float), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, host,
                            "the adapter parameters", NULL, &ad->params));
    *out = ad;
    ad = NULL;
    stacl_clear_error();
cleanup:
    free(host);
    stacl_st_close(f);
    stacl_adapter_free(ad);
    return st;
}

void stacl_adapter_free(stacl_adapter *adapter) {
    if (!adapter) return;
    if (adapter->params) clReleaseMemObject(adapter->params);
    free(adapter->pre_attn);
    free(adapter->pre_mlp);
    free(adapter);
}

void stacl_adapter_get_info(const stacl_adapter *adapter, stacl_adapter_info *info) { *info = adapter->info; }

stacl_status stacl_adapter_hook(void *user, stacl_block_site where) {
    const adapter_call *call = user;
    const stacl_adapter *ad = call->adapter;
    const adapter_site *s = where == STACL_HOOK_PRE_ATTN ? &ad->pre_attn[call->layer] : &ad->pre_mlp[call->layer];
    if (!s->present) return STACL_OK;
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = ad->model->ctx;
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t F = call->clips * call->T, W = (size_t)c->width, A = (size_t)ad->info.width;
    const size_t grid = (size_t)(c->image_size / c->patch), P = grid * grid;
    const int *k = ad->info.kernel;
    TRY(stacl_op_adapter_fc1(ctx, F, P, W, A, call->ws, call->x, ad->params, s->fc1_w, s->fc1_b, call->ws, call->h));
    TRY(stacl_op_adapter_dwconv3d(ctx, call->clips, call->T, grid, A, (size_t)k[0], (size_t)k[1], (size_t)k[2],
                                  call->ws, call->h, ad->params, s->conv_w, s->conv_b, call->ws, call->y));
    TRY(stacl_op_adapter_fc2_residual(ctx, F, P, W, A, call->ws, call->y, ad->params, s->fc2_w, s->fc2_b, call->ws,
                                      call->x));
cleanup:
    return st;
}
