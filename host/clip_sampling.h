/* clip_sampling.h: which decoded frames make a clip, for the two protocols
 * of CLIP-based video recognizers, and the multi-view enumeration used at
 * test time. Pure functions of (protocol, frame count, view, seed); see
 * docs/video.md for the formulas and where they come from. */
#ifndef STACL_CLIP_SAMPLING_H
#define STACL_CLIP_SAMPLING_H

#include <stdint.h>

#include "stacl.h"

typedef enum stacl_sampling {
    STACL_SAMPLING_UNIFORM = 0, /* one frame per segment (TSN/MSTA style) */
    STACL_SAMPLING_DENSE = 1    /* num_frames frames sampling_rate apart (ST-Adapter on K400) */
} stacl_sampling;

typedef struct stacl_clip_spec {
    stacl_sampling sampling;
    int num_frames;     /* T, frames per clip (8) */
    int sampling_rate;  /* dense only: stride between frames (16) */
    int temporal_views; /* test-time clips along time (1) */
    int spatial_views;  /* test-time crops: 1 (center) or 3 (start, center, end of the long side) */
} stacl_clip_spec;

stacl_clip_spec stacl_clip_spec_default(void); /* uniform, 8 frames, rate 16, 1x1 views */
/* Checks ranges; INVALID_ARG with a message naming the field. */
stacl_status stacl_clip_spec_check(const stacl_clip_spec *spec);

/* Views are numbered temporal first: view = spatial * temporal_views +
 * temporal (ST-Adapter's order: for each spatial crop, every temporal clip). */
int stacl_clip_num_views(const stacl_clip_spec *spec);
void stacl_clip_view_split(const stacl_clip_spec *spec, int view, int *temporal, int *spatial);

/* Test-time indices (deterministic) of temporal view `temporal` for a video
 * of n_frames decoded frames (>= 1); idx has num_frames entries. */
stacl_status stacl_sample_eval(const stacl_clip_spec *spec, int64_t n_frames, int temporal, int64_t *idx);
/* Training indices: random start (dense) or a random frame in each segment
 * (uniform), drawn from *rng (see stacl_rng_next). */
stacl_status stacl_sample_train(const stacl_clip_spec *spec, int64_t n_frames, uint64_t *rng, int64_t *idx);

/* splitmix64: small, seedable, the same sequence on every platform. */
uint64_t stacl_rng_next(uint64_t *state);
/* Uniform integer in [0, n) (n >= 1). */
uint64_t stacl_rng_below(uint64_t *state, uint64_t n);
/* Uniform double in [0, 1). */
double stacl_rng_double(uint64_t *state);

#endif
