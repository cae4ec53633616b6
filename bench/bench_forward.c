/* bench_forward.c: `stacl-bench-forward`: whole CLIP vision-tower forward
 * passes through stacl. Writes a random model (preset vit-b16 by default,
 * the shapes of CLIP ViT-B/16; or small / tiny, the presets of
 * `stacl gen-model`) to a temporary folder, loads it, runs 1 warm-up pass
 * (reported apart: on a fresh machine it includes kernel compilation) and N
 * timed passes over a T-frame clip, and reports the median wall and device
 * time per clip, device time per op (stacl_state_op_times) and the achieved
 * GFLOP/s.
 *
 * FLOPs are counted analytically, GEMMs only (LayerNorm, softmax, bias and
 * activation are O(tokens * width) per layer, well under 1% here), 2 FLOPs
 * per multiply-add. With T frames, width W, MLP width M, layers N, patch p,
 * image S, P = (S/p)^2 patches, L = P + 1 tokens, projection width E:
 *
 *   per frame:  patch embedding      2 * P * (3 p^2) * W
 *             + per layer, N times:  qkv 2 L W (3W) + out-proj 2 L W W
 *                                    + fc1 2 L W M + fc2 2 L M W        = 8 L W^2 + 4 L W M
 *                                    + q k^T 2 L L W + p v 2 L L W      = 4 L^2 W  (over all heads)
 *             + projection           2 W E   (0 without one)
 *   per clip:   T times the above.
 *
 * ViT-B/16 (W 768, M 3072, N 12, p 16, S 224, E 512): 35.1 GFLOP per frame
 * (the usual "17.5 GFLOPs" counts multiply-adds), 281 GFLOP per 8-frame clip. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "random_clip.h"

#define PROG "stacl-bench-forward"


typedef struct flop_count {
    double patch, qkv_out_mlp, attention, proj, total; /* per clip */
} flop_count;

/* The formula of the header comment, from the loaded model's config. */
static flop_count count_flops(const stacl_vision_config *c, int frames) {
    const double W = c->width, M = c->mlp_width, N = c->layers, p = c->patch, E = c->proj_dim, T = frames;
    const double L = stacl_vision_tokens(c), P = L - 1;
    flop_count f;
    f.patch = T * 2.0 * P * (3.0 * p * p) * W;
    f.qkv_out_mlp = T * N * (8.0 * L * W * W + 4.0 * L * W * M);
    f.attention = T * N * 4.0 * L * L * W;
    f.proj = T * 2.0 * W * E;
    f.total = f.patch + f.qkv_out_mlp + f.attention + f.proj;
    return f;
}

/* Deterministic uniform [-1.5, 1.5): about the range of CLIP-normalized pixels. */
static void fill_pixels(float *x, size_t n) {
    uint64_t s = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(s >> 40) / (double)(1u << 24) * 3.0 - 1.5);
    }
}

/* Per-op device times over the timed runs, gathered by op name. */
#define MAX_OPS 32
typedef struct op_series {
    const char *op;
    double *ms; /* [runs]; 0 where a run had no launch of this op */
    int launches;
} op_series;

static void usage(void) {
    printf("usage: " PROG " [--preset vit-b16|small|tiny] [--frames T] [--runs N] [--device D] [--json FILE]\n\n"
           "Writes a random CLIP model to a temporary folder, then runs 1 warm-up pass and N timed forward\n"
           "passes of a T-frame clip through stacl's vision tower, and reports the median wall and device\n"
           "time per clip, the device time per op and the GFLOP/s of the whole forward (GEMM FLOPs,\n"
           "counted from the model's shapes).\n\n"
           "  --preset P    vit-b16: CLIP ViT-B/16 shapes (768 wide, 12 layers, 12 heads, 224 px; default)\n"
           "                small:   192 wide, 4 layers, 3 heads, MLP 768, 224 px, proj 128\n"
           "                tiny:    64 wide, 2 layers, 1 head, MLP 256, patch 8, 32 px, proj 32\n"
           "  --frames T    frames per clip (default 8)\n"
           "  --runs N      timed passes (default 3; a vit-b16 pass of 8 frames takes seconds on a CPU)\n"
           "  --device D    OpenCL device index or name substring (default: $STACL_DEVICE, else the first\n"
           "                GPU, else the first device; see 'stacl devices')\n"
           "  --json FILE   also write every measurement as JSON\n"
           "  --help        this text\n\n"
           "The temporary folder is $TMPDIR (default /tmp)/stacl-bench-XXXXXX, removed at the end.\n");
}

