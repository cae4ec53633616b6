/* cmd_eval.c: `stacl eval`: accuracy over a dataset list (top-1, top-5,
 * per-class, confusion matrix), every test-time view of each video,
 * probabilities averaged over views. Two modes: --zeroshot (CLIP
 * zero-shot) and --adapter (a trained ST-Adapter classifier). The loop and
 * the reports are shared (cli_eval.c). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_eval.h"

static void usage(void) {
    printf("usage: stacl eval --adapter CKPT --model DIR --classes CLASSES.csv --list LIST\n"
           "       stacl eval --zeroshot --model DIR --classes CLASSES.csv --list LIST\n"
           "                  [--templates FILE | --descriptions FILE.json] [--vocab PATH] [--no-cache]\n"
           "       common:    [--num-frames 8] [--sampling uniform|dense] [--sampling-rate 16]\n"
           "                  [--temporal-views 1] [--spatial-views 1|3] [--workers 2] [--per-class]\n"
           "                  [--json OUT.json] [--confusion OUT.csv] [--probs OUT.npy] [--device D]\n"
           "       --adapter: [--backbone-device D] [--adapter-device D] [--adapter-binary FILE]\n\n"
           "Accuracy on the videos of LIST ('path,label' CSV or 'path label' lines; labels are class\n"
           "names from CLASSES.csv or integer ids into it). Each video's views (temporal x spatial, as\n"
           "'stacl frames --views' lists them) are classified one by one and the class probabilities\n"
           "averaged over the views:\n"
           "  --adapter CKPT  an ST-Adapter checkpoint with a classifier head (fc.weight, fc.bias; e.g.\n"
           "                  'stacl train' output) on the frozen --model: the probabilities of a view are\n"
           "                  the softmax of its logits; the head must have CLASSES.csv's class count\n"
           "  --zeroshot      CLIP zero-shot, as 'stacl zeroshot' does (--templates, --descriptions,\n"
           "                  --vocab, --no-cache as there; the model needs both towers)\n"
           "Prints top-1, top-5 and the mean per-class accuracy (the mean over the classes that have\n"
           "videos; a tie with the true class counts as a hit). Unreadable videos are reported, counted\n"
           "and left out of the accuracy.\n\n" CLI_CLIP_OPTS_HELP
           "  --workers N          decoding threads (default 2)\n"
           "  --per-class          print every class's accuracy\n"
           "  --json OUT.json      a summary: top1, top5, mean_class_acc (fractions), their counts,\n"
           "                       per_class (id, name, videos, correct, accuracy), failed videos (path,\n"
           "                       error), rejected list lines, the settings\n"
           "  --confusion OUT.csv  the confusion matrix: one row per true class, one column per predicted\n"
           "                       class (the top-1), with a header row of class names; counts of videos\n"
           "  --probs OUT.npy      the averaged probabilities, float32 [entries, classes], one row per\n"
           "                       usable list entry in list order (NaN rows: unreadable videos)\n"
           CLI_DEVICES_HELP
           "Output files are checked for writability before any video is read.\n");
}

/* CLIP zero-shot scoring of one video's views (cli_eval_score_fn). */
typedef struct zs_scorer {
    const float *class_emb; /* [classes, dim], normalized */
    int classes, dim, size;
    float scale;
    float *emb, *video, *probs; /* scratch [frames, dim], [dim], [classes] */
} zs_scorer;

static stacl_status zs_score(void *user, stacl_state *state, const float *pixels, int views, int frames, float *avg) {
    zs_scorer *z = user;
    const size_t view_floats = (size_t)frames * 3 * z->size * z->size;
    for (int c = 0; c < z->classes; c++) avg[c] = 0.0f;
    for (int v = 0; v < views; v++) {
        stacl_status st = stacl_vision_forward(state, pixels + (size_t)v * view_floats, frames, STACL_OUT_EMBEDDING,
                                               z->emb);
        if (st != STACL_OK) return st;
        stacl_zs_video_embedding(z->emb, frames, z->dim, z->video);
        stacl_zs_probabilities(z->video, z->class_emb, z->classes, z->dim, z->scale, z->probs);
        for (int c = 0; c < z->classes; c++) avg[c] += z->probs[c] / (float)views;
    }
    return STACL_OK;
}

