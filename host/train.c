/* train.c: one training pass of the ST-Adapter model: the forward pass
 * with every activation the backward pass needs kept in a preplanned
 * workspace ("tapes"), the classifier head and its loss on the host, and
 * the backward pass through the frozen backbone (activation gradients
 * only) into the adapters' weight gradients.
 *
 * Blocks before the first adapter run as in inference: no gradient reaches
 * them. Each later block's input is kept; with opt.recompute the block is
 * re-run from it just before its backward pass (one tape for all blocks),
 * otherwise every block has its own tape.
 *
 * The head (class tokens averaged over frames, ln_post, dropout, fc) is a
 * few thousand multiply-adds per clip and runs on the host in double
 * precision, where the dropout mask and the loss are cheap to get right. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clip_sampling.h"
#include "adapter_fixed.h"
#include "ops_backward.h"
#include "train_internal.h"

/* ---- workspace --------------------------------------------------------- */

static stacl_status copy_region(stacl_trainer *t, size_t src, size_t dst, size_t n) {
    stacl_ctx *ctx = t->model->ctx;
    cl_event *ev = stacl_profile_slot(ctx, "copy");
    cl_int err = clEnqueueCopyBuffer(ctx->queue, t->ws, t->ws, src * sizeof(float), dst * sizeof(float),
                                     n * sizeof(float), 0, NULL, ev);
    if (err != CL_SUCCESS) {
        stacl_profile_drop(ctx, ev);
        return stacl_cl_fail(ctx, err, "copying activations");
    }
    return STACL_OK;
}

static stacl_status zero_region(stacl_ctx *ctx, cl_mem buf, size_t off, size_t n) {
    const float zero = 0.0f;
    cl_event *ev = stacl_profile_slot(ctx, "copy");
    cl_int err = clEnqueueFillBuffer(ctx->queue, buf, &zero, sizeof zero, off * sizeof(float), n * sizeof(float), 0,
                                     NULL, ev);
    if (err != CL_SUCCESS) {
        stacl_profile_drop(ctx, ev);
        return stacl_cl_fail(ctx, err, "clearing a buffer");
    }
    return STACL_OK;
}

/* Lays out the tapes after the inference plan. */
static void plan_tapes(stacl_trainer *t, size_t F) {
    const stacl_vision_config *c = &t->model->cfg;
    const size_t W = (size_t)c->width, L = (size_t)stacl_vision_tokens(c), M = (size_t)c->mlp_width;
    const size_t H = (size_t)c->heads, P = L - 1, A = (size_t)t->ad->info.width;
    size_t cursor = t->plan.total;
#define TAKE(dst, count) ((dst) = cursor, cursor += (count))
    TAKE(t->g, F * L * W);
    for (int i = 0; i < c->layers - t->first; i++) TAKE(t->block_in[i], F * L * W);
    for (int i = 0; i < t->n_tapes; i++) {
        block_tape *b = &t->tapes[i];
        TAKE(b->x_attn, F * L * W);
        TAKE(b->q, F * L * W);
        TAKE(b->k, F * L * W);
        TAKE(b->v, F * L * W);
        TAKE(b->p, F * H * L * L);
        TAKE(b->x2, F * L * W);
        TAKE(b->x_mlp, F * L * W);
        TAKE(b->u, F * L * M);
        TAKE(b->ha, F * P * A);
        TAKE(b->ya, F * P * A);
        TAKE(b->hm, F * P * A);
        TAKE(b->ym, F * P * A);
    }
#undef TAKE
    t->ws_floats = cursor;
}

stacl_train_options stacl_train_options_default(void) {
    stacl_train_options o;
    memset(&o, 0, sizeof o);
    o.weight_decay = 0.01f;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.dropout = 0.5f;
    return o;
}