int main(int argc, char **argv) {
    static const bench_opt opts[] = {{"--preset", 1}, {"--frames", 1}, {"--runs", 1}, {"--device", 1},
                                     {"--json", 1},   {"--help", 0}};
    bench_args a = {argc, argv, 1, PROG};
    const char *preset = "vit-b16", *device = NULL, *json_path = NULL, *value;
    int frames = 8, runs = 3, k;
    while ((k = bench_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: preset = value; break;
        case 1: if (!bench_int(PROG, "--frames", value, 1, 256, &frames)) return BENCH_EXIT_USAGE; break;
        case 2: if (!bench_int(PROG, "--runs", value, 1, 1000, &runs)) return BENCH_EXIT_USAGE; break;
        case 3: device = value; break;
        case 4: json_path = value; break;
        case 5: usage(); return 0;
        }
    }
    if (k == -2) return BENCH_EXIT_USAGE;
    stacl_random_clip_spec spec;
    if (!stacl_random_clip_preset(preset, &spec)) return bench_usage_error(PROG, "unknown preset '%s' (vit-b16, small, tiny)", preset);
    if (json_path && bench_check_writable(PROG, json_path)) return BENCH_EXIT_FAILURE;

    char dir[512], file[600], cfg_file[600];
    if (!bench_temp_dir(PROG, dir, sizeof dir)) return BENCH_EXIT_FAILURE;
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    snprintf(cfg_file, sizeof cfg_file, "%s/config.json", dir);

    bench_host host;
    bench_host_info(&host);
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_state *state = NULL;
    float *pixels = NULL, *out = NULL;
    double *wall = calloc((size_t)runs, sizeof *wall), *dev = calloc((size_t)runs, sizeof *dev);
    op_series ops[MAX_OPS];
    int n_ops = 0, rc = 0;
    stacl_status st;
    memset(ops, 0, sizeof ops);
    if (!wall || !dev) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = BENCH_EXIT_FAILURE; goto done; }

    if ((st = stacl_ctx_create(&ctx, device)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const stacl_device_info *d = stacl_ctx_device(ctx);
    printf(PROG ": random CLIP '%s' (width %d, %d layers, %d heads, MLP %d, patch %d, image %d, proj %d), "
           "T = %d frames, %d timed pass%s\n", preset, spec.width, spec.layers, spec.heads, spec.mlp_width,
           spec.patch, spec.image_size, spec.proj_dim, frames, runs, runs > 1 ? "es" : "");
    printf("host:   %s, %ld CPUs online, %s\n", host.cpu, host.nproc, host.date);
    printf("stacl:  %s (%s) on [%d] %s (%s, %s, driver %s)\n", stacl_version(), stacl_git_revision(), d->index,
           d->name, d->platform, d->device_version, d->driver_version);
    printf("tuning: %s\n", bench_tuning(ctx));
    fflush(stdout);

    double t0 = bench_now_ms();
    if ((st = stacl_random_clip_write(dir, &spec)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    double t_write = bench_now_ms() - t0;
    t0 = bench_now_ms();
    if ((st = stacl_model_load(&model, ctx, dir)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    double t_load = bench_now_ms() - t0;
    /* The model's weights are on the device now: the file is no longer needed. */
    unlink(file);
    const stacl_vision_config *c = stacl_model_vision_config(model);
    if ((st = stacl_state_create(&state, model, frames)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const size_t n_pixels = (size_t)frames * 3 * (size_t)c->image_size * (size_t)c->image_size;
    pixels = malloc(n_pixels * sizeof *pixels);
    out = malloc(stacl_forward_output_size(model, frames, STACL_OUT_EMBEDDING) * sizeof *out);
    if (!pixels || !out) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = BENCH_EXIT_FAILURE; goto done; }
    fill_pixels(pixels, n_pixels);
    const flop_count fl = count_flops(c, frames);
    printf("model:  written in %.0f ms, loaded in %.0f ms; %d tokens per frame; %.4g GFLOP per clip "
           "(%.4g per frame)\n", t_write, t_load, stacl_vision_tokens(c), fl.total * 1e-9, fl.total * 1e-9 / frames);
    fflush(stdout);

    t0 = bench_now_ms();
    if ((st = stacl_vision_forward(state, pixels, frames, STACL_OUT_EMBEDDING, out)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    const double warm_wall = bench_now_ms() - t0, warm_dev = stacl_state_last_device_ms(state);
    printf("warm-up pass: %.1f ms wall, %.1f ms device (includes kernel compilation on a fresh machine)\n", warm_wall,
           warm_dev);
    fflush(stdout);

    for (int r = 0; r < runs; r++) {
        t0 = bench_now_ms();
        if ((st = stacl_vision_forward(state, pixels, frames, STACL_OUT_EMBEDDING, out)) != STACL_OK) {
            rc = bench_fail(PROG, st);
            goto done;
        }
        wall[r] = bench_now_ms() - t0;
        dev[r] = stacl_state_last_device_ms(state);
        printf("pass %d/%d: %.1f ms wall, %.1f ms device\n", r + 1, runs, wall[r], dev[r]);
        fflush(stdout);
        const stacl_op_time *times;
        int n = stacl_state_op_times(state, &times);
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
        }
    }

    const double wall_med = bench_median(wall, runs), dev_med = bench_median(dev, runs);
    printf("\nper clip of %d frames, median of %d [min-max]:\n", frames, runs);
    printf("  wall   %10.1f ms [%.1f-%.1f]  %8.2f ms per frame  %7.2f GFLOP/s\n", wall_med, bench_min(wall, runs),
           bench_max(wall, runs), wall_med / frames, fl.total / (wall_med * 1e6));
    /* stacl times CLBlast calls between queue markers; should a driver's
     * markers not time the work, a device GFLOP/s would be fiction. */
    const int dev_partial = dev_med < 0.5 * wall_med;
    if (dev_partial)
        printf("  device %10.1f ms [%.1f-%.1f]  %8.2f ms per frame  (sum of OpenCL event times: a lower bound, see "
               "the note below)\n", dev_med, bench_min(dev, runs), bench_max(dev, runs), dev_med / frames);
    else
        printf("  device %10.1f ms [%.1f-%.1f]  %8.2f ms per frame  %7.2f GFLOP/s (sum of OpenCL event times)\n",
               dev_med, bench_min(dev, runs), bench_max(dev, runs), dev_med / frames, fl.total / (dev_med * 1e6));
    printf("\ndevice time per op (median over the passes; share of the median device total):\n");
    for (int j = 0; j < n_ops; j++) {
        const double m = bench_median(ops[j].ms, runs);
        printf("  %-16s %10.2f ms  %5.1f%%  (%d launches per pass)\n", ops[j].op, m, dev_med > 0 ? 100.0 * m / dev_med : 0.0,
               ops[j].launches);
    }
    printf("FLOPs per clip: patch embedding %.4g, qkv/out/MLP %.4g, attention %.4g, projection %.4g GFLOP.\n",
           fl.patch * 1e-9, fl.qkv_out_mlp * 1e-9, fl.attention * 1e-9, fl.proj * 1e-9);
    if (dev_partial)
        printf("note: the device time is under half the wall time: this driver's markers around the CLBlast calls\n"
               "did not time their kernels, so the 'gemm' time above and the device total leave GEMM work out;\n"
               "compare wall times.\n");
    printf("Timings on a shared machine are noisy: compare medians from one run, not single passes.\n");

    if (json_path) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "benchmark", PROG);
        cJSON_AddStringToObject(root, "preset", preset);
        cJSON_AddItemToObject(root, "model", bench_json_model(c));
        cJSON_AddNumberToObject(root, "frames", frames);
        cJSON_AddNumberToObject(root, "runs", runs);
        cJSON_AddItemToObject(root, "host", bench_json_host(&host));
        cJSON_AddItemToObject(root, "device", bench_json_device(d));
        cJSON_AddStringToObject(root, "tuning", bench_tuning(ctx));
        cJSON *f = cJSON_AddObjectToObject(root, "flop_per_clip");
        cJSON_AddNumberToObject(f, "total", fl.total);
        cJSON_AddNumberToObject(f, "patch_embed", fl.patch);
        cJSON_AddNumberToObject(f, "qkv_out_mlp", fl.qkv_out_mlp);
        cJSON_AddNumberToObject(f, "attention", fl.attention);
        cJSON_AddNumberToObject(f, "projection", fl.proj);
        cJSON_AddNumberToObject(root, "model_write_ms", t_write);
        cJSON_AddNumberToObject(root, "model_load_ms", t_load);
        cJSON_AddNumberToObject(root, "warmup_wall_ms", warm_wall);
        cJSON_AddNumberToObject(root, "warmup_device_ms", warm_dev);
        cJSON_AddItemToObject(root, "wall_ms", bench_json_array(wall, runs));
        cJSON_AddItemToObject(root, "device_ms", bench_json_array(dev, runs));
        cJSON_AddNumberToObject(root, "wall_ms_median", wall_med);
        cJSON_AddNumberToObject(root, "device_ms_median", dev_med);
        cJSON_AddNumberToObject(root, "gflops_wall_median", fl.total / (wall_med * 1e6));
        cJSON_AddNumberToObject(root, "gflops_device_median", fl.total / (dev_med * 1e6));
        /* false: the events missed most GEMM work (CLBlast's last-kernel event); device numbers are lower bounds. */
        cJSON_AddBoolToObject(root, "device_time_complete", !dev_partial);
        cJSON *arr = cJSON_AddArrayToObject(root, "ops");
        for (int j = 0; j < n_ops; j++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "op", ops[j].op);
            cJSON_AddNumberToObject(o, "ms_median", bench_median(ops[j].ms, runs));
            cJSON_AddItemToObject(o, "ms", bench_json_array(ops[j].ms, runs));
            cJSON_AddNumberToObject(o, "launches", ops[j].launches);
            cJSON_AddItemToArray(arr, o);
        }
        rc = bench_json_write(PROG, json_path, root);
        cJSON_Delete(root);
    }

done:
    for (int j = 0; j < n_ops; j++) free(ops[j].ms);
    free(wall);
    free(dev);
    free(pixels);
    free(out);
    stacl_state_free(state);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    unlink(file);
    unlink(cfg_file);
    rmdir(dir);
    return rc;
}