typedef struct eval_opts {
    const char *model, *adapter, *classes, *list, *templates, *descriptions, *vocab, *device;
    const char *backbone_device, *adapter_device, *adapter_binary; /* --adapter only */
    int no_cache, workers;
    stacl_clip_spec spec;
    cli_eval_outputs out;
} eval_opts;

static int eval_zeroshot(const eval_opts *e, const stacl_names *classes, const stacl_dataset *ds) {
    int rc = 0;
    stacl_status st;
    stacl_names templates = {0}, *descriptions = NULL;
    stacl_tokenizer *tok = NULL;
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    float *class_emb = NULL;
    zs_scorer z = {0};
    cli_eval_result r = {0};
    char vocab_path[4096], cache_dir[4096];
    if ((st = stacl_templates_load(e->templates, &templates)) != STACL_OK ||
        (e->descriptions && (st = stacl_descriptions_load(e->descriptions, classes->n, &descriptions)) != STACL_OK)) {
        rc = cli_fail("eval", st);
        goto done;
    }
    if ((rc = cli_load_tokenizer_at("eval", e->vocab, e->model, &tok, vocab_path, sizeof vocab_path)) != 0) goto done;
    if ((rc = cli_open_joint_model("eval", e->device, e->model, &ctx, &model)) != 0) goto done;
    int cached = 0;
    st = stacl_zs_class_embeddings(model, tok, classes, &templates, descriptions, vocab_path,
                                   !e->no_cache && stacl_zs_cache_dir(cache_dir, sizeof cache_dir) ? cache_dir : NULL,
                                   &class_emb, &z.dim, &cached);
    if (st != STACL_OK) { rc = cli_fail("eval", st); goto done; }
    z.class_emb = class_emb;
    z.classes = classes->n;
    z.size = stacl_model_vision_config(model)->image_size;
    z.scale = stacl_model_logit_scale(model);
    if (z.scale <= 0.0f) z.scale = 100.0f;
    z.emb = malloc((size_t)e->spec.num_frames * z.dim * sizeof *z.emb);
    z.video = malloc((size_t)z.dim * sizeof *z.video);
    z.probs = malloc((size_t)classes->n * sizeof *z.probs);
    if (!z.emb || !z.video || !z.probs) { rc = cli_fail("eval", STACL_ERR_OUT_OF_MEMORY); goto done; }
    if ((rc = cli_eval_run("eval", ds, classes->n, model, &e->spec, z.size, e->workers, &e->out, zs_score, &z, &r)))
        goto done;
    const int views = stacl_clip_num_views(&e->spec);
    printf("zero-shot on %s: %d videos (%d skipped), %d classes x %d %s%s, %d view%s, %.1f s\n", e->list, r.videos,
           r.skipped, classes->n, descriptions ? 1 : templates.n, descriptions ? "description file" : "template",
           !descriptions && templates.n > 1 ? "s" : "", views, views > 1 ? "s" : "", r.seconds);
    rc = cli_eval_report("eval", &r, classes, ds, &e->spec, &e->out, "zeroshot", e->model, NULL, e->classes, e->list);
done:
    cli_eval_result_free(&r);
    free(class_emb);
    free(z.emb);
    free(z.video);
    free(z.probs);
    stacl_descriptions_free(descriptions, classes->n);
    stacl_names_free(&templates);
    stacl_tokenizer_free(tok);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return rc;
}

