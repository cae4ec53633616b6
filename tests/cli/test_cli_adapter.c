/* test_cli_adapter.c: `stacl eval --adapter` and `stacl classify` end to
 * end on generated videos, the tiny `hf` backbone and the 5-class
 * adapter checkpoint tests/data/adapter/mlp_all: their probabilities must
 * equal the composition of `stacl frames --view N` (every view) + `stacl
 * forward --adapter` (logits) + softmax + average over views computed
 * here; top-1/top-5, per-class counts and the confusion matrix must be
 * what that composition gives; labels by id and by name give the same
 * run; --json parses; a corrupt video is skipped (eval) or an error naming
 * it (classify); a classes-count mismatch, a checkpoint without a head
 * and unwritable outputs fail cleanly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "safetensors.h"
#include "stacl.h"
#include "test_util.h"

#define C 5         /* the checkpoint's classes */
#define V 8         /* readable videos */
#define T 4         /* frames per clip */
#define VIEWS 6     /* 2 temporal x 3 spatial */
#define PROB_TOL 1e-5 /* |probability difference|: same pixels, same device passes; float32 averaging */

static const char *const names[C] = {"alpha", "beta", "gamma, with comma", "delta", "epsilon"};

static int run(char **out, char **err, ...) {
    const char *argv[48] = {STACL_CLI_PATH};
    int n = 1;
    const char *arg;
    va_list ap;
    va_start(ap, err);
    while (n < 47 && (arg = va_arg(ap, const char *)) != NULL) argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    int code = tu_run(argv, NULL, out, err);
    if (code != 0 && err && *err) printf("  (exit %d) %s", code, *err);
    return code;
}

#define RUN(...) run(&out, &err, __VA_ARGS__, (const char *)NULL)
#define FREE_IO() (free(out), free(err), out = err = NULL)
#define VIEW_OPTS "--num-frames", "4", "--temporal-views", "2", "--spatial-views", "3"

static char model[600], ckpt[600], classes[600], list_ids[600], list_names[600], bad[600];
static char videos[V][700];
static double want[V][C]; /* the composition's probabilities */

/* The list entry of video i: label i % C; the corrupt file sits at entry 4. */
#define BAD_ENTRY 4
static int entry_of(int i) { return i < BAD_ENTRY ? i : i + 1; }

static void write_lists(void) {
    FILE *ids = fopen(list_ids, "w"), *by_name = fopen(list_names, "w");
    assert_non_null(ids);
    assert_non_null(by_name);
    fputs("path,label\n", ids);
    fputs("path,label\n", by_name);
    for (int e = 0; e <= V; e++) {
        int i = e < BAD_ENTRY ? e : e - 1;
        const char *path = e == BAD_ENTRY ? bad : videos[i];
        int label = e == BAD_ENTRY ? 1 : i % C;
        fprintf(ids, "%s,%d\n", path, label);
        fprintf(by_name, "%s,\"%s\"\n", path, names[label]);
    }
    assert_int_equal(fclose(ids), 0);
    assert_int_equal(fclose(by_name), 0);
}

/* Videos, class file, lists, and the composition: every view of every
 * video by `stacl frames`, all through `stacl forward --adapter` as one
 * [V * VIEWS, T, 3, 28, 28] batch, softmax, mean over views. */
