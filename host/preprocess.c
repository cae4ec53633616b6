/* preprocess.c: bicubic short-side resize + crop + flip + CLIP normalization
 * (see preprocess.h for the reference it matches). Only the cropped window
 * is computed: a horizontal pass over the input rows the window touches,
 * then a vertical pass, with per-axis tap tables. */
#include "preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clip_sampling.h"
#include "status.h"

const float stacl_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float stacl_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

#define CUBIC_A (-0.75f) /* PyTorch's (and OpenCV's) Keys coefficient */

void stacl_resize_dims(int w, int h, int S, int *rw, int *rh) {
    /* ST-Adapter: new_long = long * S // short. */
    if (h < w) {
        *rh = S;
        *rw = (int)((int64_t)w * S / h);
    } else {
        *rw = S;
        *rh = (int)((int64_t)h * S / w);
    }
}

static stacl_status check_frame(int w, int h, int S, int crop_h, int crop_w) {
    if (w < 1 || h < 1 || w > 16384 || h > 16384)
        return stacl_fail(STACL_ERR_INVALID_ARG, "frame size %dx%d out of range", w, h);
    if (S < 1 || S > 8192) return stacl_fail(STACL_ERR_INVALID_ARG, "short side %d out of range [1, 8192]", S);
    if (crop_h < 1 || crop_w < 1 || crop_h > S || crop_w > S)
        return stacl_fail(STACL_ERR_INVALID_ARG, "crop %dx%d must be in [1, short side %d]", crop_w, crop_h, S);
    return STACL_OK;
}

stacl_status stacl_crop_eval(int w, int h, int S, int crop, int spatial_views, int view, stacl_crop *out) {
    stacl_status st = check_frame(w, h, S, crop, crop);
    if (st != STACL_OK) return st;
    int rw, rh;
    stacl_resize_dims(w, h, S, &rw, &rh);
    memset(out, 0, sizeof *out);
    out->short_side = S;
    out->crop_h = out->crop_w = crop;
    if (spatial_views == 1) {
        if (view != 0) return stacl_fail(STACL_ERR_INVALID_ARG, "spatial view %d out of range [0, 1)", view);
        out->y0 = (rh - crop) / 2;
        out->x0 = (rw - crop) / 2;
        return STACL_OK;
    }
    if (spatial_views != 3) return stacl_fail(STACL_ERR_INVALID_ARG, "spatial views must be 1 or 3, got %d", spatial_views);
    if (view < 0 || view > 2) return stacl_fail(STACL_ERR_INVALID_ARG, "spatial view %d out of range [0, 3)", view);
    /* Three crops along the long side at 0, margin/2, margin; the other axis
     * centered (ST-Adapter requires crop == S there, where centering is 0). */
    int long_is_h = rh > rw;
    int margin = (long_is_h ? rh : rw) - crop;
    int pos = view == 0 ? 0 : view == 1 ? margin / 2 : margin;
    if (long_is_h) {
        out->y0 = pos;
        out->x0 = (rw - crop) / 2;
    } else {
        out->x0 = pos;
        out->y0 = (rh - crop) / 2;
    }
    return STACL_OK;
}

stacl_status stacl_crop_train(int w, int h, int crop, const stacl_augment *aug, uint64_t *rng, stacl_crop *out) {
    if (aug->min_short < crop || aug->max_short < aug->min_short)
        return stacl_fail(STACL_ERR_INVALID_ARG, "scale jitter range [%d, %d] must satisfy crop %d <= min <= max",
                          aug->min_short, aug->max_short, crop);
    /* Inverse-uniform draw, as PySlowFast's random_short_side_scale_jitter. */
    double u = stacl_rng_double(rng);
    double inv = 1.0 / aug->max_short + u * (1.0 / aug->min_short - 1.0 / aug->max_short);
    int S = (int)lround(1.0 / inv);
    if (S < aug->min_short) S = aug->min_short;
    if (S > aug->max_short) S = aug->max_short;
    stacl_status st = check_frame(w, h, S, crop, crop);
    if (st != STACL_OK) return st;
    int rw, rh;
    stacl_resize_dims(w, h, S, &rw, &rh);
    memset(out, 0, sizeof *out);
    out->short_side = S;
    out->crop_h = out->crop_w = crop;
    out->y0 = (int)stacl_rng_below(rng, (uint64_t)(rh - crop + 1));
    out->x0 = (int)stacl_rng_below(rng, (uint64_t)(rw - crop + 1));
    out->flip = aug->flip ? (int)(stacl_rng_next(rng) >> 63) : 0;
    return STACL_OK;
}

