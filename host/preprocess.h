/* preprocess.h: RGB frames to the model's input: short side resized to S
 * with bicubic interpolation, a crop to H x W, an optional horizontal flip,
 * CLIP normalization, planar float32 [T,3,H,W] (what `stacl forward` takes).
 *
 * The resize matches ST-Adapter's reference code, which calls PyTorch's
 * F.interpolate(mode='bicubic', align_corners=False) on float frames:
 * Keys cubic with a = -0.75, source x = (x_out + 0.5) * in/out - 0.5, edge
 * taps clamped, no antialiasing, no clamping of the result to [0, 1]. New
 * size: the short side becomes S, the long side long * S / short (floor).
 * Normalizing after instead of before the resize is the same (the filter is
 * linear with weights summing to 1). */
#ifndef STACL_PREPROCESS_H
#define STACL_PREPROCESS_H

#include <stdint.h>

#include "stacl.h"

extern const float stacl_clip_mean[3]; /* 0.48145466, 0.4578275, 0.40821073 */
extern const float stacl_clip_std[3];  /* 0.26862954, 0.26130258, 0.27577711 */

/* Where one clip's crop comes from; the same for every frame of the clip. */
typedef struct stacl_crop {
    int short_side;   /* S: resize the short side to this */
    int crop_h, crop_w;
    int y0, x0;       /* crop origin in the resized frame */
    int flip;         /* mirror left-right after cropping */
} stacl_crop;

typedef struct stacl_augment {
    int min_short, max_short; /* short-side scale jitter range (inclusive) */
    int flip;                 /* allow a random horizontal flip (off by default: it swaps left/right classes) */
} stacl_augment;

/* Resized size of a w x h frame whose short side becomes S. */
void stacl_resize_dims(int w, int h, int S, int *rw, int *rh);
/* Test-time crop: spatial_views 1 = center crop; 3 = start/center/end of the
 * long side, view in [0, 3) (ST-Adapter's three-crop, which needs the crop to
 * span the short side). */
stacl_status stacl_crop_eval(int w, int h, int S, int crop, int spatial_views, int view, stacl_crop *out);
/* Training crop: short side drawn from [min_short, max_short] as
 * round(1 / U(1/max, 1/min)) (PySlowFast's jitter, used by ST-Adapter), a
 * uniform random crop position, a flip with probability 1/2 when allowed. */
stacl_status stacl_crop_train(int w, int h, int crop, const stacl_augment *aug, uint64_t *rng, stacl_crop *out);

/* One RGB24 frame (w x h, packed) to normalized planar float [3][crop_h][crop_w]
 * at out with plane stride crop_h*crop_w. scratch: at least
 * stacl_preprocess_scratch_floats(...) floats (NULL: allocated per call). */
size_t stacl_preprocess_scratch_floats(int w, int h, const stacl_crop *c);
stacl_status stacl_preprocess_frame(const uint8_t *rgb, int w, int h, const stacl_crop *c, float *out, float *scratch);
/* Same without normalization: the resized crop in [0,1] units (tests). */
stacl_status stacl_resize_crop_frame(const uint8_t *rgb, int w, int h, const stacl_crop *c, float *out, float *scratch);

/* Every frame of a clip (rgb [T][h][w][3]) with one crop into out [T][3][crop_h][crop_w]. */
stacl_status stacl_preprocess_clip(const uint8_t *rgb, int T, int w, int h, const stacl_crop *c, float *out);

#endif
