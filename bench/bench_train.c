/* bench_train.c: `stacl-bench-train`: ST-Adapter training steps through
 * stacl (issue 5). Writes a random CLIP model (preset vit-b16 by default,
 * or small / tiny, as stacl-bench-forward), adds freshly initialized
 * adapters (stacl_adapter_create: 12x384, 24x384 or head), and times 1
 * warm-up step (reported apart: kernel compilation on a fresh machine) and
 * N timed steps, each one stacl_trainer_accumulate (forward + backward of
 * `clips` clips of T frames) and one stacl_trainer_step (AdamW on the host).
 * Reports the median wall and device time per clip, the optimizer step, the
 * device time per op (stacl_trainer_op_times, OpenCL event profiling)
 * grouped into adapter kernels / backbone GEMMs / other kernels, the
 * adapters' share of the FLOPs against their share of the device time, and
 * the device memory a step holds.
 *
 * FLOPs are counted analytically, 2 per multiply-add, GEMM-like work only
 * (layer norms, softmax, activations, bias adds and copies are
 * O(tokens * width) per layer, well under 1% of the backbone's). With F =
 * clips * T frames, width W, MLP width M, N blocks of which the last Ntr
 * carry adapters (Ntr = N - first adapter block; 0 for head), P = (S/p)^2
 * patches, L = P + 1 tokens, patch p, adapter width A, conv taps
 * K = kt kh kw, n_ad adapters (one per block and site):
 *
 *   backbone forward   F [ 2 P (3 p^2) W                    patch embedding
 *                        + N (8 L W^2 + 4 L W M)            qkv, out-proj, fc1, fc2
 *                        + N 4 L^2 W ]                       q k^T and p v, all heads
 *                      (no projection: the head uses ln_post + fc, on the host)
 *   backbone backward  F Ntr [ (8 L W^2 + 4 L W M) + 8 L^2 W ]
 *       The backbone is frozen: it needs no weight gradients, only the
 *       gradient with respect to its activations, from the last block down
 *       to the input of the first block with an adapter (nothing below it
 *       has a parameter to train). Each linear layer y = x W^T then costs
 *       one GEMM dx = dy W of the same size as its forward GEMM (a trained
 *       layer would cost two: dx and dW), so the linear layers' backward
 *       FLOPs equal their forward FLOPs. Attention has no weights but both
 *       operands of each batched GEMM are activations that need gradients:
 *       dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q: four batched GEMMs
 *       of 2 L^2 D per head where the forward has two, i.e. 8 L^2 W instead
 *       of 4 L^2 W (host/train.c, block_backward). The backward runs through
 *       every trained block in full, including the first one's attention in
 *       12x384 (pre-MLP only), whose result feeds nothing: these are the
 *       FLOPs the device executes.
 *   recompute          F Ntr [ (8 L W^2 + 4 L W M) + 4 L^2 W ]   (--recompute: the
 *                      trained blocks' forward runs again before their backward)
 *   adapter forward    n_ad F [ 2 P W A  (fc1)  + 2 P A K  (depthwise conv)
 *                             + 2 P A W  (fc2) ]                 (x 2 with --recompute)
 *   adapter backward   n_ad F [ 2 P W A (fc2 input grad) + 2 P W A (fc2 weight grad)
 *                             + 2 P A K (conv input) + 2 P A K (conv weight)
 *                             + 2 P W A (fc1 weight grad) + 2 P W A (fc1 input grad) ]
 *                      = 2x the forward: every adapter layer is trained, so it
 *                      costs the input and the weight gradient.
 *   (bias gradients: F P (A + W) per adapter, under 0.3%: not counted.)
 *   head (host, double) clips * 3 * 2 W classes: not device work, not counted.
 *
 * ViT-B/16, T = 8, one clip (F = 8, L = 197, P = 196, W = 768, M = 3072,
 * A = 384, K = 3): backbone forward 281.0 GFLOP (blocks 279.1), backward
 * 290.6 GFLOP (12 blocks), one adapter 1.85 GFLOP forward + 3.71 backward;
 * 12x384 (12 adapters): 66.7 GFLOP = 10.5% of 638.3 GFLOP per step; 24x384
 * (24 adapters): 133.4 GFLOP = 18.9% of 705.1 GFLOP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "random_clip.h"

#define PROG "stacl-bench-train"
#define MAX_OPS 64


/* The adapter presets of `stacl train` (host/cli/cmd_train.c): every block,
 * kernel (3, 1, 1); 12x384 = pre-MLP (K400), 24x384 = pre-attention and
 * pre-MLP (SSv2), head = no adapters. The width is set by the caller. */
