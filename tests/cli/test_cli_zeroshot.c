/* test_cli_zeroshot.c: `stacl zeroshot` end to end on generated videos and
 * a tiny random CLIP: its probabilities must equal the composition of
 * `stacl frames` + `stacl forward` + `stacl encode-text` computed
 * separately (normalize, average, normalize; softmax of exp(logit_scale) *
 * cosine), with two templates; the class-embedding cache gives the same
 * numbers; `stacl eval --zeroshot` agrees with it; bad class lists,
 * templates and a vision-only model fail cleanly. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "stacl.h"
#include "test_util.h"

static int run(char **out, char **err, const char *const *env, ...) {
    const char *argv[32] = {STACL_CLI_PATH};
    int n = 1;
    const char *arg;
    va_list ap;
    va_start(ap, env);
    while (n < 31 && (arg = va_arg(ap, const char *)) != NULL) argv[n++] = arg;
    va_end(ap);
    argv[n] = NULL;
    int code = tu_run(argv, env, out, err);
    if (code != 0 && err && *err) printf("  (exit %d) %s", code, *err);
    return code;
}

#define RUN(env, ...) run(&out, &err, env, __VA_ARGS__, (const char *)NULL)
#define FREE_IO() (free(out), free(err), out = err = NULL)

static float *read_npy(const char *path, int64_t *rows, int64_t *cols) {
    stacl_npy a = {0};
    if (stacl_npy_read_f32(path, &a) != STACL_OK) fail_msg("%s", stacl_last_error());
    assert_int_equal(a.ndim, 2);
    *rows = a.shape[0];
    *cols = a.shape[1];
    return a.data;
}

static void normalize(float *x, int n) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(ss));
}

static void test_zeroshot_equals_composition(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    char ds[600], model[600], templates[600], prompts[600], probs[600], probs2[600], frames[600], emb[600],
        text[600], cache[600];
    TU_PATH(ds, "ds");
    TU_PATH(model, "tiny");
    TU_PATH(templates, "templates.txt");
    TU_PATH(prompts, "prompts.txt");
    TU_PATH(probs, "p.npy");
    TU_PATH(probs2, "p2.npy");
    TU_PATH(frames, "f.npy");
    TU_PATH(emb, "e.npy");
    TU_PATH(text, "t.npy");
    TU_PATH(cache, "cache");
    char cache_env[700];
    snprintf(cache_env, sizeof cache_env, "STACL_CACHE_DIR=%s", cache);
    const char *const env[] = {cache_env, NULL};
    assert_int_equal(RUN(NULL, "make-dataset", "--out", ds, "--per-class", "1", "--val-per-class", "0", "--frames",
                         "16", "--size", "32"), 0);
    FREE_IO();
    assert_int_equal(RUN(NULL, "gen-model", "--preset", "tiny", "--text", "--out", model), 0);
    FREE_IO();
    const char *tmpl = "a video of a {}.\n{} happening in a clip\n";
    assert_int_equal(tu_write_file(templates, tmpl, strlen(tmpl)), 0);
    char classes[700], v0[700], v1[700];
    snprintf(classes, sizeof classes, "%s/classes.csv", ds);
    snprintf(v0, sizeof v0, "%s/videos/train_00_0000.mp4", ds);
    snprintf(v1, sizeof v1, "%s/videos/train_05_0000.mp4", ds);
    assert_int_equal(RUN(env, "zeroshot", "--model", model, "--classes", classes, "--templates", templates, "--out",
                         probs, v0, v1), 0);
    assert_non_null(strstr(out, "8 classes x 2 templates (encoded)"));
    assert_non_null(strstr(out, "  1. "));
    FREE_IO();
    int64_t nv, nc;
    float *p = read_npy(probs, &nv, &nc);
    assert_int_equal(nv, 2);
    assert_int_equal(nc, 8);

    /* The same from the separate commands. Class names in id order. */
    static const char *const names[8] = {"moving right", "moving left", "moving down", "moving up",
                                         "rotating clockwise", "rotating counter-clockwise", "growing", "shrinking"};
    char lines[4096] = "";
    for (int c = 0; c < 8; c++) {
        char l[256];
        snprintf(l, sizeof l, "a video of a %s.\n%s happening in a clip\n", names[c], names[c]);
        strcat(lines, l);
    }
    assert_int_equal(tu_write_file(prompts, lines, strlen(lines)), 0);
    assert_int_equal(RUN(NULL, "encode-text", "--model", model, "--texts", prompts, "--out", text, "--normalize",
                         "--quiet"), 0);
    FREE_IO();
    int64_t nt, dim;
    float *t = read_npy(text, &nt, &dim);
    assert_int_equal(nt, 16);
    float cls[8][64];
    assert_true(dim <= 64);
    for (int c = 0; c < 8; c++) {
        for (int j = 0; j < dim; j++) cls[c][j] = 0.5f * (t[(2 * c) * dim + j] + t[(2 * c + 1) * dim + j]);
        normalize(cls[c], (int)dim);
    }
    const double scale = 1.0 / 0.07; /* gen-model's logit_scale = ln(1/0.07) */
    double worst = 0.0;
    for (int v = 0; v < 2; v++) {
        assert_int_equal(RUN(NULL, "frames", v ? v1 : v0, "--out", frames, "--model", model, "--quiet"), 0);
        FREE_IO();
        assert_int_equal(RUN(NULL, "forward", "--model", model, "--input", frames, "--out", emb, "--quiet"), 0);
        FREE_IO();
        int64_t nf, d2;
        float *e = read_npy(emb, &nf, &d2);
        assert_int_equal(nf, 8);
        assert_int_equal(d2, dim);
        float video[64] = {0};
        for (int f = 0; f < nf; f++) {
            normalize(e + f * dim, (int)dim);
            for (int j = 0; j < dim; j++) video[j] += e[f * dim + j] / (float)nf;
        }
        normalize(video, (int)dim);
        double logits[8], m = -INFINITY, sum = 0.0;
        for (int c = 0; c < 8; c++) {
            double dot = 0.0;
            for (int j = 0; j < dim; j++) dot += (double)video[j] * cls[c][j];
            logits[c] = scale * dot;
            if (logits[c] > m) m = logits[c];
        }
        for (int c = 0; c < 8; c++) sum += exp(logits[c] - m);
        for (int c = 0; c < 8; c++) {
            double want = exp(logits[c] - m) / sum, d = fabs(want - p[v * 8 + c]);
            if (d > worst) worst = d;
        }
        free(e);
    }
    printf("  zeroshot vs frames + forward + encode-text: max |dp| %.3e\n", worst);
    assert_true(worst <= 1e-5);

    /* --descriptions with each class's two filled templates as its
     * sentences (plus a malformed non-string entry, skipped): the same
     * probabilities. */
    char json[4096] = "{", desc[600], probs3[600];
    for (int c = 0; c < 8; c++) {
        char e[300];
        snprintf(e, sizeof e, "%s\"%d\": [\"a video of a %s.\", 7, \"%s happening in a clip\"]", c ? ", " : "", c,
                 names[c], names[c]);
        strcat(json, e);
    }
    strcat(json, "}");
    TU_PATH(desc, "desc.json");
    TU_PATH(probs3, "p3.npy");
    assert_int_equal(tu_write_file(desc, json, strlen(json)), 0);
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", classes, "--descriptions", desc, "--no-cache",
                         "--out", probs3, v0, v1), 0);
    FREE_IO();
    float *p3 = read_npy(probs3, &nv, &nc);
    assert_true(tu_max_abs_diff(p, p3, 16) <= 1e-7);
    free(p3);

    /* Second run: class embeddings from the cache, same numbers. */
    assert_int_equal(RUN(env, "zeroshot", "--model", model, "--classes", classes, "--templates", templates, "--out",
                         probs2, v0, v1), 0);
    assert_non_null(strstr(out, "(from the cache)"));
    FREE_IO();
    float *p2 = read_npy(probs2, &nv, &nc);
    assert_true(tu_max_abs_diff(p, p2, 16) <= 1e-7);
    free(p);
    free(p2);
    free(t);
}

