/* vit.c: the CLIP ViT vision tower forward pass, as OpenAI defines it:
 * patch embedding (im2col + GEMM), class token, positional embedding,
 * ln_pre, pre-LN residual blocks (multi-head attention, MLP), ln_post on the
 * class token, projection. GEMMs go through CLBlast (gemm.c), the rest
 * through stacl's kernels (ops.c). The state owns one workspace buffer,
 * carved by a size table, sized once for max_frames. With an adapter
 * (stacl_classify_forward), the blocks run ST-Adapter's adapters through a
 * hook (adapter.c) and the head is ST-Adapter's classifier. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "ops.h"
#include "vit_internal.h"

struct stacl_state {
    stacl_model *model;
    int max_frames;
    workspace_plan plan;
    cl_mem ws;
    stacl_observer observer;
    void *observer_user;
    double last_ms;
    stacl_op_time times[STACL_PROFILE_MAX_OPS];
    int n_times;
};

workspace_plan stacl_vit_plan(const stacl_vision_config *c, size_t F) {
    const size_t W = (size_t)c->width, M = (size_t)c->mlp_width, L = (size_t)stacl_vision_tokens(c);
    const size_t P = L - 1, S = (size_t)c->image_size, p = (size_t)c->patch;
    workspace_plan w;
    size_t cursor = 0;
#define TAKE(field, count) (w.field = cursor, cursor += (count))
    TAKE(pixels, F * 3 * S * S);
    TAKE(cols, F * P * 3 * p * p);
    TAKE(patches, F * P * W);
    TAKE(x, F * L * W);
    TAKE(h, F * L * W);
    TAKE(qkv, F * L * 3 * W);
    TAKE(q, F * L * W);
    TAKE(k, F * L * W);
    TAKE(v, F * L * W);
    TAKE(scores, F * (size_t)c->heads * L * L);
    TAKE(attn, F * L * W);
    TAKE(mlp, F * L * M);
    TAKE(cls, F * W);
    TAKE(out, F * ((size_t)c->proj_dim > W ? (size_t)c->proj_dim : W));
#undef TAKE
    w.total = cursor;
    return w;
}

stacl_status stacl_state_create(stacl_state **out, stacl_model *model, int max_frames) {
    stacl_status st = STACL_OK;
    stacl_state *s = NULL;
    *out = NULL;
    if (!model || max_frames <= 0) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_state_create: need a model and max_frames > 0");
    stacl_ctx *ctx = model->ctx;
    s = calloc(1, sizeof *s);
    if (!s) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    s->model = model;
    s->max_frames = max_frames;
    s->plan = stacl_vit_plan(&model->cfg, (size_t)max_frames);
    char what[64];
    snprintf(what, sizeof what, "the workspace for %d frames", max_frames);
    TRY(stacl_device_buffer(ctx, s->plan.total * sizeof(float), CL_MEM_READ_WRITE, NULL, what,
                            "use fewer frames per pass", &s->ws));
    *out = s;
    s = NULL;
cleanup:
    stacl_state_free(s);
    return st;
}

void stacl_state_free(stacl_state *state) {
    if (!state) return;
    if (state->ws) clReleaseMemObject(state->ws);
    free(state);
}

void stacl_state_set_observer(stacl_state *state, stacl_observer fn, void *user) {
    state->observer = fn;
    state->observer_user = user;
}

double stacl_state_last_device_ms(const stacl_state *state) { return state->last_ms; }

int stacl_state_op_times(const stacl_state *state, const stacl_op_time **times) {
    *times = state->times;
    return state->n_times;
}

size_t stacl_forward_output_size(const stacl_model *model, int frames, stacl_output kind) {
    const stacl_vision_config *c = &model->cfg;
    if (kind == STACL_OUT_TOKENS) return (size_t)frames * (size_t)stacl_vision_tokens(c) * (size_t)c->width;
    return (size_t)frames * (size_t)(c->proj_dim ? c->proj_dim : c->width);
}

static stacl_status read_back(stacl_ctx *ctx, cl_mem buf, size_t off, size_t n, float *dst) {
    cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, off * sizeof(float), n * sizeof(float), dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "reading results back");
}

/* Hands a copy of an activation to the observer, if one is set. */
static stacl_status observe(stacl_state *s, const char *name, size_t off, const int64_t *shape, int ndim) {
    if (!s->observer) return STACL_OK;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *host = malloc(n * sizeof *host);
    if (!host) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory observing '%s'", name);
    stacl_status st = read_back(s->model->ctx, s->ws, off, n, host);
    if (st == STACL_OK) s->observer(s->observer_user, name, host, shape, ndim);
    free(host);
    return st;
}

stacl_block_dims stacl_vit_block_dims(const stacl_vision_config *c, size_t F) {
    return (stacl_block_dims){F, (size_t)stacl_vision_tokens(c), (size_t)c->width, (size_t)c->heads,
                              (size_t)c->mlp_width, c->ln_eps, c->act, 0};
}

