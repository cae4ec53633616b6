/* bench_two_devices.c: `stacl-bench-two-devices`: the frozen backbone on
 * one OpenCL device, ST-Adapters on another (stacl_adapter_load_on), with
 * the residual stream's copies pipelined in 1 or more chunks of frames
 * (stacl_adapter_set_transfer_chunks). Writes a random model (preset
 * vit-b16 by default) and a random adapter (width 384, kernel (3, 1, 1),
 * pre-MLP in every block, 400 classes: the ST-Adapter ViT-B/16 setting),
 * then for each chunk count reports
 *
 *   site:  one adapter site alone (stacl_adapter_run_site on a [T, L, W]
 *          residual stream on the backbone's device; wall time until the
 *          result is back there), the same adapter run on one device
 *          (kernels only), the summed event time of the copies, and the
 *          exposed copy time (site - one device) and the share of it the
 *          pipelining hid against 1 chunk;
 *   clip:  whole passes (stacl_classify_forward, one clip of T frames),
 *          wall and device time and op "transfer".
 *
 * Medians of --runs (site: 10x as many). With POCL_DEVICES="pthread
 * pthread" both devices are PoCL CPU devices sharing the host's cores. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter.h"
#include "bench_common.h"
#include "ops.h"
#include "random_clip.h"

#define PROG "stacl-bench-two-devices"
#define MAX_CHUNK_COUNTS 8

static void usage(void) {
    printf("usage: " PROG " [--preset vit-b16|small|tiny] [--frames T] [--runs N] [--chunks 1,4]\n"
           "       [--backbone-device D] [--adapter-device D] [--no-clip]\n\n"
           "  --preset P           random CLIP shapes (default vit-b16)\n"
           "  --frames T           frames per clip (default 8)\n"
           "  --runs N             timed whole passes per chunk count (default 3); sites: 10 N\n"
           "  --chunks LIST        chunk counts to compare (default 1,2,4,8; 0 = automatic)\n"
           "  --backbone-device D  default 0\n"
           "  --adapter-device D   default 1 (POCL_DEVICES=\"pthread pthread\" gives two PoCL devices)\n"
           "  --no-clip            only the adapter-site measurement\n");
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
}

static double op_ms(const stacl_op_time *t, int n, const char *op) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].op, op) == 0) return t[i].ms;
    return 0.0;
}

/* One adapter site on x (a [F, L, W] stream at offset 0 of ws): wall ms
 * until done on the backbone's queue; *xfer the copies' summed event time. */
static stacl_status time_site(stacl_adapter *ad, cl_mem ws, size_t F, double *wall, double *xfer) {
    stacl_ctx *bctx = ad->model->ctx;
    const adapter_site *s = &ad->pre_mlp[ad->model->cfg.layers - 1];
    const size_t L = (size_t)stacl_vision_tokens(&ad->model->cfg), W = (size_t)ad->model->cfg.width;
    const size_t A = (size_t)ad->info.width, n = F * L * W;
    stacl_op_time t[STACL_PROFILE_MAX_OPS], t2[STACL_PROFILE_MAX_OPS];
    int nt = 0, nt2 = 0;
    stacl_profile_begin(bctx);
    if (stacl_adapter_is_remote(ad)) stacl_profile_begin(ad->ctx);
    clFinish(bctx->queue);
    double t0 = bench_now_ms();
    stacl_status st = stacl_adapter_run_site(ad, s, ws, 0, n, n + F * (L - 1) * A, 1, F);
    clFinish(bctx->queue);
    *wall = bench_now_ms() - t0;
    stacl_profile_collect(bctx, t, &nt, NULL);
    *xfer = op_ms(t, nt, "transfer");
    if (stacl_adapter_is_remote(ad)) {
        stacl_profile_collect(ad->ctx, t2, &nt2, NULL);
        *xfer += op_ms(t2, nt2, "transfer");
    }
    return st;
}

