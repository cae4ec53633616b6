/* train_optim.c: the optimizer side of the trainer: AdamW with decoupled
 * weight decay (PyTorch's torch.optim.AdamW arithmetic, in float32, on
 * the host), global gradient-norm clipping (as clip_grad_norm_), and the
 * optimizer state file. Adapter gradients are a few million floats at
 * most (7M for ViT-B 12x384): reading them once per step and updating on
 * the host costs milliseconds against seconds of device work per clip, and
 * keeps the update bit-reproducible across devices. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "train_internal.h"

stacl_status stacl_trainer_optim_init(stacl_trainer *t) {
    stacl_status st = STACL_OK;
    adapter_tensor *ts = NULL;
    const size_t n = t->ad->total ? t->ad->total : 1, W = (size_t)t->model->cfg.width;
    const size_t C = (size_t)t->ad->info.classes;
    t->params = malloc(n * sizeof *t->params);
    t->grad_host = calloc(n, sizeof *t->grad_host);
    t->m = calloc(n, sizeof *t->m);
    t->v = calloc(n, sizeof *t->v);
    t->scratch = malloc(((size_t)t->max_clips + 1) * W * sizeof *t->scratch);
    t->scratch_d = malloc((5 * W + 2 * C) * sizeof *t->scratch_d);
    t->decay = calloc(n, 1);
    t->ln_post = malloc(2 * W * sizeof *t->ln_post);
    int count = stacl_adapter_tensors(t->ad, &ts);
    if (!t->params || !t->grad_host || !t->m || !t->v || !t->scratch || !t->scratch_d || !t->decay || !t->ln_post ||
        count < 0)
        FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for the optimizer (%zu parameters)", n);
    for (int i = 0; i < count; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= (size_t)ts[i].shape[d];
        memset(t->decay + ts[i].off, ts[i].decay, numel);
    }
    TRY(stacl_adapter_download(t->ad, t->params));
    stacl_ctx *ctx = t->model->ctx;
    const vision_offsets *o = &t->model->off;
    cl_int err = clEnqueueReadBuffer(ctx->queue, t->model->params, CL_TRUE, o->ln_post_w * sizeof(float),
                                     W * sizeof(float), t->ln_post, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueReadBuffer(ctx->queue, t->model->params, CL_TRUE, o->ln_post_b * sizeof(float),
                                  W * sizeof(float), t->ln_post + W, 0, NULL, NULL);
    if (err != CL_SUCCESS) st = stacl_cl_fail(ctx, err, "reading ln_post");
cleanup:
    free(ts);
    return st;
}

void stacl_trainer_free(stacl_trainer *t) {
    if (!t) return;
    if (t->ws) clReleaseMemObject(t->ws);
    if (t->grad) clReleaseMemObject(t->grad);
    if (t->fx_acc) clReleaseMemObject(t->fx_acc);
    if (t->fx_slots) clReleaseMemObject(t->fx_slots);
    stacl_st_close(t->state_file);
    free(t->block_in);
    free(t->tapes);
    free(t->params);
    free(t->grad_host);
    free(t->m);
    free(t->v);
    free(t->scratch);
    free(t->scratch_d);
    free(t->decay);
    free(t->ln_post);
    free(t);
}

long long stacl_trainer_steps(const stacl_trainer *t) { return t->steps; }

/* The accumulated gradient into out (host): the adapters' part from the
 * device, the head's from the host. */
stacl_status stacl_trainer_gradients(const stacl_trainer *t, float *out) {
    const size_t n = t->ad->total;
    stacl_ctx *ctx = t->model->ctx;
    if (!n) return STACL_OK;
    cl_int err = clEnqueueReadBuffer(ctx->queue, t->grad, CL_TRUE, 0, n * sizeof(float), out, 0, NULL, NULL);
    if (err != CL_SUCCESS) return stacl_cl_fail(ctx, err, "reading the adapter gradients");
    for (size_t i = 0; i < n; i++) out[i] += t->grad_host[i];
    return STACL_OK;
}

stacl_status stacl_trainer_save_grads(const stacl_trainer *t, const char *path) {
    float *g = malloc((t->ad->total ? t->ad->total : 1) * sizeof *g);
    if (!g) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    stacl_status st = stacl_trainer_gradients(t, g);
    if (st == STACL_OK)
        st = stacl_adapter_write_host(t->ad, 1, (const float *const[]){g}, (const char *const[]){""}, path, NULL,
                                      NULL, 0);
    free(g);
    return st;
}

float stacl_clip_coef(double norm, float max_norm) {
    /* torch.nn.utils.clip_grad_norm_: max_norm / (norm + 1e-6), capped at 1,
     * computed in float32 as torch does. */
    if (!(max_norm > 0.0f)) return 1.0f;
    const float c = max_norm / ((float)norm + 1e-6f);
    return c < 1.0f ? c : 1.0f;
}

void stacl_adamw_update(size_t n, float *p, const float *g, float *m, float *v, const unsigned char *decay,
                        long long step, float lr, float coef, const stacl_train_options *o) {
    /* torch.optim.AdamW's single-tensor path: the scalars in double,
     * rounded to float32 where they meet the tensors. */
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    const double bc1 = 1.0 - pow((double)b1, (double)step), bc2 = 1.0 - pow((double)b2, (double)step);
    const float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float shrink = (float)(1.0 - (double)lr * (double)o->weight_decay);
    for (size_t i = 0; i < n; i++) {
        const float gi = g[i] * coef;
        float x = p[i];
        if (decay[i]) x *= shrink;
        m[i] += (gi - m[i]) * (1.0f - b1);
        v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
        const float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = x - step_size * (m[i] / denom);
    }
}

