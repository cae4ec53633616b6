/* test_cli_train.c: `stacl train` as a user runs it, on a generated
 * time-reversed-pairs dataset and a tiny random model:
 * - a run writes its folder (adapter, state, classes, config, log), and the
 *   adapter loads in `stacl forward --adapter` (logits of the classes);
 * - interrupted with SIGINT mid-run, it saves the last completed step and
 *   exits 130; `--resume` then finishes with an adapter.safetensors
 *   byte-identical to an uninterrupted run's (same data order, dropout
 *   masks, schedule);
 * - a run folder that holds a run is refused without --resume; a finished
 *   run resumes to "already finished"; bad options fail with a message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "npy.h"
#include "test_util.h"

extern char **environ;

static char model[600], data[600], train_csv[700], val_csv[700], classes[700];

static int run_v(char **out, char **err, const char *const *args) {
    const char *argv[64] = {STACL_CLI_PATH};
    int n = 1;
    while (n < 63 && args[n - 1]) argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    int code = tu_run(argv, NULL, out, err);
    if (code != 0 && err && *err) printf("  (exit %d) %.2000s\n", code, *err);
    return code;
}

#define TRAIN_ARGS(outdir)                                                                                        \
    "train", "--model", model, "--train", train_csv, "--val", val_csv, "--classes", classes, "--out", outdir,      \
        "--adapter-width", "16", "--adapter-layers", "2", "--pre-attn", "--pre-mlp", "--num-frames", "4",          \
        "--epochs", "3", "--warmup-epochs", "1", "--batch", "4", "--micro-batch", "2", "--lr", "5e-3", "--seed",  \
        "7", "--save-every", "2", "--workers", "1"

static int setup(void **state) {
    if (tu_group_setup(state) != 0) return -1;
    snprintf(model, sizeof model, "%s/model", tu_group_dir);
    snprintf(data, sizeof data, "%s/data", tu_group_dir);
    snprintf(train_csv, sizeof train_csv, "%s/train.csv", data);
    snprintf(val_csv, sizeof val_csv, "%s/val.csv", data);
    snprintf(classes, sizeof classes, "%s/classes.csv", data);
    const char *gen[] = {"gen-model", "--out", model, "--preset", "tiny", "--seed", "3", NULL};
    const char *mk[] = {"make-dataset", "--out", data, "--set", "simple", "--per-class", "3", "--val-per-class", "1",
                        "--frames", "4", "--size", "32", "--seed", "5", NULL};
    return run_v(NULL, NULL, gen) == 0 && run_v(NULL, NULL, mk) == 0 ? 0 : -1;
}

static char *read_all(const char *dir, const char *name, size_t *n) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_read_file(p, n);
}

static void test_full_run(void **s) {
    (void)s;
    char dir[600], *out = NULL, *err = NULL;
    TU_PATH(dir, "full");
    const char *args[] = {TRAIN_ARGS(dir), NULL};
    assert_int_equal(run_v(&out, &err, args), 0);
    assert_non_null(strstr(err, "validation after epoch 3"));
    assert_non_null(strstr(err, "ETA"));
    free(out), free(err);
    const char *files[] = {"adapter.safetensors", "train_state.safetensors", "classes.csv", "config.json",
                           "log.jsonl"};
    for (int i = 0; i < 5; i++) {
        size_t n = 0;
        char *c = read_all(dir, files[i], &n);
        if (!c || !n) fail_msg("%s/%s missing or empty", dir, files[i]);
        free(c);
    }
    size_t n = 0;
    char *log = read_all(dir, "log.jsonl", &n);
    int steps = 0;
    for (char *p = log; (p = strstr(p, "\"type\":\"step\"")); p++) steps++;
    assert_int_equal(steps, 3 * 6); /* 24 clips, batch 4: 6 steps per epoch */
    free(log);
    /* The adapter works for inference: logits of the 8 classes. */
    char ck[700], x[700], y[700], clip[700];
    snprintf(ck, sizeof ck, "%s/adapter.safetensors", dir);
    snprintf(clip, sizeof clip, "%s/videos/val_00_0000.mp4", data);
    TU_PATH(x, "x.npy");
    TU_PATH(y, "y.npy");
    const char *fr[] = {"frames", clip, "--out", x, "--num-frames", "4", "--size", "32", "--quiet", NULL};
    assert_int_equal(run_v(NULL, NULL, fr), 0);
    const char *fw[] = {"forward", "--model", model, "--adapter", ck, "--input", x, "--out", y, NULL};
    assert_int_equal(run_v(NULL, NULL, fw), 0);
    stacl_npy logits = {0};
    assert_int_equal(stacl_npy_read_f32(y, &logits), 0);
    assert_int_equal(logits.numel, 8);
    stacl_npy_release(&logits);
    /* Resuming a finished run does nothing, successfully. */
    const char *res[] = {"train", "--resume", dir, NULL};
    assert_int_equal(run_v(&out, &err, res), 0);
    assert_non_null(strstr(err, "already finished"));
    free(out), free(err);
    /* A folder with a run is not overwritten. */
    assert_int_equal(run_v(&out, &err, args), 1);
    assert_non_null(strstr(err, "--resume"));
    free(out), free(err);
}

