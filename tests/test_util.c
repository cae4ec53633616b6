/* test_util.c: see test_util.h. */
#include "test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "npy.h"
#include "stacl.h"

extern char **environ;

const char *tu_make_temp_dir(void) {
    static char path[512];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/stacl-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(path)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

void tu_remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

char tu_group_dir[512];

int tu_group_setup(void **state) {
    (void)state;
    snprintf(tu_group_dir, sizeof tu_group_dir, "%s", tu_make_temp_dir());
    return 0;
}

int tu_group_teardown(void **state) {
    (void)state;
    tu_remove_tree(tu_group_dir);
    return 0;
}

const char *tu_path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tu_group_dir, name);
    return buf;
}

int tu_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

void tu_expect_message(const char *a, const char *b) {
    const char *m = stacl_last_error();
    if (!strstr(m, a) || (b && !strstr(m, b))) {
        print_error("error message \"%s\"\n  should mention \"%s\"%s%s%s\n", m, a, b ? " and \"" : "", b ? b : "",
                    b ? "\"" : "");
        fail();
    }
}

int tu_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

char *tu_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown) { free(buf); buf = NULL; break; }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = '\0';
    if (n) *n = len;
    return buf;
}

static char *slurp_fd(int fd) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while (buf && (r = read(fd, buf + len, cap - len)) > 0) {
        len += (size_t)r;
        if (len == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (!grown) { free(buf); return NULL; }
            buf = grown;
            cap *= 2;
        }
    }
    if (buf) buf[len] = '\0';
    return buf;
}

int tu_run(const char *const *argv, const char *const *extra_env, char **out, char **err) {
    /* stdout and stderr go to temporary files so that large outputs cannot
     * dead-lock on a pipe. */
    char out_path[] = "/tmp/stacl-run-out-XXXXXX", err_path[] = "/tmp/stacl-run-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    if (out_fd < 0 || err_fd < 0) abort();
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env]) n_env++;
    while (extra_env && extra_env[n_extra]) n_extra++;
    char **env = calloc(n_env + n_extra + 1, sizeof *env);
    if (!env) abort();
    size_t k = 0;
    for (size_t i = 0; i < n_extra; i++) env[k++] = (char *)extra_env[i];
    for (size_t i = 0; i < n_env; i++) {
        int overridden = 0;
        for (size_t j = 0; j < n_extra; j++) {
            const char *eq = strchr(extra_env[j], '=');
            size_t key_len = eq ? (size_t)(eq - extra_env[j]) : strlen(extra_env[j]);
            if (strncmp(environ[i], extra_env[j], key_len) == 0 && environ[i][key_len] == '=') overridden = 1;
        }
        if (!overridden) env[k++] = environ[i];
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &actions, NULL, (char *const *)argv, env);
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    int status = 0, code;
    if (rc != 0) {
        code = 127;
    } else {
        waitpid(pid, &status, 0);
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    lseek(out_fd, 0, SEEK_SET);
    lseek(err_fd, 0, SEEK_SET);
    if (out) *out = slurp_fd(out_fd);
    if (err) *err = slurp_fd(err_fd);
    close(out_fd);
    close(err_fd);
    unlink(out_path);
    unlink(err_path);
    return code;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

double tu_max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = fabs((double)x[i]);
        if (v > m) m = v;
    }
    return m;
}

void tu_fill_random(float *x, size_t n, uint64_t seed, float scale) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = scale * (float)(((double)(s >> 11) / 9007199254740992.0) * 2.0 - 1.0);
    }
}

#ifdef STACL_TEST_DATA
void tu_load_npy(const char *rel, stacl_npy *out) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", STACL_TEST_DATA, rel);
    if (stacl_npy_read_f32(path, out) != STACL_OK) fail_msg("%s", stacl_last_error());
}
#endif

double tu_check_golden(const char *label, const char *name, const float *got, const stacl_npy *golden, size_t n) {
    assert_int_equal(n, golden->numel);
    double err = tu_max_abs_diff(got, golden->data, n);
    double scale = tu_max_abs(golden->data, n);
    double tol = TU_GOLDEN_REL_TOL * (scale > 1.0 ? scale : 1.0);
    printf("  %-16s %-20s max abs err %.3e (scale %.3f, tol %.1e)\n", label, name, err, scale, tol);
    if (!(err <= tol)) fail_msg("%s/%s: max abs error %.3e exceeds %.1e", label, name, err, tol);
    return err;
}
