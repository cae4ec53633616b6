/* cli_eval.h: what `stacl eval` (both modes: --zeroshot, --adapter) and
 * `stacl classify` share: the test-time clip options, every view of a
 * video, the view-averaged class probabilities of an ST-Adapter
 * classifier, and the evaluation loop over a dataset list with its reports
 * (accuracy, per-class, confusion matrix, JSON summary). */
#ifndef STACL_CLI_EVAL_H
#define STACL_CLI_EVAL_H

#include "clip_sampling.h"
#include "dataset.h"
#include "stacl.h"
#include "zeroshot.h"

/* ---- test-time views (cli_classify.c) ---- */

/* The cli_opt entries of the test-time clip options, for a command's table. */
#define CLI_CLIP_OPTS                                                                                                  \
    {"--num-frames", 1}, {"--sampling", 1}, {"--sampling-rate", 1}, {"--temporal-views", 1}, {"--spatial-views", 1}
/* Their --help lines. */
#define CLI_CLIP_OPTS_HELP                                                                                             \
    "  --num-frames T       frames per clip (default 8)\n"                                                         \
    "  --sampling uniform   T segments, the center frame of each (default); dense: T frames\n"                     \
    "                       --sampling-rate apart (ST-Adapter on Kinetics: 8 x 16)\n"                              \
    "  --sampling-rate R    stride of dense sampling (default 16)\n"                                               \
    "  --temporal-views V   test-time clips along time (default 1)\n"                                              \
    "  --spatial-views 1|3  center crop, or three crops along the long side (default 1); views are\n"             \
    "                       temporal x spatial, as 'stacl frames --views' lists them\n"

/* Applies option `name` (value) when it is one of CLI_CLIP_OPTS: 1 done, 0
 * usage error (reported), -1 not a clip option. */
int cli_clip_option(const char *command, const char *name, const char *value, stacl_clip_spec *spec);

/* Every test-time view of a video, as 'stacl frames --view N' makes each
 * and the dataset loader makes them: pixels [views][T][3][S][S] with
 * views = stacl_clip_num_views(spec), short side resized to S, crops of S. */
stacl_status cli_video_views(const char *path, const stacl_clip_spec *spec, int S, float *pixels);

/* Prints "stacl CMD: error: PATH: message" (the message alone when it
 * already names the file) for a video that failed. */
void cli_video_error(const char *command, const char *path, const char *message);

/* avg[c] += softmax(logits)[c] * weight over n classes (computed in double). */
void cli_softmax_add(const float *logits, int n, double weight, float *avg);

/* The --help lines of --backbone-device / --adapter-device. */
#define CLI_DEVICES_HELP                                                                                               \
    "  --device D           OpenCL device index or name substring (default: $STACL_DEVICE, else the\n"             \
    "                       first GPU, else the first device; see 'stacl devices')\n"                              \
    "  --backbone-device D  the frozen backbone's device (default: --device)\n"                                    \
    "  --adapter-device D   the adapters' device (default: --device); when it differs from the\n"                  \
    "                       backbone's, the residual stream is copied to it and back around every\n"              \
    "                       adapter (see docs/adapters.md, \"Two devices\")\n"                           \
    "  --adapter-binary FILE\n"                                                                               \
    "                       the adapter device's kernels from a program binary ('stacl\n"                      \
    "                       build-binary'; required for an accelerator device)\n"

/* The contexts for a backbone and its adapters: --backbone-device and
 * --adapter-device, each defaulting to --device (then $STACL_DEVICE, the
 * default device). *actx is NULL when both resolve to the same device.
 * adapter_binary (--adapter-binary, may be NULL): the adapter device's
 * program from that file (stacl_ctx_create_from_binary); on one device,
 * that device's. Returns an exit code (message printed, naming the option). */
int cli_open_devices(const char *command, const char *device, const char *backbone_device,
                     const char *adapter_device, const char *adapter_binary, stacl_ctx **bctx, stacl_ctx **actx);

/* The devices (cli_open_devices), the model and an ST-Adapter checkpoint
 * whose classifier head has exactly n_classes outputs (the classes file's;
 * classes_path names it in the error). *actx: the adapter's own device, or
 * NULL (free both). Returns an exit code (message printed). */
