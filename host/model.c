/* model.c: the frozen CLIP model on a device: its config and every vision
 * weight in one read-only buffer. */
#include <stdlib.h>

#include "model_internal.h"

stacl_status stacl_model_load(stacl_model **out, stacl_ctx *ctx, const char *path) {
    stacl_status st = STACL_OK;
    stacl_model *model = NULL;
    float *host = NULL;
    char file[4096];
    cl_int err;
    *out = NULL;
    if (!ctx || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_model_load: NULL ctx or path");
    model = calloc(1, sizeof *model);
    if (!model) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    model->ctx = ctx;
    TRY(stacl_clip_read_vision(path, &model->cfg, &model->off, &host, file, sizeof file));
    size_t bytes = model->off.total * sizeof(float);
    if (bytes > ctx->info.max_alloc_bytes)
        FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: the vision weights need %.1f MiB in one buffer, device '%s' allows %.1f MiB",
             file, bytes / 1048576.0, ctx->info.name, ctx->info.max_alloc_bytes / 1048576.0);
    model->params = clCreateBuffer(ctx->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, host, &err);
    if (err != CL_SUCCESS) {
        st = stacl_cl_fail(ctx, err, "allocating the model weights");
        stacl_fail_context(st, "%s (%.1f MiB)", file, bytes / 1048576.0);
        goto cleanup;
    }
    *out = model;
    model = NULL;
cleanup:
    free(host);
    stacl_model_free(model);
    return st;
}

void stacl_model_free(stacl_model *model) {
    if (!model) return;
    if (model->params) clReleaseMemObject(model->params);
    stacl_vision_offsets_free(&model->off);
    free(model);
}

const stacl_vision_config *stacl_model_vision_config(const stacl_model *model) { return &model->cfg; }