/* `stacl eval --zeroshot` over the train list (8 videos, labels by class
 * name): its top-1 / top-5 equal what `stacl zeroshot --out` gives for the
 * same videos; 2 x 3 views run and stay in range. */
static void test_eval_zeroshot(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    char model[600], probs[600], templates[600], classes[700], list[700];
    const char *videos[8];
    char paths[8][700];
    TU_PATH(model, "tiny");
    TU_PATH(probs, "p_all.npy");
    TU_PATH(templates, "templates.txt");
    snprintf(classes, sizeof classes, "%s/ds/classes.csv", tu_group_dir);
    snprintf(list, sizeof list, "%s/ds/train.csv", tu_group_dir);
    for (int c = 0; c < 8; c++) {
        snprintf(paths[c], sizeof paths[c], "%s/ds/videos/train_%02d_0000.mp4", tu_group_dir, c);
        videos[c] = paths[c];
    }
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", classes, "--templates", templates, "--no-cache",
                         "--out", probs, videos[0], videos[1], videos[2], videos[3], videos[4], videos[5], videos[6],
                         videos[7]), 0);
    FREE_IO();
    int64_t nv, nc;
    float *p = read_npy(probs, &nv, &nc);
    assert_int_equal(nv, 8);
    int top1 = 0, top5 = 0;
    for (int v = 0; v < 8; v++) { /* video train_0C is class C */
        int higher = 0;
        for (int c = 0; c < 8; c++) higher += p[v * 8 + c] > p[v * 8 + v];
        top1 += higher == 0;
        top5 += higher < 5;
    }
    free(p);
    char want[128];
    snprintf(want, sizeof want, "top-1 %.2f%%  top-5 %.2f%%", 100.0 * top1 / 8, 100.0 * top5 / 8);
    assert_int_equal(RUN(NULL, "eval", "--zeroshot", "--model", model, "--classes", classes, "--templates", templates,
                         "--list", list, "--no-cache", "--per-class"), 0);
    printf("%s", out);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "8 videos (0 skipped)"));
    FREE_IO();
    assert_int_equal(RUN(NULL, "eval", "--zeroshot", "--model", model, "--classes", classes, "--list", list,
                         "--no-cache", "--temporal-views", "2", "--spatial-views", "3", "--workers", "3"), 0);
    assert_non_null(strstr(out, "6 views"));
    FREE_IO();
    assert_int_equal(RUN(NULL, "eval", "--model", model, "--classes", classes, "--list", list), 2);
    FREE_IO();
}

