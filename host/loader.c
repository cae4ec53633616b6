/* loader.c: worker threads + a ring of prefetch slots (see loader.h).
 * Position p of the epoch's order always lands in slot p % prefetch; a
 * worker may claim position p only once the consumer has released p -
 * prefetch, which bounds the queue and fixes the order without any
 * reordering logic. */
#include "loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clip_decode.h"
#include "status.h"
#include "video.h"

typedef struct slot {
    int ready;
    stacl_sample s;
} slot;

struct stacl_loader {
    const stacl_dataset *ds;
    stacl_loader_config cfg;
    int n;          /* samples this epoch */
    int *order;     /* dataset index at each position */
    slot *slots;
    size_t pixels_per_sample;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* a slot was released / stop */
    pthread_cond_t cv_done; /* a slot became ready */
    int next_claim;   /* next position a worker takes */
    int released;     /* positions the consumer is done with */
    int handed;       /* positions returned to the consumer */
    int stop;
    stacl_loader_stats stats;
};

stacl_loader_config stacl_loader_config_default(void) {
    stacl_loader_config c;
    memset(&c, 0, sizeof c);
    c.workers = 2;
    c.prefetch = 4;
    c.clip = stacl_clip_spec_default();
    c.size = 224;
    return c;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t s = a ^ (b * 0x9E3779B97F4A7C15ull);
    return stacl_rng_next(&s);
}

/* Decode + preprocess one sample into s (s->pixels preallocated). */
static stacl_status load_sample(stacl_loader *l, int index, stacl_sample *s) {
    const stacl_loader_config *c = &l->cfg;
    stacl_status st = STACL_OK;
    stacl_video *v = NULL;
    stacl_clip_frames cf = {0};
    const char *path = stacl_dataset_path(l->ds, index);
    const size_t clip_floats = (size_t)c->clip.num_frames * 3 * c->size * c->size;
    uint64_t seed = mix(mix(c->seed, (uint64_t)c->epoch + 1), (uint64_t)index);
    double t0 = now_ms();
    TRY(stacl_video_open(&v, path, c->decoder_threads > 0 ? c->decoder_threads : 1));
    TRY(stacl_clip_decode(v, &c->clip, c->train ? STACL_TRAIN_CLIP : STACL_ALL_TEMPORAL_VIEWS, seed, &cf));
    s->n_frames = cf.n_frames;
    double t1 = now_ms();
    s->decode_ms = t1 - t0;
    const size_t frame_bytes = (size_t)cf.w * cf.h * 3;
    if (c->train) {
        stacl_crop crop;
        uint64_t rng = mix(seed, 0xC0FFEE);
        TRY(stacl_crop_train(cf.w, cf.h, c->size, &c->aug, &rng, &crop));
        TRY(stacl_preprocess_clip(cf.rgb, c->clip.num_frames, cf.w, cf.h, &crop, s->pixels));
    } else {
        int S = c->short_side > 0 ? c->short_side : c->size;
        for (int view = 0; view < s->views; view++) {
            int t, sp;
            stacl_clip_view_split(&c->clip, view, &t, &sp);
            stacl_crop crop;
            TRY(stacl_crop_eval(cf.w, cf.h, S, c->size, c->clip.spatial_views, sp, &crop));
            TRY(stacl_preprocess_clip(cf.rgb + (size_t)t * c->clip.num_frames * frame_bytes, c->clip.num_frames, cf.w,
                                      cf.h, &crop, s->pixels + (size_t)view * clip_floats));
        }
    }
    s->preprocess_ms = now_ms() - t1;
cleanup:
    stacl_clip_frames_release(&cf);
    stacl_video_free(v);
    return st;
}

static void *worker(void *arg) {
    stacl_loader *l = arg;
    const int P = l->cfg.prefetch;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && l->next_claim < l->n && l->next_claim >= l->released + P)
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop || l->next_claim >= l->n) break;
        int pos = l->next_claim++;
        pthread_mutex_unlock(&l->mu);

        slot *sl = &l->slots[pos % P];
        stacl_sample *s = &sl->s;
        s->index = l->order[pos];
        s->label = stacl_dataset_label(l->ds, s->index);
        s->decode_ms = s->preprocess_ms = 0;
        s->n_frames = 0;
        s->error[0] = '\0';
        stacl_status st = load_sample(l, s->index, s);
        s->ok = st == STACL_OK;
        if (!s->ok) snprintf(s->error, sizeof s->error, "%s", stacl_last_error());

        pthread_mutex_lock(&l->mu);
        sl->ready = 1;
        if (s->ok) l->stats.ok++;
        else l->stats.bad++;
        l->stats.decode_ms += s->decode_ms;
        l->stats.preprocess_ms += s->preprocess_ms;
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

void stacl_loader_free(stacl_loader *l) {
    if (!l) return;
    if (l->threads) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->n_threads; i++) pthread_join(l->threads[i], NULL);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_done);
    }
    if (l->slots)
        for (int i = 0; i < l->cfg.prefetch; i++) free(l->slots[i].s.pixels);
    free(l->slots);
    free(l->threads);
    free(l->order);
    free(l);
}