static int eval_adapter(const eval_opts *e, const stacl_names *classes, const stacl_dataset *ds) {
    stacl_ctx *ctx = NULL, *actx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *ad = NULL;
    stacl_adapter_info ai;
    cli_eval_result r = {0};
    cli_adapter_scorer a = {0};
    int rc = cli_open_adapter("eval", e->device, e->backbone_device, e->adapter_device, e->adapter_binary, e->model,
                              e->adapter, classes->n, e->classes, &ctx, &actx, &model, &ad, &ai);
    if (rc) goto done;
    a.ad = ad;
    a.classes = ai.classes;
    a.size = stacl_model_vision_config(model)->image_size;
    if (!(a.logits = malloc((size_t)ai.classes * sizeof *a.logits))) { rc = cli_fail("eval", STACL_ERR_OUT_OF_MEMORY); goto done; }
    if ((rc = cli_eval_run("eval", ds, classes->n, model, &e->spec, a.size, e->workers, &e->out, cli_adapter_score, &a,
                           &r)))
        goto done;
    const int views = stacl_clip_num_views(&e->spec);
    printf("adapter %s on %s: %d videos (%d skipped), %d classes, %d view%s of %d frames, %.1f s\n", e->adapter,
           e->list, r.videos, r.skipped, classes->n, views, views > 1 ? "s" : "", e->spec.num_frames, r.seconds);
    rc = cli_eval_report("eval", &r, classes, ds, &e->spec, &e->out, "adapter", e->model, e->adapter, e->classes,
                         e->list);
done:
    cli_eval_result_free(&r);
    free(a.logits);
    stacl_adapter_free(ad);
    stacl_model_free(model);
    stacl_ctx_free(actx);
    stacl_ctx_free(ctx);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    static const cli_opt opts[] = {{"--zeroshot", 0},  {"--adapter", 1},   {"--model", 1},        {"--classes", 1},
                                   {"--list", 1},      {"--templates", 1}, {"--descriptions", 1}, {"--vocab", 1},
                                   {"--no-cache", 0},  {"--workers", 1},   {"--per-class", 0},    {"--json", 1},
                                   {"--confusion", 1}, {"--probs", 1},     {"--device", 1},       {"--help", 0},
                                   {"--backbone-device", 1}, {"--adapter-device", 1}, {"--adapter-binary", 1},
                                   CLI_CLIP_OPTS};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "eval", 0};
    eval_opts e = {.workers = 2, .spec = stacl_clip_spec_default()};
    const char *value;
    int zeroshot = 0, k;
    while ((k = cli_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = cli_clip_option("eval", opts[k].name, value, &e.spec);
        if (ok == 0) return CLI_EXIT_USAGE;
        if (ok == 1) continue;
        switch (k) {
        case 0: zeroshot = 1; break;
        case 1: e.adapter = value; break;
        case 2: e.model = value; break;
        case 3: e.classes = value; break;
        case 4: e.list = value; break;
        case 5: e.templates = value; break;
        case 6: e.descriptions = value; break;
        case 7: e.vocab = value; break;
        case 8: e.no_cache = 1; break;
        case 9: if (!cli_int("eval", "--workers", value, 1, 256, &e.workers)) return CLI_EXIT_USAGE; break;
        case 10: e.out.per_class = 1; break;
        case 11: e.out.json = value; break;
        case 12: e.out.confusion = value; break;
        case 13: e.out.probs = value; break;
        case 14: e.device = value; break;
        case 15: usage(); return 0;
        case 16: e.backbone_device = value; break;
        case 17: e.adapter_device = value; break;
        case 18: e.adapter_binary = value; break;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (zeroshot == !!e.adapter)
        return cli_usage_error("eval", zeroshot ? "--zeroshot and --adapter exclude each other"
                                                : "say what to evaluate: --adapter CKPT or --zeroshot");
    if (e.adapter && (e.templates || e.descriptions || e.vocab || e.no_cache))
        return cli_usage_error("eval", "--templates, --descriptions, --vocab and --no-cache go with --zeroshot");
    if (zeroshot && (e.backbone_device || e.adapter_device || e.adapter_binary))
        return cli_usage_error("eval", "--backbone-device, --adapter-device and --adapter-binary go with --adapter");
    if (!e.model || !e.classes || !e.list) return cli_usage_error("eval", "--model, --classes and --list are required");
    if (!cli_eval_check_outputs("eval", &e.out)) return CLI_EXIT_FAILURE;

    stacl_names classes = {0};
    stacl_dataset *ds = NULL;
    int rc = cli_eval_load_list("eval", e.classes, e.list, &classes, &ds);
    if (!rc) rc = zeroshot ? eval_zeroshot(&e, &classes, ds) : eval_adapter(&e, &classes, ds);
    stacl_dataset_free(ds);
    stacl_names_free(&classes);
    return rc;
}
