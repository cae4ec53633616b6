/* cmd_frames.c: `stacl frames`: one preprocessed clip of a video, as the
 * float32 [T,3,H,W] .npy that `stacl forward` takes; `--views` lists the
 * test-time views instead. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clip_decode.h"
#include "model_internal.h"
#include "npy.h"
#include "preprocess.h"

static void usage(void) {
    printf("usage: stacl frames VIDEO --out X.npy [--num-frames 8] [--sampling uniform|dense] [--sampling-rate 16]\n"
           "                    [--size 224] [--short-side S] [--temporal-views 1] [--spatial-views 1|3]\n"
           "                    [--view N] [--views] [--model DIR] [--train [--seed N] [--flip]] [--quiet]\n\n"
           "Decodes VIDEO (any container/codec this FFmpeg reads), samples one clip and writes it\n"
           "preprocessed for CLIP: RGB, short side resized to S (bicubic, as PyTorch's F.interpolate in\n"
           "ST-Adapter's code), cropped to size x size, normalized with CLIP's mean/std:\n"
           "float32 [T, 3, size, size], ready for 'stacl forward --input'.\n\n"
           "  --out X.npy          output file (required unless --views)\n"
           "  --num-frames T       frames per clip (default 8)\n"
           "  --sampling uniform   T segments, the center frame of each: floor((i + 0.5) * N / T) for a\n"
           "                       video of N decoded frames (default)\n"
           "  --sampling dense     T frames --sampling-rate apart (ST-Adapter on Kinetics: 8 x 16),\n"
           "                       the window centered (or evenly spaced with --temporal-views)\n"
           "  --sampling-rate R    stride of dense sampling (default 16)\n"
           "  --size N             crop side (default 224, or the model's image size with --model)\n"
           "  --short-side S       resize the short side to S before cropping (default: --size)\n"
           "  --temporal-views V   test-time clips along time (default 1)\n"
           "  --spatial-views 1|3  center crop, or three crops along the long side (default 1)\n"
           "  --view N             which view to write: N = spatial * V + temporal, temporal views first\n"
           "                       (default 0)\n"
           "  --views              list the views (frame indices and crop) and exit\n"
           "  --model DIR          take --size from the model's image size\n"
           "  --train              a training clip instead: random frames (inside each segment, or a\n"
           "                       random dense start), short side jittered in [size, size*8/7], random\n"
           "                       crop; reproducible with --seed N (default 0)\n"
           "  --flip               with --train: a random horizontal flip (off by default: it turns\n"
           "                       left/right and clockwise/counter-clockwise into each other)\n"
           "  --quiet              print nothing on success\n\n"
           "Frame counts come from frames that really decode (containers can claim more), see docs/video.md.\n");
}

static int parse_sampling(const char *v, stacl_sampling *out) {
    if (strcmp(v, "uniform") == 0) *out = STACL_SAMPLING_UNIFORM;
    else if (strcmp(v, "dense") == 0) *out = STACL_SAMPLING_DENSE;
    else return cli_usage_error("frames", "--sampling must be uniform or dense, got '%s'", v), 0;
    return 1;
}

static int model_image_size(const char *path, int *size) {
    stacl_vision_config cfg;
    vision_offsets off;
    float *params = NULL;
    stacl_status st = stacl_clip_read_vision(path, &cfg, &off, &params, NULL, 0);
    if (st != STACL_OK) return cli_fail("frames", st), 0;
    *size = cfg.image_size;
    free(params);
    stacl_vision_offsets_free(&off);
    return 1;
}

/* Long videos: after a second of decoding, a progress line on stderr
 * (stdout stays the result). */
typedef struct progress_state {
    double t0;
    int shown, quiet;
} progress_state;

static void on_progress(void *user, int64_t decoded, int64_t packets) {
    progress_state *p = user;
    if (p->quiet || cli_now_ms() - p->t0 < 1000.0) return;
    if (packets > 0) fprintf(stderr, "\rdecoding: %lld frames (of %lld)", (long long)decoded, (long long)packets);
    else fprintf(stderr, "\rdecoding: %lld frames", (long long)decoded);
    p->shown = 1;
}

