/* cmd_eval.c: `stacl eval --zeroshot`: CLIP zero-shot accuracy over a
 * dataset list (top-1, top-5, per-class), every test-time view of each
 * video through the vision tower, probabilities averaged over views. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loader.h"
#include "zeroshot.h"

static void usage(void) {
    printf("usage: stacl eval --zeroshot --model DIR --classes CLASSES.csv --list LIST\n"
           "                  [--templates FILE | --descriptions FILE.json]\n"
           "                  [--num-frames 8] [--sampling uniform|dense] [--sampling-rate 16]\n"
           "                  [--temporal-views 1] [--spatial-views 1|3] [--workers 2] [--per-class]\n"
           "                  [--vocab PATH] [--no-cache] [--device D]\n\n"
           "Zero-shot accuracy of a CLIP model on the videos of LIST ('path,label' CSV or 'path label'\n"
           "lines; labels are class names from CLASSES.csv or ids into it): each video's views\n"
           "(temporal x spatial, as 'stacl frames --views' lists them) are classified as 'stacl\n"
           "zeroshot' does and the probabilities averaged over views. Prints top-1, top-5 and the mean\n"
           "per-class accuracy (--per-class: every class). Unreadable videos are reported, counted and\n"
           "left out of the accuracy.\n");
}

static int parse_sampling(const char *v, stacl_sampling *out) {
    if (strcmp(v, "uniform") == 0) *out = STACL_SAMPLING_UNIFORM;
    else if (strcmp(v, "dense") == 0) *out = STACL_SAMPLING_DENSE;
    else return cli_usage_error("eval", "--sampling must be uniform or dense, got '%s'", v), 0;
    return 1;
}

int cmd_eval(int argc, char **argv) {
    static const cli_opt opts[] = {{"--zeroshot", 0},    {"--model", 1},          {"--classes", 1},
                                   {"--list", 1},        {"--templates", 1},      {"--num-frames", 1},
                                   {"--sampling", 1},    {"--sampling-rate", 1},  {"--temporal-views", 1},
                                   {"--spatial-views", 1}, {"--workers", 1},      {"--per-class", 0},
                                   {"--vocab", 1},       {"--no-cache", 0},       {"--device", 1},
                                   {"--help", 0},        {"--descriptions", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "eval", 0};
    const char *model_path = NULL, *classes_path = NULL, *list = NULL, *templates_path = NULL, *vocab = NULL;
    const char *device = NULL, *descriptions_path = NULL, *value;
    stacl_names *descriptions = NULL;
    int zeroshot = 0, per_class = 0, no_cache = 0, workers = 2, k;
    stacl_clip_spec spec = stacl_clip_spec_default();
    while ((k = cli_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = 1;
        switch (k) {
        case 0: zeroshot = 1; break;
        case 1: model_path = value; break;
        case 2: classes_path = value; break;
        case 3: list = value; break;
        case 4: templates_path = value; break;
        case 5: ok = cli_int("eval", "--num-frames", value, 1, 4096, &spec.num_frames); break;
        case 6: ok = parse_sampling(value, &spec.sampling); break;
        case 7: ok = cli_int("eval", "--sampling-rate", value, 1, 100000, &spec.sampling_rate); break;
        case 8: ok = cli_int("eval", "--temporal-views", value, 1, 1000, &spec.temporal_views); break;
        case 9:
            ok = cli_int("eval", "--spatial-views", value, 1, 3, &spec.spatial_views);
            if (ok && spec.spatial_views == 2) return cli_usage_error("eval", "--spatial-views must be 1 or 3");
            break;
        case 10: ok = cli_int("eval", "--workers", value, 1, 256, &workers); break;
        case 11: per_class = 1; break;
        case 12: vocab = value; break;
        case 13: no_cache = 1; break;
        case 14: device = value; break;
        case 15: usage(); return 0;
        case 16: descriptions_path = value; break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!zeroshot) return cli_usage_error("eval", "only --zeroshot evaluation exists yet");
    if (!model_path || !classes_path || !list) return cli_usage_error("eval", "--model, --classes and --list are required");

    int rc = 0;
    stacl_status st;
    stacl_names classes = {0}, templates = {0};
    stacl_dataset *ds = NULL;
    stacl_tokenizer *tok = NULL;
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_state *state = NULL;
    stacl_loader *loader = NULL;
    float *class_emb = NULL, *emb = NULL, *video = NULL, *probs = NULL, *avg = NULL;
    int *hits1 = NULL, *counts = NULL;
    char vocab_path[4096], cache_dir[4096];
    if ((st = stacl_class_names_load(classes_path, &classes)) != STACL_OK ||
        (st = stacl_templates_load(templates_path, &templates)) != STACL_OK ||
        (descriptions_path && (st = stacl_descriptions_load(descriptions_path, classes.n, &descriptions)) != STACL_OK) ||
        (st = stacl_dataset_load(&ds, list, classes_path)) != STACL_OK) {
        rc = cli_fail("eval", st);
        goto done;
    }
    if (stacl_dataset_num_classes(ds) != classes.n) {
        fprintf(stderr, "stacl eval: error: %s has %d classes but the dataset sees %d\n", classes_path, classes.n,
                stacl_dataset_num_classes(ds));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    for (int r = 0; r < stacl_dataset_num_rejected(ds); r++)
        fprintf(stderr, "stacl eval: warning: skipped %s\n", stacl_dataset_rejected(ds, r));
    if ((rc = cli_load_tokenizer_at("eval", vocab, model_path, &tok, vocab_path, sizeof vocab_path)) != 0) goto done;
    if ((rc = cli_open_joint_model("eval", device, model_path, &ctx, &model)) != 0) goto done;
    const stacl_vision_config *vc = stacl_model_vision_config(model);
    int dim = 0, cached = 0;
    st = stacl_zs_class_embeddings(model, tok, &classes, &templates, descriptions, vocab_path,
                                   !no_cache && stacl_zs_cache_dir(cache_dir, sizeof cache_dir) ? cache_dir : NULL,
                                   &class_emb, &dim, &cached);
    if (st != STACL_OK) { rc = cli_fail("eval", st); goto done; }
    float scale = stacl_model_logit_scale(model);
    if (scale <= 0.0f) scale = 100.0f;
    const int T = spec.num_frames, C = classes.n, S = vc->image_size;
    stacl_loader_config lc = stacl_loader_config_default();
    lc.workers = workers;
    lc.clip = spec;
    lc.size = S;
    if ((st = stacl_state_create(&state, model, T)) != STACL_OK ||
        (st = stacl_loader_create(&loader, ds, &lc)) != STACL_OK) {
        rc = cli_fail("eval", st);
        goto done;
    }
    emb = malloc((size_t)T * dim * sizeof *emb);
    video = malloc((size_t)dim * sizeof *video);
    probs = malloc((size_t)C * sizeof *probs);
    avg = malloc((size_t)C * sizeof *avg);
    hits1 = calloc((size_t)C, sizeof *hits1);
    counts = calloc((size_t)C, sizeof *counts);
    if (!emb || !video || !probs || !avg || !hits1 || !counts) { rc = cli_fail("eval", STACL_ERR_OUT_OF_MEMORY); goto done; }
    int n = 0, top1 = 0, top5 = 0, bad = 0;
    double t0 = cli_now_ms();
    for (;;) {
        const stacl_sample *s = NULL;
        if ((st = stacl_loader_next(loader, &s)) != STACL_OK) { rc = cli_fail("eval", st); goto done; }
        if (!s) break;
        if (!s->ok) {
            fprintf(stderr, "stacl eval: warning: skipped %s\n", s->error);
            bad++;
            continue;
        }
        for (int c = 0; c < C; c++) avg[c] = 0.0f;
        const size_t view_floats = (size_t)T * 3 * S * S;
        for (int v = 0; v < s->views; v++) {
            st = stacl_vision_forward(state, s->pixels + (size_t)v * view_floats, T, STACL_OUT_EMBEDDING, emb);
            if (st != STACL_OK) { rc = cli_fail("eval", st); goto done; }
            stacl_zs_video_embedding(emb, T, dim, video);
            stacl_zs_probabilities(video, class_emb, C, dim, scale, probs);
            for (int c = 0; c < C; c++) avg[c] += probs[c] / (float)s->views;
        }
        /* Rank of the true class: how many classes score higher. */
        int higher = 0;
        for (int c = 0; c < C; c++) higher += avg[c] > avg[s->label];
        top1 += higher == 0;
        top5 += higher < 5;
        hits1[s->label] += higher == 0;
        counts[s->label]++;
        n++;
    }
    double mean_class = 0.0;
    int present = 0;
    for (int c = 0; c < C; c++)
        if (counts[c]) mean_class += (double)hits1[c] / counts[c], present++;
    printf("zero-shot on %s: %d videos (%d skipped), %d classes x %d %s%s, %d view%s, %.1f s\n", list, n, bad, C,
           descriptions ? 1 : templates.n, descriptions ? "description file" : "template",
           !descriptions && templates.n > 1 ? "s" : "", stacl_clip_num_views(&spec),
           stacl_clip_num_views(&spec) > 1 ? "s" : "", (cli_now_ms() - t0) / 1000.0);
    printf("top-1 %.2f%%  top-5 %.2f%%  mean per-class %.2f%%\n", n ? 100.0 * top1 / n : 0.0,
           n ? 100.0 * top5 / n : 0.0, present ? 100.0 * mean_class / present : 0.0);
    if (per_class)
        for (int c = 0; c < C; c++)
            if (counts[c]) printf("  %-40s %6.2f%%  (%d/%d)\n", classes.v[c], 100.0 * hits1[c] / counts[c], hits1[c], counts[c]);
done:
    stacl_loader_free(loader);
    free(class_emb);
    free(emb);
    free(video);
    free(probs);
    free(avg);
    free(hits1);
    free(counts);
    stacl_descriptions_free(descriptions, classes.n); /* before classes: needs classes.n */
    stacl_names_free(&classes);
    stacl_names_free(&templates);
    stacl_dataset_free(ds);
    stacl_tokenizer_free(tok);
    stacl_state_free(state);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return rc;
}
