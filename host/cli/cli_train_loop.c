/* cli_train_loop.c: `stacl train`'s loop: epochs of shuffled clips from
 * the threaded loader, micro-batches through the trainer, one AdamW step
 * per batch on the warmup + cosine schedule, validation, atomic
 * checkpoints, the log and the progress line, and a clean stop on Ctrl-C.
 *
 * Reproducibility: the data order and each clip's sampling come from
 * (seed, epoch, index) (loader.h), the dropout masks from (seed, step,
 * micro-batch), the schedule from the step index; a checkpoint records
 * (epoch, step in epoch) at an optimizer-step boundary, so a resumed run
 * repeats exactly what the uninterrupted run would have done. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"
#include "cli_train.h"
#include "loader.h"
#include "status.h"

#define TRAIN_MAX_OPS 64 /* distinct op names in the profile table */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct run {
    const train_cfg *c;
    stacl_ctx *ctx;
    stacl_model *model;
    stacl_adapter *ad;
    stacl_trainer *tr;
    stacl_dataset *train_ds, *val_ds;
    stacl_state *val_state;
    FILE *log;
    int size, classes;
    int steps_per_epoch;
    long long total_steps, warmup_steps;
    float *pixels, *logits;
    int32_t *labels;
    char path[PATH_MAX + 64];
    int profile;
    stacl_op_time times[TRAIN_MAX_OPS]; /* summed over the epoch's passes */
    int n_times;
} run;

/* Adds the last pass's device time per op to the epoch's table. */
static void add_times(run *r) {
    const stacl_op_time *t;
    const int n = stacl_trainer_op_times(r->tr, &t, NULL);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < r->n_times && strcmp(r->times[j].op, t[i].op) != 0) j++;
        if (j == r->n_times) {
            if (j == TRAIN_MAX_OPS) continue;
            r->times[r->n_times++] = (stacl_op_time){t[i].op, 0.0, 0};
        }
        r->times[j].ms += t[i].ms;
        r->times[j].launches += t[i].launches;
    }
}

static void print_times(run *r, int epoch) {
    double total = 0.0;
    for (int i = 0; i < r->n_times; i++) total += r->times[i].ms;
    fprintf(stderr, "device time per op, epoch %d (%.1f s in all):\n", epoch, total * 1e-3);
    for (int i = 0; i < r->n_times; i++)
        fprintf(stderr, "  %-28s %9.1f ms  %5.1f%%  %7d launches\n", r->times[i].op, r->times[i].ms,
                100.0 * r->times[i].ms / (total > 0 ? total : 1), r->times[i].launches);
    r->n_times = 0;
}

static const char *in_run(run *r, const char *name) {
    snprintf(r->path, sizeof r->path, "%s/%s", r->c->out, name);
    return r->path;
}

/* The reference code's schedule (a LambdaLR stepped per iteration): a
 * linear warmup g / warmup (the first step runs at 0), then half a cosine
 * 0.5 (1 + cos(pi (g - warmup) / (total - warmup))); g is the 0-based step. */
static double lr_at(const run *r, long long g) {
    const double lr = r->c->lr;
    if (g < r->warmup_steps) return lr * (double)g / (double)r->warmup_steps;
    const double progress = (double)(g - r->warmup_steps) / (double)(r->total_steps - r->warmup_steps);
    return lr * 0.5 * (1.0 + cos(M_PI * progress));
}

static uint64_t mix(uint64_t a, uint64_t b) {
    uint64_t s = a ^ (b * 0x9E3779B97F4A7C15ull);
    return stacl_rng_next(&s);
}

static int save_checkpoint(run *r, int epoch, int estep) {
    char e[32], s[32], seed[32];
    snprintf(e, sizeof e, "%d", epoch);
    snprintf(s, sizeof s, "%d", estep);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->c->seed);
    const char *keys[] = {"epoch", "epoch_step", "seed", "format"};
    const char *values[] = {e, s, seed, "stacl-train-state"};
    /* The state first: a crash between the two writes leaves the previous
     * adapter with a newer state, which resume detects by the step count. */
    stacl_status st = stacl_trainer_save_state(r->tr, in_run(r, "train_state.safetensors"), keys, values, 4);
    if (st == STACL_OK) st = stacl_adapter_save(r->ad, in_run(r, "adapter.safetensors"));
    if (st != STACL_OK) return cli_fail("train", st), 0;
    return 1;
}