stacl_status stacl_loader_create(stacl_loader **out, const stacl_dataset *ds, const stacl_loader_config *cfg) {
    stacl_status st = STACL_OK;
    *out = NULL;
    stacl_loader *l = calloc(1, sizeof *l);
    if (!l) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "loader: out of memory");
    l->ds = ds;
    l->cfg = *cfg;
    stacl_loader_config *c = &l->cfg;
    if (c->workers < 1 || c->workers > 256) FAIL(STACL_ERR_INVALID_ARG, "loader workers must be in [1, 256], got %d", c->workers);
    if (c->prefetch < 1 || c->prefetch > 4096) FAIL(STACL_ERR_INVALID_ARG, "loader prefetch must be in [1, 4096], got %d", c->prefetch);
    if (c->size < 1 || c->size > 8192) FAIL(STACL_ERR_INVALID_ARG, "loader crop size %d out of range", c->size);
    TRY(stacl_clip_spec_check(&c->clip));
    if (c->train) {
        if (c->aug.min_short == 0) c->aug.min_short = c->size;
        if (c->aug.max_short == 0) c->aug.max_short = (c->size * 8 + 6) / 7; /* 256 for 224 */
        if (c->aug.min_short < c->size || c->aug.max_short < c->aug.min_short)
            FAIL(STACL_ERR_INVALID_ARG, "scale jitter range [%d, %d] must satisfy crop %d <= min <= max",
                 c->aug.min_short, c->aug.max_short, c->size);
    } else if (c->short_side && c->short_side < c->size) {
        FAIL(STACL_ERR_INVALID_ARG, "short side %d is smaller than the crop %d", c->short_side, c->size);
    }
    l->n = stacl_dataset_size(ds);
    l->order = malloc(sizeof(int) * (size_t)(l->n ? l->n : 1));
    if (!l->order) FAIL(STACL_ERR_OUT_OF_MEMORY, "loader: out of memory");
    for (int i = 0; i < l->n; i++) l->order[i] = i;
    if (c->train) { /* Fisher-Yates with a (seed, epoch) stream */
        uint64_t rng = mix(c->seed, 0x5EED0000ull + (uint64_t)c->epoch);
        for (int i = l->n - 1; i > 0; i--) {
            int j = (int)stacl_rng_below(&rng, (uint64_t)i + 1);
            int t = l->order[i];
            l->order[i] = l->order[j];
            l->order[j] = t;
        }
    }
    if (c->start < 0 || c->start > l->n)
        FAIL(STACL_ERR_INVALID_ARG, "loader start position %d is outside the epoch's %d samples", c->start, l->n);
    l->next_claim = l->released = l->handed = c->start;
    const int views = c->train ? 1 : stacl_clip_num_views(&c->clip);
    l->pixels_per_sample = (size_t)views * c->clip.num_frames * 3 * c->size * c->size;
    l->slots = calloc((size_t)c->prefetch, sizeof *l->slots);
    if (!l->slots) FAIL(STACL_ERR_OUT_OF_MEMORY, "loader: out of memory");
    for (int i = 0; i < c->prefetch; i++) {
        l->slots[i].s.views = views;
        l->slots[i].s.frames = c->clip.num_frames;
        l->slots[i].s.pixels = malloc(sizeof(float) * l->pixels_per_sample);
        if (!l->slots[i].s.pixels)
            FAIL(STACL_ERR_OUT_OF_MEMORY, "loader: out of memory for %d prefetch slots of %zu floats", c->prefetch,
                 l->pixels_per_sample);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->threads = calloc((size_t)c->workers, sizeof *l->threads);
    if (!l->threads) FAIL(STACL_ERR_OUT_OF_MEMORY, "loader: out of memory");
    for (int i = 0; i < c->workers; i++) {
        if (pthread_create(&l->threads[i], NULL, worker, l) != 0) {
            if (i == 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "loader: cannot start a worker thread");
            break; /* run with the threads we got */
        }
        l->n_threads++;
    }
    *out = l;
    return STACL_OK;
cleanup:
    stacl_loader_free(l);
    return st;
}

stacl_status stacl_loader_next(stacl_loader *l, const stacl_sample **s) {
    *s = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->handed > l->released) { /* the consumer is done with the previous one */
        l->slots[l->released % l->cfg.prefetch].ready = 0;
        l->released++;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->handed < l->n) {
        slot *sl = &l->slots[l->handed % l->cfg.prefetch];
        while (!sl->ready) pthread_cond_wait(&l->cv_done, &l->mu);
        l->handed++;
        *s = &sl->s;
    }
    pthread_mutex_unlock(&l->mu);
    return STACL_OK;
}

void stacl_loader_get_stats(const stacl_loader *l, stacl_loader_stats *st) {
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    *st = l->stats;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
}
