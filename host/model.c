/* model.c: the frozen CLIP model on a device: its configs and every weight
 * (the vision tower, then the text tower when the file has one) in one
 * read-only buffer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

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
    if (model->params) clReleaseMemObject(model->params);
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
