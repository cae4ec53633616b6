/* test_util.h: helpers shared by the CMocka tests (temporary folders, raw
 * files, running the CLI, error-message checks, tolerance checks). */
#ifndef STACL_TEST_UTIL_H
#define STACL_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh folder under $TMPDIR (or /tmp); returns a static path that
 * stays valid until the next call. Aborts the test on failure. */
const char *tu_make_temp_dir(void);
/* Removes a folder and everything in it (best effort). */
void tu_remove_tree(const char *path);
/* Writes bytes to path; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'd, NUL-terminated); NULL on failure. */
char *tu_read_file(const char *path, size_t *n);
/* Runs `argv` (argv[0] = program path) with stdout and stderr captured into
 * malloc'd strings (may pass NULL to discard). extra_env: NULL-terminated
 * "K=V" list added to the environment, may be NULL. Returns the exit status
 * (or 128+signal). */
int tu_run(const char *const *argv, const char *const *extra_env, char **out, char **err);

/* ---- a temporary folder for a group of tests ----------------------------- */

/* The folder made by tu_group_setup ("" before it runs). */
extern char tu_group_dir[512];
/* CMocka group fixtures: tu_group_setup makes a fresh tu_group_dir,
 * tu_group_teardown removes it and everything in it. */
int tu_group_setup(void **state);
int tu_group_teardown(void **state);
/* Writes "<tu_group_dir>/<name>" into buf (cap bytes); returns buf. */
const char *tu_path_in(char *buf, size_t cap, const char *name);
#define TU_PATH(buf, name) tu_path_in(buf, sizeof buf, name)
/* 1 if something exists at path (stat succeeds), else 0. */
int tu_exists(const char *path);
/* Fails the test unless stacl_last_error() mentions a, and b unless b is
 * NULL. */
void tu_expect_message(const char *a, const char *b);

/* Max |a-b| over n values; NaN anywhere gives INFINITY (a NaN never passes). */
double tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Max |x| over n values. */
double tu_max_abs(const float *x, size_t n);
/* Deterministic pseudo-random floats in [-scale, scale]. */
void tu_fill_random(float *x, size_t n, uint64_t seed, float scale);

/* ---- golden comparisons (tests/golden/, tests/cli/) ----
 * Tolerance for stacl (float32) against the float64 PyTorch goldens:
 * max |got - golden| <= TU_GOLDEN_REL_TOL * max(1, max |golden|); the
 * reasoning is in tests/golden/test_golden.c. */
#define TU_GOLDEN_REL_TOL 1e-4
struct stacl_npy;
/* Reads STACL_TEST_DATA/<rel> (float32 .npy) or fails the test. */
void tu_load_npy(const char *rel, struct stacl_npy *out);
/* Checks got[0..n) against golden (n must be its size) with the golden
 * tolerance; prints "label name: error, scale, tolerance"; fails the test
 * when it is exceeded (NaN always fails). Returns the max abs error. */
double tu_check_golden(const char *label, const char *name, const float *got, const struct stacl_npy *golden,
                       size_t n);

#endif
