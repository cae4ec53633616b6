/* cmd_encode_text.c: `stacl encode-text`: texts through CLIP's tokenizer
 * and text tower, one embedding per text into a float32 .npy file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy.h"

static void usage(void) {
    printf("usage: stacl encode-text --model DIR [--texts FILE] [TEXT...] --out E.npy [--normalize]\n"
           "                         [--vocab PATH] [--truncate] [--batch N] [--device D] [--quiet]\n\n"
           "Encodes texts with the CLIP text tower: float32 [N, proj_dim] in E.npy, one row per text in\n"
           "order (--texts lines first, then TEXT arguments), not normalized unless --normalize.\n\n"
           "  --model DIR   folder with model.safetensors (+ config.json for Hugging Face files) or a\n"
           "                .safetensors file; it must hold the text tower\n"
           "  --texts FILE  UTF-8 file, one text per line (every line is a text, empty ones too)\n"
           "  --out E.npy   the embeddings ([N, width] after ln_final if the model has no projection)\n"
           "  --normalize   L2-normalize each embedding\n"
           "  --vocab PATH  bpe_simple_vocab_16e6.txt.gz or a folder with vocab.json + merges.txt;\n"
           "                default: the model folder's files, else the OpenAI file installed with stacl\n"
           "  --truncate    cut texts longer than the model's context (ending with <|endoftext|>);\n"
           "                without it such a text is an error, as in CLIP\n"
           "  --batch N     texts per pass on the device (default 64)\n"
           "  --device D    OpenCL device index or name substring (see 'stacl devices')\n"
           "  --quiet       print nothing on success\n"
           "  --            the remaining arguments are texts, even if they start with --\n");
}

/* Texts through the tower in batches; out: [n, dim]. Returns an exit code. */
static int encode(stacl_model *model, const int32_t *rows, size_t n, int batch, float *out) {
    const stacl_text_config *c = stacl_model_text_config(model);
    stacl_text_state *state = NULL;
    int per = batch < (int)n ? batch : (int)n;
    stacl_status st = stacl_text_state_create(&state, model, per);
    if (st != STACL_OK) return cli_fail("encode-text", st);
    const size_t dim = stacl_text_output_size(model, 1);
    for (size_t i = 0; i < n && st == STACL_OK; i += (size_t)per) {
        int m = (int)(n - i < (size_t)per ? n - i : (size_t)per);
        st = stacl_text_forward(state, rows + i * (size_t)c->context_length, m, out + i * dim);
    }
    stacl_text_state_free(state);
    return st == STACL_OK ? 0 : cli_fail("encode-text", st);
}