static int setup(void **state) {
    tu_group_setup(state);
    char *out = NULL, *err = NULL, ds[600], frames[600], batch[600], logits[600];
    TU_PATH(ds, "ds");
    TU_PATH(frames, "f.npy");
    TU_PATH(batch, "batch.npy");
    TU_PATH(logits, "logits.npy");
    TU_PATH(classes, "classes.csv");
    TU_PATH(list_ids, "ids.csv");
    TU_PATH(list_names, "names.csv");
    TU_PATH(bad, "corrupt.mp4");
    snprintf(model, sizeof model, "%s/models/hf", STACL_TEST_DATA);
    snprintf(ckpt, sizeof ckpt, "%s/adapter/mlp_all/adapter.safetensors", STACL_TEST_DATA);
    if (RUN("make-dataset", "--out", ds, "--per-class", "1", "--val-per-class", "0", "--frames", "16", "--size", "32"))
        return -1;
    FREE_IO();
    for (int i = 0; i < V; i++) snprintf(videos[i], sizeof videos[i], "%s/videos/train_%02d_0000.mp4", ds, i);
    char cls[512] = "id,name\n";
    for (int c = 0; c < C; c++) {
        char l[64];
        snprintf(l, sizeof l, strchr(names[c], ',') ? "%d,\"%s\"\n" : "%d,%s\n", c, names[c]);
        strcat(cls, l);
    }
    char junk[3000];
    for (size_t k = 0; k < sizeof junk; k++) junk[k] = (char)(k * 7919u >> 3);
    if (tu_write_file(classes, cls, strlen(cls)) || tu_write_file(bad, junk, sizeof junk)) return -1;
    write_lists();

    const size_t clip = (size_t)T * 3 * 28 * 28;
    float *all = malloc(sizeof(float) * V * VIEWS * clip);
    if (!all) return -1;
    for (int i = 0; i < V; i++)
        for (int v = 0; v < VIEWS; v++) {
            char view[16];
            snprintf(view, sizeof view, "%d", v);
            if (RUN("frames", videos[i], "--out", frames, "--model", model, VIEW_OPTS, "--view", view, "--quiet"))
                return -1;
            FREE_IO();
            stacl_npy f = {0};
            if (stacl_npy_read_f32(frames, &f) != STACL_OK || f.numel != clip) return -1;
            memcpy(all + (size_t)(i * VIEWS + v) * clip, f.data, clip * sizeof(float));
            stacl_npy_release(&f);
        }
    const int64_t shape[5] = {V * VIEWS, T, 3, 28, 28};
    if (stacl_npy_write_f32(batch, all, shape, 5) != STACL_OK) return -1;
    free(all);
    if (RUN("forward", "--model", model, "--adapter", ckpt, "--input", batch, "--out", logits, "--quiet")) return -1;
    FREE_IO();
    stacl_npy l = {0};
    if (stacl_npy_read_f32(logits, &l) != STACL_OK || l.ndim != 2 || l.shape[0] != V * VIEWS || l.shape[1] != C)
        return -1;
    for (int i = 0; i < V; i++) {
        for (int c = 0; c < C; c++) want[i][c] = 0.0;
        for (int v = 0; v < VIEWS; v++) {
            const float *x = l.data + (size_t)(i * VIEWS + v) * C;
            double m = x[0], sum = 0.0;
            for (int c = 1; c < C; c++) m = x[c] > m ? x[c] : m;
            for (int c = 0; c < C; c++) sum += exp(x[c] - m);
            for (int c = 0; c < C; c++) want[i][c] += exp(x[c] - m) / sum / VIEWS;
        }
    }
    stacl_npy_release(&l);
    return 0;
}

/* What eval must count, from the composition. */
typedef struct expected {
    int top1, top5, hits[C], counts[C], confusion[C][C];
    double mean_class;
} expected;

static expected expect_counts(void) {
    expected e;
    memset(&e, 0, sizeof e);
    for (int i = 0; i < V; i++) {
        const int y = i % C;
        int higher = 0, best = 0;
        for (int c = 0; c < C; c++) {
            higher += want[i][c] > want[i][y];
            if (want[i][c] > want[i][best]) best = c;
        }
        e.top1 += higher == 0;
        e.top5 += higher < 5;
        e.hits[y] += higher == 0;
        e.counts[y]++;
        e.confusion[y][higher == 0 ? y : best]++;
    }
    for (int c = 0; c < C; c++) e.mean_class += (double)e.hits[c] / e.counts[c] / C; /* every class has videos */
    return e;
}

static cJSON *read_json(const char *path) {
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    cJSON *j = cJSON_Parse(text);
    if (!j) fail_msg("%s does not parse as JSON:\n%s", path, text);
    free(text);
    return j;
}

static double num(const cJSON *j, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) fail_msg("JSON key '%s' missing or not a number", key);
    return v->valuedouble;
}

/* The confusion CSV: the header of class names (the comma one quoted),
 * then per true class its name and the counts per predicted class. */
