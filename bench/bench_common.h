/* bench_common.h: what the stacl benchmarks share: option scanning, clocks,
 * order statistics, a description of the machine, error reporting in the
 * library's words (stacl_last_error()) and JSON output. Exit codes: 0 ok,
 * 1 failure (including a failed validation), 2 usage error. */
#ifndef STACL_BENCH_COMMON_H
#define STACL_BENCH_COMMON_H

#include <stddef.h>

#include <cJSON.h>

#include "stacl.h"

#define BENCH_EXIT_FAILURE 1
#define BENCH_EXIT_USAGE 2

typedef struct bench_opt {
    const char *name; /* "--runs" */
    int takes_value;
} bench_opt;

typedef struct bench_args {
    int argc;
    char **argv;
    int i;            /* next index into argv */
    const char *prog; /* for messages */
} bench_args;

/* Returns the index in opts of the next option ("--name value", "--name=value"
 * or a flag; "-h" is taken as "--help" when opts has one), -1 at the end, -2
 * on a usage error (already reported on stderr). */
int bench_next(bench_args *a, const bench_opt *opts, int n_opts, const char **value);
/* Parses a decimal int in [lo, hi]; reports a usage error and returns 0 on failure. */
int bench_int(const char *prog, const char *opt, const char *text, long lo, long hi, int *out);
int bench_usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "PROG: error: <status name>: <stacl_last_error()>"; returns BENCH_EXIT_FAILURE. */
int bench_fail(const char *prog, stacl_status st);
/* Fails early (before any work) when the folder that would hold path cannot be written. */
int bench_check_writable(const char *prog, const char *path);

/* Monotonic wall clock in milliseconds. */
double bench_now_ms(void);
/* Makes a fresh folder under $TMPDIR (or /tmp) into dir; 0 after printing
 * the error. */
int bench_temp_dir(const char *prog, char *dir, size_t cap);
/* Order statistics of x[0..n-1] (n >= 1); x is not modified. The median of an
 * even count is the mean of the two middle values. */
double bench_median(const double *x, int n);
double bench_min(const double *x, int n);
double bench_max(const double *x, int n);

/* The machine: online CPUs and /proc/cpuinfo's first "model name". */
typedef struct bench_host {
    long nproc;
    char cpu[160];
    char date[32]; /* UTC, ISO 8601 */
} bench_host;
void bench_host_info(bench_host *h);

/* The CLBlast tuning the context runs with ("builtin", "cache FILE", "off
 * ...", plus why a set was refused), for the header and the JSON. */
const char *bench_tuning(const stacl_ctx *ctx);

/* JSON helpers (cJSON). */
cJSON *bench_json_host(const bench_host *h);
cJSON *bench_json_device(const stacl_device_info *d);
/* The vision tower's shape: width, layers, heads, mlp_width, patch, image_size, proj_dim, tokens. */
cJSON *bench_json_model(const stacl_vision_config *c);
cJSON *bench_json_array(const double *x, int n);
/* Writes root (pretty-printed) to path; reports errors; returns an exit code. */
int bench_json_write(const char *prog, const char *path, const cJSON *root);

#endif
