/* cli_util.c: option parsing, error reporting and small helpers shared by
 * the commands. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "stacl %s: error: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'stacl %s --help')\n", command);
    return CLI_EXIT_USAGE;
}

int cli_fail(const char *command, stacl_status st) {
    const char *msg = stacl_last_error();
    fprintf(stderr, "stacl %s: error: %s\n", command, *msg ? msg : stacl_status_str(st));
    return CLI_EXIT_FAILURE;
}

int cli_next(cli_args *a, const cli_opt *opts, int n_opts, const char **value) {
    if (a->i >= a->argc) return -1;
    const char *arg = a->argv[a->i++];
    if (strncmp(arg, "--", 2) != 0) {
        cli_usage_error(a->command, "unexpected argument '%s'", arg);
        return -2;
    }
    const char *eq = strchr(arg, '=');
    size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (int k = 0; k < n_opts; k++) {
        if (strlen(opts[k].name) != name_len || strncmp(opts[k].name, arg, name_len) != 0) continue;
        *value = NULL;
        if (opts[k].takes_value) {
            if (eq) {
                *value = eq + 1;
            } else if (a->i < a->argc) {
                *value = a->argv[a->i++];
            } else {
                cli_usage_error(a->command, "option %s needs a value", opts[k].name);
                return -2;
            }
        } else if (eq) {
            cli_usage_error(a->command, "option %.*s takes no value", (int)name_len, arg);
            return -2;
        }
        return k;
    }
    cli_usage_error(a->command, "unknown option '%.*s'", (int)name_len, arg);
    return -2;
}

int cli_next_arg(cli_args *a, const cli_opt *opts, int n_opts, const char **value) {
    while (a->i < a->argc && !a->only_positional && strcmp(a->argv[a->i], "--") == 0) {
        a->only_positional = 1;
        a->i++;
    }
    if (a->i < a->argc && (a->only_positional || strncmp(a->argv[a->i], "--", 2) != 0)) {
        *value = a->argv[a->i++];
        return CLI_POSITIONAL;
    }
    return cli_next(a, opts, n_opts, value);
}

int cli_int(const char *command, const char *opt, const char *text, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !end || *end || end == text || v < lo || v > hi) {
        cli_usage_error(command, "%s expects an integer in [%ld, %ld], got '%s'", opt, lo, hi, text);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int cli_check_writable(const char *command, const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) dir[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "stacl %s: error: cannot write '%s': folder '%s' %s\n", command, path, dir,
                errno == ENOENT ? "does not exist" : strerror(errno));
        return 0;
    }
    return 1;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

int cli_compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