static void check_confusion(const char *path, const expected *e) {
    char *text = tu_read_file(path, NULL);
    assert_non_null(text);
    const char *header = "true\\predicted,alpha,beta,\"gamma, with comma\",delta,epsilon\n";
    assert_memory_equal(text, header, strlen(header));
    const char *p = text + strlen(header);
    for (int t = 0; t < C; t++) {
        char name[64];
        snprintf(name, sizeof name, strchr(names[t], ',') ? "\"%s\"" : "%s", names[t]);
        assert_memory_equal(p, name, strlen(name));
        p += strlen(name);
        for (int c = 0; c < C; c++) {
            assert_int_equal(*p, ',');
            char *end;
            long n = strtol(p + 1, &end, 10);
            assert_int_equal(n, e->confusion[t][c]);
            p = end;
        }
        assert_int_equal(*p++, '\n');
    }
    assert_int_equal(*p, '\0');
    free(text);
}

static void check_summary(const cJSON *j, const expected *e) {
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "mode")->valuestring, "adapter");
    assert_int_equal((int)num(j, "videos"), V);
    assert_int_equal((int)num(j, "skipped"), 1);
    assert_int_equal((int)num(j, "entries"), V + 1);
    assert_int_equal((int)num(j, "top1_correct"), e->top1);
    assert_int_equal((int)num(j, "top5_correct"), e->top5);
    assert_true(fabs(num(j, "top1") - (double)e->top1 / V) < 1e-12);
    assert_true(fabs(num(j, "top5") - (double)e->top5 / V) < 1e-12);
    assert_true(fabs(num(j, "mean_class_acc") - e->mean_class) < 1e-12);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "per_class");
    assert_int_equal(cJSON_GetArraySize(pc), C);
    for (int c = 0; c < C; c++) {
        const cJSON *k = cJSON_GetArrayItem(pc, c);
        assert_int_equal((int)num(k, "id"), c);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(k, "name")->valuestring, names[c]);
        assert_int_equal((int)num(k, "videos"), e->counts[c]);
        assert_int_equal((int)num(k, "correct"), e->hits[c]);
    }
    const cJSON *failed = cJSON_GetObjectItemCaseSensitive(j, "failed");
    assert_int_equal(cJSON_GetArraySize(failed), 1);
    const cJSON *f0 = cJSON_GetArrayItem(failed, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(f0, "path")->valuestring, bad);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(f0, "error")->valuestring, "corrupt.mp4"));
}

static void test_eval_equals_composition(void **state) {
    (void)state;
    char *out = NULL, *err = NULL, json[600], json2[600], conf[600], probs[600];
    TU_PATH(json, "eval.json");
    TU_PATH(json2, "eval_names.json");
    TU_PATH(conf, "confusion.csv");
    TU_PATH(probs, "probs.npy");
    const expected e = expect_counts();
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", model, "--classes", classes, "--list", list_ids,
                         VIEW_OPTS, "--workers", "3", "--per-class", "--json", json, "--confusion", conf, "--probs",
                         probs), 0);
    printf("%s", out);
    assert_non_null(strstr(out, "8 videos (1 skipped), 5 classes, 6 views of 4 frames"));
    char line[128];
    snprintf(line, sizeof line, "top-1 %.2f%%  top-5 %.2f%%  mean per-class %.2f%%", 100.0 * e.top1 / V,
             100.0 * e.top5 / V, 100.0 * e.mean_class);
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof line, "  %-40s %6.2f%%  (%d/%d)", names[2], 100.0 * e.hits[2] / e.counts[2], e.hits[2],
             e.counts[2]);
    assert_non_null(strstr(out, line));
    assert_non_null(strstr(err, "warning: skipped"));
    assert_non_null(strstr(err, "corrupt.mp4"));
    FREE_IO();

    /* Probabilities: one row per list entry, NaN for the corrupt one. */
    stacl_npy p = {0};
    assert_int_equal(stacl_npy_read_f32(probs, &p), STACL_OK);
    assert_int_equal(p.ndim, 2);
    assert_int_equal(p.shape[0], V + 1);
    assert_int_equal(p.shape[1], C);
    double worst = 0.0;
    for (int c = 0; c < C; c++) assert_true(isnan(p.data[BAD_ENTRY * C + c]));
    for (int i = 0; i < V; i++)
        for (int c = 0; c < C; c++) {
            double d = fabs(p.data[entry_of(i) * C + c] - want[i][c]);
            worst = isnan(d) ? INFINITY : d > worst ? d : worst;
        }
    stacl_npy_release(&p);
    printf("  eval --adapter vs frames + forward --adapter + softmax + mean: max |dp| %.3e (tolerance %.0e)\n", worst,
           PROB_TOL);
    assert_true(worst <= PROB_TOL);
    check_confusion(conf, &e);
    cJSON *j = read_json(json);
    check_summary(j, &e);
    cJSON_Delete(j);

    /* Labels by class name (one of them quoted with a comma): the same run. */
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", model, "--classes", classes, "--list", list_names,
                         VIEW_OPTS, "--json", json2), 0);
    FREE_IO();
    j = read_json(json2);
    check_summary(j, &e);
    cJSON_Delete(j);
}

