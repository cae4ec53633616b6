/* cli_text.c: what the text commands (tokenize, encode-text) share: the
 * vocabulary lookup order and gathering texts from arguments and files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_load_tokenizer_at(const char *command, const char *vocab, const char *model, stacl_tokenizer **out,
                          char *path, size_t cap) {
    stacl_status st;
    if (vocab) {
        snprintf(path, cap, "%s", vocab);
    } else if ((st = stacl_tokenizer_default_vocab(model, path, cap)) != STACL_OK) {
        return cli_fail(command, st);
    }
    st = stacl_tokenizer_load(out, path);
    return st == STACL_OK ? 0 : cli_fail(command, st);
}

int cli_load_tokenizer(const char *command, const char *vocab, const char *model, stacl_tokenizer **out) {
    char path[4096];
    return cli_load_tokenizer_at(command, vocab, model, out, path, sizeof path);
}

int cli_open_joint_model(const char *command, const char *device, const char *model_path, stacl_ctx **ctx,
                         stacl_model **model) {
    stacl_status st;
    if ((st = stacl_ctx_create(ctx, device)) != STACL_OK || (st = stacl_model_load(model, *ctx, model_path)) != STACL_OK)
        return cli_fail(command, st);
    if (!stacl_model_vision_config(*model)->proj_dim) {
        fprintf(stderr, "stacl %s: error: the model has no visual projection, so image and text embeddings "
                "do not share a space\n", command);
        return CLI_EXIT_FAILURE;
    }
    return 0;
}

void cli_texts_free(cli_texts *t) {
    for (size_t i = 0; i < t->n; i++) free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

int cli_texts_add(cli_texts *t, const char *text, size_t len) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **v = realloc(t->v, cap * sizeof *v);
        if (!v) return 0;
        t->v = v;
        t->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, text, len);
    copy[len] = '\0';
    t->v[t->n++] = copy;
    return 1;
}

int cli_texts_read_file(const char *command, const char *path, cli_texts *t) {
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "stacl %s: error: cannot open '%s': %s\n", command, path, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        n++;
        if (len > 0 && line[len - 1] == '\n') len--;
        if (len > 0 && line[len - 1] == '\r') len--; /* CRLF files */
        if (memchr(line, '\0', (size_t)len)) {
            fprintf(stderr, "stacl %s: error: %s: line %zu contains a NUL byte\n", command, path, n);
            rc = CLI_EXIT_FAILURE;
            break;
        }
        if (!cli_texts_add(t, line, (size_t)len)) {
            fprintf(stderr, "stacl %s: error: out of host memory\n", command);
            rc = CLI_EXIT_FAILURE;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int cli_tokenize_all(const char *command, stacl_tokenizer *tok, const cli_texts *t, int truncate, int32_t **rows) {
    *rows = malloc((t->n ? t->n : 1) * STACL_CONTEXT_LENGTH * sizeof **rows);
    if (!*rows) {
        fprintf(stderr, "stacl %s: error: out of host memory\n", command);
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < t->n; i++) {
        stacl_status st = stacl_tokenize(tok, t->v[i], STACL_CONTEXT_LENGTH, truncate, *rows + i * STACL_CONTEXT_LENGTH);
        if (st != STACL_OK) {
            fprintf(stderr, "stacl %s: error: text %zu: %s%s\n", command, i + 1, stacl_last_error(),
                    st == STACL_ERR_INVALID_ARG && strstr(stacl_last_error(), "context length") ? " (pass --truncate to cut it)" : "");
            free(*rows);
            *rows = NULL;
            return CLI_EXIT_FAILURE;
        }
    }
    return 0;
}
