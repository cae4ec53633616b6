/* cmd_classify.c: `stacl classify`: videos through a trained ST-Adapter
 * classifier, every test-time view of each, the top classes with their
 * probabilities (softmax of each view's logits, averaged over views). */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_eval.h"

static void usage(void) {
    printf("usage: stacl classify --model DIR --adapter CKPT --classes CLASSES.csv [--top-k 5] [--json]\n"
           "                      [--num-frames 8] [--sampling uniform|dense] [--sampling-rate 16]\n"
           "                      [--temporal-views 1] [--spatial-views 1|3] [--device D]\n"
           "                      [--backbone-device D] [--adapter-device D] [--adapter-binary FILE]\n"
           "                      VIDEO...\n\n"
           "Classifies each VIDEO with an ST-Adapter checkpoint (adapters + classifier head fc.weight,\n"
           "fc.bias, e.g. 'stacl train' output) on the frozen CLIP --model: every test-time view\n"
           "(temporal x spatial, as 'stacl frames --views' lists them) runs through the adapted model,\n"
           "the probabilities are the softmax of each view's logits averaged over the views, as\n"
           "'stacl eval --adapter' computes them. Prints one block per video: its path, then the top\n"
           "classes with probabilities. A video that cannot be read is an error naming the file; the\n"
           "others are still classified, and the exit status is 1.\n\n"
           "  --model DIR          the frozen CLIP the adapters were trained on\n"
           "  --adapter CKPT       ST-Adapter checkpoint (.safetensors, reference tensor names); its head\n"
           "                       must have as many classes as CLASSES.csv\n"
           "  --classes FILE       'id,name' CSV (or one name per line): the head's class names\n"
           "  --top-k K            classes printed per video (default 5)\n"
           "  --json               print JSON instead: {\"videos\": [{\"video\", \"top\": [{\"id\", \"name\",\n"
           "                       \"probability\"}], \"probabilities\": [every class]} or {\"video\",\n"
           "                       \"error\"}], ...}\n" CLI_CLIP_OPTS_HELP
           CLI_DEVICES_HELP);
}

/* One video's entry in the JSON output: the top k and every probability. */
static cJSON *json_video(const char *path, const stacl_names *classes, const float *p, const int *order, int k) {
    cJSON *v = cJSON_CreateObject(), *top = cJSON_CreateArray(), *all = cJSON_CreateArray();
    cJSON_AddStringToObject(v, "video", path);
    for (int r = 0; r < k; r++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", order[r]);
        cJSON_AddStringToObject(e, "name", classes->v[order[r]]);
        cJSON_AddNumberToObject(e, "probability", p[order[r]]);
        cJSON_AddItemToArray(top, e);
    }
    for (int c = 0; c < classes->n; c++) cJSON_AddItemToArray(all, cJSON_CreateNumber(p[c]));
    cJSON_AddItemToObject(v, "top", top);
    cJSON_AddItemToObject(v, "probabilities", all);
    return v;
}