stacl_status stacl_trainer_create(stacl_trainer **out, stacl_adapter *ad, int max_clips, int frames,
                                  const stacl_train_options *opt) {
    stacl_status st = STACL_OK;
    stacl_trainer *t = NULL;
    if (!out || !ad || !opt) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_trainer_create: NULL argument");
    *out = NULL;
    const stacl_vision_config *c = &ad->model->cfg;
    if (max_clips < 1 || frames < 1)
        return stacl_fail(STACL_ERR_INVALID_ARG, "trainer: need clips >= 1 and frames >= 1, got %d and %d", max_clips,
                          frames);
    if (!ad->info.classes)
        return stacl_fail(STACL_ERR_MISSING, "trainer: the adapter has no classifier head (fc.weight)");
    if (opt->dropout < 0.0f || opt->dropout >= 1.0f || opt->label_smoothing < 0.0f || opt->label_smoothing > 1.0f ||
        opt->clip_norm < 0.0f || opt->weight_decay < 0.0f || !(opt->beta1 >= 0.0f && opt->beta1 < 1.0f) ||
        !(opt->beta2 >= 0.0f && opt->beta2 < 1.0f) || !(opt->eps > 0.0f))
        return stacl_fail(STACL_ERR_INVALID_ARG, "trainer: options out of range (dropout in [0, 1), label smoothing "
                          "in [0, 1], betas in [0, 1), eps > 0, clip norm and weight decay >= 0)");
    /* The adapters' backward scratch (dy, dh of the bottleneck) borrows the
     * mlp region [F, L, M]. */
    if (ad->info.width && 2 * (size_t)ad->info.width > (size_t)c->mlp_width)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "trainer: adapter width %d exceeds half the MLP width %d",
                          ad->info.width, c->mlp_width);
    t = calloc(1, sizeof *t);
    if (!t) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    t->ad = ad;
    t->model = ad->model;
    t->opt = *opt;
    t->max_clips = max_clips;
    t->T = frames;
    t->first = stacl_adapter_first_layer(ad);
    const int trained = c->layers - t->first;
    t->n_tapes = trained ? (opt->recompute ? 1 : trained) : 0;
    t->block_in = calloc((size_t)trained + 1, sizeof *t->block_in);
    t->tapes = calloc((size_t)t->n_tapes + 1, sizeof *t->tapes);
    if (!t->block_in || !t->tapes) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    const size_t F = (size_t)max_clips * (size_t)frames;
    t->plan = stacl_vit_plan(c, F);
    plan_tapes(t, F);
    /* Kernels take 32-bit element offsets. */
    if (t->ws_floats > UINT32_MAX)
        FAIL(STACL_ERR_UNSUPPORTED, "trainer: the training workspace for %d clips of %d frames needs %zu floats, "
             "more than the 2^32 a kernel can address: use fewer clips per pass%s", max_clips, frames, t->ws_floats,
             opt->recompute ? "" : " or recomputation");
    char what[96];
    snprintf(what, sizeof what, "the training workspace for %d clip(s) of %d frames", max_clips, frames);
    TRY(stacl_device_buffer(t->model->ctx, t->ws_floats * sizeof(float), CL_MEM_READ_WRITE, NULL, what,
                            opt->recompute ? "use fewer clips per pass" : "use fewer clips per pass or recomputation",
                            &t->ws));
    TRY(stacl_device_buffer(t->model->ctx, (ad->total ? ad->total : 1) * sizeof(float), CL_MEM_READ_WRITE, NULL,
                            "the adapter gradients", NULL, &t->grad));
    TRY(zero_region(t->model->ctx, t->grad, 0, ad->total ? ad->total : 1));
    TRY(stacl_trainer_optim_init(t));
    TRY(stacl_trainer_fx_init(t));
    *out = t;
    t = NULL;
cleanup:
    stacl_trainer_free(t);
    return st;
}

size_t stacl_trainer_device_bytes(const stacl_trainer *t) {
    return (t->ws_floats + t->ad->total) * sizeof(float);
}

int stacl_trainer_op_times(const stacl_trainer *t, const stacl_op_time **times, double *total_ms) {
    *times = t->times;
    if (total_ms) *total_ms = t->last_ms;
    return t->n_times;
}

/* ---- forward ----------------------------------------------------------- */

typedef struct tape_call {
    stacl_trainer *t;
    int layer;
    const block_tape *tape;
    size_t clips;
} tape_call;

/* One adapter on the residual stream, its bottleneck activations into the
 * tape; a fixed-point adapter quantizes its input into the qkv region
 * (free at both sites). */
static stacl_status run_site(stacl_trainer *t, const adapter_site *s, size_t h, size_t y, size_t clips) {
    if (t->ad->fx) return stacl_fx_run_site(t->ad, s, t->ws, t->plan.x, h, y, t->plan.qkv, clips, (size_t)t->T);
    return stacl_adapter_run_site(t->ad, s, t->ws, t->plan.x, h, y, clips, (size_t)t->T);
}

