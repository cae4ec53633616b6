/* adapter_remote.c: runs an adapter whose parameters live on another
 * device than the backbone's (stacl_adapter_load_on with another ctx): the
 * residual stream goes through host staging to the adapter's device and
 * back, in chunks of frames so that the copies of one chunk overlap the
 * copies and the row-wise kernels of its neighbours (docs/adapters.md,
 * "Two devices"). */
#include <stdio.h>
#include <stdlib.h>

#include "adapter.h"
#include "adapter_fixed.h"
#include "ops.h"

/* Automatic chunk count: 1 when either device is a CPU device (its copies
 * are memcpys on the same cores that run the kernels: nothing runs beside
 * them, and each chunk costs enqueues, host waits and smaller kernels;
 * measured on two PoCL devices, ViT-B/16, T = 8: 4 chunks cost 5.9 ms per
 * adapter site against 2.5 ms for 1). Otherwise one chunk per
 * STACL_TRANSFER_CHUNK_BYTES of the residual stream (rounded down, at
 * least 1), at most STACL_TRANSFER_AUTO_CHUNKS, never more than frames:
 * ViT-B/16 at T = 8 (4.84 MB per copy) gets 4 chunks of 2 frames, tiny
 * models 1. See docs/adapters.md, "Two devices". */
#define STACL_TRANSFER_CHUNK_BYTES ((size_t)1 << 20)
#define STACL_TRANSFER_AUTO_CHUNKS 4
/* The most chunks a request is clamped to (the event arrays' size). */
#define STACL_TRANSFER_MAX_CHUNKS 64

/* The adapter device's workspace (x [F, L, W], h and y [F, P, A]), its
 * copy queue, and two host staging buffers [F, L, W] (each chunk uses the
 * front of one), grown to F frames. The staging buffers are pinned where
 * the adapter device allows: CL_MEM_ALLOC_HOST_PTR buffers of its context,
 * mapped once for the handle's lifetime; else plain malloc. */
struct adapter_remote {
    cl_mem ws;
    size_t frames;
    cl_command_queue copy; /* in-order, profiling; host <-> adapter device copies */
    float *stage[2];
    cl_mem pinned[2]; /* the buffer stage[i] maps, or NULL (malloc'd) */
    cl_event pending[2]; /* the last pass's last write-backs (may still read stage), or NULL */
    int chunks;          /* requested chunk count; 0: automatic */
    int fixed;           /* ws has the fixed-point adapter's xq region */
};

/* Waits for the write-backs that may still read the staging buffers. */
static void wait_pending(struct adapter_remote *r) {
    for (int i = 0; i < 2; i++)
        if (r->pending[i]) {
            clWaitForEvents(1, &r->pending[i]);
            clReleaseEvent(r->pending[i]);
            r->pending[i] = NULL;
        }
}

static struct adapter_remote *remote_state(stacl_adapter *ad) {
    if (!ad->remote) ad->remote = calloc(1, sizeof *ad->remote);
    return ad->remote;
}

static void release_stage(stacl_adapter *ad, struct adapter_remote *r) {
    for (int i = 0; i < 2; i++) {
        if (r->pinned[i]) {
            if (r->stage[i]) clEnqueueUnmapMemObject(ad->ctx->queue, r->pinned[i], r->stage[i], 0, NULL, NULL);
            clFinish(ad->ctx->queue);
            clReleaseMemObject(r->pinned[i]);
        } else {
            free(r->stage[i]);
        }
        r->pinned[i] = NULL;
        r->stage[i] = NULL;
    }
}

/* One staging buffer of `bytes`: pinned memory of the adapter device's
 * context, mapped, or malloc'd when that fails. */
static stacl_status alloc_stage(stacl_adapter *ad, struct adapter_remote *r, int i, size_t bytes) {
    cl_int err;
    cl_mem buf = clCreateBuffer(ad->ctx->context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &err);
    if (err == CL_SUCCESS && buf) {
        void *p = clEnqueueMapBuffer(ad->ctx->queue, buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL,
                                     NULL, &err);
        if (err == CL_SUCCESS && p) {
            r->pinned[i] = buf;
            r->stage[i] = p;
            return STACL_OK;
        }
        clReleaseMemObject(buf);
    }
    r->stage[i] = malloc(bytes);
    if (!r->stage[i]) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory for the adapter's staging buffer");
    return STACL_OK;
}