static void test_zeroshot_errors(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    char model[600], bad[600], tmpl[600], vision_only[600], classes[700], video[700];
    TU_PATH(model, "tiny");
    TU_PATH(bad, "bad.csv");
    TU_PATH(tmpl, "no_braces.txt");
    snprintf(classes, sizeof classes, "%s/ds/classes.csv", tu_group_dir);
    snprintf(video, sizeof video, "%s/ds/videos/train_00_0000.mp4", tu_group_dir);
    snprintf(vision_only, sizeof vision_only, "%s/models/hf_vision_gelu", STACL_TEST_DATA);
    assert_int_equal(tu_write_file(bad, "id,name\n0,a\n0,b\n", 16), 0);
    assert_int_equal(tu_write_file(tmpl, "a video\n", 8), 0);
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", bad, video), 1);
    assert_non_null(strstr(err, "appears twice"));
    FREE_IO();
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", classes, "--templates", tmpl, video), 1);
    assert_non_null(strstr(err, "no '{}'"));
    FREE_IO();
    assert_int_equal(RUN(NULL, "zeroshot", "--model", vision_only, "--classes", classes, "--no-cache", video), 1);
    assert_non_null(strstr(err, "no visual projection") || strstr(err, "no text tower") ? "ok" : NULL);
    FREE_IO();
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", classes, "--no-cache", "/nonexistent.mp4"), 1);
    assert_non_null(strstr(err, "/nonexistent.mp4"));
    FREE_IO();
    char desc[600];
    TU_PATH(desc, "bad_desc.json");
    const char *bad_json = "{\"0\": [\"x\"], \"9\": [\"y\"]}";
    assert_int_equal(tu_write_file(desc, bad_json, strlen(bad_json)), 0);
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, "--classes", classes, "--descriptions", desc, video), 1);
    assert_non_null(strstr(err, "key '9' is not a class index in 0..7"));
    FREE_IO();
    assert_int_equal(RUN(NULL, "zeroshot", "--model", model, video), 2);
    FREE_IO();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroshot_equals_composition),
        cmocka_unit_test(test_eval_zeroshot),
        cmocka_unit_test(test_zeroshot_errors),
    };
    return cmocka_run_group_tests(tests, tu_group_setup, tu_group_teardown);
}
