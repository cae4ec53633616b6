/* cmd_train_demo.c: `stacl train-demo`: the training job on an embedded
 * default (nothing to download). For each seed: a random CLIP-shaped
 * backbone, the synthetic "simple" temporal-pairs dataset (each class's
 * twin is the same clip played backwards), ST-Adapter trained on it and,
 * next to it, the same frozen backbone with only a linear head on the
 * frame-averaged class token (the baseline), trained the same way. Prints
 * top-1, pair accuracy and within-pair accuracy of both.
 *
 * Within-pair accuracy: among validation clips whose pair is predicted
 * right, the share whose order (which twin) is right. Frame averaging sees
 * the same set of frames in a clip and in its reversal, so it sits near
 * 50%; a model that uses temporal order gets above. The clips have exactly
 * --frames frames and are sampled with --frames segments, so every frame
 * is used and sampling cannot leak order. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_train.h"
#include "dataset.h"
#include "random_clip.h"

static void usage(void) {
    printf("usage: stacl train-demo [--seeds 3] [--first-seed 0] [--epochs 10] [--per-class 64] [--val-per-class 32]\n"
           "                        [--frames 8] [--lr 6e-3] [--dropout 0.5] [--out DIR] [--device D]\n"
           "                        [--fixed-point q4.12,int8,...] [--fixed-update master|sr|both]\n"
           "                        [--no-baseline]\n\n"
           "Trains ST-Adapter (pre-attention + pre-MLP adapters of width 64 with a 3x3x3 depthwise kernel\n"
           "in all 3 blocks of a random 128-wide ViT; 64x64 frames, patch 16) and a frame-averaging baseline\n"
           "(the same frozen backbone with a linear head) on a generated dataset of time-reversed class\n"
           "pairs (brightening/darkening, fading in/out, growing/shrinking, moving right/left), for each\n"
           "seed, and prints top-1, pair and within-pair accuracy (see docs/training.md). Everything is\n"
           "written under --out (default: a temporary folder, removed at the end).\n"
           "--fixed-point also trains the same adapters in fixed point for each listed format (integer\n"
           "forward and backward, 'stacl train --fixed-point'), with fp32 master weights, stochastic-\n"
           "rounding updates, or both (--fixed-update), from the same initial weights and data order, and\n"
           "reports each next to the fp32 run.\n"
           "--first-seed S runs seeds S .. S + seeds - 1 (each seed: its own backbone, dataset, initial\n"
           "weights and data order), so that more seeds can be added to an earlier run's.\n");
}

#define MAX_VARIANTS 16

/* One trained model of a seed: its name in the table and the arguments
 * that make it (besides the shared ones). */
typedef struct variant {
    char name[40];
    const char *args[8];
    int n_args;
} variant;

typedef struct scores {
    double top1, pair, within;
    int n;
} scores;

/* The metrics of one trained run on the validation list. */
static int evaluate(const char *model_dir, const char *run_dir, const char *data_dir, int frames, const char *device,
                    scores *out) {
    char path[3 * PATH_MAX], list[3 * PATH_MAX], classes[3 * PATH_MAX];
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *ad = NULL;
    stacl_state *state = NULL;
    stacl_dataset *ds = NULL;
    int *pred = NULL, ok = 0;
    snprintf(path, sizeof path, "%s/adapter.safetensors", run_dir);
    snprintf(list, sizeof list, "%s/val.csv", data_dir);
    snprintf(classes, sizeof classes, "%s/classes.csv", data_dir);
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st == STACL_OK) st = stacl_model_load(&model, ctx, model_dir);
    if (st == STACL_OK) st = stacl_adapter_load(&ad, model, path);
    if (st == STACL_OK) st = stacl_state_create(&state, model, frames);
    if (st == STACL_OK) st = stacl_dataset_load(&ds, list, classes);
    if (st != STACL_OK) {
        cli_fail("train-demo", st);
        goto done;
    }
    const int N = stacl_dataset_size(ds);
    pred = malloc(sizeof(int) * 2 * (size_t)N);
    stacl_clip_spec clip = stacl_clip_spec_default();
    clip.num_frames = frames;
    if (!pred || !cli_train_predict(state, ad, ds, &clip, stacl_model_vision_config(model)->image_size, 2,
                                    stacl_dataset_num_classes(ds), pred, pred + N))
        goto done;
    int n = 0, top1 = 0, pair = 0, within = 0;
    for (int i = 0; i < N; i++) {
        if (pred[i] < 0) continue;
        const int label = stacl_dataset_label(ds, i);
        n++;
        top1 += pred[i] == label;
        if (pred[i] / 2 == label / 2) pair++, within += pred[i] == label;
    }
    out->n = n;
    out->top1 = n ? (double)top1 / n : 0.0;
    out->pair = n ? (double)pair / n : 0.0;
    out->within = pair ? (double)within / pair : 0.0;
    ok = 1;
done:
    free(pred);
    stacl_dataset_free(ds);
    stacl_state_free(state);
    stacl_adapter_free(ad);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return ok;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Runs a stacl command in-process with the given arguments. */