static void test_classify_equals_composition(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    /* All readable videos plus the corrupt one in the middle. */
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes, VIEW_OPTS, "--json",
                         "--top-k", "3", videos[0], videos[1], videos[2], videos[3], bad, videos[4], videos[5],
                         videos[6], videos[7]), 1);
    assert_non_null(strstr(err, "stacl classify: error: "));
    assert_non_null(strstr(err, bad));
    cJSON *j = cJSON_Parse(out);
    if (!j) fail_msg("classify --json output does not parse:\n%s", out);
    FREE_IO();
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "videos");
    assert_int_equal(cJSON_GetArraySize(list), V + 1);
    assert_int_equal((int)num(j, "views"), VIEWS);
    double worst = 0.0;
    for (int e = 0; e <= V; e++) {
        const cJSON *item = cJSON_GetArrayItem(list, e);
        if (e == BAD_ENTRY) {
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(item, "video")->valuestring, bad);
            assert_non_null(cJSON_GetObjectItemCaseSensitive(item, "error"));
            continue;
        }
        const int i = e < BAD_ENTRY ? e : e - 1;
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(item, "video")->valuestring, videos[i]);
        const cJSON *probs = cJSON_GetObjectItemCaseSensitive(item, "probabilities");
        assert_int_equal(cJSON_GetArraySize(probs), C);
        for (int c = 0; c < C; c++) {
            double d = fabs(cJSON_GetArrayItem(probs, c)->valuedouble - want[i][c]);
            worst = d > worst ? d : worst;
        }
        /* The top 3, in the composition's order. */
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(item, "top");
        assert_int_equal(cJSON_GetArraySize(top), 3);
        int taken[C] = {0};
        for (int r = 0; r < 3; r++) {
            int best = -1;
            for (int c = 0; c < C; c++)
                if (!taken[c] && (best < 0 || want[i][c] > want[i][best])) best = c;
            taken[best] = 1;
            const cJSON *t = cJSON_GetArrayItem(top, r);
            assert_int_equal((int)num(t, "id"), best);
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring, names[best]);
        }
    }
    cJSON_Delete(j);
    printf("  classify vs frames + forward --adapter + softmax + mean: max |dp| %.3e (tolerance %.0e)\n", worst,
           PROB_TOL);
    assert_true(worst <= PROB_TOL);

    /* Text output: a block per video, the best class first with its
     * probability to 4 decimals; the missing file named, exit 1. */
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes, VIEW_OPTS, "--top-k",
                         "1", videos[2], "/nonexistent/video.mp4"), 1);
    int best = 0;
    for (int c = 1; c < C; c++) best = want[2][c] > want[2][best] ? c : best;
    char block[800];
    snprintf(block, sizeof block, "%s\n  1. %-40s %.4f\n", videos[2], names[best], want[2][best]);
    assert_non_null(strstr(out, block));
    assert_non_null(strstr(err, "/nonexistent/video.mp4"));
    assert_null(strstr(out, "/nonexistent/video.mp4"));
    FREE_IO();
}