static int adapter_preset(const char *name, int layers, stacl_adapter_config *a) {
    memset(a, 0, sizeof *a);
    a->kernel[0] = 3; a->kernel[1] = 1; a->kernel[2] = 1;
    if (strcmp(name, "12x384") == 0) { a->layers = layers; a->pre_mlp = 1; return 1; }
    if (strcmp(name, "24x384") == 0) { a->layers = layers; a->pre_attn = 1; a->pre_mlp = 1; return 1; }
    if (strcmp(name, "head") == 0) { a->kernel[0] = a->kernel[1] = a->kernel[2] = 1; return 1; }
    return 0;
}

typedef struct flop_count { /* per clip (divided by clips at the end) */
    double bb_fwd, bb_bwd, recompute, ad_fwd, ad_bwd, total, adapter_share;
    double gemm, gemm_batched; /* what the ops "gemm" and "gemm_batched" execute */
    double fc_fwd, conv_fwd, fc_bwd, conv_bwd; /* per adapter op launch group, all adapters */
} flop_count;

/* The formulas of the header comment. */
static flop_count count_flops(const stacl_vision_config *c, const stacl_adapter_config *a, int n_ad, int frames,
                              int clips, int recompute) {
    const double W = c->width, M = c->mlp_width, N = c->layers, p = c->patch, F = (double)frames * clips;
    const double L = stacl_vision_tokens(c), P = L - 1, Ntr = n_ad ? a->layers : 0, rc = recompute ? 1.0 : 0.0;
    const double A = n_ad ? a->width : 0, K = (double)a->kernel[0] * a->kernel[1] * a->kernel[2];
    const double lin = 8.0 * L * W * W + 4.0 * L * W * M, att = 4.0 * L * L * W, patch = 2.0 * P * 3.0 * p * p * W;
    flop_count f;
    memset(&f, 0, sizeof f);
    f.bb_fwd = F * (patch + N * (lin + att));
    f.bb_bwd = F * Ntr * (lin + 2.0 * att);
    f.recompute = rc * F * Ntr * (lin + att);
    f.fc_fwd = (1.0 + rc) * n_ad * F * 2.0 * P * W * A; /* fc1, and the same again for fc2 */
    f.conv_fwd = (1.0 + rc) * n_ad * F * 2.0 * P * A * K;
    f.fc_bwd = n_ad * F * 2.0 * P * W * A;              /* each of the four fc backward kernels */
    f.conv_bwd = n_ad * F * 2.0 * P * A * K;            /* each of the two conv backward kernels */
    f.ad_fwd = 2.0 * f.fc_fwd + f.conv_fwd;
    f.ad_bwd = 4.0 * f.fc_bwd + 2.0 * f.conv_bwd;
    f.total = f.bb_fwd + f.bb_bwd + f.recompute + f.ad_fwd + f.ad_bwd;
    f.adapter_share = f.total > 0 ? (f.ad_fwd + f.ad_bwd) / f.total : 0.0;
    f.gemm = F * (patch + (N + (1.0 + rc) * Ntr) * lin);
    f.gemm_batched = F * (N + rc * Ntr) * att + F * Ntr * 2.0 * att;
    return f;
}

/* Analytic FLOPs of one op over a pass (0 when not counted). */
static double op_flops(const flop_count *f, const char *op) {
    static const char *const fc_bwd[] = {"adapter_fc2_backward_input", "adapter_fc2_backward_params",
                                         "adapter_fc1_backward_params", "adapter_fc1_backward_input"};
    if (strcmp(op, "gemm") == 0) return f->gemm;
    if (strcmp(op, "gemm_batched") == 0) return f->gemm_batched;
    if (strcmp(op, "adapter_fc1") == 0 || strcmp(op, "adapter_fc2") == 0) return f->fc_fwd;
    if (strcmp(op, "adapter_dwconv3d") == 0) return f->conv_fwd;
    if (strcmp(op, "adapter_dwconv3d_backward_input") == 0 || strcmp(op, "adapter_dwconv3d_backward_params") == 0)
        return f->conv_bwd;
    for (size_t i = 0; i < sizeof fc_bwd / sizeof fc_bwd[0]; i++)
        if (strcmp(op, fc_bwd[i]) == 0) return f->fc_bwd;
    return 0.0;
}

/* Groups of ops: the adapters' own kernels (forward and backward: op names
 * starting with "adapter", except adapter_mean_cls, which averages the
 * class tokens for the head and does not depend on the adapters), the
 * CLBlast calls (each timed between queue markers, host/gemm.c), and the
 * rest (layer norms, softmax, activations, head split/merge, copies and
 * fills of the tapes). */
