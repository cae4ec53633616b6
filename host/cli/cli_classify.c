/* cli_classify.c: test-time views and ST-Adapter class probabilities,
 * shared by `stacl classify`, `stacl eval --adapter` and `stacl zeroshot`
 * (see cli_eval.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_eval.h"
#include "clip_decode.h"
#include "preprocess.h"

int cli_clip_option(const char *command, const char *name, const char *value, stacl_clip_spec *spec) {
    if (strcmp(name, "--num-frames") == 0) return cli_int(command, name, value, 1, 4096, &spec->num_frames);
    if (strcmp(name, "--sampling-rate") == 0) return cli_int(command, name, value, 1, 100000, &spec->sampling_rate);
    if (strcmp(name, "--temporal-views") == 0) return cli_int(command, name, value, 1, 1000, &spec->temporal_views);
    if (strcmp(name, "--spatial-views") == 0) {
        if (!cli_int(command, name, value, 1, 3, &spec->spatial_views)) return 0;
        if (spec->spatial_views == 2) return cli_usage_error(command, "--spatial-views must be 1 or 3"), 0;
        return 1;
    }
    if (strcmp(name, "--sampling") == 0) {
        if (strcmp(value, "uniform") == 0) spec->sampling = STACL_SAMPLING_UNIFORM;
        else if (strcmp(value, "dense") == 0) spec->sampling = STACL_SAMPLING_DENSE;
        else return cli_usage_error(command, "--sampling must be uniform or dense, got '%s'", value), 0;
        return 1;
    }
    return -1;
}

stacl_status cli_video_views(const char *path, const stacl_clip_spec *spec, int S, float *pixels) {
    stacl_video *v = NULL;
    stacl_clip_frames cf = {0};
    stacl_status st = stacl_video_open(&v, path, 0);
    if (st == STACL_OK) st = stacl_clip_decode(v, spec, STACL_ALL_TEMPORAL_VIEWS, 0, &cf);
    const size_t clip_floats = (size_t)spec->num_frames * 3 * S * S;
    const size_t frame_bytes = (size_t)cf.w * cf.h * 3;
    for (int view = 0; st == STACL_OK && view < stacl_clip_num_views(spec); view++) {
        int t, sp;
        stacl_crop crop;
        stacl_clip_view_split(spec, view, &t, &sp);
        st = stacl_crop_eval(cf.w, cf.h, S, S, spec->spatial_views, sp, &crop);
        if (st == STACL_OK)
            st = stacl_preprocess_clip(cf.rgb + (size_t)t * spec->num_frames * frame_bytes, spec->num_frames, cf.w,
                                       cf.h, &crop, pixels + (size_t)view * clip_floats);
    }
    stacl_clip_frames_release(&cf);
    stacl_video_free(v);
    return st;
}

void cli_video_error(const char *command, const char *path, const char *message) {
    if (strstr(message, path)) fprintf(stderr, "stacl %s: error: %s\n", command, message);
    else fprintf(stderr, "stacl %s: error: %s: %s\n", command, path, message);
}

void cli_softmax_add(const float *logits, int n, double weight, float *avg) {
    double mx = logits[0], sum = 0.0;
    for (int c = 1; c < n; c++) mx = logits[c] > mx ? logits[c] : mx;
    for (int c = 0; c < n; c++) sum += exp((double)logits[c] - mx);
    for (int c = 0; c < n; c++) avg[c] += (float)(exp((double)logits[c] - mx) / sum * weight);
}

/* Resolves one device option (NULL: $STACL_DEVICE, else the default). */
static int resolve_device(const char *command, const char *option, const char *selector, int *index) {
    stacl_status st = stacl_select_device(selector, index);
    if (st == STACL_OK) return 0;
    if (selector && *selector)
        fprintf(stderr, "stacl %s: error: %s %s: %s\n", command, option, selector, stacl_last_error());
    else cli_fail(command, st);
    return CLI_EXIT_FAILURE;
}