/* Grows the remote adapter's workspace and staging buffers to F frames. */
static stacl_status remote_reserve(stacl_adapter *ad, size_t F) {
    struct adapter_remote *r = remote_state(ad);
    if (!r) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory for the adapter's staging");
    if (!r->copy) {
        cl_int err;
        r->copy = clCreateCommandQueue(ad->ctx->context, ad->ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
        if (err != CL_SUCCESS) {
            r->copy = NULL;
            return stacl_cl_fail(ad->ctx, err, "creating the adapter device's copy queue");
        }
    }
    if (r->frames >= F && r->fixed == (ad->fx != NULL)) return STACL_OK;
    wait_pending(r);
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t L = (size_t)stacl_vision_tokens(c), W = (size_t)c->width, A = (size_t)ad->info.width;
    /* x, h, y; a fixed-point adapter also quantizes x's patch rows to int16
     * after y, in x's layout (xq [F, L, W], half as many floats). */
    if (r->frames > F) F = r->frames; /* here for the xq region: keep the capacity */
    const size_t floats = F * L * W + 2 * F * (L - 1) * A + (ad->fx ? (F * L * W + 1) / 2 : 0);
    if (r->ws) clReleaseMemObject(r->ws);
    r->ws = NULL;
    r->frames = 0;
    release_stage(ad, r);
    stacl_status st = STACL_OK;
    for (int i = 0; i < 2; i++) TRY(alloc_stage(ad, r, i, F * L * W * sizeof(float)));
    char what[96];
    snprintf(what, sizeof what, "the adapter workspace for %zu frames", F);
    TRY(stacl_device_buffer(ad->ctx, floats * sizeof(float), CL_MEM_READ_WRITE, NULL, what,
                            "use fewer frames per pass", &r->ws));
    r->frames = F;
    r->fixed = ad->fx != NULL;
cleanup:
    return st;
}

stacl_status stacl_adapter_set_transfer_chunks(stacl_adapter *adapter, int chunks) {
    if (!adapter || chunks < 0)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_set_transfer_chunks: %s",
                          adapter ? "negative chunk count" : "NULL adapter");
    if (!stacl_adapter_is_remote(adapter)) return STACL_OK; /* one device: no copies */
    struct adapter_remote *r = remote_state(adapter);
    if (!r) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory for the adapter's staging");
    r->chunks = chunks;
    return STACL_OK;
}

int stacl_adapter_transfer_chunks(const stacl_adapter *ad, int frames) {
    /* A fixed-point site is not split (see stacl_adapter_run_site_remote). */
    if (!ad || frames < 1 || !stacl_adapter_is_remote(ad) || ad->fx) return 1;
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t bytes = (size_t)frames * (size_t)stacl_vision_tokens(c) * (size_t)c->width * sizeof(float);
    size_t n = ad->remote && ad->remote->chunks ? (size_t)ad->remote->chunks : bytes / STACL_TRANSFER_CHUNK_BYTES;
    if ((!ad->remote || !ad->remote->chunks) && (ad->ctx->info.is_cpu || ad->model->ctx->info.is_cpu)) n = 1;
    if (!ad->remote || !ad->remote->chunks) {
        if (n < 2) n = 1; /* under two chunks' worth: one piece */
        if (n > STACL_TRANSFER_AUTO_CHUNKS) n = STACL_TRANSFER_AUTO_CHUNKS;
    }
    if (n > STACL_TRANSFER_MAX_CHUNKS) n = STACL_TRANSFER_MAX_CHUNKS;
    if (n > (size_t)frames) n = (size_t)frames;
    return n < 1 ? 1 : (int)n;
}

/* Keeps a reference to a copy's event as a "transfer" profile record of
 * ctx when ctx is profiling. */
static void record_transfer(stacl_ctx *ctx, cl_event ev) {
    cl_event *slot = stacl_profile_slot(ctx, "transfer");
    if (slot && clRetainEvent(ev) == CL_SUCCESS) *slot = ev;
    else stacl_profile_drop(ctx, slot);
}

/* A failed enqueue or wait: the message, the status. */
#define CL_TRY(ctx, call, what)                                                                                        \
    do {                                                                                                               \
        cl_int e_ = (call);                                                                                            \
        if (e_ != CL_SUCCESS) {                                                                                        \
            st = stacl_cl_fail(ctx, e_, what);                                                                         \
            goto cleanup;                                                                                              \
        }                                                                                                              \
    } while (0)

