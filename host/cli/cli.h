/* cli.h: what the stacl commands share: the command table entry points,
 * option parsing and error reporting. Exit codes: 0 ok, 1 failure, 2 usage. */
#ifndef STACL_CLI_H
#define STACL_CLI_H

#include <stdio.h>

#include "stacl.h"

#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2

int cmd_devices(int argc, char **argv);
int cmd_forward(int argc, char **argv);
int cmd_build_binary(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_encode_text(int argc, char **argv);
int cmd_zeroshot(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_frames(int argc, char **argv);
int cmd_make_dataset(int argc, char **argv);
int cmd_check_dataset(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_train_demo(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* Option scanning over argv[1..]: "--name value", "--name=value" or a flag. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;               /* next index */
    const char *command; /* for messages */
    int only_positional; /* a bare "--" was seen: the rest are positional */
} cli_args;

typedef struct cli_opt {
    const char *name;  /* "--model" */
    int takes_value;
} cli_opt;

/* Returns the index in opts of the next option (value in *value), -1 at the
 * end, -2 on a usage error (already reported). Positional arguments are
 * refused: no command takes any yet. */
int cli_next(cli_args *a, const cli_opt *opts, int n_opts, const char **value);
/* Like cli_next, for commands that take positional arguments (texts,
 * videos): a non-option argument comes back as CLI_POSITIONAL with *value
 * set to it, anywhere on the line; after a bare "--" every argument is
 * positional. */
#define CLI_POSITIONAL (-3)
int cli_next_arg(cli_args *a, const cli_opt *opts, int n_opts, const char **value);
/* Parses an int in [lo, hi]; reports a usage error and returns 0 on failure. */
int cli_int(const char *command, const char *opt, const char *text, long lo, long hi, int *out);

/* Prints "stacl CMD: error: <last error>" with the status name. */
int cli_fail(const char *command, stacl_status st);
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fails early (before any work) when the folder that would hold path is not
 * writable. */
int cli_check_writable(const char *command, const char *path);

/* Runs `clips` clips of `frames` frames through the vision tower, timing
 * each (wall and device time), after `warmup` untimed passes. Returns an
 * exit code. */
int cli_forward_clips(stacl_model *model, const float *pixels, int clips, int frames, stacl_output kind, float *out,
                      int warmup, int quiet, int profile);

/* ---- text commands (cli_text.c) ---- */
typedef struct cli_texts {
    char **v;
    size_t n, cap;
} cli_texts;
/* Loads the vocabulary: vocab if given, else the model folder's, else the
 * one installed with stacl. Returns an exit code (message printed). */
int cli_load_tokenizer(const char *command, const char *vocab, const char *model, stacl_tokenizer **out);
/* The same, also giving the vocabulary path it chose (a cache key). */
int cli_load_tokenizer_at(const char *command, const char *vocab, const char *model, stacl_tokenizer **out,
                          char *path, size_t cap);
/* Opens the device and a CLIP model whose image and text embeddings share a
 * space (it must have a visual projection), for zeroshot and eval. */
int cli_open_joint_model(const char *command, const char *device, const char *model_path, stacl_ctx **ctx,
                         stacl_model **model);
int cli_texts_add(cli_texts *t, const char *text, size_t len); /* 0: out of memory */
/* Appends every line of a UTF-8 file (one text per line). Returns an exit code. */
int cli_texts_read_file(const char *command, const char *path, cli_texts *t);
void cli_texts_free(cli_texts *t);
/* rows: malloc'd [n, 77] int32. Returns an exit code (message printed). */
int cli_tokenize_all(const char *command, stacl_tokenizer *tok, const cli_texts *t, int truncate, int32_t **rows);

double cli_now_ms(void);
int cli_compare_double(const void *a, const void *b);

#endif
