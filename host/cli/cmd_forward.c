/* cmd_forward.c: `stacl forward`: frames in a .npy file through the CLIP
 * vision tower, embeddings (or last-block tokens) out to a .npy file; with
 * --adapter, through the ST-Adapter model: classifier logits out. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_eval.h"
#include "npy.h"

static void usage(void) {
    printf("usage: stacl forward --model PATH [--adapter CKPT] --input X.npy --out Y.npy [--tokens]\n"
           "                     [--device D] [--backbone-device D --adapter-device D]\n"
           "                     [--adapter-binary FILE] [--transfer-chunks N]\n"
           "                     [--warmup N] [--profile] [--quiet]\n\n"
           "Runs the frozen CLIP vision tower on frames that are already normalized, or with\n"
           "--adapter the ST-Adapter video classifier built on it.\n\n"
           "  --model PATH   folder with model.safetensors (+ config.json for Hugging Face files),\n"
           "                 or a .safetensors file (OpenAI/open_clip or Hugging Face tensor names)\n"
           "  --input X.npy  float32 [T, 3, H, W], or [B, T, 3, H, W] for B clips (H = W = image size)\n"
           "  --out Y.npy    float32 [T, proj_dim] image embeddings, not normalized ([B, T, ...] for B\n"
           "                 clips); [T, width] after ln_post when the model has no projection\n"
           "  --adapter CKPT ST-Adapter checkpoint (.safetensors, the reference code's tensor names,\n"
           "                 e.g. transformer.resblocks.N.adapter_pre_mlp.fc1.weight, fc.weight;\n"
           "                 optional 'visual.' prefix; other tensors ignored): --out is then the\n"
           "                 logits [classes] per clip ([B, classes] for B clips); see docs/adapters.md\n"
           "  --tokens       write the last block's output [T, tokens, width] (before ln_post) instead\n"
           "  --device D     OpenCL device index or name substring (default: $STACL_DEVICE, else the\n"
           "                 first GPU, else the first device; see 'stacl devices')\n"
           "  --backbone-device D, --adapter-device D\n"
           "                 with --adapter: the frozen backbone on one device, the adapters on\n"
           "                 another (each defaults to --device); the residual stream is copied\n"
           "                 between them around every adapter, the copies' time is printed\n"
           "                 (op 'transfer' with --profile); see docs/adapters.md\n"
           "  --adapter-binary FILE\n"
           "                 with --adapter: the adapter device's kernels from a program binary\n"
           "                 ('stacl build-binary'), required for an accelerator device\n"
           "  --transfer-chunks N\n"
           "                 two devices: pipeline each adapter's copies in N chunks of frames\n"
           "                 (default 0: chosen from the size; 1: no overlap)\n"
           "  --warmup N     untimed passes over the first clip before timing (default 0); the\n"
           "                 first pass on a fresh machine includes kernel compilation\n"
           "  --profile      print device time per op (OpenCL event profiling)\n"
           "  --quiet        print nothing on success\n");
}

/* One pass over one clip: the frozen tower, or the adapted model. */
static stacl_status pass(stacl_state *state, const stacl_adapter *ad, const float *pixels, int frames,
                         stacl_output kind, float *out) {
    return ad ? stacl_classify_forward(state, ad, pixels, 1, frames, kind, out)
              : stacl_vision_forward(state, pixels, frames, kind, out);
}

/* The summed time of op "transfer" (copies between two devices) of the
 * last pass, and its copies. */
static double transfer_ms(const stacl_state *state, int *copies) {
    const stacl_op_time *times;
    int n = stacl_state_op_times(state, &times);
    for (int i = 0; i < n; i++)
        if (strcmp(times[i].op, "transfer") == 0) return *copies = times[i].launches, times[i].ms;
    return *copies = 0, 0.0;
}