/* Keys cubic weights for fractional offset t (taps at -1, 0, 1, 2). */
static void cubic_weights(float t, float wgt[4]) {
    const float A = CUBIC_A;
    float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
    wgt[0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    wgt[1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
    wgt[2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    wgt[3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
}

/* Taps of output coordinates [o0, o0+n) resizing in -> out along one axis:
 * PyTorch's source index scale*(o+0.5)-0.5 in float with scale = in/out,
 * taps clamped to the edge. */
static void axis_taps(int in, int out, int o0, int n, int *idx, float *wgt) {
    const float scale = (float)in / (float)out;
    for (int k = 0; k < n; k++) {
        float src = scale * ((float)(o0 + k) + 0.5f) - 0.5f;
        float fl = floorf(src);
        int i0 = (int)fl;
        cubic_weights(src - fl, wgt + 4 * k);
        for (int j = 0; j < 4; j++) {
            int i = i0 - 1 + j;
            idx[4 * k + j] = i < 0 ? 0 : i >= in ? in - 1 : i;
        }
    }
}

size_t stacl_preprocess_scratch_floats(int w, int h, const stacl_crop *c) {
    (void)w;
    /* rows touched by the window: at most crop_h*scale + 4 + margin, bounded by h */
    size_t rows = (size_t)h + 4;
    return rows * 3 * (size_t)c->crop_w + (size_t)8 * (c->crop_h + c->crop_w);
}

static stacl_status resize_crop(const uint8_t *rgb, int w, int h, const stacl_crop *c, float *out, float *scratch,
                                int normalize) {
    stacl_status st = check_frame(w, h, c->short_side, c->crop_h, c->crop_w);
    if (st != STACL_OK) return st;
    int rw, rh;
    stacl_resize_dims(w, h, c->short_side, &rw, &rh);
    const int ch = c->crop_h, cw = c->crop_w;
    if (c->y0 < 0 || c->x0 < 0 || c->y0 + ch > rh || c->x0 + cw > rw)
        return stacl_fail(STACL_ERR_INVALID_ARG, "crop %dx%d at (%d, %d) outside the resized %dx%d frame", cw, ch,
                          c->x0, c->y0, rw, rh);
    float *own = NULL;
    if (!scratch) {
        own = malloc(stacl_preprocess_scratch_floats(w, h, c) * sizeof(float));
        if (!own) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "preprocess scratch: out of memory");
        scratch = own;
    }
    /* Layout of scratch: tap tables, then the horizontal pass [rows][3][cw]. */
    float *wx = scratch, *wy = wx + 4 * cw;
    int *ix = (int *)(wy + 4 * ch), *iy = ix + 4 * cw; /* int and float are both 4 bytes */
    float *hp = (float *)(iy + 4 * ch);
    axis_taps(w, rw, c->x0, cw, ix, wx);
    axis_taps(h, rh, c->y0, ch, iy, wy);
    int rlo = iy[0], rhi = iy[4 * ch - 1]; /* taps are monotonic */
    /* Horizontal pass on rows rlo..rhi, channels planar. */
    for (int r = rlo; r <= rhi; r++) {
        const uint8_t *row = rgb + (size_t)r * w * 3;
        float *dst = hp + (size_t)(r - rlo) * 3 * cw;
        for (int x = 0; x < cw; x++) {
            const int *ii = ix + 4 * x;
            const float *ww = wx + 4 * x;
            for (int p = 0; p < 3; p++) {
                float acc = ww[0] * row[ii[0] * 3 + p] + ww[1] * row[ii[1] * 3 + p] + ww[2] * row[ii[2] * 3 + p] +
                            ww[3] * row[ii[3] * 3 + p];
                dst[p * cw + x] = acc * (1.0f / 255.0f);
            }
        }
    }
    /* Vertical pass, flip and normalization into planar [3][ch][cw]. */
    const size_t plane = (size_t)ch * cw;
    for (int y = 0; y < ch; y++) {
        const int *ii = iy + 4 * y;
        const float *ww = wy + 4 * y;
        for (int p = 0; p < 3; p++) {
            const float *r0 = hp + (size_t)(ii[0] - rlo) * 3 * cw + (size_t)p * cw;
            const float *r1 = hp + (size_t)(ii[1] - rlo) * 3 * cw + (size_t)p * cw;
            const float *r2 = hp + (size_t)(ii[2] - rlo) * 3 * cw + (size_t)p * cw;
            const float *r3 = hp + (size_t)(ii[3] - rlo) * 3 * cw + (size_t)p * cw;
            float m = normalize ? stacl_clip_mean[p] : 0.0f, inv = normalize ? 1.0f / stacl_clip_std[p] : 1.0f;
            float *dst = out + (size_t)p * plane + (size_t)y * cw;
            for (int x = 0; x < cw; x++) {
                float val = ww[0] * r0[x] + ww[1] * r1[x] + ww[2] * r2[x] + ww[3] * r3[x];
                dst[c->flip ? cw - 1 - x : x] = (val - m) * inv;
            }
        }
    }
    free(own);
    return STACL_OK;
}

stacl_status stacl_preprocess_frame(const uint8_t *rgb, int w, int h, const stacl_crop *c, float *out, float *scratch) {
    return resize_crop(rgb, w, h, c, out, scratch, 1);
}

stacl_status stacl_resize_crop_frame(const uint8_t *rgb, int w, int h, const stacl_crop *c, float *out,
                                     float *scratch) {
    return resize_crop(rgb, w, h, c, out, scratch, 0);
}

stacl_status stacl_preprocess_clip(const uint8_t *rgb, int T, int w, int h, const stacl_crop *c, float *out) {
    float *scratch = malloc(stacl_preprocess_scratch_floats(w, h, c) * sizeof(float));
    if (!scratch) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "preprocess scratch: out of memory");
    stacl_status st = STACL_OK;
    const size_t in_frame = (size_t)w * h * 3, out_frame = (size_t)3 * c->crop_h * c->crop_w;
    for (int t = 0; t < T && st == STACL_OK; t++)
        st = stacl_preprocess_frame(rgb + t * in_frame, w, h, c, out + t * out_frame, scratch);
    free(scratch);
    return st;
}
