/* clip_decode.c: count -> sample -> decode for one clip, resampling on the
 * decoded frame count when the packet count was too optimistic (see
 * clip_decode.h). */
#include "clip_decode.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

void stacl_clip_frames_release(stacl_clip_frames *f) {
    free(f->idx);
    free(f->rgb);
    memset(f, 0, sizeof *f);
}

static stacl_status sample(const stacl_clip_spec *spec, int64_t n, int temporal_view, uint64_t seed, int64_t *idx) {
    uint64_t rng = seed; /* a fresh copy: a resample repeats the same draws */
    if (temporal_view == STACL_TRAIN_CLIP) return stacl_sample_train(spec, n, &rng, idx);
    if (temporal_view >= 0) return stacl_sample_eval(spec, n, temporal_view, idx);
    for (int v = 0; v < spec->temporal_views; v++) {
        stacl_status st = stacl_sample_eval(spec, n, v, idx + (size_t)v * spec->num_frames);
        if (st != STACL_OK) return st;
    }
    return STACL_OK;
}

stacl_status stacl_clip_decode(stacl_video *v, const stacl_clip_spec *spec, int temporal_view, uint64_t seed,
                               stacl_clip_frames *out) {
    stacl_status st = STACL_OK;
    memset(out, 0, sizeof *out);
    const stacl_video_info *in = stacl_video_get_info(v);
    TRY(stacl_clip_spec_check(spec));
    out->num = spec->num_frames * (temporal_view == STACL_ALL_TEMPORAL_VIEWS ? spec->temporal_views : 1);
    out->w = in->width;
    out->h = in->height;
    out->idx = malloc(sizeof(int64_t) * (size_t)out->num);
    out->rgb = malloc((size_t)out->num * in->width * in->height * 3);
    if (!out->idx || !out->rgb)
        FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory for %d frames of %dx%d", stacl_video_path(v), out->num,
             in->width, in->height);
    int64_t n = 0;
    TRY(stacl_video_count_packets(v, &n));
    if (n == 0) {
        TRY(stacl_video_count_frames(v, &n)); /* names the file and the reason */
        out->count_exact = 1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        out->n_frames = n;
        TRY(sample(spec, n, temporal_view, seed, out->idx));
        int64_t decoded = 0;
        st = stacl_video_read_frames(v, out->idx, out->num, out->rgb, &decoded);
        if (st != STACL_ERR_SHAPE || attempt == 1) break;
        /* Fewer frames decode than packets: the read stopped at the true end. */
        n = decoded;
        out->count_exact = 1;
        st = STACL_OK;
    }
    if (st != STACL_OK) goto cleanup;
    return STACL_OK;
cleanup:
    stacl_clip_frames_release(out);
    return st;
}
