/* bench_loader.c: the video input path's throughput: clips/s through the
 * prefetching loader (decode with FFmpeg + bicubic resize/crop/normalize on
 * worker threads), with the worker time split into decode and preprocess.
 * Default input: opencv-doc's real videos (Debian package), repeated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "dataset.h"
#include "loader.h"

#define PROG "stacl-bench-loader"
#define OPENCV_DATA "/usr/share/doc/opencv-doc/examples/data"

static void usage(void) {
    printf("usage: " PROG " [--list FILE] [--clips N] [--workers 2] [--prefetch 4] [--frames 8] [--size 224]\n"
           "                          [--sampling uniform|dense] [--sampling-rate 16] [--train] [--classes FILE]\n"
           "                          [--json FILE]\n\n"
           "Times the video loader: clips of T x size x size per second, and where the worker time goes\n"
           "(FFmpeg decode vs resize + crop + normalize).\n\n"
           "  --list FILE   a dataset list (path,label CSV or 'path label'); default: opencv-doc's\n"
           "                vtest.avi (768x576), Megamind.avi (720x528), tree.avi (320x240), repeated\n"
           "  --classes F   class-names file for lists with class names (stacl make-dataset: classes.csv)\n"
           "  --clips N     clips for the default list (default 12)\n"
           "  --workers W   loader threads (default 2)\n"
           "  --prefetch P  queue depth (default 4)\n"
           "  --train       training sampling and augmentation (default: test-time, one view)\n"
           "  --json FILE   results as JSON\n");
}

static int default_list(char *path, size_t cap, int clips) {
    const char *names[3] = {"vtest.avi", "Megamind.avi", "tree.avi"};
    const char *tmp = getenv("TMPDIR");
    snprintf(path, cap, "%s/stacl-bench-loader-%ld.txt", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, PROG ": error: cannot write %s\n", path);
        return 0;
    }
    for (int i = 0; i < clips; i++) fprintf(f, OPENCV_DATA "/%s %d\n", names[i % 3], i % 3);
    fclose(f);
    return 1;
}

int main(int argc, char **argv) {
    static const bench_opt opts[] = {{"--list", 1},    {"--clips", 1},         {"--workers", 1}, {"--prefetch", 1},
                                     {"--frames", 1},  {"--size", 1},          {"--sampling", 1},
                                     {"--sampling-rate", 1}, {"--train", 0},   {"--json", 1},    {"--help", 0},
                                     {"--classes", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    bench_args a = {argc, argv, 1, PROG};
    const char *list = NULL, *classes = NULL, *json = NULL, *value;
    stacl_loader_config cfg = stacl_loader_config_default();
    int clips = 12, k;
    while ((k = bench_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = 1;
        switch (k) {
        case 0: list = value; break;
        case 1: ok = bench_int(PROG, "--clips", value, 1, 100000, &clips); break;
        case 2: ok = bench_int(PROG, "--workers", value, 1, 256, &cfg.workers); break;
        case 3: ok = bench_int(PROG, "--prefetch", value, 1, 4096, &cfg.prefetch); break;
        case 4: ok = bench_int(PROG, "--frames", value, 1, 4096, &cfg.clip.num_frames); break;
        case 5: ok = bench_int(PROG, "--size", value, 1, 4096, &cfg.size); break;
        case 6:
            if (strcmp(value, "uniform") == 0) cfg.clip.sampling = STACL_SAMPLING_UNIFORM;
            else if (strcmp(value, "dense") == 0) cfg.clip.sampling = STACL_SAMPLING_DENSE;
            else return bench_usage_error(PROG, "--sampling must be uniform or dense, got '%s'", value);
            break;
        case 7: ok = bench_int(PROG, "--sampling-rate", value, 1, 100000, &cfg.clip.sampling_rate); break;
        case 8: cfg.train = 1; break;
        case 9: json = value; break;
        case 10: usage(); return 0;
        case 11: classes = value; break;
        }
        if (!ok) return BENCH_EXIT_USAGE;
    }
    if (k == -2) return BENCH_EXIT_USAGE;
    if (json && !bench_check_writable(PROG, json)) return BENCH_EXIT_FAILURE;
    char tmp_list[600] = "";
    if (!list) {
        if (!default_list(tmp_list, sizeof tmp_list, clips)) return BENCH_EXIT_FAILURE;
        list = tmp_list;
    }
    stacl_dataset *ds = NULL;
    stacl_status st = stacl_dataset_load(&ds, list, classes);
    if (tmp_list[0]) remove(tmp_list);
    if (st != STACL_OK) return bench_fail(PROG, st);
    bench_host host;
    bench_host_info(&host);
    printf("%s: %d clips of %d x %d x %d (%s sampling%s), %d workers, prefetch %d\n", PROG, stacl_dataset_size(ds),
           cfg.clip.num_frames, cfg.size, cfg.size, cfg.clip.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform",
           cfg.train ? ", training augmentation" : "", cfg.workers, cfg.prefetch);
    printf("host: %s, %ld CPUs, %s\n", host.cpu, host.nproc, host.date);
    fflush(stdout);

    stacl_loader *l = NULL;
    double t0 = bench_now_ms();
    st = stacl_loader_create(&l, ds, &cfg);
    if (st != STACL_OK) {
        stacl_dataset_free(ds);
        return bench_fail(PROG, st);
    }
    const stacl_sample *s;
    int n = 0, bad = 0;
    double first_ms = 0;
    while (stacl_loader_next(l, &s) == STACL_OK && s) {
        if (n == 0) first_ms = bench_now_ms() - t0;
        if (!s->ok) {
            fprintf(stderr, "skipped %s: %s\n", stacl_dataset_path(ds, s->index), s->error);
            bad++;
        }
        n++;
        if (n % 8 == 0) {
            printf("  %d/%d clips, %.1f s\n", n, stacl_dataset_size(ds), (bench_now_ms() - t0) / 1000.0);
            fflush(stdout);
        }
    }
    double wall = bench_now_ms() - t0;
    stacl_loader_stats stats;
    stacl_loader_get_stats(l, &stats);
    stacl_loader_free(l);
    const int ok = n - bad;
    const double work = stats.decode_ms + stats.preprocess_ms;
    printf("\n%d clips in %.2f s: %.2f clips/s (first clip after %.0f ms)%s\n", ok, wall / 1000.0,
           ok / (wall / 1000.0), first_ms, bad ? " [some skipped]" : "");
    printf("worker time per clip: decode %.1f ms (%.0f%%), resize+crop+normalize %.1f ms (%.0f%%)\n",
           ok ? stats.decode_ms / ok : 0.0, work > 0 ? 100.0 * stats.decode_ms / work : 0.0,
           ok ? stats.preprocess_ms / ok : 0.0, work > 0 ? 100.0 * stats.preprocess_ms / work : 0.0);
    int rc = bad ? BENCH_EXIT_FAILURE : 0;
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "benchmark", "loader");
        cJSON_AddItemToObject(root, "host", bench_json_host(&host));
        cJSON_AddNumberToObject(root, "clips", ok);
        cJSON_AddNumberToObject(root, "skipped", bad);
        cJSON_AddNumberToObject(root, "frames", cfg.clip.num_frames);
        cJSON_AddNumberToObject(root, "size", cfg.size);
        cJSON_AddStringToObject(root, "sampling", cfg.clip.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
        cJSON_AddBoolToObject(root, "train", cfg.train);
        cJSON_AddNumberToObject(root, "workers", cfg.workers);
        cJSON_AddNumberToObject(root, "prefetch", cfg.prefetch);
        cJSON_AddNumberToObject(root, "wall_s", wall / 1000.0);
        cJSON_AddNumberToObject(root, "clips_per_s", ok / (wall / 1000.0));
        cJSON_AddNumberToObject(root, "decode_ms_per_clip", ok ? stats.decode_ms / ok : 0.0);
        cJSON_AddNumberToObject(root, "preprocess_ms_per_clip", ok ? stats.preprocess_ms / ok : 0.0);
        int jrc = bench_json_write(PROG, json, root);
        cJSON_Delete(root);
        if (jrc) rc = jrc;
    }
    stacl_dataset_free(ds);
    return rc;
}