/* The block hook of the training forward: keeps each adapter's input and
 * bottleneck activations and each layer norm's input. */
static stacl_status tape_hook(void *user, stacl_block_site where) {
    const tape_call *call = user;
    stacl_trainer *t = call->t;
    const stacl_adapter *ad = t->ad;
    const block_tape *b = call->tape;
    const size_t F = call->clips * (size_t)t->T, FLW = F * (size_t)stacl_vision_tokens(&t->model->cfg) *
                                                          (size_t)t->model->cfg.width;
    const size_t x = t->plan.x;
    stacl_status st = STACL_OK;
    if (where == STACL_HOOK_PRE_ATTN) {
        /* The block's input (the pre-attention adapter's input) is
         * block_in, kept by the caller. */
        const adapter_site *s = &ad->pre_attn[call->layer];
        if (s->present) TRY(run_site(t, s, b->ha, b->ya, call->clips));
        TRY(copy_region(t, x, b->x_attn, FLW));
    } else {
        const adapter_site *s = &ad->pre_mlp[call->layer];
        if (s->present) {
            TRY(copy_region(t, x, b->x2, FLW));
            TRY(run_site(t, s, b->hm, b->ym, call->clips));
        }
        TRY(copy_region(t, x, b->x_mlp, FLW));
    }
cleanup:
    return st;
}

/* Block l on the residual stream plan.x, keeping its activations in tape. */
static stacl_status block_forward_taped(stacl_trainer *t, int l, const block_tape *tape, size_t clips) {
    const stacl_vision_config *c = &t->model->cfg;
    const size_t F = clips * (size_t)t->T;
    const stacl_block_dims dims = stacl_vit_block_dims(c, F);
    stacl_block_ws bw = stacl_vit_block_ws(t->ws, &t->plan);
    bw.q = tape->q;
    bw.k = tape->k;
    bw.v = tape->v;
    bw.scores = tape->p;
    bw.mlp_pre = tape->u;
    bw.keep_heads = 1;
    tape_call call = {t, l, tape, clips};
    return stacl_block_forward_hooked(t->model->ctx, &dims, t->model->params, &t->model->off.blocks[l], &bw,
                                      tape_hook, &call);
}

static const block_tape *tape_of(const stacl_trainer *t, int l) {
    return &t->tapes[t->opt.recompute ? 0 : l - t->first];
}

/* Embedding and every block; leaves the last block's tokens in plan.x. */
static stacl_status forward_blocks(stacl_trainer *t, const float *pixels, size_t clips) {
    stacl_status st = STACL_OK;
    const stacl_vision_config *c = &t->model->cfg;
    const size_t F = clips * (size_t)t->T, FLW = F * (size_t)stacl_vision_tokens(c) * (size_t)c->width;
    TRY(stacl_vit_embed(t->model, t->ws, &t->plan, pixels, F));
    const stacl_block_dims dims = stacl_vit_block_dims(c, F);
    stacl_block_ws bw = stacl_vit_block_ws(t->ws, &t->plan);
    bw.keep_heads = 1; /* the recomputing forward runs the taped forward's kernels: same bits */
    for (int l = 0; l < c->layers; l++) {
        if (l < t->first) {
            TRY(stacl_block_forward(t->model->ctx, &dims, t->model->params, &t->model->off.blocks[l], &bw));
            continue;
        }
        TRY(copy_region(t, t->plan.x, t->block_in[l - t->first], FLW));
        if (t->opt.recompute) { /* no tape now: the backward pass re-runs the block */
            adapter_call call = {t->ad, l, t->ws, t->plan.x, t->plan.qkv, t->plan.mlp, clips, (size_t)t->T};
            TRY(stacl_block_forward_hooked(t->model->ctx, &dims, t->model->params, &t->model->off.blocks[l], &bw,
                                           stacl_adapter_hook, &call));
        } else {
            TRY(block_forward_taped(t, l, tape_of(t, l), clips));
        }
    }
cleanup:
    return st;
}

/* ---- head and loss (host, double precision) ---------------------------- */

/* logits and loss of one clip from its frame-averaged class token m [W];
 * with grad != NULL also the head's gradients (added, scaled) and dm [W].
 * mask [W]: 1 / (1 - p) for kept features, 0 for dropped (NULL: eval). */