static int run_command(int (*cmd)(int, char **), const char **args, int n) {
    char *argv[64];
    for (int i = 0; i < n && i < 63; i++) argv[i] = (char *)args[i];
    argv[n] = NULL;
    return cmd(n, argv);
}

int cmd_train_demo(int argc, char **argv) {
    static const cli_opt opts[] = {{"--seeds", 1}, {"--epochs", 1}, {"--per-class", 1}, {"--val-per-class", 1},
                                   {"--frames", 1}, {"--out", 1},   {"--device", 1},    {"--help", 0},
                                   {"--lr", 1},     {"--dropout", 1},  {"--fixed-point", 1}, {"--fixed-update", 1},
                                   {"--no-baseline", 0}, {"--first-seed", 1}};
    cli_args a = {argc, argv, 1, "train-demo", 0};
    const char *out = NULL, *device = NULL, *lr = "6e-3", *dropout = "0.5", *value;
    const char *fixed = NULL, *update = "master";
    int seeds = 3, first_seed = 0, epochs = 10, per_class = 64, val_per_class = 32, frames = 8, baseline = 1, k;
    while ((k = cli_next(&a, opts, 14, &value)) >= 0) {
        int ok = 1;
        switch (k) {
        case 0: ok = cli_int("train-demo", "--seeds", value, 1, 100, &seeds); break;
        case 1: ok = cli_int("train-demo", "--epochs", value, 1, 1000, &epochs); break;
        case 2: ok = cli_int("train-demo", "--per-class", value, 2, 100000, &per_class); break;
        case 3: ok = cli_int("train-demo", "--val-per-class", value, 1, 100000, &val_per_class); break;
        case 4: ok = cli_int("train-demo", "--frames", value, 2, 64, &frames); break;
        case 5: out = value; break;
        case 6: device = value; break;
        case 7: usage(); return 0;
        case 8: lr = value; break;      /* checked by stacl train */
        case 9: dropout = value; break; /* likewise */
        case 10: fixed = value; break;
        case 11:
            update = value;
            if (strcmp(value, "master") && strcmp(value, "sr") && strcmp(value, "both"))
                ok = (cli_usage_error("train-demo", "--fixed-update must be master, sr or both"), 0);
            break;
        case 12: baseline = 0; break;
        case 13: ok = cli_int("train-demo", "--first-seed", value, 0, 1000000, &first_seed); break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    /* The models of each seed: fp32 ST-Adapter, its fixed-point variants,
     * the baseline. */
    static const char *const st_args[] = {"--adapter-width", "64", "--adapter-layers", "3", "--pre-attn", "--pre-mlp",
                                          "--kernel", "3,3,3"};
    variant vars[MAX_VARIANTS];
    static char formats[MAX_VARIANTS][16];
    int nv = 0;
    vars[nv++] = (variant){"ST-Adapter", {NULL}, 0};
    for (const char *f = fixed; f && *f;) {
        const size_t len = strcspn(f, ",");
        if (len == 0 || len >= sizeof formats[0] || nv + 3 > MAX_VARIANTS)
            return cli_usage_error("train-demo", "--fixed-point wants a short comma-separated list of formats");
        char *fmt = formats[nv];
        memcpy(fmt, f, len);
        fmt[len] = '\0';
        if (stacl_adapter_fixed_format_check(fmt) != STACL_OK)
            return cli_usage_error("train-demo", "--fixed-point: %s", stacl_last_error());
        for (int u = 0; u < 2; u++) {
            const char *mode = u ? "sr" : "master";
            if (strcmp(update, "both") && strcmp(update, mode)) continue;
            variant *v = &vars[nv++];
            snprintf(v->name, sizeof v->name, "%s %s", fmt, mode);
            v->args[0] = "--fixed-point", v->args[1] = fmt, v->args[2] = "--fixed-update", v->args[3] = mode;
            v->n_args = 4;
        }
        f += len + (f[len] == ',');
    }
    if (baseline) vars[nv++] = (variant){"baseline", {"--preset", "head"}, 2};
    char root[PATH_MAX];
    int temporary = !out;
    if (temporary) {
        const char *tmp = getenv("TMPDIR");
        snprintf(root, sizeof root, "%s/stacl-train-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(root)) {
            fprintf(stderr, "stacl train-demo: error: cannot create a temporary folder\n");
            return CLI_EXIT_FAILURE;
        }
    } else {
        snprintf(root, sizeof root, "%s", out);
        if (mkdir(root, 0755) != 0 && access(root, W_OK) != 0) {
            fprintf(stderr, "stacl train-demo: error: cannot create or write '%s'\n", root);
            return CLI_EXIT_FAILURE;
        }
    }
    static scores res[100][MAX_VARIANTS];
    int rc = 0;
    const double t0 = cli_now_ms();
    char s_frames[16], s_epochs[16], s_pc[16], s_vpc[16], s_seed[16];
    snprintf(s_frames, sizeof s_frames, "%d", frames);
    snprintf(s_epochs, sizeof s_epochs, "%d", epochs);
    snprintf(s_pc, sizeof s_pc, "%d", per_class);
    snprintf(s_vpc, sizeof s_vpc, "%d", val_per_class);
    for (int i = 0; i < seeds && rc == 0; i++) {
        const int s = first_seed + i;
        char dir[PATH_MAX + 32], model[PATH_MAX + 48], data[PATH_MAX + 48], run[PATH_MAX + 96];
        char train_list[PATH_MAX + 64], val_list[PATH_MAX + 64], classes[PATH_MAX + 64];
        snprintf(dir, sizeof dir, "%s/seed%d", root, s);
        snprintf(model, sizeof model, "%s/model", dir);
        snprintf(data, sizeof data, "%s/data", dir);
        snprintf(train_list, sizeof train_list, "%s/train.csv", data);
        snprintf(val_list, sizeof val_list, "%s/val.csv", data);
        snprintf(classes, sizeof classes, "%s/classes.csv", data);
        snprintf(s_seed, sizeof s_seed, "%d", s);
        mkdir(dir, 0755);
        fprintf(stderr, "\n== seed %d: random backbone, dataset, the models ==\n", s);
        stacl_random_clip_spec spec = stacl_random_clip_default_spec();
        spec.width = 128;
        spec.layers = 3;
        spec.heads = 2;
        spec.mlp_width = 512;
        spec.patch = 16;
        spec.image_size = 64;
        spec.proj_dim = 0;
        spec.seed = 1000 + (uint64_t)s;
        stacl_status st = stacl_random_clip_write(model, &spec);
        if (st != STACL_OK) {
            rc = cli_fail("train-demo", st);
            break;
        }
        const char *mk[] = {"make-dataset", "--out", data, "--set", "simple", "--per-class", s_pc,
                            "--val-per-class", s_vpc, "--frames", s_frames, "--size", "64", "--seed", s_seed};
        if ((rc = run_command(cmd_make_dataset, mk, 15)) != 0) break;
        for (int m = 0; m < nv && rc == 0; m++) {
            snprintf(run, sizeof run, "%s/run%d", dir, m);
            const char *tr[48] = {"train", "--model", model, "--train", train_list, "--val", val_list, "--classes",
                                  classes, "--out", run, "--num-frames", s_frames, "--epochs", s_epochs,
                                  "--warmup-epochs", epochs > 1 ? "1" : "0", "--lr", lr, "--dropout", dropout, "--batch", "16", "--micro-batch", "16",
                                  "--seed", s_seed, "--val-every", "0"};
            int n = 0;
            while (tr[n]) n++;
            const int is_baseline = baseline && m == nv - 1;
            if (!is_baseline)
                for (int i = 0; i < 8; i++) tr[n++] = st_args[i];
            for (int i = 0; i < vars[m].n_args; i++) tr[n++] = vars[m].args[i];
            if (device) tr[n++] = "--device", tr[n++] = device;
            fprintf(stderr, "-- %s --\n", is_baseline ? "baseline: frozen backbone, linear head on frame-averaged "
                                                       "class tokens" : vars[m].name);
            if ((rc = run_command(cmd_train, tr, n)) != 0) break;
            if (!evaluate(model, run, data, frames, device, &res[i][m])) rc = CLI_EXIT_FAILURE;
        }
    }
    if (rc == 0) {
        printf("\nTemporal pairs (%d classes in %d time-reversed pairs; %d validation clips per seed), %.0f s:\n",
               8, 4, res[0][0].n, (cli_now_ms() - t0) / 1000.0);
        printf("  %-6s %-18s %8s %10s %12s\n", "seed", "model", "top-1", "pair acc", "within-pair");
        double mean[MAX_VARIANTS][3] = {{0}};
        for (int i = 0; i < seeds; i++)
            for (int m = 0; m < nv; m++) {
                const scores *r = &res[i][m];
                printf("  %-6d %-18s %7.1f%% %9.1f%% %11.1f%%\n", first_seed + i, vars[m].name, 100 * r->top1, 100 * r->pair,
                       100 * r->within);
                mean[m][0] += r->top1 / seeds, mean[m][1] += r->pair / seeds, mean[m][2] += r->within / seeds;
            }
        for (int m = 0; m < nv; m++)
            printf("  %-6s %-18s %7.1f%% %9.1f%% %11.1f%%\n", "mean", vars[m].name, 100 * mean[m][0],
                   100 * mean[m][1], 100 * mean[m][2]);
        printf("within-pair accuracy: ST-Adapter %.1f%% (target >= 80%%)", 100 * mean[0][2]);
        if (baseline)
            printf(", frame-averaging baseline %.1f%% (expected 50 +- 10%%: it cannot see order)",
                   100 * mean[nv - 1][2]);
        printf("\n");
        for (int m = 1; m < nv - baseline; m++)
            printf("fixed point %s: top-1 %+.1f points vs fp32 (target within 2), within-pair %+.1f points\n",
                   vars[m].name, 100 * (mean[m][0] - mean[0][0]), 100 * (mean[m][2] - mean[0][2]));
    }
    if (temporary && nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "stacl train-demo: warning: could not remove '%s'\n", root);
    if (!temporary) printf("runs kept in %s\n", root);
    return rc;
}
