/* cmd_demo.c: `stacl demo`: the main job on an embedded default, needing no
 * downloads: writes a random CLIP model (preset "small", or --preset
 * vit-b16) to a temporary folder, makes a synthetic 8-frame clip (a moving
 * bright square, CLIP-normalized), runs the vision tower and prints the
 * device, the shapes, the embeddings' norms and the time per clip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "random_clip.h"


static void usage(void) {
    printf("usage: stacl demo [--preset small|vit-b16|tiny] [--frames T] [--runs N] [--device D] [--profile]\n\n"
           "Generates a random CLIP model (default preset 'small'; 'vit-b16' for the real ViT-B/16 shape) in a\n"
           "temporary folder, runs a synthetic T-frame clip (default 8) through the vision tower on the\n"
           "chosen OpenCL device: one warm-up pass (it includes kernel compilation on a fresh machine),\n"
           "then N timed passes (default 3), and prints the median time per clip.\n");
}

/* A bright square moving left to right over a dark gradient, normalized
 * with CLIP's mean and std: deterministic, and different in every frame. */
static void synthetic_clip(float *x, int frames, int size) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    int side = size / 4;
    for (int t = 0; t < frames; t++) {
        int x0 = (size - side) * t / (frames > 1 ? frames - 1 : 1), y0 = size / 2 - side / 2;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < size; y++)
                for (int xx = 0; xx < size; xx++) {
                    float v = 0.2f * (float)(y + c * 7) / (float)size;
                    if (xx >= x0 && xx < x0 + side && y >= y0 && y < y0 + side) v = c == 0 ? 0.9f : 0.6f;
                    x[(((size_t)t * 3 + c) * size + y) * size + xx] = (v - mean[c]) / std[c];
                }
    }
}

int cmd_demo(int argc, char **argv) {
    static const cli_opt opts[] = {{"--preset", 1}, {"--frames", 1}, {"--runs", 1}, {"--device", 1}, {"--profile", 0},
                                   {"--help", 0}};
    cli_args a = {argc, argv, 1, "demo", 0};
    const char *preset = "small", *device = NULL, *value;
    int frames = 8, runs = 3, profile = 0, k;
    while ((k = cli_next(&a, opts, 6, &value)) >= 0) {
        switch (k) {
        case 0: preset = value; break;
        case 1: if (!cli_int("demo", "--frames", value, 1, 256, &frames)) return CLI_EXIT_USAGE; break;
        case 2: if (!cli_int("demo", "--runs", value, 1, 1000, &runs)) return CLI_EXIT_USAGE; break;
        case 3: device = value; break;
        case 4: profile = 1; break;
        case 5: usage(); return 0;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    stacl_random_clip_spec spec;
    if (!stacl_random_clip_preset(preset, &spec)) return cli_usage_error("demo", "unknown preset '%s'", preset);

    char dir[] = "/tmp/stacl-demo-XXXXXX", file[64];
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    float *pixels = NULL, *out = NULL;
    int rc = 0;
    stacl_status st;
    if (!mkdtemp(dir)) {
        fprintf(stderr, "stacl demo: error: cannot create a temporary folder under /tmp\n");
        return CLI_EXIT_FAILURE;
    }
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    if ((st = stacl_ctx_create(&ctx, device)) != STACL_OK) { rc = cli_fail("demo", st); goto done; }
    const stacl_device_info *d = stacl_ctx_device(ctx);
    printf("device: [%d] %s (%s, %s)\n", d->index, d->name, d->platform, d->device_version);
    printf("GEMMs:  %s\n", stacl_ctx_gemm_engine(ctx));
    printf("model: random CLIP '%s' (width %d, %d layers, %d heads, patch %d, image %d, proj %d), seed %llu\n", preset,
           spec.width, spec.layers, spec.heads, spec.patch, spec.image_size, spec.proj_dim,
           (unsigned long long)spec.seed);
    fflush(stdout);
    if ((st = stacl_random_clip_write(dir, &spec)) != STACL_OK) { rc = cli_fail("demo", st); goto done; }
    if ((st = stacl_model_load(&model, ctx, dir)) != STACL_OK) { rc = cli_fail("demo", st); goto done; }
    const stacl_vision_config *c = stacl_model_vision_config(model);
    size_t frame_floats = (size_t)3 * c->image_size * c->image_size;
    pixels = malloc((size_t)runs * frames * frame_floats * sizeof *pixels);
    out = malloc((size_t)runs * stacl_forward_output_size(model, frames, STACL_OUT_EMBEDDING) * sizeof *out);
    if (!pixels || !out) { fprintf(stderr, "stacl demo: error: out of host memory\n"); rc = CLI_EXIT_FAILURE; goto done; }
    /* The same clip `runs` times: the timed passes repeat identical work. */
    synthetic_clip(pixels, frames, c->image_size);
    for (int r = 1; r < runs; r++) memcpy(pixels + (size_t)r * frames * frame_floats, pixels, frames * frame_floats * sizeof *pixels);
    printf("input: [%d, 3, %d, %d] float32 (synthetic clip, CLIP-normalized), %d tokens per frame\n", frames,
           c->image_size, c->image_size, stacl_vision_tokens(c));
    fflush(stdout);
    rc = cli_forward_clips(model, pixels, runs, frames, STACL_OUT_EMBEDDING, out, 1, 0, profile);
    if (rc) goto done;
    printf("output: [%d, %d] float32 image embeddings; L2 norm per frame:", frames, c->proj_dim);
    for (int t = 0; t < frames; t++) {
        double n2 = 0;
        for (int j = 0; j < c->proj_dim; j++) n2 += (double)out[(size_t)t * c->proj_dim + j] * out[(size_t)t * c->proj_dim + j];
        printf(" %.3f", sqrt(n2));
    }
    printf("\n");
done:
    free(pixels);
    free(out);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    unlink(file);
    char cfg[64];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    unlink(cfg);
    rmdir(dir);
    return rc;
}
