/* adapter.c: loads ST-Adapter weights (the reference implementation's
 * tensor names, in safetensors) into a device buffer of their own, and runs
 * one adapter on the residual stream through stacl's kernels
 * (kernels/adapter.cl). The forward pass that calls it is in vit.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter_fixed.h"
#include "clip_sampling.h"
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
    char used[256];
    const stacl_st_tensor *fc = find(f, "fc.weight", used, sizeof used);
    if (!n && !fc)
        return stacl_fail(STACL_ERR_MISSING, "%s: no adapter tensors (transformer.resblocks.N.adapter_pre_attn|"
                          "adapter_pre_mlp.*) and no head (fc.weight)", stacl_st_path(f));
    if (fc) {
        if (fc->ndim != 2 || fc->shape[1] != c->width || fc->shape[0] <= 0)
            return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' has %d dims, expected [classes, %d]",
                              stacl_st_path(f), used, fc->ndim, c->width);
        in->classes = (int)fc->shape[0];
    }
    if (!n) return STACL_OK; /* a head on the frozen backbone (the baseline) */
    if (in->width <= 0) return stacl_fail(STACL_ERR_MISSING, "%s: no adapter fc1.weight of shape [width, %d]",
                                          stacl_st_path(f), c->width);
    if (in->kernel[0] <= 0) return stacl_fail(STACL_ERR_MISSING, "%s: no adapter conv.weight of shape "
                                              "[%d, 1, kt, kh, kw]", stacl_st_path(f), in->width);
    for (int k = 0; k < 3; k++)
        if (in->kernel[k] % 2 == 0)
            return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: adapter conv kernel (%d, %d, %d): only odd sizes keep the "
                              "token grid's shape", stacl_st_path(f), in->kernel[0], in->kernel[1], in->kernel[2]);
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

