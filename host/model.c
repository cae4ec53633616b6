/* model.c: the frozen CLIP model on a device: its configs and every weight
 * (the vision tower, then the text tower when the file has one) in one
 * read-only buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "ops.h"

/* The Linear weights of both towers, [out, in] each, in one list. */
typedef struct linear_weight { size_t off, out, in; } linear_weight;

static size_t list_block_linears(linear_weight *list, const vision_block_offsets *b, size_t width, size_t mlp) {
    list[0] = (linear_weight){b->qkv_w, 3 * width, width};
    list[1] = (linear_weight){b->out_w, width, width};
    list[2] = (linear_weight){b->fc1_w, mlp, width};
    list[3] = (linear_weight){b->fc2_w, width, mlp};
    return 4;
}

/* With stacl's GEMM engine on, packs every Linear weight once into
 * model->packed (a second copy, about the size of the weights: the
 * originals stay for the backward) and registers it with the context. */
static stacl_status pack_linear_weights(stacl_model *model) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = model->ctx;
    const stacl_vision_config *v = &model->cfg;
    const size_t n = 1 + 4 * (size_t)v->layers + (model->has_text ? 4 * (size_t)model->text_cfg.layers : 0);
    linear_weight *list = calloc(n, sizeof *list);
    if (!list) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    size_t count = 0, floats = 0;
    list[count++] = (linear_weight){model->off.patch_w, (size_t)v->width, 3 * (size_t)v->patch * (size_t)v->patch};
    for (int l = 0; l < v->layers; l++)
        count += list_block_linears(list + count, &model->off.blocks[l], v->width, v->mlp_width);
    for (int l = 0; model->has_text && l < model->text_cfg.layers; l++)
        count += list_block_linears(list + count, &model->text_off.blocks[l], model->text_cfg.width,
                                    model->text_cfg.mlp_width);
    for (size_t i = 0; i < count; i++) floats += stacl_gemm_packed_floats(list[i].out, list[i].in);
    char what[4200];
    snprintf(what, sizeof what, "the packed Linear weights of %s (stacl's GEMM engine)", model->file);
    TRY(stacl_device_buffer(ctx, floats * sizeof(float), CL_MEM_READ_WRITE, NULL, what,
                            "STACL_GEMM=clblast needs no packed copy", &model->packed));
    for (size_t i = 0, at = 0; i < count; i++) {
        TRY(stacl_gemm_pack_linear(ctx, model->params, list[i].off, list[i].out, list[i].in, model->packed, at));
        at += stacl_gemm_packed_floats(list[i].out, list[i].in);
    }
cleanup:
    free(list);
    return st;
}

stacl_status stacl_model_load(stacl_model **out, stacl_ctx *ctx, const char *path) {
    stacl_status st = STACL_OK;
    stacl_model *model = NULL;
    float *host = NULL, *text = NULL;
    char dir[4096];
    *out = NULL;
    if (!ctx || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_model_load: NULL ctx or path");
    model = calloc(1, sizeof *model);
    if (!model) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    model->ctx = ctx;
    TRY(stacl_clip_read_vision(path, &model->cfg, &model->off, &host, model->file, sizeof model->file));
    snprintf(dir, sizeof dir, "%s", model->file);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    /* A text tower that cannot be used (bad shapes, no head count) must not
     * cost the vision tower: the reason is kept for text requests. */
    st = stacl_clip_read_text(model->file, dir, &model->has_text, &model->text_cfg, &model->text_off, &text);
    if (st == STACL_ERR_OUT_OF_MEMORY || st == STACL_ERR_IO) goto cleanup;
    if (st != STACL_OK) {
        model->text_status = st;
        snprintf(model->text_error, sizeof model->text_error, "%s", stacl_last_error());
        model->has_text = 0;
        stacl_clear_error();
        st = STACL_OK;
    }
    TRY(stacl_clip_read_logit_scale(model->file, &model->has_logit_scale, &model->logit_scale));
    size_t total = model->off.total;
    if (model->has_text) {
        /* One allocation: the text weights follow the vision weights. */
        stacl_text_offsets_shift(&model->text_cfg, &model->text_off, total);
        total += model->text_off.total;
        float *both = realloc(host, total * sizeof *both);
        if (!both) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory: %zu floats for %s", total, model->file);
        host = both;
        memcpy(host + model->off.total, text, model->text_off.total * sizeof *text);
    }
    char what[4200];
    snprintf(what, sizeof what, "the weights of %s", model->file);
    TRY(stacl_device_buffer(ctx, total * sizeof(float), CL_MEM_READ_ONLY, host, what, NULL, &model->params));
    if (ctx->gemm_rows) TRY(pack_linear_weights(model));
    *out = model;
    model = NULL;
cleanup:
    free(host);
    free(text);
    stacl_model_free(model);
    return st;
}

void stacl_model_free(stacl_model *model) {
    if (!model) return;
    if (model->params) {
        stacl_gemm_forget_packed(model->ctx, model->params);
        clReleaseMemObject(model->params);
    }
    if (model->packed) clReleaseMemObject(model->packed);
    stacl_vision_offsets_free(&model->off);
    stacl_text_offsets_free(&model->text_off);
    free(model);
}

const stacl_vision_config *stacl_model_vision_config(const stacl_model *model) { return &model->cfg; }

const stacl_text_config *stacl_model_text_config(const stacl_model *model) {
    return model->has_text ? &model->text_cfg : NULL;
}

float stacl_model_logit_scale(const stacl_model *model) {
    return model->has_logit_scale ? expf(model->logit_scale) : 0.0f;
}