/* One context: from the program binary when given. */
static int open_ctx(const char *command, int index, const char *binary, stacl_ctx **out) {
    char sel[16];
    snprintf(sel, sizeof sel, "%d", index);
    stacl_status st = binary ? stacl_ctx_create_from_binary(out, sel, binary) : stacl_ctx_create(out, sel);
    if (st == STACL_OK) return 0;
    if (binary) {
        const char *msg = stacl_last_error();
        if (*msg && strstr(msg, binary)) fprintf(stderr, "stacl %s: error: --adapter-binary: %s\n", command, msg);
        else fprintf(stderr, "stacl %s: error: --adapter-binary %s: %s\n", command, binary,
                     *msg ? msg : stacl_status_str(st));
        return CLI_EXIT_FAILURE;
    }
    return cli_fail(command, st);
}

int cli_open_devices(const char *command, const char *device, const char *backbone_device,
                     const char *adapter_device, const char *adapter_binary, stacl_ctx **bctx, stacl_ctx **actx) {
    const char *bsel = backbone_device ? backbone_device : device;
    const char *asel = adapter_device ? adapter_device : device;
    int bi = 0, ai = 0, rc;
    stacl_status st;
    *bctx = *actx = NULL;
    if ((rc = resolve_device(command, backbone_device ? "--backbone-device" : "--device", bsel, &bi)) ||
        (rc = resolve_device(command, adapter_device ? "--adapter-device" : "--device", asel, &ai)))
        return rc;
    (void)st;
    if ((rc = open_ctx(command, bi, ai == bi ? adapter_binary : NULL, bctx))) return rc;
    if (ai == bi) return 0;
    return open_ctx(command, ai, adapter_binary, actx);
}

int cli_open_adapter(const char *command, const char *device, const char *backbone_device,
                     const char *adapter_device, const char *adapter_binary, const char *model_path,
                     const char *adapter_path, int n_classes,
                     const char *classes_path, stacl_ctx **ctx, stacl_ctx **actx, stacl_model **model,
                     stacl_adapter **adapter, stacl_adapter_info *info) {
    stacl_status st;
    int rc = cli_open_devices(command, device, backbone_device, adapter_device, adapter_binary, ctx, actx);
    if (rc) return rc;
    if ((st = stacl_model_load(model, *ctx, model_path)) != STACL_OK ||
        (st = stacl_adapter_load_on(adapter, *model, *actx, adapter_path)) != STACL_OK)
        return cli_fail(command, st);
    stacl_adapter_get_info(*adapter, info);
    if (!info->classes) {
        fprintf(stderr, "stacl %s: error: %s has no classifier head (fc.weight, fc.bias): a trained checkpoint "
                "('stacl train') has one\n", command, adapter_path);
        return CLI_EXIT_FAILURE;
    }
    if (info->classes != n_classes) {
        fprintf(stderr, "stacl %s: error: %s has a %d-class head but %s has %d classes\n", command, adapter_path,
                info->classes, classes_path, n_classes);
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

stacl_status cli_adapter_score(void *user, stacl_state *state, const float *pixels, int views, int frames,
                               float *avg) {
    const cli_adapter_scorer *a = user;
    const size_t view_floats = (size_t)frames * 3 * a->size * a->size;
    for (int c = 0; c < a->classes; c++) avg[c] = 0.0f;
    for (int v = 0; v < views; v++) {
        stacl_status st = stacl_classify_forward(state, a->ad, pixels + (size_t)v * view_floats, 1, frames,
                                                 STACL_OUT_EMBEDDING, a->logits);
        if (st != STACL_OK) return st;
        cli_softmax_add(a->logits, a->classes, 1.0 / views, avg);
    }
    return STACL_OK;
}

void cli_top_k(const float *p, int n, int k, int *order) {
    for (int c = 0; c < n; c++) order[c] = c;
    if (k > n) k = n;
    for (int r = 0; r < k; r++) { /* selection: k is small */
        int best = r;
        for (int c = r + 1; c < n; c++)
            if (p[order[c]] > p[order[best]] || (p[order[c]] == p[order[best]] && order[c] < order[best])) best = c;
        int tmp = order[r];
        order[r] = order[best];
        order[best] = tmp;
    }
}

void cli_print_top_k(const char *video, const stacl_names *classes, const float *p, int k, int *order) {
    if (k > classes->n) k = classes->n;
    cli_top_k(p, classes->n, k, order);
    printf("%s\n", video);
    for (int r = 0; r < k; r++) printf("  %d. %-40s %.4f\n", r + 1, classes->v[order[r]], p[order[r]]);
}
