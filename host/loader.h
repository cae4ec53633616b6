/* loader.h: decodes and preprocesses dataset clips ahead of the consumer on
 * worker threads, into a bounded queue of `prefetch` slots.
 *
 * Order is deterministic whatever the thread timing: evaluation walks the
 * list in order; training walks a permutation drawn from (seed, epoch), and
 * each sample's random clip and crop come from (seed, epoch, index), so a
 * run is reproducible with any number of workers. A sample that fails (the
 * file is missing, damaged, not a video) comes back with ok = 0 and the
 * reason; it is counted, and the caller reports and skips it: labels never
 * shift. */
#ifndef STACL_LOADER_H
#define STACL_LOADER_H

#include <stdint.h>

#include "clip_sampling.h"
#include "dataset.h"
#include "preprocess.h"

typedef struct stacl_loader_config {
    int workers;         /* decoding threads (>= 1) */
    int prefetch;        /* samples decoded ahead, the queue depth (>= 1) */
    int train;           /* random clips + augmentation, shuffled order */
    uint64_t seed;
    int epoch;
    int start;           /* first position of the epoch's order to deliver (resuming mid-epoch) */
    stacl_clip_spec clip;/* eval: every view (temporal x spatial) of each sample */
    int size;            /* crop side (224) */
    int short_side;      /* eval resize (0 = size) */
    stacl_augment aug;   /* train: scale jitter range (0 = [size, size*8/7]) and flip */
    int decoder_threads; /* FFmpeg threads per video (0 = 1) */
} stacl_loader_config;

stacl_loader_config stacl_loader_config_default(void); /* 2 workers, prefetch 4, eval, 224 */

typedef struct stacl_sample {
    int index;          /* dataset entry */
    int label;
    int ok;             /* 0: `error` says why; pixels undefined */
    char error[640];
    int views;          /* eval: temporal x spatial views; train: 1 */
    int frames;         /* T */
    float *pixels;      /* [views][T][3][size][size], views in stacl_clip_view_split order */
    int64_t n_frames;   /* frames the clip was sampled on */
    double decode_ms, preprocess_ms;
} stacl_sample;

typedef struct stacl_loader_stats {
    int ok, bad;
    double decode_ms, preprocess_ms; /* summed over workers */
} stacl_loader_stats;

typedef struct stacl_loader stacl_loader;
/* ds must outlive the loader. Workers start at once. */
stacl_status stacl_loader_create(stacl_loader **out, const stacl_dataset *ds, const stacl_loader_config *cfg);
/* Next sample in order, or *s = NULL at the end. The sample stays valid until
 * the next call (its slot is then recycled). */
stacl_status stacl_loader_next(stacl_loader *l, const stacl_sample **s);
void stacl_loader_get_stats(const stacl_loader *l, stacl_loader_stats *st);
/* Stops the workers (also mid-epoch) and frees everything. */
void stacl_loader_free(stacl_loader *l);

#endif
