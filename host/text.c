/* text.c: the CLIP text tower forward pass, as OpenAI defines it: token +
 * positional embeddings, pre-LN residual blocks with a causal mask
 * (transformer.c; the mask lives in the softmax kernel), the features at
 * each text's <|endoftext|> position (its first largest token id, CLIP's
 * argmax), ln_final, text_projection. The state owns one workspace buffer,
 * carved by a size table, sized once for max_texts.
 *
 * Because of the causal mask, the features at position p depend only on
 * tokens 0..p: a pass runs the first Lr = max(EOT position) + 1 positions
 * only, which gives CLIP's numbers for the pooled rows (class names are
 * ~10 of 77 positions, so several times less work). With an observer set
 * the full context runs, so that every stage has CLIP's shape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "ops.h"
#include "transformer.h"

/* Offsets (floats, or int32 slots of the same size) in the workspace.
 * N texts, L context, W width, M MLP width, H heads. */
typedef struct text_plan {
    size_t tokens;  /* int32 [N, L] */
    size_t rows;    /* int32 [N]: row n*L + EOT position */
    size_t x, h;    /* [N, L, W] */
    size_t qkv;     /* [N, L, 3W] */
    size_t q, k, v; /* [N, H, L, D] */
    size_t scores;  /* [N*H, L, L] */
    size_t attn;    /* [N, H, L, D] */
    size_t mlp;     /* [N, L, M] */
    size_t pooled;  /* [N, W] */
    size_t out;     /* [N, P] */
    size_t total;
} text_plan;

struct stacl_text_state {
    stacl_model *model;
    int max_texts;
    text_plan plan;
    cl_mem ws;
    int32_t *rows;   /* host copy of plan.rows */
    int32_t *tokens; /* host staging of the first Lr positions [N, Lr] */
    stacl_observer observer;
    void *observer_user;
    double last_ms;
    stacl_op_time times[STACL_PROFILE_MAX_OPS];
    int n_times;
};

static text_plan plan_workspace(const stacl_text_config *c, size_t N) {
    const size_t W = (size_t)c->width, M = (size_t)c->mlp_width, L = (size_t)c->context_length;
    text_plan p;
    size_t cursor = 0;
#define TAKE(field, count) (p.field = cursor, cursor += (count))
    TAKE(tokens, N * L);
    TAKE(rows, N);
    TAKE(x, N * L * W);
    TAKE(h, N * L * W);
    TAKE(qkv, N * L * 3 * W);
    TAKE(q, N * L * W);
    TAKE(k, N * L * W);
    TAKE(v, N * L * W);
    TAKE(scores, N * (size_t)c->heads * L * L);
    TAKE(attn, N * L * W);
    TAKE(mlp, N * L * M);
    TAKE(pooled, N * W);
    TAKE(out, N * (size_t)c->proj_dim);
#undef TAKE
    p.total = cursor;
    return p;
}

stacl_status stacl_text_state_create(stacl_text_state **out, stacl_model *model, int max_texts) {
    stacl_status st = STACL_OK;
    stacl_text_state *s = NULL;
    *out = NULL;
    if (!model || max_texts <= 0)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_text_state_create: need a model and max_texts > 0");
    if (model->text_status != STACL_OK)
        return stacl_fail(model->text_status, "the text tower cannot be used: %s", model->text_error);
    if (!model->has_text)
        return stacl_fail(STACL_ERR_MISSING, "%s has no text tower (a vision-only file): expected "
                          "'token_embedding.weight' (OpenAI layout) or 'text_model.embeddings.token_embedding.weight' "
                          "(Hugging Face layout)", model->file);
    stacl_ctx *ctx = model->ctx;
    s = calloc(1, sizeof *s);
    if (!s) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    s->model = model;
    s->max_texts = max_texts;
    s->plan = plan_workspace(&model->text_cfg, (size_t)max_texts);
    s->rows = calloc((size_t)max_texts, sizeof *s->rows);
    s->tokens = calloc((size_t)max_texts * (size_t)model->text_cfg.context_length, sizeof *s->tokens);
    if (!s->rows || !s->tokens) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    char what[64];
    snprintf(what, sizeof what, "the text workspace for %d texts", max_texts);
    TRY(stacl_device_buffer(ctx, s->plan.total * sizeof(float), CL_MEM_READ_WRITE, NULL, what,
                            "encode fewer texts per pass", &s->ws));
    *out = s;
    s = NULL;
cleanup:
    stacl_text_state_free(s);
    return st;
}

void stacl_text_state_free(stacl_text_state *state) {
    if (!state) return;
    if (state->ws) clReleaseMemObject(state->ws);
    free(state->rows);
    free(state->tokens);
    free(state);
}

void stacl_text_state_set_observer(stacl_text_state *state, stacl_observer fn, void *user) {
    state->observer = fn;
    state->observer_user = user;
}

double stacl_text_state_last_device_ms(const stacl_text_state *state) { return state->last_ms; }

size_t stacl_text_output_size(const stacl_model *model, int n) {
    if (!model->has_text) return 0;
    const stacl_text_config *c = &model->text_cfg;
    return (size_t)n * (size_t)(c->proj_dim ? c->proj_dim : c->width);
}