enum { G_ADAPTER, G_GEMM, G_OTHER, N_GROUPS };
static const char *const group_name[N_GROUPS] = {"adapter", "gemm", "other"};
static const char *const group_label[N_GROUPS] = {"adapter kernels", "backbone GEMMs", "other kernels"};

static int op_group(const char *op) {
    if (strncmp(op, "adapter", 7) == 0 && strcmp(op, "adapter_mean_cls") != 0) return G_ADAPTER;
    if (strcmp(op, "gemm") == 0 || strcmp(op, "gemm_batched") == 0) return G_GEMM;
    return G_OTHER;
}

/* Device bytes of the frozen vision tower (stacl_vision_plan's layout: one
 * F32 buffer; the random model has no text tower). */
static double weight_floats(const stacl_vision_config *c) {
    const double W = c->width, M = c->mlp_width, p = c->patch, L = stacl_vision_tokens(c);
    const double block = 4.0 * W + 3.0 * W * W + 3.0 * W + W * W + W + M * W + M + W * M + W;
    return W * 3.0 * p * p + W + L * W + 4.0 * W + W * c->proj_dim + c->layers * block;
}

/* Floats of the adapter's buffer (adapter.c's plan): per adapter fc1, conv,
 * fc2 weights and biases; the head. The trainer's gradient buffer has the
 * same size. */
static double adapter_floats(const stacl_vision_config *c, const stacl_adapter_config *a, int n_ad) {
    const double W = c->width, A = a->width, K = (double)a->kernel[0] * a->kernel[1] * a->kernel[2];
    return n_ad * (A * W + A + A * K + A + W * A + W) + (double)a->classes * W + a->classes;
}

/* Deterministic uniform [-1.5, 1.5): about the range of CLIP-normalized pixels. */
static void fill_pixels(float *x, size_t n) {
    uint64_t s = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / (double)(1u << 24) * 3.0 - 1.5);
    }
}

