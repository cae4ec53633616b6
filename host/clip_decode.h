/* clip_decode.h: one clip's frames from a video: count, sample, decode,
 * with the fallback that makes sampling rest on frames that really decode.
 *
 * The count is first the demuxer's packet count (cheap, no decoding). If a
 * sampled index then turns out to lie past the last frame that decodes
 * (damaged or truncated files, packets the decoder rejects), the clip is
 * resampled on the decoded count, with the same random draws, and decoded
 * again. The container's own frame count is never used. */
#ifndef STACL_CLIP_DECODE_H
#define STACL_CLIP_DECODE_H

#include <stdint.h>

#include "clip_sampling.h"
#include "video.h"

typedef struct stacl_clip_frames {
    int64_t n_frames;  /* frame count the indices were sampled on */
    int count_exact;   /* 1 when n_frames came from decoding to the end */
    int num;           /* spec->num_frames, or T * temporal_views for all views */
    int64_t *idx;      /* [num] sampled decoded-frame indices */
    uint8_t *rgb;      /* [num][h][w][3] */
    int w, h;
} stacl_clip_frames;

#define STACL_TRAIN_CLIP (-1)         /* a training draw from seed */
#define STACL_ALL_TEMPORAL_VIEWS (-2) /* every test-time view, one after the other, one decode */

/* temporal_view: a test-time view (>= 0), STACL_TRAIN_CLIP or
 * STACL_ALL_TEMPORAL_VIEWS. */
stacl_status stacl_clip_decode(stacl_video *v, const stacl_clip_spec *spec, int temporal_view, uint64_t seed,
                               stacl_clip_frames *out);
void stacl_clip_frames_release(stacl_clip_frames *f); /* safe on a zeroed struct */

#endif