static void log_line(run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(run *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->log, fmt, ap);
    va_end(ap);
    fputc('\n', r->log);
    fflush(r->log);
}

int cli_train_predict(stacl_state *state, const stacl_adapter *ad, const stacl_dataset *ds,
                      const stacl_clip_spec *clip, int size, int workers, int classes, int *pred, int *rank) {
    stacl_loader_config lc = stacl_loader_config_default();
    lc.workers = workers;
    lc.clip = *clip;
    lc.size = size;
    stacl_loader *ld = NULL;
    stacl_status st = stacl_loader_create(&ld, ds, &lc);
    if (st != STACL_OK) return cli_fail("train", st), 0;
    const int C = classes, T = clip->num_frames;
    float *prob = malloc(sizeof(float) * (size_t)C);
    float *logits = malloc(sizeof(float) * (size_t)C * (size_t)stacl_clip_num_views(clip));
    const stacl_sample *s;
    int n = 0;
    while (prob && logits && (st = stacl_loader_next(ld, &s)) == STACL_OK && s) {
        pred[s->index] = rank[s->index] = -1;
        if (!s->ok) continue;
        if ((st = stacl_classify_forward(state, ad, s->pixels, s->views, T, STACL_OUT_EMBEDDING, logits)) != STACL_OK)
            break;
        memset(prob, 0, sizeof(float) * (size_t)C); /* softmax probabilities averaged over views, as stacl eval */
        for (int v = 0; v < s->views; v++) cli_softmax_add(logits + (size_t)v * C, C, 1.0 / s->views, prob);
        int best = 0, r = 0;
        for (int k = 0; k < C; k++) {
            best = prob[k] > prob[best] ? k : best;
            r += prob[k] > prob[s->label];
        }
        pred[s->index] = best;
        rank[s->index] = r;
        n++;
    }
    stacl_loader_free(ld);
    free(prob);
    free(logits);
    if (st == STACL_OK && (!prob || !logits)) st = stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    if (st != STACL_OK) return cli_fail("train", st), 0;
    return n ? 1 : (fprintf(stderr, "stacl train: error: no readable video in '%s'\n", stacl_dataset_list_path(ds)), 0);
}

/* Top-1 / top-5 on the validation list (one center view per video). */
static int validate(run *r, int epoch, long long step) {
    const int N = stacl_dataset_size(r->val_ds);
    int *pred = malloc(sizeof(int) * (size_t)N * 2), n = 0, top1 = 0, top5 = 0;
    if (!pred) return fprintf(stderr, "stacl train: error: out of memory\n"), 0;
    stacl_clip_spec clip = r->c->clip;
    clip.temporal_views = clip.spatial_views = 1;
    if (!cli_train_predict(r->val_state, r->ad, r->val_ds, &clip, r->size, r->c->workers, r->classes, pred, pred + N)) {
        free(pred);
        return 0;
    }
    for (int i = 0; i < N; i++) {
        if (pred[N + i] < 0) continue;
        n++;
        top1 += pred[N + i] == 0;
        top5 += pred[N + i] < 5;
    }
    free(pred);
    fprintf(stderr, "validation after epoch %d: top-1 %.2f%%  top-5 %.2f%%  (%d clips%s)\n", epoch,
            100.0 * top1 / n, 100.0 * top5 / n, n, n < N ? ", some unreadable" : "");
    log_line(r, "{\"type\":\"val\",\"epoch\":%d,\"step\":%lld,\"top1\":%.6f,\"top5\":%.6f,\"clips\":%d,\"bad\":%d}",
             epoch, step, (double)top1 / n, (double)top5 / n, n, N - n);
    return 1;
}

