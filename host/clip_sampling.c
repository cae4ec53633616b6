/* clip_sampling.c: frame indices for uniform-segment and dense clips (see
 * clip_sampling.h and docs/video.md). Short videos clamp to the last frame,
 * so a one-frame video still yields a full clip. */
#include "clip_sampling.h"

#include <math.h>

#include "status.h"

uint64_t stacl_rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t stacl_rng_below(uint64_t *state, uint64_t n) {
    /* Rejection keeps it unbiased; the loop almost never repeats. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = stacl_rng_next(state);
    while (r >= limit);
    return r % n;
}

double stacl_rng_double(uint64_t *state) { return (double)(stacl_rng_next(state) >> 11) * 0x1.0p-53; }

stacl_clip_spec stacl_clip_spec_default(void) {
    stacl_clip_spec s = {STACL_SAMPLING_UNIFORM, 8, 16, 1, 1};
    return s;
}

stacl_status stacl_clip_spec_check(const stacl_clip_spec *s) {
    if (s->sampling != STACL_SAMPLING_UNIFORM && s->sampling != STACL_SAMPLING_DENSE)
        return stacl_fail(STACL_ERR_INVALID_ARG, "clip sampling must be uniform or dense");
    if (s->num_frames < 1 || s->num_frames > 4096)
        return stacl_fail(STACL_ERR_INVALID_ARG, "num_frames must be in [1, 4096], got %d", s->num_frames);
    if (s->sampling == STACL_SAMPLING_DENSE && (s->sampling_rate < 1 || s->sampling_rate > 100000))
        return stacl_fail(STACL_ERR_INVALID_ARG, "sampling_rate must be in [1, 100000], got %d", s->sampling_rate);
    if (s->temporal_views < 1 || s->temporal_views > 1000)
        return stacl_fail(STACL_ERR_INVALID_ARG, "temporal_views must be in [1, 1000], got %d", s->temporal_views);
    if (s->spatial_views != 1 && s->spatial_views != 3)
        return stacl_fail(STACL_ERR_INVALID_ARG, "spatial_views must be 1 or 3, got %d", s->spatial_views);
    return STACL_OK;
}

int stacl_clip_num_views(const stacl_clip_spec *s) { return s->temporal_views * s->spatial_views; }

void stacl_clip_view_split(const stacl_clip_spec *s, int view, int *temporal, int *spatial) {
    *temporal = view % s->temporal_views;
    *spatial = view / s->temporal_views;
}

static int64_t clamp_last(int64_t i, int64_t n) { return i < n ? i : n - 1; }

stacl_status stacl_sample_eval(const stacl_clip_spec *s, int64_t n, int temporal, int64_t *idx) {
    stacl_status st = stacl_clip_spec_check(s);
    if (st != STACL_OK) return st;
    if (n < 1) return stacl_fail(STACL_ERR_INVALID_ARG, "cannot sample a clip from %lld frames", (long long)n);
    if (temporal < 0 || temporal >= s->temporal_views)
        return stacl_fail(STACL_ERR_INVALID_ARG, "temporal view %d out of range [0, %d)", temporal, s->temporal_views);
    const int64_t T = s->num_frames, V = s->temporal_views;
    if (s->sampling == STACL_SAMPLING_UNIFORM) {
        /* Segment i covers [i*N/T, (i+1)*N/T); view v of V takes the point
         * (v+1)/(V+1) of the way through it: V = 1 is the segment center,
         * floor((i + 0.5) * N / T). Integer arithmetic, no rounding drift. */
        for (int64_t i = 0; i < T; i++)
            idx[i] = clamp_last((i * (V + 1) + temporal + 1) * n / (T * (V + 1)), n);
        return STACL_OK;
    }
    /* Dense, as ST-Adapter's test-time crops: a window of (T-1)*r+1 frames
     * (padded with the last frame when the video is shorter), V windows
     * evenly spaced from the first to the last start; one window is centered. */
    const int64_t r = s->sampling_rate, span = (T - 1) * r + 1;
    const int64_t slide = n > span ? n - span : 0;
    int64_t start;
    if (V == 1) start = slide / 2;
    else start = (int64_t)nearbyint((double)slide / (double)(V - 1) * (double)temporal); /* Python round(): half to even */
    for (int64_t i = 0; i < T; i++) idx[i] = clamp_last(start + i * r, n);
    return STACL_OK;
}

stacl_status stacl_sample_train(const stacl_clip_spec *s, int64_t n, uint64_t *rng, int64_t *idx) {
    stacl_status st = stacl_clip_spec_check(s);
    if (st != STACL_OK) return st;
    if (n < 1) return stacl_fail(STACL_ERR_INVALID_ARG, "cannot sample a clip from %lld frames", (long long)n);
    const int64_t T = s->num_frames;
    if (s->sampling == STACL_SAMPLING_UNIFORM) {
        for (int64_t i = 0; i < T; i++) {
            int64_t a = i * n / T, b = (i + 1) * n / T; /* segment [a, b) */
            idx[i] = b > a ? a + (int64_t)stacl_rng_below(rng, (uint64_t)(b - a)) : clamp_last(a, n);
        }
        return STACL_OK;
    }
    const int64_t r = s->sampling_rate, span = (T - 1) * r + 1;
    int64_t start = n > span ? (int64_t)stacl_rng_below(rng, (uint64_t)(n - span + 1)) : 0;
    for (int64_t i = 0; i < T; i++) idx[i] = clamp_last(start + i * r, n);
    return STACL_OK;
}