static double head_clip(stacl_trainer *t, const float *m, int label, const double *mask, double scale,
                        float *logits, double *dm) {
    const stacl_vision_config *c = &t->model->cfg;
    const int W = c->width, C = t->ad->info.classes;
    const float *gamma = t->ln_post, *beta = t->ln_post + W;
    const float *fw = t->params + t->ad->fc_w, *fb = t->params + t->ad->fc_b;
    double *xhat = t->scratch_d, *z = xhat + W, *dlog = z + W, *dz = dlog + C;
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < W; j++) mean += m[j];
    mean /= W;
    for (int j = 0; j < W; j++) var += (m[j] - mean) * (m[j] - mean);
    var /= W;
    const double rstd = 1.0 / sqrt(var + (double)c->ln_eps);
    for (int j = 0; j < W; j++) {
        xhat[j] = (m[j] - mean) * rstd;
        z[j] = (xhat[j] * gamma[j] + beta[j]) * (mask ? mask[j] : 1.0);
    }
    double mx = -INFINITY;
    for (int k = 0; k < C; k++) {
        double a = fb[k];
        for (int j = 0; j < W; j++) a += z[j] * fw[(size_t)k * W + j];
        dlog[k] = a;
        if (logits) logits[k] = (float)a;
        if (a > mx) mx = a;
    }
    double sum = 0.0;
    for (int k = 0; k < C; k++) sum += exp(dlog[k] - mx);
    const double lse = mx + log(sum), eps = t->opt.label_smoothing;
    double loss = 0.0;
    for (int k = 0; k < C; k++) {
        const double logp = dlog[k] - lse, q = (k == label ? 1.0 - eps : 0.0) + eps / C;
        loss -= q * logp;
        dlog[k] = (exp(logp) - q) * scale; /* d(scale * loss) / d logit */
    }
    if (!dm) return loss;
    float *gw = t->grad_host + t->ad->fc_w, *gb = t->grad_host + t->ad->fc_b;
    for (int j = 0; j < W; j++) dz[j] = 0.0;
    for (int k = 0; k < C; k++) {
        gb[k] += (float)dlog[k];
        for (int j = 0; j < W; j++) {
            gw[(size_t)k * W + j] += (float)(dlog[k] * z[j]);
            dz[j] += dlog[k] * fw[(size_t)k * W + j];
        }
    }
    /* Through dropout and ln_post: dm = rstd (g - mean(g) - xhat mean(g xhat)). */
    double mg = 0.0, mgx = 0.0;
    for (int j = 0; j < W; j++) {
        dz[j] *= (mask ? mask[j] : 1.0) * gamma[j];
        mg += dz[j];
        mgx += dz[j] * xhat[j];
    }
    mg /= W;
    mgx /= W;
    for (int j = 0; j < W; j++) dm[j] = rstd * (dz[j] - mg - xhat[j] * mgx);
    return loss;
}

/* ---- backward ---------------------------------------------------------- */

/* One adapter's backward: its weight gradients, and the input gradient
 * added to the residual gradient g (x_in: the adapter's input). */
static stacl_status adapter_backward(stacl_trainer *t, const adapter_site *s, int site_index, size_t x_in, size_t h,
                                     size_t y, size_t clips) {
    if (t->ad->fx) return stacl_trainer_fx_site_backward(t, s, site_index, x_in, h, y, clips);
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = t->model->ctx;
    const stacl_vision_config *c = &t->model->cfg;
    const size_t T = (size_t)t->T, F = clips * T, W = (size_t)c->width, A = (size_t)t->ad->info.width;
    const size_t grid = (size_t)(c->image_size / c->patch), P = grid * grid;
    const int *k = t->ad->info.kernel;
    const size_t dy = t->plan.mlp, dh = t->plan.mlp + F * P * A;
    cl_mem ws = t->ws, pm = t->ad->params, gr = t->grad;
    const size_t kt = (size_t)k[0], kh = (size_t)k[1], kw = (size_t)k[2];
    TRY(stacl_op_adapter_fc2_backward_input(ctx, F, P, W, A, ws, t->g, pm, s->fc2_w, ws, dy));
    TRY(stacl_op_adapter_fc2_backward_params(ctx, F, P, W, A, ws, y, ws, t->g, gr, s->fc2_w, s->fc2_b));
    TRY(stacl_op_adapter_dwconv3d_backward_input(ctx, clips, T, grid, A, kt, kh, kw, ws, dy, pm, s->conv_w, ws, dh));
    TRY(stacl_op_adapter_dwconv3d_backward_params(ctx, clips, T, grid, A, kt, kh, kw, ws, h, ws, dy, gr, s->conv_w,
                                                  s->conv_b));
    TRY(stacl_op_adapter_fc1_backward_params(ctx, F, P, W, A, ws, x_in, ws, dh, gr, s->fc1_w, s->fc1_b));
    TRY(stacl_op_adapter_fc1_backward_input(ctx, F, P, W, A, ws, dh, pm, s->fc1_w, ws, t->g));
cleanup:
    return st;
}