int cli_open_adapter(const char *command, const char *device, const char *backbone_device,
                     const char *adapter_device, const char *adapter_binary, const char *model_path, const char *adapter_path, int n_classes,
                     const char *classes_path, stacl_ctx **ctx, stacl_ctx **actx, stacl_model **model,
                     stacl_adapter **adapter, stacl_adapter_info *info);

/* An ST-Adapter classifier as a scorer: avg[classes] = the softmax of each
 * view's logits (one clip per pass), averaged over the views. A
 * cli_eval_score_fn (below) with user = the cli_adapter_scorer. */
typedef struct cli_adapter_scorer {
    const stacl_adapter *ad;
    int classes, size; /* head outputs, image size */
    float *logits;     /* scratch [classes] */
} cli_adapter_scorer;
stacl_status cli_adapter_score(void *user, stacl_state *state, const float *pixels, int views, int frames,
                               float *avg);

/* Order of the k best classes of p (descending probability, ties by id). */
void cli_top_k(const float *p, int n, int k, int *order);
/* Prints a video's block: its path, then "  R. NAME  PROB" for its k best
 * classes. order: scratch of classes->n ints. */
void cli_print_top_k(const char *video, const stacl_names *classes, const float *p, int k, int *order);

/* ---- evaluation over a list (cli_eval.c) ---- */

/* A progress line on stderr for long runs: after 2 s, then every second on
 * a terminal (one line, rewritten in place), every 30 s otherwise (logs). */
typedef struct cli_progress {
    double t0, last;
    int tty, open, enabled; /* open: a rewritten line is on the terminal */
} cli_progress;
void cli_progress_start(cli_progress *p, int enabled);
void cli_progress_show(cli_progress *p, const char *command, int done, int total, int failed);
/* Ends a rewritten line before other output on stderr (and at the end). */
void cli_progress_break(cli_progress *p);

/* A mode's scoring of one sample: avg[classes] = class probabilities
 * averaged over the sample's views (pixels [views][frames][3][S][S]). */
typedef stacl_status (*cli_eval_score_fn)(void *user, stacl_state *state, const float *pixels, int views,
                                          int frames, float *avg);

typedef struct cli_eval_outputs {
    const char *json;      /* summary JSON, or NULL */
    const char *confusion; /* confusion-matrix CSV, or NULL */
    const char *probs;     /* float32 [entries, classes] .npy, or NULL */
    int per_class;         /* print every class */
} cli_eval_outputs;

/* Refuses outputs that could not be written (before any work). Returns 1
 * when all can be. */
int cli_eval_check_outputs(const char *command, const cli_eval_outputs *o);

/* Loads the class names and the list (labels: ids or class names), checks
 * they agree and warns about rejected list lines. Returns an exit code. */
int cli_eval_load_list(const char *command, const char *classes_path, const char *list, stacl_names *classes,
                       stacl_dataset **ds);

/* What a run found. */
typedef struct cli_eval_result {
    int videos, skipped, top1, top5;
    int *hits1, *counts;  /* [classes] */
    int *confusion;       /* [classes][classes]: rows true, columns predicted; NULL unless asked for */
    float *probs;         /* [entries][classes], NaN rows for skipped entries; NULL unless asked for */
    char **failed;        /* [skipped] "path\tmessage" */
    double seconds;
} cli_eval_result;

/* Runs every entry of ds through the loader (test-time views of spec, crop
 * S, `workers` threads) and score(), on a state for spec->num_frames
 * frames; counts top-1/top-5 (a tie with the true class counts for it),
 * per-class hits and, when asked for, the confusion matrix and
 * probabilities. Unreadable videos are reported on stderr, counted and left
 * out. A progress line goes to stderr on long runs. Returns an exit code. */
int cli_eval_run(const char *command, const stacl_dataset *ds, int classes, stacl_model *model,
                 const stacl_clip_spec *spec, int S, int workers, const cli_eval_outputs *o, cli_eval_score_fn score,
                 void *user, cli_eval_result *r);
/* Prints the accuracy lines (and per-class with o->per_class) and writes
 * the requested files; mode/adapter/model/list describe the run in the JSON.
 * Returns an exit code. */
int cli_eval_report(const char *command, const cli_eval_result *r, const stacl_names *classes,
                    const stacl_dataset *ds, const stacl_clip_spec *spec, const cli_eval_outputs *o, const char *mode,
                    const char *model_path, const char *adapter_path, const char *classes_path, const char *list);
void cli_eval_result_free(cli_eval_result *r);

#endif