stacl_status stacl_trainer_step(stacl_trainer *t, float lr, float grad_scale, double *grad_norm) {
    stacl_status st = STACL_OK;
    const size_t n = t->ad->total;
    float *g = malloc((n ? n : 1) * sizeof *g);
    if (!g) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!(lr >= 0.0f) || !isfinite(lr)) FAIL(STACL_ERR_INVALID_ARG, "trainer: learning rate %g", (double)lr);
    if (!(grad_scale > 0.0f) || !isfinite(grad_scale))
        FAIL(STACL_ERR_INVALID_ARG, "trainer: gradient scale %g", (double)grad_scale);
    TRY(stacl_trainer_gradients(t, g));
    if (grad_scale != 1.0f)
        for (size_t i = 0; i < n; i++) g[i] *= grad_scale;
    double sq = 0.0;
    for (size_t i = 0; i < n; i++) sq += (double)g[i] * g[i];
    const double norm = sqrt(sq);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        FAIL(STACL_ERR_INVALID_ARG, "trainer: the gradient norm is %g at step %lld: the update is skipped (lower the "
             "learning rate)", norm, t->steps + 1);
    t->steps++;
    stacl_adamw_update(n, t->params, g, t->m, t->v, t->decay, t->steps, lr,
                       stacl_clip_coef(norm, t->opt.clip_norm), &t->opt);
    t->fx_micro = 0;
    TRY(stacl_trainer_fx_requantize(t));
    TRY(stacl_adapter_upload(t->ad, t->params));
    memset(t->grad_host, 0, n * sizeof *t->grad_host);
    {
        const float zero = 0.0f;
        stacl_ctx *ctx = t->model->ctx;
        cl_int err = n ? clEnqueueFillBuffer(ctx->queue, t->grad, &zero, sizeof zero, 0, n * sizeof(float), 0, NULL,
                                             NULL)
                       : CL_SUCCESS;
        if (err == CL_SUCCESS) err = clFinish(ctx->queue);
        if (err != CL_SUCCESS) st = stacl_cl_fail(ctx, err, "clearing the gradients");
    }
cleanup:
    free(g);
    return st;
}

stacl_status stacl_trainer_save_state(const stacl_trainer *t, const char *path, const char *const *keys,
                                      const char *const *values, int n) {
    stacl_status st = STACL_OK;
    const char **k = calloc((size_t)n + 1, sizeof *k), **v = calloc((size_t)n + 1, sizeof *v);
    if (!k || !v) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    char steps[32];
    snprintf(steps, sizeof steps, "%lld", t->steps);
    k[0] = "optimizer_steps";
    v[0] = steps;
    for (int i = 0; i < n; i++) k[i + 1] = keys[i], v[i + 1] = values[i];
    /* Fixed point with an fp32 master copy: the master is state too (the
     * adapter file holds its rounding). */
    const int master = t->ad->fx && !t->opt.fixed_sr_update;
    TRY(stacl_adapter_write_host(t->ad, master ? 3 : 2, (const float *const[]){t->m, t->v, t->params},
                                 (const char *const[]){"exp_avg.", "exp_avg_sq.", "master."}, path, k, v, n + 1));
cleanup:
    free(k);
    free(v);
    return st;
}

stacl_status stacl_trainer_load_state(stacl_trainer *t, const char *path) {
    stacl_status st = STACL_OK;
    stacl_st_file *f = NULL;
    TRY(stacl_st_open(&f, path));
    const char *steps = stacl_st_metadata(f, "optimizer_steps");
    char *end = NULL;
    long long s = steps ? strtoll(steps, &end, 10) : -1;
    if (!steps || *end || s < 0)
        FAIL(STACL_ERR_FORMAT, "%s: no valid 'optimizer_steps' in the metadata: not a stacl training state", path);
    TRY(stacl_adapter_read_host(t->ad, f, "exp_avg.", t->m));
    TRY(stacl_adapter_read_host(t->ad, f, "exp_avg_sq.", t->v));
    t->steps = s;
    stacl_st_close(t->state_file);
    t->state_file = f;
    f = NULL;
    /* The adapter may have been reloaded since creation. */
    TRY(stacl_adapter_download(t->ad, t->params));
    if (t->ad->fx && !t->opt.fixed_sr_update) {
        adapter_tensor *ts = NULL;
        const int count = stacl_adapter_tensors(t->ad, &ts);
        char name[160];
        snprintf(name, sizeof name, "master.%s", count > 0 ? ts[0].name : "");
        free(ts);
        if (count < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!stacl_st_find(t->state_file, name))
            FAIL(STACL_ERR_FORMAT, "%s: no fp32 master weights (master.*): the state is not from a fixed-point run "
                 "with master weights", path);
        TRY(stacl_adapter_read_host(t->ad, t->state_file, "master.", t->params));
    }
cleanup:
    stacl_st_close(f);
    return st;
}

const char *stacl_trainer_state_meta(const stacl_trainer *t, const char *key) {
    return t->state_file ? stacl_st_metadata(t->state_file, key) : NULL;
}
