/* cmd_zeroshot.c: `stacl zeroshot`: CLIP zero-shot classification of
 * videos: class embeddings from prompt templates (cached), one clip per
 * video through the vision tower, the top classes with probabilities. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_eval.h"
#include "npy.h"
#include "zeroshot.h"

static void usage(void) {
    printf("usage: stacl zeroshot --model DIR --classes CLASSES.csv [--templates FILE | --descriptions FILE] [--top K]\n"
           "                      [--out P.npy] [--num-frames T] [--vocab PATH] [--no-cache] [--device D] VIDEO...\n\n"
           "Classifies each VIDEO with CLIP zero-shot: the class embeddings are the text embeddings of\n"
           "the templates filled with each class name, L2-normalized, averaged over templates and\n"
           "normalized; the video embedding is the mean of its frames' normalized image embeddings,\n"
           "normalized; the probabilities are softmax(exp(logit_scale) * cosine). Prints the top classes.\n\n"
           "  --model DIR          a CLIP model with both towers (and logit_scale; 100 is used without it)\n"
           "  --classes FILE       'id,name' CSV (the header line id,name; names may be quoted)\n"
           "  --templates FILE     one template per line with {} for the class name (default:\n"
           "                       \"a video of a {}.\")\n"
           "  --descriptions FILE  per-class sentences instead, JSON {\"class index\": [sentences]} (the\n"
           "                       index is the id in --classes); averaged like templates\n"
           "  --top K              classes printed per video (default 5)\n"
           "  --out P.npy          also write every probability, float32 [videos, classes]\n"
           "  --num-frames T       frames per clip (default 8): uniform sampling, one center crop of\n"
           "                       the model's image size, as 'stacl frames' does by default\n"
           "  --vocab PATH         tokenizer vocabulary (default: the model folder's, else stacl's)\n"
           "  --no-cache           do not read or write the class-embedding cache ($STACL_CACHE_DIR,\n"
           "                       default ~/.cache/stacl), keyed by model, vocabulary, classes, templates\n"
           "  --device D           OpenCL device index or name substring\n");
}

int cmd_zeroshot(int argc, char **argv) {
    static const cli_opt opts[] = {{"--model", 1}, {"--classes", 1}, {"--templates", 1}, {"--top", 1},
                                   {"--out", 1},   {"--num-frames", 1}, {"--vocab", 1}, {"--no-cache", 0},
                                   {"--device", 1}, {"--help", 0}, {"--descriptions", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "zeroshot", 0};
    const char *model_path = NULL, *classes_path = NULL, *templates_path = NULL, *out_path = NULL, *vocab = NULL;
    const char *device = NULL, *descriptions_path = NULL, *value;
    stacl_names *descriptions = NULL;
    int top = 5, frames = 8, no_cache = 0, k = 0, rc = 0;
    const char **videos = calloc((size_t)argc + 1, sizeof *videos);
    int n_videos = 0;
    if (!videos) return cli_fail("zeroshot", STACL_ERR_OUT_OF_MEMORY);
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        if (k == CLI_POSITIONAL) {
            videos[n_videos++] = value;
            continue;
        }
        int ok = 1;
        switch (k) {
        case 0: model_path = value; break;
        case 1: classes_path = value; break;
        case 2: templates_path = value; break;
        case 3: ok = cli_int("zeroshot", "--top", value, 1, 100000, &top); break;
        case 4: out_path = value; break;
        case 5: ok = cli_int("zeroshot", "--num-frames", value, 1, 4096, &frames); break;
        case 6: vocab = value; break;
        case 7: no_cache = 1; break;
        case 8: device = value; break;
        case 9: usage(); free(videos); return 0;
        case 10: descriptions_path = value; break;
        }
        if (!ok) { k = -2; break; }
    }
    stacl_names classes = {0}, templates = {0};
    stacl_tokenizer *tok = NULL;
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_state *state = NULL;
    float *class_emb = NULL, *pix = NULL, *emb = NULL, *probs = NULL, *all = NULL;
    int *order = NULL;
    char vocab_path[4096], cache_dir[4096];
    stacl_status st;
    if (k == -2) { rc = CLI_EXIT_USAGE; goto done; }
    if (!model_path || !classes_path) { rc = cli_usage_error("zeroshot", "--model and --classes are required"); goto done; }
    if (n_videos == 0) { rc = cli_usage_error("zeroshot", "no VIDEO given"); goto done; }
    if (out_path && !cli_check_writable("zeroshot", out_path)) { rc = CLI_EXIT_FAILURE; goto done; }
    if ((st = stacl_class_names_load(classes_path, &classes)) != STACL_OK ||
        (st = stacl_templates_load(templates_path, &templates)) != STACL_OK ||
        (descriptions_path && (st = stacl_descriptions_load(descriptions_path, classes.n, &descriptions)) != STACL_OK)) {
        rc = cli_fail("zeroshot", st);
        goto done;
    }
    if ((rc = cli_load_tokenizer_at("zeroshot", vocab, model_path, &tok, vocab_path, sizeof vocab_path)) != 0) goto done;
    if ((rc = cli_open_joint_model("zeroshot", device, model_path, &ctx, &model)) != 0) goto done;
    const stacl_vision_config *vc = stacl_model_vision_config(model);
    int dim = 0, cached = 0;
    st = stacl_zs_class_embeddings(model, tok, &classes, &templates, descriptions, vocab_path,
                                   !no_cache && stacl_zs_cache_dir(cache_dir, sizeof cache_dir) ? cache_dir : NULL,
                                   &class_emb, &dim, &cached);
    if (st != STACL_OK) { rc = cli_fail("zeroshot", st); goto done; }
    if (dim != vc->proj_dim) {
        fprintf(stderr, "stacl zeroshot: error: text embeddings have %d dimensions, image embeddings %d\n", dim,
                vc->proj_dim);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    float scale = stacl_model_logit_scale(model);
    if (scale <= 0.0f) scale = 100.0f; /* CLIP's trained value, for files without logit_scale */
    if (descriptions) printf("%d classes, prompts from %s", classes.n, descriptions_path);
    else printf("%d classes x %d template%s", classes.n, templates.n, templates.n > 1 ? "s" : "");
    printf(" (%s), logit scale %.2f\n", cached ? "from the cache" : "encoded", scale);
    const int S = vc->image_size;
    pix = malloc((size_t)frames * 3 * S * S * sizeof *pix);
    emb = malloc((size_t)frames * dim * sizeof *emb);
    probs = malloc((size_t)classes.n * sizeof *probs);
    all = malloc((size_t)n_videos * classes.n * sizeof *all);
    order = malloc((size_t)classes.n * sizeof *order);
    float *video = malloc((size_t)dim * sizeof *video);
    if (!pix || !emb || !probs || !all || !order || !video) {
        free(video);
        rc = cli_fail("zeroshot", STACL_ERR_OUT_OF_MEMORY);
        goto done;
    }
    if ((st = stacl_state_create(&state, model, frames)) != STACL_OK) {
        free(video);
        rc = cli_fail("zeroshot", st);
        goto done;
    }
    /* One clip per video, as 'stacl frames' makes it by default: uniform
     * sampling, short side resized to S, center crop S. */
    stacl_clip_spec spec = stacl_clip_spec_default();
    spec.num_frames = frames;
    for (int i = 0; i < n_videos; i++) {
        st = cli_video_views(videos[i], &spec, S, pix);
        if (st == STACL_OK) st = stacl_vision_forward(state, pix, frames, STACL_OUT_EMBEDDING, emb);
        if (st != STACL_OK) {
            cli_video_error("zeroshot", videos[i], stacl_last_error());
            rc = CLI_EXIT_FAILURE;
            break;
        }
        stacl_zs_video_embedding(emb, frames, dim, video);
        stacl_zs_probabilities(video, class_emb, classes.n, dim, scale, probs);
        memcpy(all + (size_t)i * classes.n, probs, (size_t)classes.n * sizeof *probs);
        cli_print_top_k(videos[i], &classes, probs, top, order);
    }
    free(video);
    if (rc == 0 && out_path) {
        const int64_t shape[2] = {n_videos, classes.n};
        if ((st = stacl_npy_write_f32(out_path, all, shape, 2)) != STACL_OK) rc = cli_fail("zeroshot", st);
    }
done:
    free(videos);
    free(class_emb);
    free(pix);
    free(emb);
    free(probs);
    free(all);
    free(order);
    stacl_descriptions_free(descriptions, classes.n); /* before classes: needs classes.n */
    stacl_names_free(&classes);
    stacl_names_free(&templates);
    stacl_tokenizer_free(tok);
    stacl_state_free(state);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return rc;
}