/* Block l's backward: t->g holds d loss / d (block output) and becomes
 * d loss / d (block input). */
static stacl_status block_backward(stacl_trainer *t, int l, const block_tape *b, size_t clips) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = t->model->ctx;
    const stacl_vision_config *c = &t->model->cfg;
    const vision_block_offsets *o = &t->model->off.blocks[l];
    const workspace_plan *w = &t->plan;
    cl_mem ws = t->ws, pm = t->model->params;
    const size_t F = clips * (size_t)t->T, L = (size_t)stacl_vision_tokens(c), W = (size_t)c->width;
    const size_t M = (size_t)c->mlp_width, H = (size_t)c->heads, D = W / H, rows = F * L;
    const size_t g = t->g;
    const stacl_bias_act act = c->act == STACL_ACT_GELU ? STACL_BIAS_GELU : STACL_BIAS_QUICK_GELU;

    /* MLP: out = x_mlp + fc2(act(fc1(ln_2(x_mlp)))). */
    TRY(stacl_gemm(ctx, 0, 0, rows, M, W, 1.0f, ws, g, W, pm, o->fc2_w, M, 0.0f, ws, w->mlp, M));
    TRY(stacl_op_act_backward(ctx, act, rows * M, ws, b->u, ws, w->mlp));
    TRY(stacl_gemm(ctx, 0, 0, rows, W, M, 1.0f, ws, w->mlp, M, pm, o->fc1_w, W, 0.0f, ws, w->h, W));
    TRY(stacl_op_layernorm_backward(ctx, rows, W, c->ln_eps, ws, b->x_mlp, W, pm, o->ln2_w, ws, w->h, W, ws, g, W));
    const adapter_site *sm = &t->ad->pre_mlp[l];
    if (sm->present) TRY(adapter_backward(t, sm, 2 * l + 1, b->x2, b->hm, b->ym, clips));

    /* Attention: x2 = x_attn + out_proj(attn(ln_1(x_attn))). */
    TRY(stacl_gemm(ctx, 0, 0, rows, W, W, 1.0f, ws, g, W, pm, o->out_w, W, 0.0f, ws, w->h, W));
    TRY(stacl_op_split_merged(ctx, F, L, H, D, ws, w->h, ws, w->attn)); /* dO [F, H, L, D] */
    /* dP = dO V^T, dV = P^T dO per (frame, head). */
    TRY(stacl_gemm_batched(ctx, 0, 1, L, L, D, 1.0f, ws, w->attn, D, L * D, ws, b->v, D, L * D, 0.0f, ws, w->scores,
                           L, L * L, F * H));
    TRY(stacl_gemm_batched(ctx, 1, 0, L, D, L, 1.0f, ws, b->p, L, L * L, ws, w->attn, D, L * D, 0.0f, ws, w->v, D,
                           L * D, F * H));
    TRY(stacl_op_softmax_backward(ctx, F * H * L, L, ws, b->p, ws, w->scores)); /* dS */
    /* scores = q_s k^T with q_s = q / sqrt(D): dq_s = dS k, dk = dS^T q_s. */
    TRY(stacl_gemm_batched(ctx, 0, 0, L, D, L, 1.0f, ws, w->scores, L, L * L, ws, b->k, D, L * D, 0.0f, ws, w->q, D,
                           L * D, F * H));
    TRY(stacl_gemm_batched(ctx, 1, 0, L, D, L, 1.0f, ws, w->scores, L, L * L, ws, b->q, D, L * D, 0.0f, ws, w->k, D,
                           L * D, F * H));
    TRY(stacl_op_join_heads(ctx, F, L, H, D, 1.0f / sqrtf((float)D), ws, w->q, w->k, w->v, ws, w->qkv));
    TRY(stacl_gemm(ctx, 0, 0, rows, W, 3 * W, 1.0f, ws, w->qkv, 3 * W, pm, o->qkv_w, W, 0.0f, ws, w->h, W));
    TRY(stacl_op_layernorm_backward(ctx, rows, W, c->ln_eps, ws, b->x_attn, W, pm, o->ln1_w, ws, w->h, W, ws, g, W));
    const adapter_site *sa = &t->ad->pre_attn[l];
    if (sa->present) TRY(adapter_backward(t, sa, 2 * l, t->block_in[l - t->first], b->ha, b->ya, clips));
