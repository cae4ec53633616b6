/* cmd_make_dataset.c: `stacl make-dataset`: writes the synthetic
 * temporal-action dataset (models/synthetic_actions.h) as real video files
 * plus train/val lists, reproducibly from a seed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "synthetic_actions.h"
#include "video_writer.h"

static void usage(void) {
    printf("usage: stacl make-dataset --out DIR [--per-class 8] [--val-per-class 2] [--seed 0] [--frames 32]\n"
           "                          [--size 64] [--fps 16] [--codec h264|mjpeg|ffv1|mpeg4|vp9] [--set motion|simple]\n\n"
           "Writes a synthetic action dataset whose labels need temporal order: a textured shape moving\n"
           "right/left/down/up, rotating clockwise/counter-clockwise, growing/shrinking over a random\n"
           "background. Each pair of classes shares its frames in reverse order, so averaging frames\n"
           "cannot tell them apart. Same seed, same pixels.\n\n"
           "  DIR/videos/*.{mp4,avi,mkv,webm}   one clip per sample (size*5/4 x size, --frames at --fps)\n"
           "  DIR/classes.csv                   id,name\n"
           "  DIR/train.csv, DIR/val.csv        path,label (class names), paths relative to DIR\n\n"
           "  --per-class N      training clips per class (default 8)\n"
           "  --val-per-class N  validation clips per class (default 2)\n"
           "  --set simple       an easier class set with the same pairing: brightening/darkening, fading in/\n"
           "                     out, growing/shrinking, moving right/left (the training demo's)\n"
           "  --codec            h264 (libx264, .mp4; default), mjpeg (.avi), ffv1 (.mkv), mpeg4 (.avi),\n"
           "                     vp9 (.webm)\n");
}

static const char *extension(const char *codec) {
    if (strcmp(codec, "h264") == 0) return "mp4";
    if (strcmp(codec, "mjpeg") == 0 || strcmp(codec, "mpeg4") == 0) return "avi";
    if (strcmp(codec, "ffv1") == 0) return "mkv";
    if (strcmp(codec, "vp9") == 0) return "webm";
    return NULL;
}

static int make_dir(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 1;
    fprintf(stderr, "stacl make-dataset: error: cannot create folder '%s': %s\n", path, strerror(errno));
    return 0;
}

static int write_clip(const char *path, const char *codec, int simple, int label, uint64_t seed, int w, int h,
                      int frames, int fps, uint8_t *rgb) {
    if (simple) stacl_synth_render_simple(label, seed, w, h, frames, rgb);
    else stacl_synth_render(label, seed, w, h, frames, rgb);
    stacl_video_writer *vw = NULL;
    stacl_status st = stacl_video_writer_open(&vw, path, codec, w, h, fps);
    for (int f = 0; f < frames && st == STACL_OK; f++) st = stacl_video_writer_add(vw, rgb + (size_t)f * w * h * 3);
    if (st == STACL_OK) {
        st = stacl_video_writer_close(vw);
    } else {
        stacl_video_writer_free(vw);
    }
    if (st != STACL_OK) return cli_fail("make-dataset", st), 0;
    return 1;
}

int cmd_make_dataset(int argc, char **argv) {
    static const cli_opt opts[] = {{"--out", 1},    {"--per-class", 1}, {"--val-per-class", 1}, {"--seed", 1},
                                   {"--frames", 1}, {"--size", 1},      {"--fps", 1},           {"--codec", 1},
                                   {"--help", 0},   {"--set", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "make-dataset", 0};
    int simple = 0;
    const char *out = NULL, *codec = "h264", *value;
    int per_class = 8, val_per_class = 2, seed = 0, frames = 32, size = 64, fps = 16, k;
    while ((k = cli_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = 1;
        switch (k) {
        case 0: out = value; break;
        case 1: ok = cli_int("make-dataset", "--per-class", value, 0, 100000, &per_class); break;
        case 2: ok = cli_int("make-dataset", "--val-per-class", value, 0, 100000, &val_per_class); break;
        case 3: ok = cli_int("make-dataset", "--seed", value, 0, 2147483647, &seed); break;
        case 4: ok = cli_int("make-dataset", "--frames", value, 1, 10000, &frames); break;
        case 5: ok = cli_int("make-dataset", "--size", value, 16, 1024, &size); break;
        case 6: ok = cli_int("make-dataset", "--fps", value, 1, 240, &fps); break;
        case 7:
            codec = value;
            if (!extension(codec))
                return cli_usage_error("make-dataset", "--codec must be h264, mjpeg, ffv1, mpeg4 or vp9, got '%s'", value);
            break;
        case 8: usage(); return 0;
        case 9:
            if (strcmp(value, "simple") == 0) simple = 1;
            else if (strcmp(value, "motion") == 0) simple = 0;
            else return cli_usage_error("make-dataset", "--set must be motion or simple, got '%s'", value);
            break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    const char *const *names = simple ? stacl_synth_simple_names : stacl_synth_class_names;
    if (!out) return cli_usage_error("make-dataset", "--out DIR is required");
    if (per_class + val_per_class == 0) return cli_usage_error("make-dataset", "no clips to make (--per-class 0 --val-per-class 0)");
    size &= ~1;
    const int h = size, w = (size * 5 / 4) & ~1;
    char path[4096], rel[256];
    snprintf(path, sizeof path, "%s/videos", out);
    if (!make_dir(out) || !make_dir(path)) return CLI_EXIT_FAILURE;

    uint8_t *rgb = malloc((size_t)frames * w * h * 3);
    FILE *lists[2] = {NULL, NULL};
    int rc = 0;
    if (!rgb) { fprintf(stderr, "stacl make-dataset: error: out of host memory\n"); return CLI_EXIT_FAILURE; }
    snprintf(path, sizeof path, "%s/classes.csv", out);
    FILE *cf = fopen(path, "w");
    if (!cf) {
        fprintf(stderr, "stacl make-dataset: error: cannot write '%s': %s\n", path, strerror(errno));
        free(rgb);
        return CLI_EXIT_FAILURE;
    }
    fprintf(cf, "id,name\n");
    for (int c = 0; c < STACL_SYNTH_CLASSES; c++) fprintf(cf, "%d,%s\n", c, names[c]);
    fclose(cf);
    const char *split_name[2] = {"train", "val"};
    const int count[2] = {per_class, val_per_class};
    for (int sp = 0; sp < 2; sp++) {
        snprintf(path, sizeof path, "%s/%s.csv", out, split_name[sp]);
        if (!(lists[sp] = fopen(path, "w"))) {
            fprintf(stderr, "stacl make-dataset: error: cannot write '%s': %s\n", path, strerror(errno));
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
        fprintf(lists[sp], "path,label\n");
    }
    printf("writing %d + %d clips per class x %d classes (%dx%d, %d frames at %d fps, %s) to %s ...\n", per_class,
           val_per_class, STACL_SYNTH_CLASSES, w, h, frames, fps, codec, out);
    fflush(stdout);
    double t0 = cli_now_ms();
    int done = 0, total = (per_class + val_per_class) * STACL_SYNTH_CLASSES;
    for (int sp = 0; sp < 2; sp++) {
        for (int i = 0; i < count[sp]; i++) {
            for (int c = 0; c < STACL_SYNTH_CLASSES; c++) {
                /* Both classes of a pair share the sample seed: exact reverses. */
                uint64_t sample_seed = ((uint64_t)seed << 32) ^ ((uint64_t)sp << 31) ^ (uint64_t)i;
                snprintf(rel, sizeof rel, "videos/%s_%02d_%04d.%s", split_name[sp], c, i, extension(codec));
                snprintf(path, sizeof path, "%s/%s", out, rel);
                if (!write_clip(path, codec, simple, c, sample_seed, w, h, frames, fps, rgb)) {
                    rc = CLI_EXIT_FAILURE;
                    goto done;
                }
                fprintf(lists[sp], "%s,%s\n", rel, names[c]);
                if (++done % 16 == 0 || done == total) {
                    printf("  %d/%d clips\n", done, total);
                    fflush(stdout);
                }
            }
        }
    }
    printf("done in %.1f s: %s/train.csv, %s/val.csv, %s/classes.csv\n", (cli_now_ms() - t0) / 1000.0, out, out, out);
done:
    for (int sp = 0; sp < 2; sp++)
        if (lists[sp] && fclose(lists[sp]) != 0 && rc == 0) {
            fprintf(stderr, "stacl make-dataset: error: writing the %s list failed\n", split_name[sp]);
            rc = CLI_EXIT_FAILURE;
        }
    free(rgb);
    return rc;
}
