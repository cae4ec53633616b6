/* cmd_tune.c: `stacl tune`: searches CLBlast's GEMM kernel parameters for
 * the ViT-B/16 GEMM shapes on one device within a time budget, verifying
 * every candidate, and writes the winners to the device's tuning cache
 * (or --out), which every later context on that device applies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ops.h"
#include "tune_search.h"

static void usage(void) {
    printf("usage: stacl tune [--device D] [--budget SECONDS] [--frames T] [--reps N] [--out FILE] [--quiet]\n"
           "                  [--training]\n\n"
           "Searches CLBlast's kernel parameters (Xgemm for the projection and MLP GEMMs, XgemmDirect\n"
           "for the batched attention GEMMs, and the Padtranspose/Transpose/Pad/Copy kernels that\n"
           "CLBlast runs around Xgemm) and, per GEMM shape, CLBlast's direct or indirect path\n"
           "(and for the batched attention GEMMs one strided-batched call or a loop of plain calls),\n"
           "on the GEMM shapes of a CLIP ViT-B/16 forward over T frames. Every candidate's result is\n"
           "checked against a host reference before its time counts; GEMMK=1 sets are excluded\n"
           "(wrong results with CLBlast 1.5.3 on PoCL). One line per candidate is printed.\n\n"
           "  --device D        OpenCL device index or name substring (see 'stacl devices')\n"
           "  --budget SECONDS  time for the search (default 300); each new parameter set costs a\n"
           "                    kernel compilation (seconds on a CPU device), so expect a few dozen\n"
           "  --frames T        clip length the shapes are taken for (default 8: M = 1576)\n"
           "  --training        also the GEMM shapes of training's backward pass (dX = dY W, the\n"
           "                    attention's transposed batched products), weighted by their calls\n"
           "  --reps N          timed calls per shape and candidate, fastest taken (default 3)\n"
           "  --out FILE        where to write the result (default: the device's cache file,\n"
           "                    $STACL_CACHE_DIR or ~/.cache/stacl/tune-<key>.json, applied at start-up)\n"
           "  --quiet           print only the summary\n\n"
           "STACL_TUNE=off|builtin|FILE at run time chooses other parameters (see docs/performance.md).\n"
           "CPU devices run their GEMMs on stacl's own kernels by default, not CLBlast: what this\n"
           "command finds applies there with STACL_GEMM=clblast.\n");
}

typedef struct progress_state {
    int quiet;
} progress_state;

static void on_progress(void *user, const stacl_tune_progress *p) {
    const progress_state *ps = user;
    if (ps->quiet) return;
    if (!strcmp(p->phase, "routine")) {
        printf("[%6.0f s] routine %d/%d  %s -> %s\n", p->elapsed_s, p->index, p->total, p->candidate, p->reason);
    } else if (p->accepted) {
        printf("[%6.0f s] %-11s %3d/%-4d %8.1f ms/forward (best %.1f)  %s\n", p->elapsed_s, p->phase, p->index,
               p->total, p->ms, p->best_ms, p->candidate);
    } else {
        printf("[%6.0f s] %-11s %3d/%-4d rejected: %s  %s\n", p->elapsed_s, p->phase, p->index, p->total, p->reason,
               p->candidate);
    }
    fflush(stdout);
}

int cmd_tune(int argc, char **argv) {
    static const cli_opt opts[] = {{"--device", 1}, {"--budget", 1}, {"--frames", 1}, {"--reps", 1},
                                   {"--out", 1},    {"--quiet", 0},  {"--help", 0},   {"--training", 0}};
    cli_args a = {argc, argv, 1, "tune", 0};
    const char *device = NULL, *out_path = NULL, *value;
    int budget = 300, frames = 8, reps = 3, quiet = 0, training = 0, k;
    while ((k = cli_next(&a, opts, 8, &value)) >= 0) {
        switch (k) {
        case 0: device = value; break;
        case 1: if (!cli_int("tune", "--budget", value, 1, 7 * 24 * 3600, &budget)) return CLI_EXIT_USAGE; break;
        case 2: if (!cli_int("tune", "--frames", value, 1, 64, &frames)) return CLI_EXIT_USAGE; break;
        case 3: if (!cli_int("tune", "--reps", value, 1, 15, &reps)) return CLI_EXIT_USAGE; break;
        case 4: out_path = value; break;
        case 5: quiet = 1; break;
        case 6: usage(); return 0;
        case 7: training = 1; break;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (out_path && !cli_check_writable("tune", out_path)) return CLI_EXIT_FAILURE;

    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st != STACL_OK) return cli_fail("tune", st);
    int rc = 0;
    char path[1024];
    if (out_path) {
        snprintf(path, sizeof path, "%s", out_path);
    } else if ((st = stacl_tune_cache_path(stacl_ctx_device(ctx), path, sizeof path)) != STACL_OK) {
        rc = cli_fail("tune", st);
        goto done;
    }
    const stacl_device_info *d = stacl_ctx_device(ctx);
    const stacl_tune_state *cur = stacl_tune_current(ctx);
    printf("device: [%d] %s (%s, driver %s), CLBlast %s\n", d->index, d->name, d->platform, d->driver_version,
           stacl_clblast_version());
    printf("starting from: %s%s%s\n", cur->source, cur->note[0] ? "; " : "", cur->note);
    if (ctx->gemm_rows)
        printf("note: this device's GEMMs run on %s; the CLBlast parameters tuned here apply with "
               "STACL_GEMM=clblast\n", stacl_gemm_engine_name(ctx));
    printf("shapes: ViT-B/16 GEMMs at T = %d%s; budget %d s; writing %s\n", frames,
           training ? " (forward and training's backward)" : "", budget, path);
    fflush(stdout);
    progress_state ps = {quiet};
    stacl_tune_options o = {0};
    o.budget_s = budget, o.frames = frames, o.reps = reps, o.progress = on_progress, o.user = &ps;
    o.training = training;
    stacl_tune result;
    stacl_tune_report rep;
    if ((st = stacl_tune_search(ctx, &o, &result, &rep)) != STACL_OK) { rc = cli_fail("tune", st); goto done; }
    if ((st = stacl_tune_save(&result, path)) != STACL_OK) { rc = cli_fail("tune", st); goto done; }
    printf("Xgemm: %d tried, %d rejected; weighted GEMM time per forward %.0f ms (start) -> %.0f ms\n",
           rep.xgemm.tried, rep.xgemm.rejected, rep.xgemm.first_ms, rep.xgemm.best_ms);
    printf("XgemmDirect: %d tried, %d rejected; %.0f ms (CLBlast generic) -> %.0f ms\n", rep.direct.tried,
           rep.direct.rejected, rep.direct.first_ms, rep.direct.best_ms);
    static const char *const layout[4] = {"Padtranspose", "Transpose", "Pad", "Copy"};
    for (int f = 0; f < 4; f++)
        if (rep.layout[f].tried)
            printf("%s: %d tried, %d rejected; %.0f ms (CLBlast generic) -> %.0f ms\n", layout[f],
                   rep.layout[f].tried, rep.layout[f].rejected, rep.layout[f].first_ms, rep.layout[f].best_ms);
    for (int i = 0; i < result.n_shapes; i++) {
        const stacl_tune_shape *s = &result.shapes[i];
        printf("  %-6s %5zu x %4zu x %4zu batch %3zu: %-8s %6.1f GFLOP/s (other path %.1f)\n", s->name, s->m, s->n,
               s->k, s->batch, s->routine == STACL_ROUTINE_DIRECT ? "direct" : "indirect", s->gflops,
               s->other_gflops);
    }
    printf("wrote %s in %.0f s\n", path, rep.elapsed_s);
done:
    stacl_ctx_free(ctx);
    return rc;
}