/* Two devices: x [F, L, W] (the class tokens ride along: contiguous copies
 * instead of F strided ones; the adapter never changes them) from the
 * backbone's ws through host staging into the adapter's workspace, the
 * kernels there, and back, in n chunks of whole frames (fc1 and fc2 are
 * row-wise; the conv mixes frames and runs once on all of them):
 *
 *   to the adapter:  read_k (backbone queue, into stage[k % 2]) -> host
 *                    wait -> write_k (adapter copy queue) -> fc1_k (adapter
 *                    queue, behind a barrier on write_k); read_{k+1} is
 *                    enqueued right after write_k, once write_{k-1} (the
 *                    last user of its staging buffer) is done, so it runs
 *                    while write_k and fc1_k do.
 *   conv:            on the adapter queue after every fc1.
 *   back:            fc2_k then a marker m_k (adapter queue); read-back_k
 *                    (copy queue, waiting for m_k) -> host wait -> write-
 *                    back_k (backbone queue); read-back_{k+1} is already
 *                    queued, and read-back_{k+2} follows once write-back_k
 *                    has freed its staging buffer, so fc2 of later chunks
 *                    and the copies of earlier ones overlap.
 *
 * Two contexts share no buffers and no events, so the host waits for each
 * read before it enqueues the matching write; within the adapter's context
 * the queues are joined by event wait lists. The backbone's in-order queue
 * runs the next block after the last write-back, and the next site's reads
 * into the staging buffers queue behind the write-backs there. n = 1 is the
 * plain blocking chain. The results do not depend on n: every output of
 * fc1/fc2 is summed by one work-item in a fixed order whatever the rows
 * around it. A fixed-point adapter moves its float residual stream the
 * same way in one chunk and runs its integer site (quantize, fc1, conv,
 * fc2 update) on the adapter device. */