static stacl_status read_back(stacl_ctx *ctx, cl_mem buf, size_t off, size_t n, float *dst) {
    cl_int err = clEnqueueReadBuffer(ctx->queue, buf, CL_TRUE, off * sizeof(float), n * sizeof(float), dst, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "reading results back");
}

static stacl_status upload(stacl_ctx *ctx, cl_mem buf, size_t off, size_t n, const void *src, const char *what) {
    cl_int err = clEnqueueWriteBuffer(ctx->queue, buf, CL_TRUE, off * sizeof(float), n * 4, src, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, what);
}

static stacl_status observe(stacl_text_state *s, const char *name, size_t off, const int64_t *shape, int ndim) {
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

static stacl_status forward(stacl_text_state *s, const int32_t *tokens, size_t N, float *out) {
    stacl_status st = STACL_OK;
    stacl_model *m = s->model;
    stacl_ctx *ctx = m->ctx;
    const stacl_text_config *c = &m->text_cfg;
    const text_offsets *o = &m->text_off;
    const text_plan *w = &s->plan;
    cl_mem ws = s->ws, pm = m->params;
    const size_t W = (size_t)c->width, ctx_len = (size_t)c->context_length;

    /* Check every id (the embedding gather trusts them) and find each
     * text's pooling position: the first largest id, as torch's argmax. */
    size_t L = s->observer ? ctx_len : 1;
    for (size_t n = 0; n < N; n++) {
        const int32_t *row = tokens + n * ctx_len;
        size_t best = 0;
        for (size_t t = 0; t < ctx_len; t++) {
            if (row[t] < 0 || row[t] >= c->vocab_size)
                return stacl_fail(STACL_ERR_INVALID_ARG, "text %zu, position %zu: token id %d is outside the model's "
                                  "vocabulary of %d tokens (%s)", n, t, row[t], c->vocab_size, m->file);
            if (row[t] > row[best]) best = t;
        }
        s->rows[n] = (int32_t)best;
        if (best + 1 > L) L = best + 1;
    }
    /* The first L positions of every text, and the pooled rows in [N*L]. */
    for (size_t n = 0; n < N; n++) {
        memcpy(s->tokens + n * L, tokens + n * ctx_len, L * sizeof *tokens);
        s->rows[n] += (int32_t)(n * L);
    }
    TRY(upload(ctx, ws, w->tokens, N * L, s->tokens, "uploading the token ids"));
    TRY(upload(ctx, ws, w->rows, N, s->rows, "uploading the pooling positions"));

    TRY(stacl_op_embed_tokens(ctx, N, L, W, (size_t)c->vocab_size, ws, w->tokens, pm, o->tok_emb, o->pos, ws, w->x));
    const int64_t shape[3] = {(int64_t)N, (int64_t)L, (int64_t)W};
    TRY(observe(s, "text_embed", w->x, shape, 3));
    const stacl_block_dims dims = {N, L, W, (size_t)c->heads, (size_t)c->mlp_width, c->ln_eps, c->act, 1};
    const stacl_block_ws bw = {ws, w->x, w->h, w->qkv, w->q, w->k, w->v, w->scores, w->attn, w->mlp, 0, 0};
    for (int l = 0; l < c->layers; l++) {
        TRY(stacl_block_forward(ctx, &dims, pm, &o->blocks[l], &bw));
        char name[32];
        snprintf(name, sizeof name, "text_block_%02d", l);
        TRY(observe(s, name, w->x, shape, 3));
    }
    /* ln_final is per row, so only the pooled rows need it. */
    TRY(stacl_op_gather_rows(ctx, N, W, N * L, ws, w->x, ws, w->rows, ws, w->pooled));
    TRY(stacl_op_layernorm(ctx, N, W, c->ln_eps, ws, w->pooled, W, ws, w->pooled, W, pm, o->ln_final_w,
                           o->ln_final_b));
    if (!c->proj_dim) return read_back(ctx, ws, w->pooled, N * W, out);
    const size_t P = (size_t)c->proj_dim;
    TRY(stacl_gemm(ctx, 0, 0, N, P, W, 1.0f, ws, w->pooled, W, pm, o->proj, P, 0.0f, ws, w->out, P)); /* [N, P] */
    st = read_back(ctx, ws, w->out, N * P, out);
cleanup:
    return st;
}

stacl_status stacl_text_forward(stacl_text_state *state, const int32_t *tokens, int n, float *out) {
    if (!state || !tokens || !out) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_text_forward: NULL argument");
    if (n <= 0 || n > state->max_texts)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_text_forward: %d texts, the state holds 1..%d", n,
                          state->max_texts);
    stacl_ctx *ctx = state->model->ctx;
    stacl_profile_begin(ctx);
    stacl_status st = forward(state, tokens, (size_t)n, out);
    /* Drain the queue and the events also after a failure. */
    stacl_status pst = stacl_profile_collect(ctx, state->times, &state->n_times, &state->last_ms);
    if (st == STACL_OK) st = pst;
    if (st == STACL_OK) stacl_clear_error();
    return st;
}