/* Starts `stacl train` in the background, sends SIGINT once its log has
 * `lines` step lines, and returns the exit code. */
static int run_interrupted(const char *const *args, const char *dir, int lines) {
    const char *argv[64] = {STACL_CLI_PATH};
    int n = 1;
    while (args[n - 1]) argv[n] = args[n - 1], n++;
    argv[n] = NULL;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0); /* O_WRONLY */
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int sent = 0, status = 0;
    for (int i = 0; i < 6000; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid) break;
        size_t len = 0;
        char *log = read_all(dir, "log.jsonl", &len);
        int k = 0;
        for (char *p = log; p && (p = strstr(p, "\"type\":\"step\"")); p++) k++;
        free(log);
        if (!sent && k >= lines) {
            kill(pid, SIGINT);
            sent = 1;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    if (!sent) fail_msg("the run ended before it could be interrupted");
    if (waitpid(pid, &status, 0) != pid && !WIFEXITED(status)) fail_msg("waitpid");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_interrupt_and_resume(void **s) {
    (void)s;
    char full[600], part[600];
    TU_PATH(full, "full2");
    TU_PATH(part, "part");
    const char *a_full[] = {TRAIN_ARGS(full), NULL};
    assert_int_equal(run_v(NULL, NULL, a_full), 0);
    const char *a_part[] = {TRAIN_ARGS(part), NULL};
    assert_int_equal(run_interrupted(a_part, part, 3), 130);
    size_t n_state = 0;
    char *state = read_all(part, "train_state.safetensors", &n_state);
    assert_non_null(state); /* the interruption saved a checkpoint */
    free(state);
    char *out = NULL, *err = NULL;
    const char *res[] = {"train", "--resume", part, NULL};
    assert_int_equal(run_v(&out, &err, res), 0);
    assert_non_null(strstr(err, "resuming at epoch"));
    free(out), free(err);
    size_t na = 0, nb = 0;
    char *a = read_all(full, "adapter.safetensors", &na), *b = read_all(part, "adapter.safetensors", &nb);
    assert_true(a && b);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na); /* exactly where the uninterrupted run ends */
    free(a);
    free(b);
}

/* Fixed point: interrupted + resumed = uninterrupted with the fp32 master
 * in the state (master) and without it (sr); the checkpoint is integer and
 * runs `stacl forward`; `stacl export` converts a float checkpoint. */