static int forward_clips(stacl_model *model, const stacl_adapter *ad, const float *pixels, int clips, int frames,
                         stacl_output kind, float *out, int warmup, int quiet, int profile) {
    stacl_state *state = NULL;
    double *wall = NULL, *dev = NULL, *xfer = NULL;
    int rc = 0, copies = 0;
    const stacl_vision_config *c = stacl_model_vision_config(model);
    const size_t frame_floats = (size_t)3 * c->image_size * c->image_size;
    const size_t out_per_clip = ad ? stacl_classify_output_size(ad, 1, frames, kind)
                                   : stacl_forward_output_size(model, frames, kind);
    stacl_status st = stacl_state_create(&state, model, frames);
    if (st != STACL_OK) return cli_fail("forward", st);
    wall = calloc((size_t)clips, sizeof *wall);
    dev = calloc((size_t)clips, sizeof *dev);
    xfer = calloc((size_t)clips, sizeof *xfer);
    if (!wall || !dev || !xfer) {
        fprintf(stderr, "stacl forward: error: out of host memory\n");
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    for (int i = 0; i < warmup; i++) {
        if (!quiet) {
            printf("warm-up pass %d (the first use on a machine compiles OpenCL kernels: can take a minute) ...\n",
                   i + 1);
            fflush(stdout);
        }
        double t0 = cli_now_ms();
        st = pass(state, ad, pixels, frames, kind, out);
        if (st != STACL_OK) { rc = cli_fail("forward", st); goto done; }
        if (!quiet) printf("warm-up pass %d: %.1f ms\n", i + 1, cli_now_ms() - t0);
        fflush(stdout);
    }
    for (int b = 0; b < clips; b++) {
        double t0 = cli_now_ms();
        st = pass(state, ad, pixels + (size_t)b * frames * frame_floats, frames, kind, out + (size_t)b * out_per_clip);
        if (st != STACL_OK) { rc = cli_fail("forward", st); goto done; }
        wall[b] = cli_now_ms() - t0;
        dev[b] = stacl_state_last_device_ms(state);
        xfer[b] = transfer_ms(state, &copies);
        if (!quiet && clips > 1) {
            printf("clip %d/%d: %.1f ms\n", b + 1, clips, wall[b]);
            fflush(stdout);
        }
        if (profile) {
            const stacl_op_time *times;
            int n = stacl_state_op_times(state, &times);
            printf("device time per op (clip %d):\n", b + 1);
            for (int i = 0; i < n; i++)
                printf("  %-16s %9.2f ms  %5.1f%%  (%d launches)\n", times[i].op, times[i].ms,
                       dev[b] > 0 ? 100.0 * times[i].ms / dev[b] : 0.0, times[i].launches);
        }
    }
    if (!quiet) {
        qsort(wall, (size_t)clips, sizeof *wall, cli_compare_double);
        qsort(dev, (size_t)clips, sizeof *dev, cli_compare_double);
        printf("time per clip (%d frames): %.1f ms wall, %.1f ms device (median of %d clip%s)\n", frames,
               wall[clips / 2], dev[clips / 2], clips, clips > 1 ? "s" : "");
        if (copies) {
            qsort(xfer, (size_t)clips, sizeof *xfer, cli_compare_double);
            printf("transfer between devices: %.2f ms per clip (%d copies, %d chunk%s per adapter; part of the "
                   "device time)\n", xfer[clips / 2], copies, stacl_adapter_transfer_chunks(ad, frames),
                   stacl_adapter_transfer_chunks(ad, frames) > 1 ? "s" : "");
        }
    }
done:
    free(wall);
    free(dev);
    free(xfer);
    stacl_state_free(state);
    return rc;
}

int cli_forward_clips(stacl_model *model, const float *pixels, int clips, int frames, stacl_output kind, float *out,
                      int warmup, int quiet, int profile) {
    return forward_clips(model, NULL, pixels, clips, frames, kind, out, warmup, quiet, profile);
}

int cmd_forward(int argc, char **argv) {
    static const cli_opt opts[] = {{"--model", 1},   {"--input", 1},   {"--out", 1},    {"--tokens", 0},
                                   {"--device", 1},  {"--warmup", 1},  {"--profile", 0}, {"--quiet", 0},
                                   {"--help", 0},    {"--adapter", 1}, {"--backbone-device", 1},
                                   {"--adapter-device", 1}, {"--adapter-binary", 1}, {"--transfer-chunks", 1}};
    cli_args a = {argc, argv, 1, "forward", 0};
    const char *model_path = NULL, *input = NULL, *out_path = NULL, *device = NULL, *adapter_path = NULL, *value;
    const char *backbone_device = NULL, *adapter_device = NULL, *adapter_binary = NULL;
    int tokens = 0, warmup = 0, profile = 0, quiet = 0, chunks = -1, k;
    while ((k = cli_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: model_path = value; break;
        case 1: input = value; break;
        case 2: out_path = value; break;
        case 3: tokens = 1; break;
        case 4: device = value; break;
        case 5: if (!cli_int("forward", "--warmup", value, 0, 1000, &warmup)) return CLI_EXIT_USAGE; break;
        case 6: profile = 1; break;
        case 7: quiet = 1; break;
        case 8: usage(); return 0;
        case 9: adapter_path = value; break;
        case 10: backbone_device = value; break;
        case 11: adapter_device = value; break;
        case 12: adapter_binary = value; break;
        case 13: if (!cli_int("forward", "--transfer-chunks", value, 0, 4096, &chunks)) return CLI_EXIT_USAGE; break;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!model_path || !input || !out_path)
        return cli_usage_error("forward", "--model, --input and --out are required");
    if ((adapter_device || adapter_binary || chunks >= 0) && !adapter_path)
        return cli_usage_error("forward", "%s goes with --adapter", adapter_device   ? "--adapter-device"
                                                                    : adapter_binary ? "--adapter-binary"
                                                                                     : "--transfer-chunks");
    if (!cli_check_writable("forward", out_path)) return CLI_EXIT_FAILURE;

    stacl_npy x = {0};
    stacl_ctx *ctx = NULL, *actx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *ad = NULL;
    stacl_adapter_info ai = {0};
    float *y = NULL;
    int rc = 0;
    stacl_status st = stacl_npy_read_f32(input, &x);
    if (st != STACL_OK) { rc = cli_fail("forward", st); goto done; }
    if (x.ndim != 4 && x.ndim != 5) {
        fprintf(stderr, "stacl forward: error: %s: expected a [T, 3, H, W] or [B, T, 3, H, W] array, found %d dimensions\n",
                input, x.ndim);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    /* Without --adapter, no second device: the adapters' follows the backbone's. */
    if (!adapter_path) adapter_device = backbone_device ? backbone_device : device;
    if ((rc = cli_open_devices("forward", device, backbone_device, adapter_device, adapter_binary, &ctx, &actx)))
        goto done;
    if ((st = stacl_model_load(&model, ctx, model_path)) != STACL_OK) { rc = cli_fail("forward", st); goto done; }
    if (adapter_path) {
        if ((st = stacl_adapter_load_on(&ad, model, actx, adapter_path)) != STACL_OK) {
            rc = cli_fail("forward", st);
            goto done;
        }
        stacl_adapter_get_info(ad, &ai);
        if (chunks >= 0 && (st = stacl_adapter_set_transfer_chunks(ad, chunks)) != STACL_OK) {
            rc = cli_fail("forward", st);
            goto done;
        }
        if (!ai.classes && !tokens) {
            fprintf(stderr, "stacl forward: error: %s has no classifier head (fc.weight, fc.bias): only --tokens "
                    "can be written\n", adapter_path);
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
    }
    const stacl_vision_config *c = stacl_model_vision_config(model);
    const int five = x.ndim == 5;
    const int64_t clips = five ? x.shape[0] : 1, frames = x.shape[five];
    const int64_t *chw = x.shape + five + 1;
    if (chw[0] != 3 || chw[1] != c->image_size || chw[2] != c->image_size || frames < 1 || clips < 1 ||
        frames > 4096 || clips > (1 << 20)) {
        fprintf(stderr, "stacl forward: error: %s: shape [", input);
        for (int i = 0; i < x.ndim; i++) fprintf(stderr, "%s%lld", i ? ", " : "", (long long)x.shape[i]);
        fprintf(stderr, "] does not fit the model: expected [T, 3, %d, %d] or [B, T, 3, %d, %d] with T >= 1\n",
                c->image_size, c->image_size, c->image_size, c->image_size);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    stacl_output kind = tokens ? STACL_OUT_TOKENS : STACL_OUT_EMBEDDING;
    size_t per_clip = ad ? stacl_classify_output_size(ad, 1, (int)frames, kind)
                         : stacl_forward_output_size(model, (int)frames, kind);
    y = malloc((size_t)clips * per_clip * sizeof *y);
    if (!y) { fprintf(stderr, "stacl forward: error: out of host memory\n"); rc = CLI_EXIT_FAILURE; goto done; }
    if (!quiet) {
        const stacl_device_info *d = stacl_ctx_device(ctx);
        printf("device: [%d] %s (%s), GEMMs on %s\n", d->index, d->name, d->platform, stacl_ctx_gemm_engine(ctx));
        if (actx) {
            const stacl_device_info *e = stacl_ctx_device(actx);
            printf("adapter device: [%d] %s (%s)\n", e->index, e->name, e->platform);
        }
        printf("model: %s layout, width %d, %d layers, %d heads, patch %d, image %d, %d tokens, %s\n",
               c->layout == STACL_LAYOUT_HF ? "Hugging Face" : "OpenAI", c->width, c->layers, c->heads, c->patch,
               c->image_size, stacl_vision_tokens(c), c->proj_dim ? "projection" : "no projection");
        if (ad)
            printf("adapter: width %d, kernel (%d, %d, %d), %d pre-attention + %d pre-MLP, %d classes\n", ai.width,
                   ai.kernel[0], ai.kernel[1], ai.kernel[2], ai.n_pre_attn, ai.n_pre_mlp, ai.classes);
        else if (!c->proj_dim && !tokens)
            printf("note: the model has no projection: writing the ln_post class features [T, %d]\n", c->width);
    }
    rc = forward_clips(model, ad, x.data, (int)clips, (int)frames, kind, y, warmup, quiet, profile);
    if (rc) goto done;
    int64_t shape[5];
    int nd = 0;
    if (five) shape[nd++] = clips;
    if (ad && !tokens) {
        shape[nd++] = ai.classes; /* one logit row per clip */
    } else if (tokens) {
        shape[nd++] = frames;
        shape[nd++] = stacl_vision_tokens(c);
        shape[nd++] = c->width;
    } else {
        shape[nd++] = frames;
        shape[nd++] = c->proj_dim ? c->proj_dim : c->width;
    }
    if ((st = stacl_npy_write_f32(out_path, y, shape, nd)) != STACL_OK) { rc = cli_fail("forward", st); goto done; }
    if (!quiet) {
        printf("wrote %s: [", out_path);
        for (int i = 0; i < nd; i++) printf("%s%lld", i ? ", " : "", (long long)shape[i]);
        printf("] float32\n");
    }
done:
    free(y);
    stacl_adapter_free(ad);
    stacl_model_free(model);
    stacl_ctx_free(actx);
    stacl_ctx_free(ctx);
    stacl_npy_release(&x);
    return rc;
}