int cmd_classify(int argc, char **argv) {
    static const cli_opt opts[] = {{"--model", 1}, {"--adapter", 1}, {"--classes", 1}, {"--top-k", 1},
                                   {"--json", 0},  {"--device", 1},  {"--help", 0},    {"--backbone-device", 1},
                                   {"--adapter-device", 1}, {"--adapter-binary", 1}, CLI_CLIP_OPTS};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "classify", 0};
    const char *model_path = NULL, *adapter_path = NULL, *classes_path = NULL, *device = NULL, *value;
    const char *backbone_device = NULL, *adapter_device = NULL, *adapter_binary = NULL;
    stacl_clip_spec spec = stacl_clip_spec_default();
    int top_k = 5, json = 0, k, n_videos = 0, rc = 0;
    const char **videos = calloc((size_t)argc + 1, sizeof *videos);
    if (!videos) return cli_fail("classify", STACL_ERR_OUT_OF_MEMORY);
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        if (k == CLI_POSITIONAL) {
            videos[n_videos++] = value;
            continue;
        }
        int ok = cli_clip_option("classify", opts[k].name, value, &spec);
        if (ok == 1) continue;
        if (ok == -1) {
            ok = 1;
            switch (k) {
            case 0: model_path = value; break;
            case 1: adapter_path = value; break;
            case 2: classes_path = value; break;
            case 3: ok = cli_int("classify", "--top-k", value, 1, 1000000, &top_k); break;
            case 4: json = 1; break;
            case 5: device = value; break;
            case 6: usage(); free(videos); return 0;
            case 7: backbone_device = value; break;
            case 8: adapter_device = value; break;
            case 9: adapter_binary = value; break;
            }
        }
        if (!ok) { k = -2; break; }
    }
    stacl_names classes = {0};
    stacl_ctx *ctx = NULL, *actx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *ad = NULL;
    stacl_adapter_info ai;
    stacl_state *state = NULL;
    cli_adapter_scorer sc = {0};
    float *pix = NULL, *avg = NULL;
    int *order = NULL;
    cJSON *doc = NULL, *list = NULL;
    stacl_status st;
    if (k == -2) { rc = CLI_EXIT_USAGE; goto done; }
    if (!model_path || !adapter_path || !classes_path) {
        rc = cli_usage_error("classify", "--model, --adapter and --classes are required");
        goto done;
    }
    if (n_videos == 0) { rc = cli_usage_error("classify", "no VIDEO given"); goto done; }
    if ((st = stacl_class_names_load(classes_path, &classes)) != STACL_OK) { rc = cli_fail("classify", st); goto done; }
    rc = cli_open_adapter("classify", device, backbone_device, adapter_device, adapter_binary, model_path,
                          adapter_path, classes.n, classes_path, &ctx, &actx, &model, &ad, &ai);
    if (rc) goto done;
    const int C = classes.n, T = spec.num_frames, S = stacl_model_vision_config(model)->image_size;
    const int views = stacl_clip_num_views(&spec), shown = top_k < C ? top_k : C;
    sc = (cli_adapter_scorer){ad, C, S, malloc((size_t)C * sizeof *sc.logits)};
    pix = malloc((size_t)views * T * 3 * S * S * sizeof *pix);
    avg = malloc((size_t)C * sizeof *avg);
    order = malloc((size_t)C * sizeof *order);
    if (json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "model", model_path);
        cJSON_AddStringToObject(doc, "adapter", adapter_path);
        cJSON_AddNumberToObject(doc, "classes", C);
        cJSON_AddNumberToObject(doc, "num_frames", T);
        cJSON_AddStringToObject(doc, "sampling", spec.sampling == STACL_SAMPLING_DENSE ? "dense" : "uniform");
        cJSON_AddNumberToObject(doc, "views", views);
        list = cJSON_AddArrayToObject(doc, "videos");
    }
    if (!sc.logits || !pix || !avg || !order || (json && !list)) { rc = cli_fail("classify", STACL_ERR_OUT_OF_MEMORY); goto done; }
    if ((st = stacl_state_create(&state, model, T)) != STACL_OK) { rc = cli_fail("classify", st); goto done; }
    if (!json)
        printf("adapter %s: %d pre-attention + %d pre-MLP adapters, %d classes; %d view%s of %d frames per video\n",
               adapter_path, ai.n_pre_attn, ai.n_pre_mlp, C, views, views > 1 ? "s" : "", T);
    /* Progress when the results are not on the terminal already. */
    cli_progress prog;
    cli_progress_start(&prog, json || !isatty(STDOUT_FILENO));
    int failed = 0;
    for (int i = 0; i < n_videos; i++) {
        cli_progress_show(&prog, "classify", i, n_videos, failed);
        if ((st = cli_video_views(videos[i], &spec, S, pix)) != STACL_OK) {
            cli_progress_break(&prog);
            cli_video_error("classify", videos[i], stacl_last_error());
            if (list) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "video", videos[i]);
                cJSON_AddStringToObject(e, "error", stacl_last_error());
                cJSON_AddItemToArray(list, e);
            }
            failed++;
            rc = CLI_EXIT_FAILURE;
            continue;
        }
        if ((st = cli_adapter_score(&sc, state, pix, views, T, avg)) != STACL_OK) {
            cli_progress_break(&prog);
            rc = cli_fail("classify", st);
            goto done;
        }
        if (list) {
            cli_top_k(avg, C, shown, order);
            cJSON_AddItemToArray(list, json_video(videos[i], &classes, avg, order, shown));
            continue;
        }
        cli_print_top_k(videos[i], &classes, avg, shown, order);
        fflush(stdout);
    }
    cli_progress_break(&prog);
    if (doc) {
        char *text = cJSON_Print(doc);
        if (!text) { rc = cli_fail("classify", STACL_ERR_OUT_OF_MEMORY); goto done; }
        printf("%s\n", text);
        free(text);
    }
    if (failed) fprintf(stderr, "stacl classify: %d of %d videos could not be read\n", failed, n_videos);
done:
    cJSON_Delete(doc);
    free(videos);
    free(sc.logits);
    free(pix);
    free(avg);
    free(order);
    stacl_state_free(state);
    stacl_adapter_free(ad);
    stacl_model_free(model);
    stacl_ctx_free(actx);
    stacl_ctx_free(ctx);
    stacl_names_free(&classes);
    return rc;
}