static void test_errors(void **state) {
    (void)state;
    char *out = NULL, *err = NULL, classes8[700], list8[700], headless[600], json[600];
    snprintf(classes8, sizeof classes8, "%s/ds/classes.csv", tu_group_dir);
    snprintf(list8, sizeof list8, "%s/ds/train.csv", tu_group_dir);
    TU_PATH(headless, "headless.safetensors");
    TU_PATH(json, "x.json");

    /* Eight classes for a five-class head. */
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", model, "--classes", classes8, "--list", list8), 1);
    assert_non_null(strstr(err, "has a 5-class head but"));
    assert_non_null(strstr(err, "has 8 classes"));
    FREE_IO();
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes8, videos[0]), 1);
    assert_non_null(strstr(err, "has a 5-class head but"));
    assert_null(strstr(out, videos[0]));
    FREE_IO();

    /* The same adapters without fc.weight / fc.bias. */
    stacl_st_file *f = NULL;
    assert_int_equal(stacl_st_open(&f, ckpt), STACL_OK);
    stacl_st_entry entries[64];
    int n = 0;
    for (int i = 0; i < stacl_st_count(f) && n < 64; i++) {
        const stacl_st_tensor *t = stacl_st_at(f, i);
        if (strncmp(t->name, "fc.", 3) == 0) continue;
        entries[n] = (stacl_st_entry){t->name, t->dtype, t->ndim, {0}, stacl_st_data(f, t)};
        memcpy(entries[n].shape, t->shape, sizeof t->shape);
        n++;
    }
    assert_int_equal(n, 18);
    assert_int_equal(stacl_st_write(headless, entries, n, NULL, NULL, 0), STACL_OK);
    stacl_st_close(f);
    assert_int_equal(RUN("eval", "--adapter", headless, "--model", model, "--classes", classes, "--list", list_ids), 1);
    assert_non_null(strstr(err, "no classifier head (fc.weight, fc.bias)"));
    FREE_IO();
    assert_int_equal(RUN("classify", "--adapter", headless, "--model", model, "--classes", classes, videos[0]), 1);
    assert_non_null(strstr(err, "no classifier head"));
    FREE_IO();

    /* Outputs that cannot be written fail before anything is loaded (the
     * model path does not even exist). */
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", "/nonexistent/model", "--classes", classes, "--list",
                         list_ids, "--json", "/nonexistent/dir/s.json"), 1);
    assert_non_null(strstr(err, "cannot write '/nonexistent/dir/s.json'"));
    FREE_IO();
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", "/nonexistent/model", "--classes", classes, "--list",
                         list_ids, "--json", json, "--confusion", "/nonexistent/dir/c.csv"), 1);
    assert_non_null(strstr(err, "cannot write '/nonexistent/dir/c.csv'"));
    FREE_IO();

    /* Only the corrupt video: nothing printed for it but the error. */
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes, bad), 1);
    assert_non_null(strstr(err, "corrupt.mp4"));
    assert_null(strstr(out, "  1. "));
    FREE_IO();

    /* Usage errors. */
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--zeroshot", "--model", model, "--classes", classes, "--list",
                         list_ids), 2);
    FREE_IO();
    assert_int_equal(RUN("eval", "--adapter", ckpt, "--model", model, "--classes", classes, "--list", list_ids,
                         "--templates", classes), 2);
    FREE_IO();
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes), 2);
    FREE_IO();
    assert_int_equal(RUN("classify", "--adapter", ckpt, "--model", model, "--classes", classes, "--spatial-views", "2",
                         videos[0]), 2);
    FREE_IO();
    assert_int_equal(RUN("classify", "--model", model, "--classes", classes, videos[0]), 2);
    FREE_IO();

    /* --help says how views are combined. */
    assert_int_equal(RUN("eval", "--help"), 0);
    assert_non_null(strstr(out, "averaged over the views"));
    FREE_IO();
    assert_int_equal(RUN("classify", "--help"), 0);
    assert_non_null(strstr(out, "softmax of each view's logits averaged"));
    FREE_IO();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_equals_composition),
        cmocka_unit_test(test_classify_equals_composition),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, tu_group_teardown);
}