int cmd_encode_text(int argc, char **argv) {
    static const cli_opt opts[] = {{"--model", 1}, {"--texts", 1},  {"--out", 1},    {"--normalize", 0},
                                   {"--vocab", 1}, {"--truncate", 0}, {"--batch", 1}, {"--device", 1},
                                   {"--quiet", 0}, {"--help", 0}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "encode-text", 0};
    const char *model_path = NULL, *texts_file = NULL, *out_path = NULL, *vocab = NULL, *device = NULL, *value;
    int normalize = 0, truncate = 0, batch = 64, quiet = 0, k = 0, rc = 0;
    cli_texts texts = {0};
    stacl_tokenizer *tok = NULL;
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    int32_t *rows = NULL;
    float *emb = NULL;
    const char **positional = calloc((size_t)argc + 1, sizeof *positional);
    size_t n_pos = 0;
    if (!positional) return cli_fail("encode-text", STACL_ERR_OUT_OF_MEMORY);
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        if (k == CLI_POSITIONAL) {
            positional[n_pos++] = value;
            continue;
        }
        switch (k) {
        case 0: model_path = value; break;
        case 1: texts_file = value; break;
        case 2: out_path = value; break;
        case 3: normalize = 1; break;
        case 4: vocab = value; break;
        case 5: truncate = 1; break;
        case 6: if (!cli_int("encode-text", "--batch", value, 1, 65536, &batch)) k = -2; break;
        case 7: device = value; break;
        case 8: quiet = 1; break;
        case 9: usage(); free(positional); return 0;
        }
    }
    if (k == -2) { rc = CLI_EXIT_USAGE; goto done; }
    if (!model_path || !out_path) { rc = cli_usage_error("encode-text", "--model and --out are required"); goto done; }
    if (texts_file && (rc = cli_texts_read_file("encode-text", texts_file, &texts)) != 0) goto done;
    for (size_t i = 0; i < n_pos; i++)
        if (!cli_texts_add(&texts, positional[i], strlen(positional[i]))) { rc = cli_fail("encode-text", STACL_ERR_OUT_OF_MEMORY); goto done; }
    if (texts.n == 0) { rc = cli_usage_error("encode-text", "no texts: give TEXT arguments or --texts FILE"); goto done; }
    if (!cli_check_writable("encode-text", out_path)) { rc = CLI_EXIT_FAILURE; goto done; }

    /* Tokenize first: bad text fails before any device work. */
    if ((rc = cli_load_tokenizer("encode-text", vocab, model_path, &tok)) != 0) goto done;
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st == STACL_OK) st = stacl_model_load(&model, ctx, model_path);
    if (st != STACL_OK) { rc = cli_fail("encode-text", st); goto done; }
    const stacl_text_config *c = stacl_model_text_config(model);
    if (!c) { /* the library's message says why */
        stacl_text_state *probe = NULL;
        rc = cli_fail("encode-text", stacl_text_state_create(&probe, model, 1));
        goto done;
    }
    if (stacl_tokenizer_vocab_size(tok) > c->vocab_size) {
        fprintf(stderr, "stacl encode-text: error: the tokenizer has %d tokens but the model's token embedding "
                "only %d rows: a vocabulary that does not belong to this model\n",
                stacl_tokenizer_vocab_size(tok), c->vocab_size);
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    rows = malloc(texts.n * (size_t)c->context_length * sizeof *rows);
    if (!rows) { rc = cli_fail("encode-text", STACL_ERR_OUT_OF_MEMORY); goto done; }
    for (size_t i = 0; i < texts.n; i++) {
        st = stacl_tokenize(tok, texts.v[i], c->context_length, truncate, rows + i * (size_t)c->context_length);
        if (st != STACL_OK) {
            fprintf(stderr, "stacl encode-text: error: text %zu: %s%s\n", i + 1, stacl_last_error(),
                    strstr(stacl_last_error(), "context length") ? " (pass --truncate to cut it)" : "");
            rc = CLI_EXIT_FAILURE;
            goto done;
        }
    }
    const size_t dim = stacl_text_output_size(model, 1);
    emb = malloc(texts.n * dim * sizeof *emb);
    if (!emb) { rc = cli_fail("encode-text", STACL_ERR_OUT_OF_MEMORY); goto done; }
    double t0 = cli_now_ms();
    if ((rc = encode(model, rows, texts.n, batch, emb)) != 0) goto done;
    double ms = cli_now_ms() - t0;
    if (normalize)
        for (size_t i = 0; i < texts.n; i++) {
            float *e = emb + i * dim;
            double ss = 0.0;
            for (size_t j = 0; j < dim; j++) ss += (double)e[j] * e[j];
            float inv = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (size_t j = 0; j < dim; j++) e[j] *= inv;
        }
    const int64_t shape[2] = {(int64_t)texts.n, (int64_t)dim};
    if ((st = stacl_npy_write_f32(out_path, emb, shape, 2)) != STACL_OK) { rc = cli_fail("encode-text", st); goto done; }
    if (!quiet)
        printf("encoded %zu text%s in %.1f ms on %s: %s [%zu, %zu]%s\n", texts.n, texts.n == 1 ? "" : "s", ms,
               stacl_ctx_device(ctx)->name, out_path, texts.n, dim, normalize ? " (L2-normalized)" : "");
done:
    free(emb);
    free(rows);
    free(positional);
    cli_texts_free(&texts);
    stacl_tokenizer_free(tok);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return rc;
}