static void load_average(char *buf, size_t cap) {
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    double a = 0, b = 0, c = 0;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(buf, cap, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

/* Per-op device times over the timed steps, gathered by op name. */
typedef struct op_series {
    const char *op;
    double *ms; /* [runs]; 0 where a step had no launch of this op */
    int launches;
} op_series;

static void usage(void) {
    printf("usage: " PROG " [--preset vit-b16|small|tiny] [--adapters 12x384|24x384|head] [--adapter-width A]\n"
           "       [--frames T] [--clips B] [--classes C] [--runs N] [--recompute] [--device D] [--json FILE]\n\n"
           "Writes a random CLIP model to a temporary folder, adds freshly initialized ST-Adapters and a\n"
           "linear head, then runs 1 warm-up and N timed training steps (stacl_trainer_accumulate over B clips\n"
           "of T frames, then stacl_trainer_step) and reports the median wall and device time per clip, the\n"
           "optimizer step, the device time per op grouped into adapter kernels / backbone GEMMs / other\n"
           "kernels, the adapters' share of the FLOPs and of the device time, and the device memory held.\n\n"
           "  --preset P        vit-b16: CLIP ViT-B/16 shapes (768 wide, 12 layers, 12 heads, 224 px; default)\n"
           "                    small:   192 wide, 4 layers, 3 heads, MLP 768, 224 px\n"
           "                    tiny:    64 wide, 2 layers, 1 head, MLP 256, patch 8, 32 px\n"
           "  --adapters S      12x384: an adapter before the MLP of every block (default; ST-Adapter's K400\n"
           "                    setting); 24x384: before attention and before the MLP of every block (SSv2);\n"
           "                    head: no adapters (frozen backbone, linear head). Conv kernel (3, 1, 1).\n"
           "  --adapter-width A bottleneck width (default: half the model width: 384 for vit-b16, as the\n"
           "                    preset names say; 96 for small, 32 for tiny)\n"
           "  --frames T        frames per clip (default 8)\n"
           "  --clips B         clips per accumulate (the micro-batch; default 1)\n"
           "  --classes C       head outputs (default 400)\n"
           "  --runs N          timed steps (default 3; a vit-b16 step of 8 frames takes tens of seconds on\n"
           "                    a CPU device)\n"
           "  --recompute       keep only each block's input and recompute the block in the backward pass\n"
           "  --device D        OpenCL device index or name substring (default: $STACL_DEVICE, else the first\n"
           "                    GPU, else the first device; see 'stacl devices')\n"
           "  --json FILE       also write every measurement as JSON\n"
           "  --help            this text\n\n"
           "The temporary folder is $TMPDIR (default /tmp)/stacl-bench-XXXXXX, removed at the end.\n");
}

int main(int argc, char **argv) {
    static const bench_opt opts[] = {{"--preset", 1}, {"--adapters", 1}, {"--adapter-width", 1}, {"--frames", 1},
                                     {"--clips", 1},  {"--classes", 1},  {"--runs", 1},          {"--recompute", 0},
                                     {"--device", 1}, {"--json", 1},     {"--help", 0}};
    bench_args a = {argc, argv, 1, PROG};
    const char *preset = "vit-b16", *adapters = "12x384", *device = NULL, *json_path = NULL, *value;
    int frames = 8, clips = 1, classes = 400, runs = 3, recompute = 0, width = 0, k;
    while ((k = bench_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: preset = value; break;
        case 1: adapters = value; break;
        case 2: if (!bench_int(PROG, "--adapter-width", value, 1, 1 << 16, &width)) return BENCH_EXIT_USAGE; break;
        case 3: if (!bench_int(PROG, "--frames", value, 1, 256, &frames)) return BENCH_EXIT_USAGE; break;
        case 4: if (!bench_int(PROG, "--clips", value, 1, 256, &clips)) return BENCH_EXIT_USAGE; break;
        case 5: if (!bench_int(PROG, "--classes", value, 1, 100000, &classes)) return BENCH_EXIT_USAGE; break;
        case 6: if (!bench_int(PROG, "--runs", value, 1, 1000, &runs)) return BENCH_EXIT_USAGE; break;
        case 7: recompute = 1; break;
        case 8: device = value; break;
        case 9: json_path = value; break;
        case 10: usage(); return 0;
        }
    }
    if (k == -2) return BENCH_EXIT_USAGE;
    stacl_random_clip_spec spec;
    if (!stacl_random_clip_preset(preset, &spec)) return bench_usage_error(PROG, "unknown preset '%s' (vit-b16, small, tiny)", preset);
    stacl_adapter_config acfg;
    if (!adapter_preset(adapters, spec.layers, &acfg))
        return bench_usage_error(PROG, "unknown --adapters '%s' (12x384, 24x384, head)", adapters);
    const int n_ad = acfg.layers * (acfg.pre_attn + acfg.pre_mlp);
    acfg.width = n_ad ? (width ? width : spec.width / 2) : 0;
    acfg.classes = classes;
    if (json_path && bench_check_writable(PROG, json_path)) return BENCH_EXIT_FAILURE;

    char dir[512], file[600], cfg_file[600];
    if (!bench_temp_dir(PROG, dir, sizeof dir)) return BENCH_EXIT_FAILURE;
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    snprintf(cfg_file, sizeof cfg_file, "%s/config.json", dir);

    bench_host host;
    bench_host_info(&host);
    char load_start[64], load_end[64];
    load_average(load_start, sizeof load_start);
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *adapter = NULL;
    stacl_trainer *trainer = NULL;
    float *pixels = NULL;
    int32_t *labels = NULL;
    double *wall = calloc((size_t)runs, sizeof *wall), *acc = calloc((size_t)runs, sizeof *acc);
    double *step = calloc((size_t)runs, sizeof *step), *dev = calloc((size_t)runs, sizeof *dev);
    double *loss = calloc((size_t)runs, sizeof *loss), *grp = calloc((size_t)runs * N_GROUPS, sizeof *grp);
    double *tshare = calloc((size_t)runs, sizeof *tshare);
    op_series ops[MAX_OPS];
    int n_ops = 0, rc = 0;
    stacl_status st;
    memset(ops, 0, sizeof ops);
    if (!wall || !acc || !step || !dev || !loss || !grp || !tshare) {
        fprintf(stderr, PROG ": error: out of host memory\n");
        rc = BENCH_EXIT_FAILURE;
        goto done;
    }

    if ((st = stacl_ctx_create(&ctx, device)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const stacl_device_info *d = stacl_ctx_device(ctx);
    char placement[160];
    if (!n_ad) snprintf(placement, sizeof placement, "no adapters: frozen backbone + linear head");
    else
        snprintf(placement, sizeof placement, "%s in the last %d of %d blocks, width %d, kernel %dx%dx%d",
                 acfg.pre_attn ? "pre-attention + pre-MLP" : "pre-MLP", acfg.layers, spec.layers, acfg.width,
                 acfg.kernel[0], acfg.kernel[1], acfg.kernel[2]);
    printf(PROG ": random CLIP '%s' (width %d, %d layers, %d heads, MLP %d, patch %d, image %d), adapters %s "
           "(%d: %s; %d classes), T = %d frames, %d clip%s per step, %d timed step%s%s\n", preset, spec.width,
           spec.layers, spec.heads, spec.mlp_width, spec.patch, spec.image_size, adapters, n_ad, placement, classes,
           frames, clips, clips > 1 ? "s" : "", runs, runs > 1 ? "s" : "", recompute ? ", recompute" : "");
    printf("host:   %s, %ld CPUs online, %s, load average %s at the start\n", host.cpu, host.nproc, host.date,
           load_start);
    printf("stacl:  %s (%s) on [%d] %s (%s, %s, driver %s)\n", stacl_version(), stacl_git_revision(), d->index,
           d->name, d->platform, d->device_version, d->driver_version);
    printf("tuning: %s\n", bench_tuning(ctx));
    fflush(stdout);

    double t0 = bench_now_ms();
    if ((st = stacl_random_clip_write(dir, &spec)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const double t_write = bench_now_ms() - t0;
    t0 = bench_now_ms();
    if ((st = stacl_model_load(&model, ctx, dir)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const double t_load = bench_now_ms() - t0;
    unlink(file); /* the weights are on the device now */
    const stacl_vision_config *c = stacl_model_vision_config(model);
    if ((st = stacl_adapter_create(&adapter, model, &acfg, 0)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    stacl_train_options topt = stacl_train_options_default();
    topt.recompute = recompute;
    t0 = bench_now_ms();
    if ((st = stacl_trainer_create(&trainer, adapter, clips, frames, &topt)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    const double t_trainer = bench_now_ms() - t0;
    const size_t n_pixels = (size_t)clips * frames * 3 * (size_t)c->image_size * (size_t)c->image_size;
    pixels = malloc(n_pixels * sizeof *pixels);
    labels = malloc((size_t)clips * sizeof *labels);
    if (!pixels || !labels) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = BENCH_EXIT_FAILURE; goto done; }
    fill_pixels(pixels, n_pixels);
    for (int i = 0; i < clips; i++) labels[i] = (int32_t)(i * 7 % classes);

    /* FLOPs (per clip) and memory. */
    flop_count fl = count_flops(c, &acfg, n_ad, frames, clips, recompute);
    const double MiB = 1024.0 * 1024.0;
    const double w_bytes = 4.0 * weight_floats(c), a_bytes = 4.0 * adapter_floats(c, &acfg, n_ad);
    const double t_bytes = (double)stacl_trainer_device_bytes(trainer);
    const double ws_bytes = t_bytes - a_bytes, peak = w_bytes + a_bytes + t_bytes;
    printf("model:  written in %.0f ms, loaded in %.0f ms; trainer created in %.0f ms; %d tokens per frame\n",
           t_write, t_load, t_trainer, stacl_vision_tokens(c));
    printf("FLOPs per clip (device, one accumulate): backbone forward %.4g + backward %.4g%s", fl.bb_fwd * 1e-9 / clips,
           fl.bb_bwd * 1e-9 / clips, recompute ? "" : ",");
    if (recompute) printf(" + recompute %.4g,", fl.recompute * 1e-9 / clips);
    printf(" adapters forward %.4g + backward %.4g = %.4g GFLOP; adapters %.1f%%\n", fl.ad_fwd * 1e-9 / clips,
           fl.ad_bwd * 1e-9 / clips, fl.total * 1e-9 / clips, 100.0 * fl.adapter_share);
    printf("device memory: frozen weights %.1f MiB + adapter parameters %.1f MiB + trainer %.1f MiB "
           "(gradients %.1f, workspace %.1f = %.1f per clip) = %.1f MiB\n", w_bytes / MiB, a_bytes / MiB,
           t_bytes / MiB, a_bytes / MiB, ws_bytes / MiB, ws_bytes / MiB / clips, peak / MiB);
    fflush(stdout);

    const float loss_scale = 1.0f / (float)clips, lr = 1e-3f;
    double wl = 0.0;
    t0 = bench_now_ms();
    if ((st = stacl_trainer_accumulate(trainer, pixels, labels, clips, loss_scale, 1000, &wl, NULL)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    double t1 = bench_now_ms(), warm_dev = 0.0;
    stacl_trainer_op_times(trainer, &(const stacl_op_time *){NULL}, &warm_dev);
    if ((st = stacl_trainer_step(trainer, lr, 1.0f, NULL)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const double warm_acc = t1 - t0, warm_step = bench_now_ms() - t1;
    printf("warm-up step: accumulate %.1f ms wall (%.1f ms device), optimizer step %.1f ms, loss %.4f "
           "(includes kernel compilation on a fresh machine)\n", warm_acc, warm_dev, warm_step, wl / clips);
    fflush(stdout);

    for (int r = 0; r < runs; r++) {
        double ls = 0.0;
        t0 = bench_now_ms();
        if ((st = stacl_trainer_accumulate(trainer, pixels, labels, clips, loss_scale, (uint64_t)r, &ls, NULL)) !=
            STACL_OK) {
            rc = bench_fail(PROG, st);
            goto done;
        }
        t1 = bench_now_ms();
        const stacl_op_time *times;
        const int n = stacl_trainer_op_times(trainer, &times, &dev[r]);
        double listed = 0.0;
        for (int i = 0; i < n; i++) {
            int j = 0;
            while (j < n_ops && strcmp(ops[j].op, times[i].op) != 0) j++;
            if (j == n_ops) {
                if (n_ops == MAX_OPS) continue;
                ops[j].op = times[i].op; /* the library's static op names */
                ops[j].ms = calloc((size_t)runs, sizeof(double));
                if (!ops[j].ms) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = BENCH_EXIT_FAILURE; goto done; }
                n_ops++;
            }
            ops[j].ms[r] = times[i].ms;
            ops[j].launches = times[i].launches;
            grp[(size_t)r * N_GROUPS + op_group(times[i].op)] += times[i].ms;
            listed += times[i].ms;
        }
        /* Ops past the profiler's table (STACL_PROFILE_MAX_OPS) still count in
         * the total: put the rest under "other". */
        if (dev[r] > listed) grp[(size_t)r * N_GROUPS + G_OTHER] += dev[r] - listed;
        if ((st = stacl_trainer_step(trainer, lr, 1.0f, NULL)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
        const double t2 = bench_now_ms();
        acc[r] = t1 - t0;
        step[r] = t2 - t1;
        wall[r] = t2 - t0;
        loss[r] = ls / clips;
        tshare[r] = dev[r] > 0 ? grp[(size_t)r * N_GROUPS + G_ADAPTER] / dev[r] : 0.0;
        printf("step %d/%d: accumulate %.1f ms wall, %.1f ms device (adapters %.1f, GEMMs %.1f, other %.1f); "
               "optimizer step %.1f ms; loss %.4f\n", r + 1, runs, acc[r], dev[r], grp[(size_t)r * N_GROUPS + G_ADAPTER],
               grp[(size_t)r * N_GROUPS + G_GEMM], grp[(size_t)r * N_GROUPS + G_OTHER], step[r], loss[r]);
        fflush(stdout);
    }
    load_average(load_end, sizeof load_end);

    double gmed[N_GROUPS];
    for (int g = 0; g < N_GROUPS; g++) {
        double *x = malloc((size_t)runs * sizeof *x);
        if (!x) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = BENCH_EXIT_FAILURE; goto done; }
        for (int r = 0; r < runs; r++) x[r] = grp[(size_t)r * N_GROUPS + g];
        gmed[g] = bench_median(x, runs);
        free(x);
    }
    const double wall_med = bench_median(wall, runs), acc_med = bench_median(acc, runs);
    const double step_med = bench_median(step, runs), dev_med = bench_median(dev, runs);
    const double share_med = bench_median(tshare, runs);
    const double ratio = fl.adapter_share > 0 ? share_med / fl.adapter_share : 0.0;
    const double B = clips;
    printf("\nper clip of %d frames (%d clip%s per step), median of %d [min-max]:\n", frames, clips,
           clips > 1 ? "s" : "", runs);
    printf("  training step wall  %10.1f ms [%.1f-%.1f]  %7.2f GFLOP/s  (accumulate + optimizer step)\n",
           wall_med / B, bench_min(wall, runs) / B, bench_max(wall, runs) / B, fl.total / (wall_med * 1e6));
    printf("  accumulate wall     %10.1f ms [%.1f-%.1f]\n", acc_med / B, bench_min(acc, runs) / B,
           bench_max(acc, runs) / B);
    printf("  accumulate device   %10.1f ms [%.1f-%.1f]  %7.2f GFLOP/s  (sum of OpenCL event times)\n", dev_med / B,
           bench_min(dev, runs) / B, bench_max(dev, runs) / B, fl.total / (dev_med * 1e6));
    printf("  optimizer step      %10.1f ms [%.1f-%.1f]  (host AdamW over %.0f parameters, per step: %.1f ms)\n",
           step_med / B, bench_min(step, runs) / B, bench_max(step, runs) / B, a_bytes / 4.0, step_med);
    printf("\ndevice time by group (median over the steps; share of the median device total), FLOPs per clip:\n");
    const double gflop[N_GROUPS] = {fl.ad_fwd + fl.ad_bwd, fl.gemm + fl.gemm_batched, 0.0};
    for (int g = 0; g < N_GROUPS; g++) {
        printf("  %-16s %10.1f ms  %5.1f%% of the time", group_label[g], gmed[g] / B,
               dev_med > 0 ? 100.0 * gmed[g] / dev_med : 0.0);
        if (g != G_OTHER)
            printf("  %8.4g GFLOP  %5.1f%% of the FLOPs  %7.2f GFLOP/s", gflop[g] * 1e-9 / B,
                   fl.total > 0 ? 100.0 * gflop[g] / fl.total : 0.0, gmed[g] > 0 ? gflop[g] / (gmed[g] * 1e6) : 0.0);
        printf("\n");
    }
    if (n_ad)
        printf("adapters: %.1f%% of the FLOPs, %.1f%% of the device time (median of the steps' shares): "
               "ratio %.2f, target <= 1.5: %s\n", 100.0 * fl.adapter_share, 100.0 * share_med, ratio,
               ratio <= 1.5 ? "met" : "NOT met");
    else
        printf("adapters: none (head only)\n");
    printf("\ndevice time per op (median over the steps, per clip; share of the median device total):\n");
    printf("  %-34s %-7s %10s %6s %9s %10s %9s\n", "op", "group", "ms", "share", "launches", "GFLOP", "GFLOP/s");
    for (int g = 0; g < N_GROUPS; g++)
        for (int j = 0; j < n_ops; j++) {
            if (op_group(ops[j].op) != g) continue;
            const double m = bench_median(ops[j].ms, runs), f = op_flops(&fl, ops[j].op);
            printf("  %-34s %-7s %10.2f %5.1f%% %9d", ops[j].op, group_name[g], m / B,
                   dev_med > 0 ? 100.0 * m / dev_med : 0.0, ops[j].launches);
            if (f > 0) printf(" %10.4g %9.2f", f * 1e-9 / B, m > 0 ? f / (m * 1e6) : 0.0);
            printf("\n");
        }
    printf("load average %s at the end. Timings on a shared machine are noisy: compare medians from one run.\n",
           load_end);

    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "benchmark", PROG);
        cJSON_AddStringToObject(root, "preset", preset);
        cJSON_AddItemToObject(root, "model", bench_json_model(c));
        cJSON *ac = cJSON_AddObjectToObject(root, "adapters");
        cJSON_AddStringToObject(ac, "preset", adapters);
        cJSON_AddNumberToObject(ac, "count", n_ad);
        cJSON_AddNumberToObject(ac, "width", acfg.width);
        cJSON_AddItemToObject(ac, "kernel", cJSON_CreateIntArray(acfg.kernel, 3));
        cJSON_AddNumberToObject(ac, "layers", acfg.layers);
        cJSON_AddBoolToObject(ac, "pre_attn", acfg.pre_attn);
        cJSON_AddBoolToObject(ac, "pre_mlp", acfg.pre_mlp);
        cJSON_AddNumberToObject(ac, "classes", classes);
        cJSON_AddNumberToObject(root, "frames", frames);
        cJSON_AddNumberToObject(root, "clips", clips);
        cJSON_AddBoolToObject(root, "recompute", recompute);
        cJSON_AddNumberToObject(root, "runs", runs);
        cJSON_AddItemToObject(root, "host", bench_json_host(&host));
        cJSON_AddStringToObject(root, "load_average_start", load_start);
        cJSON_AddStringToObject(root, "load_average_end", load_end);
        cJSON_AddItemToObject(root, "device", bench_json_device(d));
        cJSON_AddStringToObject(root, "tuning", bench_tuning(ctx));
        cJSON *f = cJSON_AddObjectToObject(root, "flop_per_clip");
        cJSON_AddNumberToObject(f, "total", fl.total / B);
        cJSON_AddNumberToObject(f, "backbone_forward", fl.bb_fwd / B);
        cJSON_AddNumberToObject(f, "backbone_backward", fl.bb_bwd / B);
        cJSON_AddNumberToObject(f, "recompute", fl.recompute / B);
        cJSON_AddNumberToObject(f, "adapter_forward", fl.ad_fwd / B);
        cJSON_AddNumberToObject(f, "adapter_backward", fl.ad_bwd / B);
        cJSON_AddNumberToObject(f, "gemm", fl.gemm / B);
        cJSON_AddNumberToObject(f, "gemm_batched", fl.gemm_batched / B);
        cJSON *mem = cJSON_AddObjectToObject(root, "device_bytes");
        cJSON_AddNumberToObject(mem, "frozen_weights", w_bytes);
        cJSON_AddNumberToObject(mem, "adapter_parameters", a_bytes);
        cJSON_AddNumberToObject(mem, "trainer", t_bytes);
        cJSON_AddNumberToObject(mem, "trainer_gradients", a_bytes);
        cJSON_AddNumberToObject(mem, "trainer_workspace", ws_bytes);
        cJSON_AddNumberToObject(mem, "workspace_per_clip", ws_bytes / B);
        cJSON_AddNumberToObject(mem, "peak", peak);
        cJSON_AddNumberToObject(root, "model_write_ms", t_write);
        cJSON_AddNumberToObject(root, "model_load_ms", t_load);
        cJSON_AddNumberToObject(root, "trainer_create_ms", t_trainer);
        cJSON_AddNumberToObject(root, "warmup_accumulate_ms", warm_acc);
        cJSON_AddNumberToObject(root, "warmup_device_ms", warm_dev);
        cJSON_AddNumberToObject(root, "warmup_step_ms", warm_step);
        /* Per step (all clips of the step), as measured: */
        cJSON_AddItemToObject(root, "wall_ms", bench_json_array(wall, runs));
        cJSON_AddItemToObject(root, "accumulate_ms", bench_json_array(acc, runs));
        cJSON_AddItemToObject(root, "device_ms", bench_json_array(dev, runs));
        cJSON_AddItemToObject(root, "optimizer_step_ms", bench_json_array(step, runs));
        cJSON_AddItemToObject(root, "loss", bench_json_array(loss, runs));
        /* Medians per clip: */
        cJSON_AddNumberToObject(root, "wall_ms_per_clip_median", wall_med / B);
        cJSON_AddNumberToObject(root, "accumulate_ms_per_clip_median", acc_med / B);
        cJSON_AddNumberToObject(root, "device_ms_per_clip_median", dev_med / B);
        cJSON_AddNumberToObject(root, "optimizer_step_ms_median", step_med);
        cJSON_AddNumberToObject(root, "gflops_wall_median", fl.total / (wall_med * 1e6));
        cJSON_AddNumberToObject(root, "gflops_device_median", fl.total / (dev_med * 1e6));
        cJSON *gj = cJSON_AddObjectToObject(root, "groups");
        for (int g = 0; g < N_GROUPS; g++) {
            cJSON *o = cJSON_AddObjectToObject(gj, group_name[g]);
            double *x = malloc((size_t)runs * sizeof *x);
            if (x) {
                for (int r = 0; r < runs; r++) x[r] = grp[(size_t)r * N_GROUPS + g];
                cJSON_AddItemToObject(o, "ms", bench_json_array(x, runs));
                free(x);
            }
            cJSON_AddNumberToObject(o, "ms_per_clip_median", gmed[g] / B);
            cJSON_AddNumberToObject(o, "time_share", dev_med > 0 ? gmed[g] / dev_med : 0.0);
            if (g != G_OTHER) cJSON_AddNumberToObject(o, "flop_per_clip", gflop[g] / B);
        }
        cJSON *sh = cJSON_AddObjectToObject(root, "adapter_share");
        cJSON_AddNumberToObject(sh, "flop", fl.adapter_share);
        cJSON_AddNumberToObject(sh, "time", share_med);
        cJSON_AddItemToObject(sh, "time_per_step", bench_json_array(tshare, runs));
        cJSON_AddNumberToObject(sh, "ratio", ratio);
        cJSON_AddNumberToObject(sh, "target", 1.5);
        cJSON_AddBoolToObject(sh, "within_target", n_ad && ratio <= 1.5);
        cJSON *arr = cJSON_AddArrayToObject(root, "ops");
        for (int j = 0; j < n_ops; j++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "op", ops[j].op);
            cJSON_AddStringToObject(o, "group", group_name[op_group(ops[j].op)]);
            cJSON_AddNumberToObject(o, "ms_median", bench_median(ops[j].ms, runs));
            cJSON_AddItemToObject(o, "ms", bench_json_array(ops[j].ms, runs));
            cJSON_AddNumberToObject(o, "launches", ops[j].launches);
            cJSON_AddNumberToObject(o, "flop", op_flops(&fl, ops[j].op));
            cJSON_AddItemToArray(arr, o);
        }
        rc = bench_json_write(PROG, json_path, root);
        cJSON_Delete(root);
    }

done:
    for (int j = 0; j < n_ops; j++) free(ops[j].ms);
    free(wall);
    free(acc);
    free(step);
    free(dev);
    free(loss);
    free(grp);
    free(tshare);
    free(pixels);
    free(labels);
    stacl_trainer_free(trainer);
    stacl_adapter_free(adapter);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    unlink(file);
    unlink(cfg_file);
    rmdir(dir);
    return rc;
}