stacl_block_ws stacl_vit_block_ws(cl_mem ws, const workspace_plan *w) {
    return (stacl_block_ws){ws, w->x, w->h, w->qkv, w->q, w->k, w->v, w->scores, w->attn, w->mlp, 0, 0};
}

stacl_status stacl_vit_embed(const stacl_model *m, cl_mem ws, const workspace_plan *w, const float *pixels, size_t F) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = m->ctx;
    const stacl_vision_config *c = &m->cfg;
    const vision_offsets *o = &m->off;
    cl_mem pm = m->params;
    const size_t W = (size_t)c->width, L = (size_t)stacl_vision_tokens(c), P = L - 1;
    const size_t S = (size_t)c->image_size, p = (size_t)c->patch, K = 3 * p * p;
    cl_int err = clEnqueueWriteBuffer(ctx->queue, ws, CL_TRUE, w->pixels * sizeof(float), F * 3 * S * S * sizeof(float),
                                      pixels, 0, NULL, NULL);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "uploading the frames");
    TRY(stacl_op_im2col(ctx, F, S, p, ws, w->pixels, ws, w->cols));
    TRY(stacl_linear(ctx, F * P, K, W, ws, w->cols, pm, o->patch_w, ws, w->patches, 0));    /* [F*P, W] */
    TRY(stacl_op_assemble_tokens(ctx, F, P, W, ws, w->patches, pm, o->cls, o->pos, ws, w->x));
    TRY(stacl_op_layernorm(ctx, F * L, W, c->ln_eps, ws, w->x, W, ws, w->x, W, pm, o->ln_pre_w, o->ln_pre_b));
cleanup:
    return st;
}

/* One pre-LN residual block (transformer.c) on this state's workspace,
 * with block l's adapters when ad is not NULL (clips * T = F). */
static stacl_status block_forward(stacl_state *s, const stacl_adapter *ad, int l, size_t clips, size_t F) {
    const vision_block_offsets *b = &s->model->off.blocks[l];
    const stacl_vision_config *c = &s->model->cfg;
    const workspace_plan *w = &s->plan;
    const stacl_block_dims dims = stacl_vit_block_dims(c, F);
    const stacl_block_ws bw = stacl_vit_block_ws(s->ws, w);
    if (!ad) return stacl_block_forward(s->model->ctx, &dims, s->model->params, b, &bw);
    adapter_call call = {ad, l, s->ws, w->x, w->qkv, w->mlp, clips, F / clips};
    return stacl_block_forward_hooked(s->model->ctx, &dims, s->model->params, b, &bw, stacl_adapter_hook, &call);
}

/* The classifier head of the adapted model (eval mode): the class tokens
 * averaged over each clip's frames, then ln_post, then fc (as the reference
 * code: the mean comes before ln_post). Logits land in the mlp region. */
static stacl_status adapter_head(stacl_state *s, const stacl_adapter *ad, size_t clips, size_t F, float *out) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = s->model->ctx;
    const stacl_vision_config *c = &s->model->cfg;
    const workspace_plan *w = &s->plan;
    const size_t W = (size_t)c->width, L = (size_t)stacl_vision_tokens(c), C = (size_t)ad->info.classes;
    /* The head runs on the backbone's device (where the class tokens and
     * ln_post are); a remote adapter keeps a copy of fc there. */
    cl_mem hb;
    size_t fc_w, fc_b;
    stacl_adapter_head_on_backbone(ad, &hb, &fc_w, &fc_b);
    TRY(stacl_op_adapter_mean_cls(ctx, clips, F / clips, L, W, s->ws, w->x, s->ws, w->cls));
    TRY(stacl_op_layernorm(ctx, clips, W, c->ln_eps, s->ws, w->cls, W, s->ws, w->cls, W, s->model->params,
                           s->model->off.ln_post_w, s->model->off.ln_post_b));
    TRY(stacl_linear(ctx, clips, W, C, s->ws, w->cls, hb, fc_w, s->ws, w->mlp, 0));
    TRY(stacl_op_bias_act(ctx, STACL_BIAS_ONLY, clips, C, s->ws, w->mlp, hb, fc_b));
    st = read_back(ctx, s->ws, w->mlp, clips * C, out);
cleanup:
    return st;
}