static void format_eta(double s, char *buf, size_t cap) {
    if (s < 90) snprintf(buf, cap, "%.0fs", s);
    else if (s < 5400) snprintf(buf, cap, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, cap, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

/* One epoch from step estep on; returns 1 when it completed, 0 on failure,
 * -1 when interrupted (the last completed step is saved). */
static int run_epoch(run *r, int epoch, int estep, double t0, long long *done_steps) {
    const train_cfg *c = r->c;
    const int N = stacl_dataset_size(r->train_ds), T = c->clip.num_frames;
    const size_t per = (size_t)T * 3 * (size_t)r->size * (size_t)r->size;
    stacl_loader_config lc = stacl_loader_config_default();
    lc.workers = c->workers;
    lc.prefetch = c->micro_batch + c->workers + 2;
    lc.train = 1;
    lc.seed = c->seed;
    lc.epoch = epoch;
    lc.start = estep * c->batch < N ? estep * c->batch : N;
    lc.clip = c->clip;
    lc.size = r->size;
    stacl_loader *ld = NULL;
    stacl_status st = stacl_loader_create(&ld, r->train_ds, &lc);
    if (st != STACL_OK) return cli_fail("train", st), 0;
    int result = 1;
    double last_print = 0.0;
    for (; estep < r->steps_per_epoch; estep++) {
        const long long g = (long long)epoch * r->steps_per_epoch + estep;
        const int in_step = N - estep * c->batch < c->batch ? N - estep * c->batch : c->batch;
        int consumed = 0, clips = 0, correct = 0, micro = 0;
        double loss = 0.0;
        const double step_t0 = cli_now_ms();
        while (consumed < in_step && !interrupted) {
            int m = 0;
            const stacl_sample *s = NULL;
            while (m < c->micro_batch && consumed < in_step) {
                if ((st = stacl_loader_next(ld, &s)) != STACL_OK || !s) break;
                consumed++;
                if (!s->ok) {
                    fprintf(stderr, "stacl train: warning: skipping %s: %s\n",
                            stacl_dataset_path(r->train_ds, s->index), s->error);
                    continue;
                }
                memcpy(r->pixels + (size_t)m * per, s->pixels, per * sizeof(float));
                r->labels[m++] = s->label;
            }
            if (st != STACL_OK) break;
            if (!s && consumed < in_step) {
                st = stacl_fail(STACL_ERR_IO, "the loader ended early");
                break;
            }
            if (!m) continue;
            double ls = 0.0;
            st = stacl_trainer_accumulate(r->tr, r->pixels, r->labels, m, 1.0f, mix(c->seed, (uint64_t)g * 4096 + micro++),
                                          &ls, r->logits);
            if (st != STACL_OK) break;
            if (r->profile) add_times(r);
            for (int i = 0; i < m; i++) {
                const float *l = r->logits + (size_t)i * r->classes;
                int best = 0;
                for (int k = 1; k < r->classes; k++) best = l[k] > l[best] ? k : best;
                correct += best == r->labels[i];
            }
            clips += m;
            loss += ls;
        }
        if (st != STACL_OK) {
            cli_fail("train", st);
            result = 0;
            break;
        }
        if (interrupted) { /* the partial step is dropped: resuming redoes it */
            fprintf(stderr, "\nstacl train: interrupted: saving the checkpoint of step %lld\n", *done_steps);
            result = save_checkpoint(r, epoch, estep) ? -1 : 0;
            break;
        }
        double norm = 0.0;
        const double lr = lr_at(r, g);
        if (clips && (st = stacl_trainer_step(r->tr, (float)lr, 1.0f / (float)clips, &norm)) != STACL_OK) {
            cli_fail("train", st);
            result = 0;
            break;
        }
        (*done_steps)++;
        const double now = cli_now_ms(), step_s = (now - step_t0) * 1e-3;
        const double rate = clips / (step_s > 0 ? step_s : 1e-9);
        log_line(r, "{\"type\":\"step\",\"epoch\":%d,\"step\":%lld,\"clips\":%d,\"loss\":%.6f,\"acc\":%.4f,\"lr\":%.6g,"
                 "\"grad_norm\":%.6g,\"clips_per_s\":%.4g}", epoch, g + 1, clips, clips ? loss / clips : 0.0,
                 clips ? (double)correct / clips : 0.0, lr, norm, rate);
        if (now - last_print > 1000.0 || estep + 1 == r->steps_per_epoch) {
            const double per_step = (now - t0) * 1e-3 / (double)*done_steps;
            char eta[32];
            format_eta(per_step * (double)(r->total_steps - g - 1), eta, sizeof eta);
            fprintf(stderr, "epoch %d/%d  step %d/%d  loss %.4f  acc %.2f  lr %.3g  |g| %.3g  %.2f clips/s  ETA %s\n",
                    epoch + 1, c->epochs, estep + 1, r->steps_per_epoch, clips ? loss / clips : 0.0,
                    clips ? (double)correct / clips : 0.0, lr, norm, rate, eta);
            last_print = now;
        }
        if (c->save_every && (g + 1) % c->save_every == 0 && !save_checkpoint(r, epoch, estep + 1)) {
            result = 0;
            break;
        }
    }
    stacl_loader_free(ld);
    if (r->profile && result == 1) print_times(r, epoch + 1);
    return result;
}

static int open_run(run *r, const char *device, int resume, int *epoch, int *estep) {
    const train_cfg *c = r->c;
    stacl_status st = stacl_ctx_create(&r->ctx, device);
    if (st == STACL_OK) st = stacl_model_load(&r->model, r->ctx, c->model);
    if (st == STACL_OK) st = stacl_dataset_load(&r->train_ds, c->train_list, c->classes);
    if (st == STACL_OK) st = stacl_dataset_load(&r->val_ds, c->val_list, c->classes);
    if (st != STACL_OK) return cli_fail("train", st), 0;
    for (int i = 0; i < stacl_dataset_num_rejected(r->train_ds); i++)
        fprintf(stderr, "stacl train: warning: %s\n", stacl_dataset_rejected(r->train_ds, i));
    const stacl_vision_config *vc = stacl_model_vision_config(r->model);
    r->size = vc->image_size;
    r->classes = stacl_dataset_num_classes(r->train_ds);
    stacl_adapter_config ac = c->adapter;
    ac.classes = r->classes;
    if (ac.layers > vc->layers) {
        fprintf(stderr, "stacl train: note: --adapter-layers %d > the model's %d blocks: using %d\n", ac.layers,
                vc->layers, vc->layers);
        ac.layers = vc->layers;
    }
    if (resume) {
        st = stacl_adapter_load(&r->ad, r->model, in_run(r, "adapter.safetensors"));
        stacl_adapter_info in;
        if (st == STACL_OK) {
            stacl_adapter_get_info(r->ad, &in);
            if (in.classes != r->classes)
                st = stacl_fail(STACL_ERR_SHAPE, "%s has %d classes, the class list %d", r->path, in.classes,
                                r->classes);
        }
    } else {
        st = stacl_adapter_create(&r->ad, r->model, &ac, c->seed);
        if (st == STACL_OK && *c->fixed_point) st = stacl_adapter_set_fixed_point(r->ad, c->fixed_point);
    }
    if (st == STACL_OK && resume && !!*c->fixed_point != !!stacl_adapter_fixed_point(r->ad))
        st = stacl_fail(STACL_ERR_FORMAT, "%s/adapter.safetensors is %s but config.json says %s", c->out,
                        stacl_adapter_fixed_point(r->ad) ? "fixed point" : "float",
                        *c->fixed_point ? c->fixed_point : "float");
    if (st == STACL_OK) st = stacl_trainer_create(&r->tr, r->ad, c->micro_batch, c->clip.num_frames, &c->opt);
    if (st == STACL_OK) st = stacl_state_create(&r->val_state, r->model, c->clip.num_frames);
    if (st != STACL_OK) return cli_fail("train", st), 0;
    *epoch = *estep = 0;
    if (resume) {
        if ((st = stacl_trainer_load_state(r->tr, in_run(r, "train_state.safetensors"))) != STACL_OK)
            return cli_fail("train", st), 0;
        const char *e = stacl_trainer_state_meta(r->tr, "epoch"), *s = stacl_trainer_state_meta(r->tr, "epoch_step");
        if (!e || !s) {
            fprintf(stderr, "stacl train: error: %s has no epoch/epoch_step metadata\n", r->path);
            return 0;
        }
        *epoch = atoi(e);
        *estep = atoi(s);
    }
    const int N = stacl_dataset_size(r->train_ds);
    r->steps_per_epoch = (N + c->batch - 1) / c->batch;
    r->total_steps = (long long)r->steps_per_epoch * c->epochs;
    r->warmup_steps = (long long)r->steps_per_epoch * c->warmup_epochs;
    const size_t per = (size_t)c->clip.num_frames * 3 * (size_t)r->size * (size_t)r->size;
    r->pixels = malloc(per * (size_t)c->micro_batch * sizeof(float));
    r->labels = malloc(sizeof(int32_t) * (size_t)c->micro_batch);
    r->logits = malloc(sizeof(float) * (size_t)c->micro_batch * (size_t)r->classes);
    if (!r->pixels || !r->labels || !r->logits) return fprintf(stderr, "stacl train: error: out of memory\n"), 0;
    r->log = fopen(in_run(r, "log.jsonl"), "a");
    if (!r->log) return fprintf(stderr, "stacl train: error: cannot write '%s'\n", r->path), 0;
    /* classes.csv: the label ids the head's rows stand for. */
    FILE *f = fopen(in_run(r, "classes.csv"), "w");
    if (!f) return fprintf(stderr, "stacl train: error: cannot write '%s'\n", r->path), 0;
    fprintf(f, "id,name\n");
    for (int k = 0; k < r->classes; k++) {
        const char *name = stacl_dataset_class_name(r->train_ds, k);
        fprintf(f, "%d,%s\n", k, name ? name : "");
    }
    if (fclose(f) != 0) return fprintf(stderr, "stacl train: error: cannot write '%s'\n", r->path), 0;
    return 1;
}

static void close_run(run *r) {
    if (r->log) fclose(r->log);
    free(r->pixels);
    free(r->labels);
    free(r->logits);
    stacl_state_free(r->val_state);
    stacl_trainer_free(r->tr);
    stacl_adapter_free(r->ad);
    stacl_dataset_free(r->train_ds);
    stacl_dataset_free(r->val_ds);
    stacl_model_free(r->model);
    stacl_ctx_free(r->ctx);
}

int cli_train_run(const train_cfg *c, const char *device, int resume, int profile) {
    run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.profile = profile;
    int epoch = 0, estep = 0, rc = CLI_EXIT_FAILURE;
    if (!open_run(&r, device, resume, &epoch, &estep)) goto done;
    if (epoch >= c->epochs) {
        fprintf(stderr, "stacl train: %s already finished its %d epochs\n", c->out, c->epochs);
        rc = 0;
        goto done;
    }
    stacl_adapter_info in;
    stacl_adapter_get_info(r.ad, &in);
    char fixed[160] = "";
    if (*c->fixed_point)
        snprintf(fixed, sizeof fixed, " in fixed point (%s%s, %s)", c->fixed_point,
                 strchr(c->fixed_point, '/') ? "" : ", q8.8 activations",
                 c->opt.fixed_sr_update ? "stochastic-rounding updates, no master copy" : "fp32 master weights");
    fprintf(stderr, "training %d pre-attention + %d pre-MLP adapters (width %d, kernel %dx%dx%d)%s and a %d-class head; "
            "%d clips/epoch, %d steps of %d clips (micro-batch %d), %d epochs, lr %.3g; device memory %.1f MiB%s\n",
            in.n_pre_attn, in.n_pre_mlp, in.width, in.kernel[0], in.kernel[1], in.kernel[2], fixed, r.classes,
            stacl_dataset_size(r.train_ds), r.steps_per_epoch, c->batch, c->micro_batch, c->epochs, c->lr,
            (double)stacl_trainer_device_bytes(r.tr) / 1048576.0, c->opt.recompute ? " (recompute)" : "");
    if (resume) fprintf(stderr, "resuming at epoch %d, step %d of the epoch\n", epoch + 1, estep);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    const double t0 = cli_now_ms();
    long long done_steps = 0;
    for (; epoch < c->epochs; epoch++, estep = 0) {
        const int res = run_epoch(&r, epoch, estep, t0, &done_steps);
        if (res <= 0) {
            rc = res < 0 ? 130 : CLI_EXIT_FAILURE;
            if (res < 0) fprintf(stderr, "resume with: stacl train --resume %s\n", c->out);
            break;
        }
        if (!save_checkpoint(&r, epoch + 1, 0)) break;
        const int last = epoch + 1 == c->epochs;
        if ((last || (c->val_every && (epoch + 1) % c->val_every == 0)) &&
            !validate(&r, epoch + 1, (long long)(epoch + 1) * r.steps_per_epoch))
            break;
        if (last) rc = 0;
    }
    sigaction(SIGINT, &old, NULL);
    if (rc == 0) fprintf(stderr, "done: %s\n", in_run(&r, "adapter.safetensors"));
done:
    close_run(&r);
    return rc;
}
