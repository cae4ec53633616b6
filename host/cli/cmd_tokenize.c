/* cmd_tokenize.c: `stacl tokenize`: CLIP's BPE token ids of texts, 77 per
 * text as clip.tokenize() returns them, on stdout or into an int32 .npy. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy.h"

static void usage(void) {
    printf("usage: stacl tokenize [--vocab PATH] [--model DIR] [--texts FILE] [--truncate] [--npy OUT] TEXT...\n\n"
           "Prints, for each text, its %d CLIP token ids (<|startoftext|>, the text, <|endoftext|>, zero\n"
           "padding) as space-separated integers on one line, and nothing else.\n\n"
           "  --vocab PATH  bpe_simple_vocab_16e6.txt.gz (OpenAI) or a folder with vocab.json + merges.txt\n"
           "                (Hugging Face); default: the --model folder's files, else the OpenAI file\n"
           "                installed with stacl\n"
           "  --model DIR   a model folder whose vocabulary files to use (see --vocab)\n"
           "  --texts FILE  UTF-8 file, one text per line (read before the TEXT arguments)\n"
           "  --truncate    cut texts longer than the context (the row then ends with <|endoftext|>);\n"
           "                without it a text that does not fit is an error, as in CLIP\n"
           "  --npy OUT     write int32 [N, %d] to OUT instead of printing\n"
           "  --            the remaining arguments are texts, even if they start with --\n",
           STACL_CONTEXT_LENGTH, STACL_CONTEXT_LENGTH);
}

int cmd_tokenize(int argc, char **argv) {
    static const cli_opt opts[] = {{"--vocab", 1}, {"--model", 1}, {"--texts", 1}, {"--truncate", 0},
                                   {"--npy", 1},   {"--help", 0}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "tokenize", 0};
    const char *vocab = NULL, *model = NULL, *texts_file = NULL, *npy = NULL, *value;
    int truncate = 0, k = 0, rc = 0;
    cli_texts texts = {0};
    stacl_tokenizer *tok = NULL;
    int32_t *rows = NULL;
    /* Options, and texts as positional arguments (a.i moves past both). */
    const char **positional = calloc((size_t)argc + 1, sizeof *positional);
    size_t n_pos = 0;
    if (!positional) return cli_fail("tokenize", STACL_ERR_OUT_OF_MEMORY);
    while ((k = cli_next_arg(&a, opts, n_opts, &value)) != -1 && k != -2) {
        if (k == CLI_POSITIONAL) {
            positional[n_pos++] = value;
            continue;
        }
        switch (k) {
        case 0: vocab = value; break;
        case 1: model = value; break;
        case 2: texts_file = value; break;
        case 3: truncate = 1; break;
        case 4: npy = value; break;
        case 5: usage(); free(positional); return 0;
        }
    }
    if (k == -2) { rc = CLI_EXIT_USAGE; goto done; }
    if (texts_file && (rc = cli_texts_read_file("tokenize", texts_file, &texts)) != 0) goto done;
    for (size_t i = 0; i < n_pos; i++)
        if (!cli_texts_add(&texts, positional[i], strlen(positional[i]))) { rc = cli_fail("tokenize", STACL_ERR_OUT_OF_MEMORY); goto done; }
    if (texts.n == 0) { rc = cli_usage_error("tokenize", "no texts: give TEXT arguments or --texts FILE"); goto done; }
    if (npy && !cli_check_writable("tokenize", npy)) { rc = CLI_EXIT_FAILURE; goto done; }
    if ((rc = cli_load_tokenizer("tokenize", vocab, model, &tok)) != 0) goto done;
    if ((rc = cli_tokenize_all("tokenize", tok, &texts, truncate, &rows)) != 0) goto done;
    if (npy) {
        const int64_t shape[2] = {(int64_t)texts.n, STACL_CONTEXT_LENGTH};
        stacl_status st = stacl_npy_write_i32(npy, rows, shape, 2);
        if (st != STACL_OK) { rc = cli_fail("tokenize", st); goto done; }
    } else {
        for (size_t i = 0; i < texts.n; i++)
            for (int j = 0; j < STACL_CONTEXT_LENGTH; j++)
                printf("%d%c", rows[i * STACL_CONTEXT_LENGTH + j], j + 1 < STACL_CONTEXT_LENGTH ? ' ' : '\n');
    }
done:
    free(rows);
    free(positional);
    cli_texts_free(&texts);
    stacl_tokenizer_free(tok);
    return rc;
}