static void test_fixed_point(void **s) {
    (void)s;
    const char *modes[] = {"master", "sr"};
    for (int m = 0; m < 2; m++) {
        char full[600], part[600], name[32];
        snprintf(name, sizeof name, "fx_full_%d", m);
        TU_PATH(full, name);
        snprintf(name, sizeof name, "fx_part_%d", m);
        TU_PATH(part, name);
        const char *a_full[] = {TRAIN_ARGS(full), "--fixed-point", m ? "int8" : "q4.12", "--fixed-update", modes[m],
                                NULL};
        char *out = NULL, *err = NULL;
        assert_int_equal(run_v(&out, &err, a_full), 0);
        assert_non_null(strstr(err, "fixed point"));
        free(out), free(err);
        const char *a_part[] = {TRAIN_ARGS(part), "--fixed-point", m ? "int8" : "q4.12", "--fixed-update", modes[m],
                                NULL};
        assert_int_equal(run_interrupted(a_part, part, 3), 130);
        const char *res[] = {"train", "--resume", part, NULL};
        assert_int_equal(run_v(NULL, NULL, res), 0);
        size_t na = 0, nb = 0;
        char *a = read_all(full, "adapter.safetensors", &na), *b = read_all(part, "adapter.safetensors", &nb);
        assert_true(a && b);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na);
        assert_non_null(strstr(a + 8, m ? "\"I8\"" : "\"I16\"")); /* integer tensors in the JSON header */
        free(a);
        free(b);
    }
    /* Export a float run's checkpoint, then run it. */
    char src[700], dst[700], x[700], y[700], clip[700], *out = NULL, *err = NULL;
    TU_PATH(src, "full/adapter.safetensors");
    TU_PATH(dst, "exported.safetensors");
    const char *ex[] = {"export", "--fixed-point", "int8", "--model", model, "--adapter", src, "--out", dst, NULL};
    assert_int_equal(run_v(&out, &err, ex), 0);
    assert_non_null(strstr(err, "int8"));
    free(out), free(err);
    snprintf(clip, sizeof clip, "%s/videos/val_00_0000.mp4", data);
    TU_PATH(x, "xf.npy");
    TU_PATH(y, "yf.npy");
    const char *fr[] = {"frames", clip, "--out", x, "--num-frames", "4", "--size", "32", "--quiet", NULL};
    assert_int_equal(run_v(NULL, NULL, fr), 0);
    const char *fw[] = {"forward", "--model", model, "--adapter", dst, "--input", x, "--out", y, NULL};
    assert_int_equal(run_v(NULL, NULL, fw), 0);
    stacl_npy logits = {0};
    assert_int_equal(stacl_npy_read_f32(y, &logits), 0);
    assert_int_equal(logits.numel, 8);
    stacl_npy_release(&logits);
    /* Exporting twice is refused; bad formats and flags are usage errors. */
    const char *again[] = {"export", "--fixed-point", "q8.8", "--model", model, "--adapter", dst, "--out", y, NULL};
    assert_int_equal(run_v(&out, &err, again), 1);
    assert_non_null(strstr(err, "already"));
    free(out), free(err);
    const char *bad[] = {"export", "--fixed-point", "q3.3", "--model", model, "--adapter", src, "--out", y, NULL};
    assert_int_equal(run_v(&out, &err, bad), 2);
    free(out), free(err);
    char d2[600];
    TU_PATH(d2, "fx_bad");
    const char *upd[] = {TRAIN_ARGS(d2), "--fixed-update", "sr", NULL};
    assert_int_equal(run_v(&out, &err, upd), 2);
    assert_non_null(strstr(err, "--fixed-point"));
    free(out), free(err);
    const char *help[] = {"export", "--help", NULL};
    assert_int_equal(run_v(&out, &err, help), 0);
    assert_non_null(strstr(out, "--fixed-point"));
    free(out), free(err);
}

static void test_errors(void **s) {
    (void)s;
    char *out = NULL, *err = NULL;
    const char *missing[] = {"train", "--model", model, NULL};
    assert_int_equal(run_v(&out, &err, missing), 2);
    assert_non_null(strstr(err, "required"));
    free(out), free(err);
    const char *bad_out[] = {TRAIN_ARGS("/proc/stacl-no/run"), NULL};
    assert_int_equal(run_v(&out, &err, bad_out), 1);
    assert_non_null(strstr(err, "cannot create run folder"));
    free(out), free(err);
    const char *resume_extra[] = {"train", "--resume", "x", "--epochs", "3", NULL};
    assert_int_equal(run_v(&out, &err, resume_extra), 2);
    free(out), free(err);
    const char *help[] = {"train", "--help", NULL};
    assert_int_equal(run_v(&out, &err, help), 0);
    assert_non_null(strstr(out, "--resume"));
    free(out), free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run),
        cmocka_unit_test(test_interrupt_and_resume),
        cmocka_unit_test(test_fixed_point),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
