/* cmd_check_dataset.c: `stacl check-dataset`: runs a dataset list through
 * the loader exactly as evaluation would (decode, sample, preprocess) and
 * reports every entry that would be skipped, with a summary: the way to
 * find broken files before a long run. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "loader.h"

static void usage(void) {
    printf("usage: stacl check-dataset LIST [--classes FILE] [--workers 2] [--prefetch 4] [--num-frames 8]\n"
           "                           [--sampling uniform|dense] [--sampling-rate 16] [--size 224] [--quiet]\n\n"
           "Decodes and preprocesses every clip of LIST as evaluation would, and reports each entry that a\n"
           "run would skip (unreadable list line, missing/empty/damaged file, no video stream, no decoder)\n"
           "with the reason, then a summary. Exit 1 when anything would be skipped.\n\n"
           "  LIST            CSV 'path,label' (labels integers or class names) or 'path label' lines;\n"
           "                  relative paths are relative to LIST's folder (see docs/video.md)\n"
           "  --classes FILE  class names ('id,name' CSV or one per line) for lists with names\n"
           "  --workers N     decoding threads (default 2); --prefetch N: clips decoded ahead (default 4)\n"
           "  --quiet         print only problems and the summary\n");
}

int cmd_check_dataset(int argc, char **argv) {
    static const cli_opt opts[] = {{"--classes", 1},       {"--workers", 1}, {"--prefetch", 1}, {"--num-frames", 1},
                                   {"--sampling", 1},      {"--sampling-rate", 1}, {"--size", 1},
                                   {"--quiet", 0},         {"--help", 0}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "check-dataset", 0};
    const char *list = NULL, *classes = NULL, *value;
    stacl_loader_config cfg = stacl_loader_config_default();
    int quiet = 0, k = -1;
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        if (k == CLI_POSITIONAL) {
            if (list) return cli_usage_error("check-dataset", "unexpected argument '%s' (one LIST only)", value);
            list = value;
            continue;
        }
        int ok = 1;
        switch (k) {
        case 0: classes = value; break;
        case 1: ok = cli_int("check-dataset", "--workers", value, 1, 256, &cfg.workers); break;
        case 2: ok = cli_int("check-dataset", "--prefetch", value, 1, 4096, &cfg.prefetch); break;
        case 3: ok = cli_int("check-dataset", "--num-frames", value, 1, 4096, &cfg.clip.num_frames); break;
        case 4:
            if (strcmp(value, "uniform") == 0) cfg.clip.sampling = STACL_SAMPLING_UNIFORM;
            else if (strcmp(value, "dense") == 0) cfg.clip.sampling = STACL_SAMPLING_DENSE;
            else return cli_usage_error("check-dataset", "--sampling must be uniform or dense, got '%s'", value);
            break;
        case 5: ok = cli_int("check-dataset", "--sampling-rate", value, 1, 100000, &cfg.clip.sampling_rate); break;
        case 6: ok = cli_int("check-dataset", "--size", value, 1, 8192, &cfg.size); break;
        case 7: quiet = 1; break;
        case 8: usage(); return 0;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!list) return cli_usage_error("check-dataset", "LIST is required");

    stacl_dataset *ds = NULL;
    stacl_status st = stacl_dataset_load(&ds, list, classes);
    if (st != STACL_OK) return cli_fail("check-dataset", st);
    const int n = stacl_dataset_size(ds), rejected = stacl_dataset_num_rejected(ds);
    for (int i = 0; i < rejected; i++) fprintf(stderr, "skipped list entry %s\n", stacl_dataset_rejected(ds, i));
    if (!quiet) {
        printf("%s: %d clips, %d classes; checking with %d workers ...\n", list, n, stacl_dataset_num_classes(ds),
               cfg.workers);
        fflush(stdout);
    }
    stacl_loader *l = NULL;
    st = stacl_loader_create(&l, ds, &cfg);
    if (st != STACL_OK) {
        stacl_dataset_free(ds);
        return cli_fail("check-dataset", st);
    }
    double t0 = cli_now_ms(), last = t0;
    const stacl_sample *s;
    int seen = 0;
    while (stacl_loader_next(l, &s) == STACL_OK && s) {
        seen++;
        if (!s->ok)
            fprintf(stderr, "skipped %s:%d (label %d): %s\n", list, stacl_dataset_line(ds, s->index), s->label,
                    s->error);
        if (!quiet && (cli_now_ms() - last > 2000 || seen == n)) {
            last = cli_now_ms();
            printf("  %d/%d clips, %.1f s\n", seen, n, (last - t0) / 1000.0);
            fflush(stdout);
        }
    }
    stacl_loader_stats stats;
    stacl_loader_get_stats(l, &stats);
    stacl_loader_free(l);
    double secs = (cli_now_ms() - t0) / 1000.0;
    printf("summary: %d clips ok, %d skipped (unreadable or damaged), %d list entries rejected; %.1f s, "
           "%.1f clips/s (decode %.0f%% of worker time)\n",
           stats.ok, stats.bad, rejected, secs, secs > 0 ? stats.ok / secs : 0.0,
           stats.decode_ms + stats.preprocess_ms > 0 ? 100.0 * stats.decode_ms / (stats.decode_ms + stats.preprocess_ms)
                                                     : 0.0);
    stacl_dataset_free(ds);
    return stats.bad || rejected ? CLI_EXIT_FAILURE : 0;
}