static stacl_status forward(stacl_state *s, const stacl_adapter *ad, size_t clips, const float *pixels, size_t F,
                            stacl_output kind, float *out) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = s->model->ctx;
    const stacl_vision_config *c = &s->model->cfg;
    const vision_offsets *o = &s->model->off;
    const workspace_plan *w = &s->plan;
    cl_mem ws = s->ws, pm = s->model->params;
    const size_t W = (size_t)c->width, L = (size_t)stacl_vision_tokens(c), P = L - 1;

    TRY(stacl_vit_embed(s->model, ws, w, pixels, F));
    TRY(observe(s, "patch_embed", w->patches, (int64_t[]){(int64_t)F, (int64_t)P, (int64_t)W}, 3));
    const int64_t tokens_shape[3] = {(int64_t)F, (int64_t)L, (int64_t)W};
    TRY(observe(s, "ln_pre", w->x, tokens_shape, 3));
    for (int l = 0; l < c->layers; l++) {
        TRY(block_forward(s, ad, l, clips, F));
        char name[32];
        snprintf(name, sizeof name, "block_%02d", l);
        TRY(observe(s, name, w->x, tokens_shape, 3));
    }
    if (kind == STACL_OUT_TOKENS) return read_back(ctx, ws, w->x, F * L * W, out);
    if (ad) return adapter_head(s, ad, clips, F, out);

    /* ln_post straight from the class token of each frame (row stride L*W). */
    TRY(stacl_op_layernorm(ctx, F, W, c->ln_eps, ws, w->x, L * W, ws, w->cls, W, pm, o->ln_post_w, o->ln_post_b));
    if (!c->proj_dim) return read_back(ctx, ws, w->cls, F * W, out);
    const size_t Pj = (size_t)c->proj_dim;
    TRY(stacl_gemm(ctx, 0, 0, F, Pj, W, 1.0f, ws, w->cls, W, pm, o->proj, Pj, 0.0f, ws, w->out, Pj)); /* [F, Pj] */
    st = read_back(ctx, ws, w->out, F * Pj, out);
cleanup:
    return st;
}

stacl_status stacl_vision_forward(stacl_state *state, const float *pixels, int frames, stacl_output kind, float *out) {
    if (!state || !pixels || !out) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_vision_forward: NULL argument");
    if (frames <= 0 || frames > state->max_frames)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_vision_forward: %d frames, the state holds 1..%d", frames,
                          state->max_frames);
    stacl_ctx *ctx = state->model->ctx;
    stacl_profile_begin(ctx);
    stacl_status st = forward(state, NULL, 1, pixels, (size_t)frames, kind, out);
    /* Always drain the queue and the events, also after a failure, so that
     * nothing still runs on buffers the caller may free. */
    stacl_status pst = stacl_profile_collect(ctx, state->times, &state->n_times, &state->last_ms);
    if (st == STACL_OK) st = pst;
    if (st == STACL_OK) stacl_clear_error();
    return st;
}

size_t stacl_classify_output_size(const stacl_adapter *adapter, int clips, int frames, stacl_output kind) {
    if (kind == STACL_OUT_TOKENS) return stacl_forward_output_size(adapter->model, clips * frames, kind);
    return (size_t)clips * (size_t)adapter->info.classes;
}

stacl_status stacl_classify_forward(stacl_state *state, const stacl_adapter *adapter, const float *pixels,
                                    int clips, int frames, stacl_output kind, float *out) {
    if (!state || !adapter || !pixels || !out) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_classify_forward: NULL argument");
    if (adapter->model != state->model)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_classify_forward: the adapter was loaded for another model");
    if (clips <= 0 || frames <= 0 || (long long)clips * frames > state->max_frames)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_classify_forward: %d clips of %d frames, the state holds %d frames",
                          clips, frames, state->max_frames);
    const stacl_vision_config *c = &state->model->cfg;
    const size_t F = (size_t)clips * (size_t)frames;
    if (kind != STACL_OUT_TOKENS) {
        if (!adapter->info.classes)
            return stacl_fail(STACL_ERR_MISSING, "stacl_classify_forward: the adapter checkpoint has no classifier head "
                              "(fc.weight, fc.bias): only tokens can be computed");
        /* The logits borrow the mlp region [F, L, M]. */
        if ((size_t)clips * (size_t)adapter->info.classes > F * (size_t)stacl_vision_tokens(c) * (size_t)c->mlp_width)
            return stacl_fail(STACL_ERR_UNSUPPORTED, "stacl_classify_forward: %d classes do not fit the workspace",
                              adapter->info.classes);
    }
    stacl_ctx *ctx = state->model->ctx;
    stacl_ctx *actx = stacl_adapter_is_remote(adapter) ? adapter->ctx : NULL;
    stacl_profile_begin(ctx);
    if (actx) stacl_profile_begin(actx);
    stacl_status st = forward(state, adapter, (size_t)clips, pixels, F, kind, out);
    stacl_status pst = stacl_profile_collect(ctx, state->times, &state->n_times, &state->last_ms);
    if (st == STACL_OK) st = pst;
    if (actx) { /* the adapter device's ops (and its side of "transfer") join the backbone's */
        stacl_op_time more[STACL_PROFILE_MAX_OPS];
        int n_more = 0;
        double more_ms = 0.0;
        pst = stacl_profile_collect(actx, more, &n_more, &more_ms);
        if (st == STACL_OK) st = pst;
        state->last_ms += more_ms;
        for (int i = 0; i < n_more; i++) {
            int j = 0;
            while (j < state->n_times && strcmp(state->times[j].op, more[i].op) != 0) j++;
            if (j == state->n_times) {
                if (j == STACL_PROFILE_MAX_OPS) continue;
                state->times[state->n_times++] = (stacl_op_time){more[i].op, 0.0, 0};
            }
            state->times[j].ms += more[i].ms;
            state->times[j].launches += more[i].launches;
        }
    }
    if (st == STACL_OK) stacl_clear_error();
    return st;
}