int main(int argc, char **argv) {
    static const bench_opt opts[] = {{"--preset", 1},          {"--frames", 1},         {"--runs", 1},
                                     {"--chunks", 1},          {"--backbone-device", 1}, {"--adapter-device", 1},
                                     {"--no-clip", 0},         {"--help", 0}};
    bench_args a = {argc, argv, 1, PROG};
    const char *preset = "vit-b16", *bdev = "0", *adev = "1", *chunk_list = "1,2,4,8", *value;
    int frames = 8, runs = 3, no_clip = 0, k;
    while ((k = bench_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: preset = value; break;
        case 1: if (!bench_int(PROG, "--frames", value, 1, 64, &frames)) return BENCH_EXIT_USAGE; break;
        case 2: if (!bench_int(PROG, "--runs", value, 1, 1000, &runs)) return BENCH_EXIT_USAGE; break;
        case 3: chunk_list = value; break;
        case 4: bdev = value; break;
        case 5: adev = value; break;
        case 6: no_clip = 1; break;
        case 7: usage(); return 0;
        }
    }
    if (k == -2) return BENCH_EXIT_USAGE;
    int chunks[MAX_CHUNK_COUNTS], n_chunks = 0;
    for (const char *p = chunk_list; *p && n_chunks < MAX_CHUNK_COUNTS;) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 4096) return bench_usage_error(PROG, "--chunks: bad list '%s'", chunk_list);
        chunks[n_chunks++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return bench_usage_error(PROG, "--chunks: bad list '%s'", chunk_list);
    }
    stacl_random_clip_spec spec;
    if (!stacl_random_clip_preset(preset, &spec)) return bench_usage_error(PROG, "unknown preset '%s'", preset);

    char dir[512], file[600];
    if (!bench_temp_dir(PROG, dir, sizeof dir)) return BENCH_EXIT_FAILURE;
    snprintf(file, sizeof file, "%s/model.safetensors", dir);
    stacl_ctx *bctx = NULL, *actx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *local = NULL, *remote = NULL;
    stacl_state *state = NULL;
    cl_mem ws = NULL;
    float *x = NULL, *pixels = NULL, *logits = NULL;
    double *wall = NULL, *dev = NULL, *xf = NULL;
    int rc = 0;
    stacl_status st;
    const int site_runs = 10 * runs;
    if ((st = stacl_ctx_create(&bctx, bdev)) != STACL_OK || (st = stacl_ctx_create(&actx, adev)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    bench_host host;
    bench_host_info(&host);
    printf(PROG ": random CLIP '%s' (width %d, %d layers), T = %d, adapters: width 384, kernel (3, 1, 1), pre-MLP "
           "in all %d blocks\nhost: %s, %ld CPUs online, %s\nbackbone: [%d] %s; adapters: [%d] %s\n",
           preset, spec.width, spec.layers, frames, spec.layers, host.cpu, host.nproc, host.date,
           stacl_ctx_device(bctx)->index, stacl_ctx_device(bctx)->name, stacl_ctx_device(actx)->index,
           stacl_ctx_device(actx)->name);
    fflush(stdout);
    if ((st = stacl_random_clip_write(dir, &spec)) != STACL_OK || (st = stacl_model_load(&model, bctx, dir)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    unlink(file);
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/adapter.safetensors", dir);
    const stacl_adapter_config acfg = {384, {3, 1, 1}, spec.layers, 0, 1, 400};
    if ((st = stacl_adapter_create(&local, model, &acfg, 1)) != STACL_OK ||
        (st = stacl_adapter_save(local, ckpt)) != STACL_OK ||
        (st = stacl_adapter_load_on(&remote, model, actx, ckpt)) != STACL_OK) {
        rc = bench_fail(PROG, st);
        goto done;
    }
    unlink(ckpt);
    rmdir(dir);
    const stacl_vision_config *c = stacl_model_vision_config(model);
    const size_t F = (size_t)frames, L = (size_t)stacl_vision_tokens(c), W = (size_t)c->width;
    const size_t n = F * L * W, ws_floats = n + 2 * F * (L - 1) * 384;
    printf("residual stream per copy: %.2f MB; %d copies per site with 1 chunk\n\n", n * 4 / 1e6, 4);
    x = malloc(n * sizeof *x);
    wall = calloc((size_t)site_runs, sizeof *wall);
    dev = calloc((size_t)site_runs, sizeof *dev);
    xf = calloc((size_t)site_runs, sizeof *xf);
    if (!x || !wall || !dev || !xf) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = 1; goto done; }
    fill(x, n, 7);
    if ((st = stacl_device_buffer(bctx, ws_floats * sizeof(float), CL_MEM_READ_WRITE, NULL, "the workspace", NULL,
                                  &ws)) != STACL_OK ||
        clEnqueueWriteBuffer(bctx->queue, ws, CL_TRUE, 0, n * sizeof *x, x, 0, NULL, NULL) != CL_SUCCESS) {
        rc = bench_fail(PROG, st ? st : STACL_ERR_OPENCL);
        goto done;
    }

    /* One site. */
    double d0, d1;
    if ((st = time_site(local, ws, F, &d0, &d1)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; } /* warm-up */
    for (int r = 0; r < site_runs; r++)
        if ((st = time_site(local, ws, F, &wall[r], &d1)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    const double site_local = bench_median(wall, site_runs);
    printf("adapter site, one device (kernels only): %.2f ms (median of %d)\n", site_local, site_runs);
    double exposed1 = -1.0;
    for (int ci = 0; ci < n_chunks; ci++) {
        stacl_adapter_set_transfer_chunks(remote, chunks[ci]);
        if ((st = time_site(remote, ws, F, &d0, &d1)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
        for (int r = 0; r < site_runs; r++)
            if ((st = time_site(remote, ws, F, &wall[r], &xf[r])) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
        const double w = bench_median(wall, site_runs), t = bench_median(xf, site_runs), exposed = w - site_local;
        if (stacl_adapter_transfer_chunks(remote, frames) == 1 && exposed1 < 0) exposed1 = exposed;
        printf("adapter site, two devices, %d chunk%s: %.2f ms; copies %.2f ms (event sum); exposed %.2f ms",
               stacl_adapter_transfer_chunks(remote, frames), stacl_adapter_transfer_chunks(remote, frames) > 1 ? "s" : "",
               w, t, exposed);
        if (exposed1 > 0 && stacl_adapter_transfer_chunks(remote, frames) > 1) printf(" (%.0f%% of 1 chunk's hidden)", 100.0 * (1.0 - exposed / exposed1));
        printf("\n");
        fflush(stdout);
    }
    if (no_clip) goto done;

    /* Whole clips. */
    const size_t n_pixels = F * 3 * (size_t)c->image_size * (size_t)c->image_size;
    pixels = malloc(n_pixels * sizeof *pixels);
    logits = malloc(400 * sizeof *logits);
    if (!pixels || !logits) { fprintf(stderr, PROG ": error: out of host memory\n"); rc = 1; goto done; }
    fill(pixels, n_pixels, 11);
    if ((st = stacl_state_create(&state, model, frames)) != STACL_OK) { rc = bench_fail(PROG, st); goto done; }
    printf("\nwhole clip (T = %d), medians of %d after 1 warm-up:\n", frames, runs);
    for (int ci = -1; ci < n_chunks; ci++) {
        stacl_adapter *ad = ci < 0 ? local : remote;
        if (ci >= 0) stacl_adapter_set_transfer_chunks(remote, chunks[ci]);
        for (int r = -1; r < runs; r++) {
            double t0 = bench_now_ms();
            if ((st = stacl_classify_forward(state, ad, pixels, 1, frames, STACL_OUT_EMBEDDING, logits)) != STACL_OK) {
                rc = bench_fail(PROG, st);
                goto done;
            }
            if (r < 0) continue;
            wall[r] = bench_now_ms() - t0;
            dev[r] = stacl_state_last_device_ms(state);
            const stacl_op_time *t;
            int nt = stacl_state_op_times(state, &t);
            xf[r] = op_ms(t, nt, "transfer");
        }
        if (ci < 0) printf("  one device:            ");
        else printf("  two devices, %2d chunk%s", stacl_adapter_transfer_chunks(remote, frames),
                    stacl_adapter_transfer_chunks(remote, frames) > 1 ? "s" : " ");
        printf(" %8.1f ms wall, %8.1f ms device, transfer %.1f ms\n", bench_median(wall, runs),
               bench_median(dev, runs), bench_median(xf, runs));
        fflush(stdout);
    }
done:
    if (ws) clReleaseMemObject(ws);
    stacl_state_free(state);
    stacl_adapter_free(remote);
    stacl_adapter_free(local);
    stacl_model_free(model);
    stacl_ctx_free(actx);
    stacl_ctx_free(bctx);
    free(x);
    free(pixels);
    free(logits);
    free(wall);
    free(dev);
    free(xf);
    return rc;
}
