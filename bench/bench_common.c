/* bench_common.c: see bench_common.h. */
#include "bench_common.h"
#include "ops.h"
#include "random_clip.h"
#include "tune.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int bench_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: usage error: ", prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", prog);
    va_end(ap);
    return BENCH_EXIT_USAGE;
}

int bench_next(bench_args *a, const bench_opt *opts, int n_opts, const char **value) {
    if (a->i >= a->argc) return -1;
    const char *arg = a->argv[a->i++];
    if (strcmp(arg, "-h") == 0) arg = "--help";
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (int k = 0; k < n_opts; k++) {
        if (strlen(opts[k].name) != len || strncmp(opts[k].name, arg, len) != 0) continue;
        *value = NULL;
        if (!opts[k].takes_value) {
            if (eq) {
                bench_usage_error(a->prog, "option %s takes no value", opts[k].name);
                return -2;
            }
            return k;
        }
        if (eq) {
            *value = eq + 1;
        } else {
            if (a->i >= a->argc) {
                bench_usage_error(a->prog, "option %s needs a value", opts[k].name);
                return -2;
            }
            *value = a->argv[a->i++];
        }
        return k;
    }
    if (strncmp(arg, "-", 1) == 0) bench_usage_error(a->prog, "unknown option '%s'", arg);
    else bench_usage_error(a->prog, "unexpected argument '%s'", arg);
    return -2;
}

int bench_int(const char *prog, const char *opt, const char *text, long lo, long hi, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v < lo || v > hi) {
        bench_usage_error(prog, "%s must be an integer in [%ld, %ld], got '%s'", opt, lo, hi, text);
        return 0;
    }
    *out = (int)v;
    return 1;
}

int bench_fail(const char *prog, stacl_status st) {
    const char *msg = stacl_last_error();
    fprintf(stderr, "%s: error: %s: %s\n", prog, stacl_status_str(st), msg && *msg ? msg : "(no details)");
    return BENCH_EXIT_FAILURE;
}

int bench_check_writable(const char *prog, const char *path) {
    char *copy = strdup(path);
    if (!copy) {
        fprintf(stderr, "%s: error: out of host memory\n", prog);
        return BENCH_EXIT_FAILURE;
    }
    const char *dir = dirname(copy);
    int ok = access(dir, W_OK | X_OK) == 0;
    if (!ok) fprintf(stderr, "%s: error: cannot write '%s': folder '%s': %s\n", prog, path, dir, strerror(errno));
    free(copy);
    return ok ? 0 : BENCH_EXIT_FAILURE;
}

double bench_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(const double *x, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return x[0];
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, compare_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

double bench_min(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] < m ? x[i] : m;
    return m;
}

double bench_max(const double *x, int n) {
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void bench_host_info(bench_host *h) {
    memset(h, 0, sizeof *h);
    h->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(h->cpu, sizeof h->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            const char *v = strchr(line, ':');
            if (!v) continue;
            v++;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(h->cpu, sizeof h->cpu, "%s", v);
            h->cpu[strcspn(h->cpu, "\n")] = '\0';
            break;
        }
        fclose(f);
    }
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(h->date, sizeof h->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cJSON *bench_json_host(const bench_host *h) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "nproc", (double)h->nproc);
    cJSON_AddStringToObject(o, "cpu", h->cpu);
    cJSON_AddStringToObject(o, "date", h->date);
    cJSON_AddStringToObject(o, "stacl_version", stacl_version());
    cJSON_AddStringToObject(o, "stacl_git_revision", stacl_git_revision());
    return o;
}

cJSON *bench_json_device(const stacl_device_info *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", d->index);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "platform", d->platform);
    cJSON_AddStringToObject(o, "device_version", d->device_version);
    cJSON_AddStringToObject(o, "driver_version", d->driver_version);
    cJSON_AddNumberToObject(o, "compute_units", d->compute_units);
    return o;
}

cJSON *bench_json_array(const double *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(x[i]));
    return a;
}

int bench_json_write(const char *prog, const char *path, const cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) {
        fprintf(stderr, "%s: error: out of host memory formatting the JSON report\n", prog);
        return BENCH_EXIT_FAILURE;
    }
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) {
        fprintf(stderr, "%s: error: cannot open '%s' for writing: %s\n", prog, path, strerror(errno));
        rc = BENCH_EXIT_FAILURE;
    } else {
        int bad = fputs(text, f) == EOF || fputc('\n', f) == EOF;
        bad |= fclose(f) != 0;
        if (bad) {
            fprintf(stderr, "%s: error: writing '%s' failed: %s\n", prog, path, strerror(errno));
            rc = BENCH_EXIT_FAILURE;
        }
    }
    cJSON_free(text);
    return rc;
}

const char *bench_tuning(const stacl_ctx *ctx) {
    static char text[3200];
    const stacl_tune_state *ts = stacl_tune_current(ctx);
    snprintf(text, sizeof text, "GEMM engine %s; CLBlast tuning: %s%s%s", stacl_gemm_engine_name(ctx), ts->source,
             ts->note[0] ? "; " : "", ts->note);
    return text;
}

int bench_temp_dir(const char *prog, char *dir, size_t cap) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, cap, "%s/stacl-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "%s: error: cannot create a temporary folder '%s'\n", prog, dir);
        return 0;
    }
    return 1;
}

cJSON *bench_json_model(const stacl_vision_config *c) {
    cJSON *mc = cJSON_CreateObject();
    cJSON_AddNumberToObject(mc, "width", c->width);
    cJSON_AddNumberToObject(mc, "layers", c->layers);
    cJSON_AddNumberToObject(mc, "heads", c->heads);
    cJSON_AddNumberToObject(mc, "mlp_width", c->mlp_width);
    cJSON_AddNumberToObject(mc, "patch", c->patch);
    cJSON_AddNumberToObject(mc, "image_size", c->image_size);
    cJSON_AddNumberToObject(mc, "proj_dim", c->proj_dim);
    cJSON_AddNumberToObject(mc, "tokens", stacl_vision_tokens(c));
    return mc;
}