cleanup:
    return st;
}

static stacl_status pass(stacl_trainer *t, const float *pixels, const int32_t *labels, size_t clips,
                         float loss_scale, uint64_t dropout_seed, double *loss_sum, float *logits) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = t->model->ctx;
    const stacl_vision_config *c = &t->model->cfg;
    const size_t T = (size_t)t->T, F = clips * T, L = (size_t)stacl_vision_tokens(c), W = (size_t)c->width;
    const int C = t->ad->info.classes;
    float *m = t->scratch;                 /* [clips, W] */
    double *dm = t->scratch_d + 3 * W + 2 * (size_t)C, *mask = dm + W;
    float *dcls = t->scratch + clips * W;  /* [W] */

    TRY(forward_blocks(t, pixels, clips));
    TRY(stacl_op_adapter_mean_cls(ctx, clips, T, L, W, t->ws, t->plan.x, t->ws, t->plan.cls));
    cl_int err = clEnqueueReadBuffer(ctx->queue, t->ws, CL_TRUE, t->plan.cls * sizeof(float),
                                     clips * W * sizeof(float), m, 0, NULL, NULL);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "reading the class tokens");

    /* Head and loss per clip; the residual gradient is d loss / d (class
     * token of each frame) = dm / T, zero for the patch tokens. */
    TRY(zero_region(ctx, t->ws, t->g, F * L * W));
    double total = 0.0;
    const double keep = 1.0 - (double)t->opt.dropout;
    uint64_t rng = dropout_seed ^ 0xD80D80D8ull;
    for (size_t n = 0; n < clips; n++) {
        if (labels[n] < 0 || labels[n] >= C)
            FAIL(STACL_ERR_INVALID_ARG, "trainer: label %d of clip %zu is outside the head's %d classes", labels[n], n,
                 C);
        for (size_t j = 0; j < W; j++) mask[j] = stacl_rng_double(&rng) < keep ? 1.0 / keep : 0.0;
        total += head_clip(t, m + n * W, labels[n], t->opt.dropout > 0.0f ? mask : NULL, loss_scale,
                           logits ? logits + n * (size_t)C : NULL, dm);
        for (size_t j = 0; j < W; j++) dcls[j] = (float)(dm[j] / (double)T);
        for (size_t f = 0; f < T; f++) {
            err = clEnqueueWriteBuffer(ctx->queue, t->ws, CL_TRUE, (t->g + ((n * T + f) * L) * W) * sizeof(float),
                                       W * sizeof(float), dcls, 0, NULL, NULL);
            if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "uploading the head's gradient");
        }
    }
    if (loss_sum) *loss_sum = total;

    for (int l = c->layers - 1; l >= t->first; l--) {
        const block_tape *b = tape_of(t, l);
        if (t->opt.recompute) { /* re-run the block from its input, keeping its activations */
            TRY(copy_region(t, t->block_in[l - t->first], t->plan.x, F * L * W));
            TRY(block_forward_taped(t, l, b, clips));
        }
        TRY(block_backward(t, l, b, clips));
    }
cleanup:
    return st;
}

stacl_status stacl_trainer_accumulate(stacl_trainer *t, const float *pixels, const int32_t *labels, int clips,
                                      float loss_scale, uint64_t dropout_seed, double *loss_sum, float *logits) {
    if (!t || !pixels || !labels) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_trainer_accumulate: NULL argument");
    if (clips < 1 || clips > t->max_clips)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_trainer_accumulate: %d clips, the trainer holds 1..%d", clips,
                          t->max_clips);
    stacl_ctx *ctx = t->model->ctx;
    stacl_profile_begin(ctx);
    stacl_status st = pass(t, pixels, labels, (size_t)clips, loss_scale, dropout_seed, loss_sum, logits);
    t->fx_micro++;
    stacl_status pst = stacl_profile_collect(ctx, t->times, &t->n_times, &t->last_ms);
    if (st == STACL_OK) st = pst;
    if (st == STACL_OK) stacl_clear_error();
    return st;
}