static void print_views(const char *video, const stacl_clip_spec *spec, int64_t n, int w, int h, int S, int size) {
    printf("%s: %d view%s (%d temporal x %d spatial), temporal views first; %lld frames decode\n", video,
           stacl_clip_num_views(spec), stacl_clip_num_views(spec) > 1 ? "s" : "", spec->temporal_views,
           spec->spatial_views, (long long)n);
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)spec->num_frames);
    if (!idx) return;
    for (int view = 0; view < stacl_clip_num_views(spec); view++) {
        int t, s;
        stacl_clip_view_split(spec, view, &t, &s);
        stacl_crop c;
        if (stacl_sample_eval(spec, n, t, idx) != STACL_OK ||
            stacl_crop_eval(w, h, S, size, spec->spatial_views, s, &c) != STACL_OK)
            break;
        printf("  view %d: temporal %d, crop %d at (x %d, y %d) of the %s frame; frames", view, t, s, c.x0, c.y0,
               "resized");
        for (int i = 0; i < spec->num_frames; i++) printf(" %lld", (long long)idx[i]);
        printf("\n");
    }
    free(idx);
}

int cmd_frames(int argc, char **argv) {
    static const cli_opt opts[] = {{"--out", 1},           {"--num-frames", 1},     {"--sampling", 1},
                                   {"--sampling-rate", 1}, {"--size", 1},           {"--short-side", 1},
                                   {"--temporal-views", 1}, {"--spatial-views", 1}, {"--view", 1},
                                   {"--views", 0},         {"--model", 1},          {"--quiet", 0},
                                   {"--help", 0},          {"--train", 0},          {"--seed", 1},
                                   {"--flip", 0}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "frames", 0};
    const char *video = NULL, *out = NULL, *model = NULL, *value;
    stacl_clip_spec spec = stacl_clip_spec_default();
    int size = 0, short_side = 0, view = 0, list = 0, quiet = 0, train = 0, seed = 0, flip = 0, k = -1;
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        /* VIDEO is the one positional argument, anywhere on the line. */
        if (k == CLI_POSITIONAL) {
            if (video) return cli_usage_error("frames", "unexpected argument '%s' (one VIDEO only)", value);
            video = value;
            continue;
        }
        int ok = 1;
        switch (k) {
        case 0: out = value; break;
        case 1: ok = cli_int("frames", "--num-frames", value, 1, 4096, &spec.num_frames); break;
        case 2: ok = parse_sampling(value, &spec.sampling); break;
        case 3: ok = cli_int("frames", "--sampling-rate", value, 1, 100000, &spec.sampling_rate); break;
        case 4: ok = cli_int("frames", "--size", value, 1, 8192, &size); break;
        case 5: ok = cli_int("frames", "--short-side", value, 1, 8192, &short_side); break;
        case 6: ok = cli_int("frames", "--temporal-views", value, 1, 1000, &spec.temporal_views); break;
        case 7:
            ok = cli_int("frames", "--spatial-views", value, 1, 3, &spec.spatial_views);
            if (ok && spec.spatial_views == 2) return cli_usage_error("frames", "--spatial-views must be 1 or 3");
            break;
        case 8: ok = cli_int("frames", "--view", value, 0, 1000000, &view); break;
        case 9: list = 1; break;
        case 10: model = value; break;
        case 11: quiet = 1; break;
        case 12: usage(); return 0;
        case 13: train = 1; break;
        case 14: ok = cli_int("frames", "--seed", value, 0, 2147483647, &seed); break;
        case 15: flip = 1; break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!video) return cli_usage_error("frames", "VIDEO is required");
    if (!out && !list) return cli_usage_error("frames", "--out X.npy is required");
    if (view >= stacl_clip_num_views(&spec))
        return cli_usage_error("frames", "--view %d out of range: %d view%s (see --views)", view,
                               stacl_clip_num_views(&spec), stacl_clip_num_views(&spec) > 1 ? "s" : "");
    if (model && !size && !model_image_size(model, &size)) return CLI_EXIT_FAILURE;
    if (!size) size = 224;
    if (!short_side) short_side = size;
    if (short_side < size)
        return cli_usage_error("frames", "--short-side %d is smaller than --size %d", short_side, size);
    if (out && !cli_check_writable("frames", out)) return CLI_EXIT_FAILURE;
    if (flip && !train) return cli_usage_error("frames", "--flip needs --train (test-time clips are never flipped)");
    if (train && (view || list)) return cli_usage_error("frames", "--train takes no --view/--views");

    int rc = 0;
    stacl_video *v = NULL;
    stacl_clip_frames cf = {0};
    float *pix = NULL;
    stacl_status st = stacl_video_open(&v, video, 0);
    if (st != STACL_OK) return cli_fail("frames", st);
    const stacl_video_info *in = stacl_video_get_info(v);
    progress_state prog = {cli_now_ms(), 0, quiet};
    stacl_video_set_progress(v, on_progress, &prog);
    int t, s;
    stacl_clip_view_split(&spec, view, &t, &s);
    if (list) {
        int64_t n = 0;
        st = stacl_video_count_frames(v, &n);
        if (st != STACL_OK) { rc = cli_fail("frames", st); goto done; }
        print_views(video, &spec, n, in->width, in->height, short_side, size);
        goto done;
    }
    stacl_crop crop;
    if (train) {
        /* Same seed, same clip: the frame draw and the crop draw use separate streams. */
        uint64_t rng = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 0xC0FFEE;
        stacl_augment aug = {size, (size * 8 + 6) / 7, flip};
        st = stacl_crop_train(in->width, in->height, size, &aug, &rng, &crop);
        if (st == STACL_OK) st = stacl_clip_decode(v, &spec, STACL_TRAIN_CLIP, (uint64_t)seed, &cf);
        short_side = crop.short_side;
    } else {
        st = stacl_crop_eval(in->width, in->height, short_side, size, spec.spatial_views, s, &crop);
        if (st == STACL_OK) st = stacl_clip_decode(v, &spec, t, 0, &cf);
    }
    if (st != STACL_OK) { rc = cli_fail("frames", st); goto done; }
    pix = malloc(sizeof(float) * (size_t)spec.num_frames * 3 * size * size);
    if (!pix) { fprintf(stderr, "stacl frames: error: out of host memory\n"); rc = CLI_EXIT_FAILURE; goto done; }
    st = stacl_preprocess_clip(cf.rgb, cf.num, cf.w, cf.h, &crop, pix);
    const int64_t shape[4] = {spec.num_frames, 3, size, size};
    if (st == STACL_OK) st = stacl_npy_write_f32(out, pix, shape, 4);
    if (st != STACL_OK) { rc = cli_fail("frames", st); goto done; }
    if (!quiet) {
        printf("%s: %dx%d %s in %s, %.3f fps, %.2f s; %lld frames %s", video, in->width, in->height, in->codec,
               in->container, in->fps, in->duration_s, (long long)cf.n_frames,
               cf.count_exact ? "decode" : "(packet count)");
        if (in->container_frames && in->container_frames != cf.n_frames)
            printf(" (the container claims %lld)", (long long)in->container_frames);
        if (train)
            printf("\ntraining clip (seed %d%s), %s sampling, frames", seed, crop.flip ? ", flipped" : "",
                   spec.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
        else
            printf("\nview %d (temporal %d, spatial %d), %s sampling, frames", view, t, s,
                   spec.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
        for (int i = 0; i < cf.num; i++) printf(" %lld", (long long)cf.idx[i]);
        printf("\nwrote %s: float32 [%d, 3, %d, %d] (short side %d, crop at x %d, y %d)\n", out, spec.num_frames, size,
               size, short_side, crop.x0, crop.y0);
    }
done:
    if (prog.shown) fprintf(stderr, "\n");
    free(pix);
    stacl_clip_frames_release(&cf);
    stacl_video_free(v);
    return rc;
}