/* Allocates the adapter shell (site tables) for a model. */
static stacl_status alloc_shell(stacl_adapter **out, stacl_model *model) {
    stacl_adapter *ad = calloc(1, sizeof *ad);
    if (ad) {
        ad->pre_attn = calloc((size_t)model->cfg.layers, sizeof *ad->pre_attn);
        ad->pre_mlp = calloc((size_t)model->cfg.layers, sizeof *ad->pre_mlp);
    }
    if (!ad || !ad->pre_attn || !ad->pre_mlp) {
        stacl_adapter_free(ad);
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    ad->model = model;
    ad->ctx = model->ctx;
    *out = ad;
    return STACL_OK;
}

/* Plans the buffer from the sites present and info (width, kernel, classes). */
static void plan(stacl_adapter *ad) {
    const stacl_vision_config *c = &ad->model->cfg;
    stacl_adapter_info *in = &ad->info;
    const size_t W = (size_t)c->width, A = (size_t)in->width;
    const size_t K = (size_t)in->kernel[0] * (size_t)in->kernel[1] * (size_t)in->kernel[2];
    size_t cursor = 0;
    in->n_pre_attn = in->n_pre_mlp = 0;
    for (int l = 0; l < c->layers; l++) {
        plan_site(&ad->pre_attn[l], W, A, K, &cursor);
        plan_site(&ad->pre_mlp[l], W, A, K, &cursor);
        in->n_pre_attn += ad->pre_attn[l].present;
        in->n_pre_mlp += ad->pre_mlp[l].present;
    }
    ad->fc_w = cursor; cursor += (size_t)in->classes * W;
    ad->fc_b = cursor; cursor += (size_t)in->classes;
    ad->total = cursor;
}

/* Puts host parameters in a new device buffer (read-write: training
 * updates it) on the adapter's device; for a remote adapter with a head,
 * also the head's copy on the backbone's device (the head runs there). */
static stacl_status upload(stacl_adapter *ad, const float *host) {
    stacl_status st = stacl_device_buffer(ad->ctx, (ad->total ? ad->total : 1) * sizeof(float),
                                          CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, host, "the adapter parameters",
                                          NULL, &ad->params);
    if (st != STACL_OK || !stacl_adapter_is_remote(ad) || !ad->info.classes) return st;
    /* fc_w and fc_b are adjacent (plan()). */
    const size_t n = (size_t)ad->info.classes * (size_t)ad->model->cfg.width + (size_t)ad->info.classes;
    return stacl_device_buffer(ad->model->ctx, n * sizeof(float), CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               host + ad->fc_w, "the adapter head's copy on the backbone device", NULL, &ad->head);
}

void stacl_adapter_head_on_backbone(const stacl_adapter *ad, cl_mem *buf, size_t *fc_w, size_t *fc_b) {
    if (ad->head) {
        *buf = ad->head;
        *fc_w = 0;
        *fc_b = ad->fc_b - ad->fc_w;
    } else {
        *buf = ad->params;
        *fc_w = ad->fc_w;
        *fc_b = ad->fc_b;
    }
}

static void add_tensor(adapter_tensor *t, int *n, size_t off, int transposed, int decay, int ndim,
                       const int64_t *shape, const char *fmt, ...) {
    adapter_tensor *e = &t[(*n)++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->name, sizeof e->name, fmt, ap);
    va_end(ap);
    e->off = off;
    e->transposed = transposed;
    e->decay = decay;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
}

int stacl_adapter_tensors(const stacl_adapter *ad, adapter_tensor **out) {
    const stacl_vision_config *c = &ad->model->cfg;
    const stacl_adapter_info *in = &ad->info;
    const int64_t W = c->width, A = in->width, C = in->classes;
    adapter_tensor *t = malloc(sizeof *t * (size_t)(6 * (in->n_pre_attn + in->n_pre_mlp) + 2 + 1));
    *out = t;
    if (!t) return -1;
    int n = 0;
    for (int l = 0; l < c->layers; l++)
        for (int k = 0; k < 2; k++) {
            const adapter_site *s = k ? &ad->pre_mlp[l] : &ad->pre_attn[l];
            const char *site = k ? SITE_MLP : SITE_ATTN;
            if (!s->present) continue;
            const char *pre = "transformer.resblocks";
            add_tensor(t, &n, s->fc1_w, 1, 1, 2, (int64_t[]){A, W}, "%s.%d.%s.fc1.weight", pre, l, site);
            add_tensor(t, &n, s->fc1_b, 0, 0, 1, (int64_t[]){A}, "%s.%d.%s.fc1.bias", pre, l, site);
            add_tensor(t, &n, s->conv_w, 0, 1, 5, (int64_t[]){A, 1, in->kernel[0], in->kernel[1], in->kernel[2]},
                       "%s.%d.%s.conv.weight", pre, l, site);
            add_tensor(t, &n, s->conv_b, 0, 0, 1, (int64_t[]){A}, "%s.%d.%s.conv.bias", pre, l, site);
            add_tensor(t, &n, s->fc2_w, 1, 1, 2, (int64_t[]){W, A}, "%s.%d.%s.fc2.weight", pre, l, site);
            add_tensor(t, &n, s->fc2_b, 0, 0, 1, (int64_t[]){W}, "%s.%d.%s.fc2.bias", pre, l, site);
        }
    if (C) {
        add_tensor(t, &n, ad->fc_w, 0, 1, 2, (int64_t[]){C, W}, "fc.weight");
        add_tensor(t, &n, ad->fc_b, 0, 0, 1, (int64_t[]){C}, "fc.bias");
    }
    return n;
}

int stacl_adapter_first_layer(const stacl_adapter *ad) {
    const int layers = ad->model->cfg.layers;
    for (int l = 0; l < layers; l++)
        if (ad->pre_attn[l].present || ad->pre_mlp[l].present) return l;
    return layers;
}

stacl_status stacl_adapter_read_host(const stacl_adapter *ad, const stacl_st_file *f, const char *prefix,
                                     float *host) {
    stacl_status st = STACL_OK;
    adapter_tensor *t = NULL;
    int n = stacl_adapter_tensors(ad, &t);
    if (n < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++) {
        char name[160], used[256];
        snprintf(name, sizeof name, "%s%s", prefix, t[i].name);
        if (*prefix) snprintf(used, sizeof used, "%s", name);
        else find(f, name, used, sizeof used); /* plain or visual.-prefixed */
        if (t[i].transposed) TRY(stacl_clip_load_transposed(f, used, t[i].shape[0], t[i].shape[1], host + t[i].off));
        else TRY(stacl_clip_load(f, used, t[i].ndim, t[i].shape, host + t[i].off));
    }
cleanup:
    free(t);
    return st;
}

stacl_status stacl_adapter_write_host(const stacl_adapter *ad, int n_arrays, const float *const *arrays,
                                      const char *const *prefixes, const char *path, const char *const *meta_keys,
                                      const char *const *meta_values, int n_meta) {
    stacl_status st = STACL_OK;
    adapter_tensor *t = NULL;
    stacl_st_entry *e = NULL;
    float *staged = NULL;
    char (*names)[160] = NULL;
    int n = stacl_adapter_tensors(ad, &t);
    if (n < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    const size_t total = ad->total ? ad->total : 1, count = (size_t)n * (size_t)n_arrays + 1;
    e = calloc(count, sizeof *e);
    names = calloc(count, sizeof *names);
    staged = malloc(total * (size_t)n_arrays * sizeof *staged);
    if (!e || !names || !staged) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
    int k = 0;
    for (int a = 0; a < n_arrays; a++)
        for (int i = 0; i < n; i++, k++) {
            const adapter_tensor *x = &t[i];
            const float *host = arrays[a];
            size_t numel = 1;
            for (int d = 0; d < x->ndim; d++) numel *= (size_t)x->shape[d];
            float *dst = staged + (size_t)a * total + x->off;
            if (x->transposed) { /* buffer [cols, rows] -> file [rows, cols] */
                const size_t rows = (size_t)x->shape[0], cols = (size_t)x->shape[1];
                for (size_t r = 0; r < rows; r++)
                    for (size_t c = 0; c < cols; c++) dst[r * cols + c] = host[x->off + c * rows + r];
            } else {
                memcpy(dst, host + x->off, numel * sizeof *dst);
            }
            snprintf(names[k], sizeof names[k], "%s%s", prefixes[a], x->name);
            e[k].name = names[k];
            e[k].dtype = STACL_DT_F32;
            e[k].ndim = x->ndim;
            for (int d = 0; d < x->ndim; d++) e[k].shape[d] = x->shape[d];
            e[k].data = dst;
        }
    TRY(stacl_st_write(path, e, k, meta_keys, meta_values, n_meta));
cleanup:
    free(staged);
    free(names);
    free(e);
    free(t);
    return st;
}

stacl_status stacl_adapter_load(stacl_adapter **out, stacl_model *model, const char *path) {
    return stacl_adapter_load_on(out, model, NULL, path);
}

stacl_status stacl_adapter_load_on(stacl_adapter **out, stacl_model *model, stacl_ctx *adapter_ctx,
                                   const char *path) {
    stacl_status st = STACL_OK;
    stacl_adapter *ad = NULL;
    stacl_st_file *f = NULL;
    float *host = NULL;
    if (!out || !model || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_load: NULL argument");
    *out = NULL;
    TRY(alloc_shell(&ad, model));
    if (adapter_ctx) ad->ctx = adapter_ctx;
    TRY(stacl_st_open(&f, path));
    TRY(scan(f, &model->cfg, ad));
    plan(ad);
    host = malloc((ad->total ? ad->total : 1) * sizeof *host);
    if (!host) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for %zu adapter parameters", ad->total);
    if (stacl_fx_is_checkpoint(f)) {
        TRY(stacl_fx_read_checkpoint(ad, f, host));
    } else {
        TRY(stacl_adapter_read_host(ad, f, "", host));
    }
    TRY(upload(ad, host));
    *out = ad;
    ad = NULL;
    stacl_clear_error();
cleanup:
    free(host);
    stacl_st_close(f);
    stacl_adapter_free(ad);
    return st;
}

/* Standard normal from two uniforms (Box-Muller). */
static double normal(uint64_t *rng) {
    double u1 = stacl_rng_double(rng), u2 = stacl_rng_double(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

stacl_status stacl_adapter_create(stacl_adapter **out, stacl_model *model, const stacl_adapter_config *cfg,
                                  uint64_t seed) {
    stacl_status st = STACL_OK;
    stacl_adapter *ad = NULL;
    float *host = NULL;
    adapter_tensor *t = NULL;
    if (!out || !model || !cfg) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_create: NULL argument");
    *out = NULL;
    const stacl_vision_config *c = &model->cfg;
    const int sites = cfg->layers > 0 && (cfg->pre_attn || cfg->pre_mlp);
    if (cfg->classes < 1) FAIL(STACL_ERR_INVALID_ARG, "adapter: need at least one class, got %d", cfg->classes);
    if (cfg->layers < 0 || cfg->layers > c->layers)
        FAIL(STACL_ERR_INVALID_ARG, "adapter: %d adapter layers requested, the model has %d blocks", cfg->layers,
             c->layers);
    if (sites) {
        if (cfg->width < 1 || cfg->width > 3 * c->width || cfg->width > c->mlp_width / 2)
            FAIL(STACL_ERR_INVALID_ARG, "adapter: width %d must be in [1, min(3 * width, mlp width / 2) = %d]",
                 cfg->width, 3 * c->width < c->mlp_width / 2 ? 3 * c->width : c->mlp_width / 2);
        for (int k = 0; k < 3; k++)
            if (cfg->kernel[k] < 1 || cfg->kernel[k] % 2 == 0 || cfg->kernel[k] > 15)
                FAIL(STACL_ERR_INVALID_ARG, "adapter: conv kernel (%d, %d, %d) must be odd sizes in [1, 15]",
                     cfg->kernel[0], cfg->kernel[1], cfg->kernel[2]);
    }
    TRY(alloc_shell(&ad, model));
    if (sites) {
        ad->info.width = cfg->width;
        for (int k = 0; k < 3; k++) ad->info.kernel[k] = cfg->kernel[k];
        for (int l = c->layers - cfg->layers; l < c->layers; l++) {
            ad->pre_attn[l].present = cfg->pre_attn != 0;
            ad->pre_mlp[l].present = cfg->pre_mlp != 0;
        }
    }
    ad->info.classes = cfg->classes;
    plan(ad);
    host = calloc(ad->total ? ad->total : 1, sizeof *host);
    int n = stacl_adapter_tensors(ad, &t);
    if (!host || n < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for %zu adapter parameters", ad->total);
    /* Separate streams for the adapters and the head: the head does not
     * depend on where the adapters are (the baseline and an adapted model
     * of the same seed start from the same head). */
    uint64_t rng = seed ^ 0xADA97E5ull, rng_head = seed ^ 0x4EADull;
    for (int i = 0; i < n; i++) {
        const adapter_tensor *x = &t[i];
        size_t numel = 1;
        for (int d = 0; d < x->ndim; d++) numel *= (size_t)x->shape[d];
        if (strcmp(x->name, "fc.weight") == 0) { /* head: normal(0, 0.02) */
            for (size_t j = 0; j < numel; j++) host[x->off + j] = (float)(0.02 * normal(&rng_head));
        } else if (x->transposed) { /* fc1/fc2 weight: nn.Linear's kaiming_uniform(a = sqrt 5) */
            const double bound = 1.0 / sqrt((double)x->shape[1]);
            for (size_t j = 0; j < numel; j++)
                host[x->off + j] = (float)((2.0 * stacl_rng_double(&rng) - 1.0) * bound);
        } /* conv weight and every bias: zero (calloc) */
    }
    TRY(upload(ad, host));
    *out = ad;
    ad = NULL;
cleanup:
    free(t);
    free(host);
    stacl_adapter_free(ad);
    return st;
}

stacl_status stacl_adapter_save(const stacl_adapter *adapter, const char *path) {
    stacl_status st = STACL_OK;
    float *host = NULL;
    if (!adapter || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_save: NULL argument");
    host = malloc((adapter->total ? adapter->total : 1) * sizeof *host);
    if (!host) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    TRY(stacl_adapter_read_params(adapter, host));
    if (adapter->fx) {
        TRY(stacl_fx_write_checkpoint(adapter, host, path));
        goto cleanup;
    }
    TRY(stacl_adapter_write_host(adapter, 1, (const float *const[]){host}, (const char *const[]){""}, path,
                                 (const char *const[]){"format"}, (const char *const[]){"pt"}, 1));
cleanup:
    free(host);
    return st;
}

stacl_status stacl_adapter_read_params(const stacl_adapter *ad, float *host) {
    stacl_ctx *ctx = ad->ctx;
    if (!ad->total) return STACL_OK;
    cl_int err = clEnqueueReadBuffer(ctx->queue, ad->params, CL_TRUE, 0, ad->total * sizeof(float), host, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "reading the adapter parameters");
}

stacl_status stacl_adapter_write_params(stacl_adapter *ad, const float *host) {
    stacl_ctx *ctx = ad->ctx;
    if (!ad->total) return STACL_OK;
    cl_int err = clEnqueueWriteBuffer(ctx->queue, ad->params, CL_TRUE, 0, ad->total * sizeof(float), host, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "updating the adapter parameters");
}

static stacl_status refuse_remote(const stacl_adapter *ad) {
    return stacl_fail(STACL_ERR_UNSUPPORTED, "training an adapter on another device ('%s') than the backbone's "
                      "('%s') is not supported: load it on the backbone's device", ad->ctx->info.name,
                      ad->model->ctx->info.name);
}

stacl_status stacl_adapter_download(const stacl_adapter *ad, float *host) {
    if (stacl_adapter_is_remote(ad)) return refuse_remote(ad);
    return stacl_adapter_read_params(ad, host);
}

stacl_status stacl_adapter_upload(stacl_adapter *ad, const float *host) {
    if (stacl_adapter_is_remote(ad)) return refuse_remote(ad);
    return stacl_adapter_write_params(ad, host);
}

void stacl_adapter_free(stacl_adapter *adapter) {
    if (!adapter) return;
    stacl_fx_free(adapter->fx);
    if (adapter->params) clReleaseMemObject(adapter->params);
    if (adapter->head) clReleaseMemObject(adapter->head);
    stacl_adapter_remote_free(adapter);
    free(adapter->pre_attn);
    free(adapter->pre_mlp);
    free(adapter);
}

void stacl_adapter_get_info(const stacl_adapter *adapter, stacl_adapter_info *info) { *info = adapter->info; }

/* The three adapter kernels on ctx, on the residual stream x of ws. */
stacl_status stacl_adapter_run_kernels(const stacl_adapter *ad, stacl_ctx *ctx, const adapter_site *s, cl_mem ws,
                                       size_t x, size_t h, size_t y, size_t clips, size_t T) {
    stacl_status st = STACL_OK;
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t F = clips * T, W = (size_t)c->width, A = (size_t)ad->info.width;
    const size_t grid = (size_t)(c->image_size / c->patch), P = grid * grid;
    const int *k = ad->info.kernel;
    TRY(stacl_op_adapter_fc1(ctx, F, P, W, A, ws, x, ad->params, s->fc1_w, s->fc1_b, ws, h));
    TRY(stacl_op_adapter_dwconv3d(ctx, clips, T, grid, A, (size_t)k[0], (size_t)k[1], (size_t)k[2], ws, h,
                                  ad->params, s->conv_w, s->conv_b, ws, y));
    TRY(stacl_op_adapter_fc2_residual(ctx, F, P, W, A, ws, y, ad->params, s->fc2_w, s->fc2_b, ws, x));
cleanup:
    return st;
}

stacl_status stacl_adapter_run_site(const stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x, size_t h,
                                    size_t y, size_t clips, size_t T) {
    /* The remote workspace is a cache inside the handle (allocated as
     * non-const by alloc_shell). */
    if (stacl_adapter_is_remote(ad)) return stacl_adapter_run_site_remote((stacl_adapter *)ad, s, ws, x, clips, T);
    if (ad->fx) {
        const stacl_vision_config *c = &ad->model->cfg;
        const size_t P = (size_t)stacl_vision_tokens(c) - 1;
        return stacl_fx_run_site(ad, s, ws, x, h, y, h + clips * T * P * (size_t)ad->info.width, clips, T);
    }
    return stacl_adapter_run_kernels(ad, ad->model->ctx, s, ws, x, h, y, clips, T);
}

stacl_status stacl_adapter_hook(void *user, stacl_block_site where) {
    const adapter_call *call = user;
    const stacl_adapter *ad = call->adapter;
    const adapter_site *s = where == STACL_HOOK_PRE_ATTN ? &ad->pre_attn[call->layer] : &ad->pre_mlp[call->layer];
    if (!s->present) return STACL_OK;
    return stacl_adapter_run_site(ad, s, call->ws, call->x, call->h, call->y, call->clips, call->T);
}