stacl_status stacl_adapter_run_site_remote(stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x, size_t clips,
                                           size_t T) {
    stacl_status st = STACL_OK;
    stacl_ctx *bctx = ad->model->ctx, *actx = ad->ctx;
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t F = clips * T, L = (size_t)stacl_vision_tokens(c), W = (size_t)c->width, P = L - 1;
    const size_t A = (size_t)ad->info.width, row = L * W, hx = F * row, hy = hx + F * P * A;
    const int *kern = ad->info.kernel;
    cl_event in_rd[STACL_TRANSFER_MAX_CHUNKS] = {0}, in_wr[STACL_TRANSFER_MAX_CHUNKS] = {0};
    cl_event out_rd[STACL_TRANSFER_MAX_CHUNKS] = {0}, out_wr[STACL_TRANSFER_MAX_CHUNKS] = {0};
    cl_event fc2_done[STACL_TRANSFER_MAX_CHUNKS] = {0};
    size_t f0[STACL_TRANSFER_MAX_CHUNKS + 1];
    int n = 0;
    struct adapter_remote *r = NULL;
    TRY(remote_reserve(ad, F));
    r = ad->remote;
    n = stacl_adapter_transfer_chunks(ad, (int)F);
    for (int k = 0; k <= n; k++) f0[k] = (size_t)k * F / (size_t)n;
#define CHUNK_OFF(k) (f0[k] * row)
#define CHUNK_BYTES(k) ((f0[(k) + 1] - f0[k]) * row * sizeof(float))

    /* To the adapter device, fc1 chunk by chunk. */
    CL_TRY(bctx, clEnqueueReadBuffer(bctx->queue, ws, CL_FALSE, (x + CHUNK_OFF(0)) * sizeof(float), CHUNK_BYTES(0),
                                     r->stage[0], 0, NULL, &in_rd[0]),
           "copying the residual stream to the host");
    for (int k = 0; k < n; k++) {
        CL_TRY(bctx, clWaitForEvents(1, &in_rd[k]), "copying the residual stream to the host");
        CL_TRY(actx, clEnqueueWriteBuffer(r->copy, r->ws, CL_FALSE, CHUNK_OFF(k) * sizeof(float), CHUNK_BYTES(k),
                                          r->stage[k & 1], 0, NULL, &in_wr[k]),
               "copying the residual stream to the adapter device");
        CL_TRY(actx, clEnqueueBarrierWithWaitList(actx->queue, 1, &in_wr[k], NULL), "clEnqueueBarrierWithWaitList");
        const size_t fk = f0[k + 1] - f0[k];
        if (!ad->fx)
            TRY(stacl_op_adapter_fc1(actx, fk, P, W, A, r->ws, CHUNK_OFF(k), ad->params, s->fc1_w, s->fc1_b,
                                     r->ws, hx + f0[k] * P * A));
        if (k + 1 < n) {
            if (k >= 1)
                CL_TRY(actx, clWaitForEvents(1, &in_wr[k - 1]), "copying the residual stream to the adapter device");
            CL_TRY(bctx, clEnqueueReadBuffer(bctx->queue, ws, CL_FALSE, (x + CHUNK_OFF(k + 1)) * sizeof(float),
                                             CHUNK_BYTES(k + 1), r->stage[(k + 1) & 1], 0, NULL, &in_rd[k + 1]),
                   "copying the residual stream to the host");
        }
    }
    if (ad->fx) {
        TRY(stacl_fx_run_site(ad, s, r->ws, 0, hx, hy, hy + F * P * A, clips, T));
        CL_TRY(actx, clEnqueueMarkerWithWaitList(actx->queue, 0, NULL, &fc2_done[0]), "clEnqueueMarkerWithWaitList");
    } else {
        TRY(stacl_op_adapter_dwconv3d(actx, clips, T, (size_t)(c->image_size / c->patch), A, (size_t)kern[0],
                                      (size_t)kern[1], (size_t)kern[2], r->ws, hx, ad->params, s->conv_w, s->conv_b,
                                      r->ws, hy));
        for (int k = 0; k < n; k++) {
            TRY(stacl_op_adapter_fc2_residual(actx, f0[k + 1] - f0[k], P, W, A, r->ws, hy + f0[k] * P * A,
                                              ad->params, s->fc2_w, s->fc2_b, r->ws, CHUNK_OFF(k)));
            CL_TRY(actx, clEnqueueMarkerWithWaitList(actx->queue, 0, NULL, &fc2_done[k]),
                   "clEnqueueMarkerWithWaitList");
        }
    }
    clFlush(actx->queue);
    /* And back. Every write of the way in is done (fc1 waited for them), so
     * both staging buffers are free. */
    for (int k = 0; k < n && k < 2; k++)
        CL_TRY(actx, clEnqueueReadBuffer(r->copy, r->ws, CL_FALSE, CHUNK_OFF(k) * sizeof(float), CHUNK_BYTES(k),
                                         r->stage[k & 1], 1, &fc2_done[k], &out_rd[k]),
               "copying the adapted residual stream to the host");
    clFlush(r->copy);
    for (int k = 0; k < n; k++) {
        CL_TRY(actx, clWaitForEvents(1, &out_rd[k]), "copying the adapted residual stream to the host");
        CL_TRY(bctx, clEnqueueWriteBuffer(bctx->queue, ws, CL_FALSE, (x + CHUNK_OFF(k)) * sizeof(float),
                                          CHUNK_BYTES(k), r->stage[k & 1], 0, NULL, &out_wr[k]),
               "copying the adapted residual stream to the backbone device");
        if (k + 2 < n) {
            clFlush(bctx->queue);
            CL_TRY(bctx, clWaitForEvents(1, &out_wr[k]), "copying the adapted residual stream to the backbone device");
            CL_TRY(actx, clEnqueueReadBuffer(r->copy, r->ws, CL_FALSE, CHUNK_OFF(k + 2) * sizeof(float),
                                             CHUNK_BYTES(k + 2), r->stage[k & 1], 1, &fc2_done[k + 2], &out_rd[k + 2]),
                   "copying the adapted residual stream to the host");
            clFlush(r->copy);
        }
    }
    /* The last write-backs are not waited for (the backbone's queue orders
     * them before its next commands); freeing or growing the staging
     * buffers waits for them. */
    wait_pending(r);
    for (int k = n - 2 < 0 ? 0 : n - 2, i = 0; k < n; k++, i++)
        if (clRetainEvent(out_wr[k]) == CL_SUCCESS) r->pending[i] = out_wr[k];
#undef CHUNK_OFF
#undef CHUNK_BYTES
cleanup:
    if (st != STACL_OK && r) { /* nothing may still use the staging buffers */
        clFinish(bctx->queue);
        if (r->copy) clFinish(r->copy);
        clFinish(actx->queue);
    }
    for (int k = 0; k < n; k++) {
        if (in_rd[k]) record_transfer(bctx, in_rd[k]), clReleaseEvent(in_rd[k]);
        if (in_wr[k]) record_transfer(actx, in_wr[k]), clReleaseEvent(in_wr[k]);
        if (out_rd[k]) record_transfer(actx, out_rd[k]), clReleaseEvent(out_rd[k]);
        if (out_wr[k]) record_transfer(bctx, out_wr[k]), clReleaseEvent(out_wr[k]);
        if (fc2_done[k]) clReleaseEvent(fc2_done[k]);
    }
    return st;
}

void stacl_adapter_remote_free(stacl_adapter *ad) {
    struct adapter_remote *r = ad->remote;
    if (!r) return;
    wait_pending(r);
    if (r->copy) {
        clFinish(r->copy);
        clReleaseCommandQueue(r->copy);
    }
    release_stage(ad, r);
    if (r->ws) clReleaseMemObject(r->ws);
    free(r);
    ad->remote = NULL;
}
