/* test_random_clip.c: the random model generator must produce exactly the
 * tensor names, dtypes and shapes of real OpenAI and Hugging Face CLIP files
 * (the loader tests and the demo depend on it), deterministically, with
 * CLIP-like statistics, and fail cleanly on bad specs and paths. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "random_clip.h"
#include "safetensors.h"
#include "test_util.h"

/* OpenAI layout needs heads == width/64. */
static stacl_random_clip_spec tiny_openai(void) {
    stacl_random_clip_spec s = stacl_random_clip_default_spec();
    s.layout = STACL_LAYOUT_OPENAI;
    s.width = 64;
    s.layers = 2;
    s.heads = 1;
    s.mlp_width = 128;
    s.patch = 8;
    s.image_size = 32; /* 16 patches + class token */
    s.proj_dim = 32;
    s.seed = 7;
    return s;
}

/* HF allows any head count; GELU exercises hidden_act. */
static stacl_random_clip_spec tiny_hf(void) {
    stacl_random_clip_spec s = tiny_openai();
    s.layout = STACL_LAYOUT_HF;
    s.width = 48;
    s.heads = 4;
    s.mlp_width = 96;
    s.patch = 4;
    s.image_size = 12; /* 9 patches + class token */
    s.proj_dim = 16;
    s.act = STACL_ACT_GELU;
    return s;
}

static char *path_in(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* A fresh temp dir, copied (tu_make_temp_dir's buffer is reused). */
static char *temp_dir(void) {
    const char *d = tu_make_temp_dir();
    char *copy = malloc(strlen(d) + 1);
    assert_non_null(copy);
    strcpy(copy, d);
    return copy;
}

static void write_ok(const char *dir, const stacl_random_clip_spec *s) {
    stacl_status st = stacl_random_clip_write(dir, s);
    if (st != STACL_OK) fail_msg("stacl_random_clip_write(%s): %s", dir, stacl_last_error());
}

static stacl_st_file *open_model(const char *dir) {
    char *path = path_in(dir, "model.safetensors");
    stacl_st_file *f = NULL;
    stacl_status st = stacl_st_open(&f, path);
    if (st != STACL_OK) fail_msg("stacl_st_open(%s): %s", path, stacl_last_error());
    free(path);
    return f;
}

static const stacl_st_tensor *expect(const stacl_st_file *f, const char *name, stacl_dtype dt,
                                     int ndim, const int64_t *shape) {
    const stacl_st_tensor *t = stacl_st_find(f, name);
    if (!t) fail_msg("missing tensor %s", name);
    if (t->dtype != dt) fail_msg("%s: dtype %s, want %s", name, stacl_dtype_name(t->dtype), stacl_dtype_name(dt));
    if (t->ndim != ndim) fail_msg("%s: ndim %d, want %d", name, t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            fail_msg("%s: dim %d is %lld, want %lld", name, i, (long long)t->shape[i], (long long)shape[i]);
    return t;
}

#define EXPECT(f, name, dt, ...)                                                            \
    expect((f), (name), (dt), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
           (int64_t[]){__VA_ARGS__})

static float *read_f32(const stacl_st_file *f, const char *name) {
    const stacl_st_tensor *t = stacl_st_find(f, name);
    if (!t) fail_msg("missing tensor %s", name);
    float *x = malloc((size_t)t->numel * sizeof *x);
    assert_non_null(x);
    if (stacl_st_read_f32(f, t, x) != STACL_OK) fail_msg("read %s: %s", name, stacl_last_error());
    return x;
}

static void mean_std(const float *x, size_t n, double *mean, double *std) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

/* Checks mean and std of a float tensor within absolute / relative bounds. */
static void expect_stats(const stacl_st_file *f, const char *name, double mean, double mean_tol,
                         double std, double std_rel_tol) {
    const stacl_st_tensor *t = stacl_st_find(f, name);
    if (!t) fail_msg("missing tensor %s", name);
    float *x = read_f32(f, name);
    double m, sd;
    mean_std(x, (size_t)t->numel, &m, &sd);
    free(x);
    if (fabs(m - mean) > mean_tol) fail_msg("%s: mean %g, want %g +- %g", name, m, mean, mean_tol);
    if (fabs(sd - std) > std_rel_tol * std) fail_msg("%s: std %g, want %g +- %g%%", name, sd, std, 100 * std_rel_tol);
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Only the expected files, no leftover .tmp. */
static void expect_dir_files(const char *dir, int want_config) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    int n = 0, model = 0, config = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        if (!strcmp(e->d_name, "model.safetensors")) model = 1;
        else if (!strcmp(e->d_name, "config.json")) config = 1;
        else fail_msg("unexpected file %s/%s", dir, e->d_name);
    }
    closedir(d);
    assert_true(model);
    assert_int_equal(config, want_config);
    assert_int_equal(n, 1 + want_config);
}

static void test_default_spec(void **state) {
    (void)state;
    stacl_random_clip_spec s = stacl_random_clip_default_spec();
    assert_int_equal(s.layout, STACL_LAYOUT_OPENAI);
    assert_int_equal(s.width, 768);
    assert_int_equal(s.layers, 12);
    assert_int_equal(s.heads, 12);
    assert_int_equal(s.mlp_width, 3072);
    assert_int_equal(s.patch, 16);
    assert_int_equal(s.image_size, 224);
    assert_int_equal(s.proj_dim, 512);
    assert_int_equal(s.act, STACL_ACT_QUICK_GELU);
    assert_int_equal(s.f16, 0);
    assert_true(s.seed == 0);
}

static void check_openai(const char *dir, const stacl_random_clip_spec *s) {
    stacl_st_file *f = open_model(dir);
    const stacl_dtype dt = s->f16 ? STACL_DT_F16 : STACL_DT_F32;
    const int64_t w = s->width, m = s->mlp_width, p = s->patch;
    const int64_t L = (s->image_size / s->patch) * (s->image_size / s->patch) + 1;
    int expected = 0;
    char name[160];

    EXPECT(f, "visual.class_embedding", dt, w);
    EXPECT(f, "visual.positional_embedding", dt, L, w);
    EXPECT(f, "visual.conv1.weight", dt, w, 3, p, p);
    EXPECT(f, "visual.ln_pre.weight", dt, w);
    EXPECT(f, "visual.ln_pre.bias", dt, w);
    expected += 5;
    for (int l = 0; l < s->layers; l++) {
#define BLK(suffix, ...)                                                              \
    do {                                                                              \
        snprintf(name, sizeof name, "visual.transformer.resblocks.%d.%s", l, suffix); \
        EXPECT(f, name, dt, __VA_ARGS__);                                             \
        expected++;                                                                   \
    } while (0)
        BLK("ln_1.weight", w);
        BLK("ln_1.bias", w);
        BLK("attn.in_proj_weight", 3 * w, w);
        BLK("attn.in_proj_bias", 3 * w);
        BLK("attn.out_proj.weight", w, w);
        BLK("attn.out_proj.bias", w);
        BLK("ln_2.weight", w);
        BLK("ln_2.bias", w);
        BLK("mlp.c_fc.weight", m, w);
        BLK("mlp.c_fc.bias", m);
        BLK("mlp.c_proj.weight", w, m);
        BLK("mlp.c_proj.bias", w);
#undef BLK
    }
    EXPECT(f, "visual.ln_post.weight", dt, w);
    EXPECT(f, "visual.ln_post.bias", dt, w);
    expected += 2;
    if (s->proj_dim > 0) {
        EXPECT(f, "visual.proj", dt, w, s->proj_dim);
        expected++;
    } else {
        assert_null(stacl_st_find(f, "visual.proj"));
    }
    const stacl_st_tensor *ls = expect(f, "logit_scale", dt, 0, NULL);
    assert_true(ls->numel == 1);
    expected++;
    float scale;
    assert_int_equal(stacl_st_read_f32(f, ls, &scale), STACL_OK);
    assert_float_equal(scale, log(1.0 / 0.07), s->f16 ? 2e-3 : 1e-6);

    assert_int_equal(stacl_st_count(f), expected);
    assert_non_null(stacl_st_metadata(f, "format"));
    assert_string_equal(stacl_st_metadata(f, "format"), "pt");
    stacl_st_close(f);
}

static void test_openai_layout(void **state) {
    (void)state;
    char *dir = temp_dir();
    stacl_random_clip_spec s = tiny_openai();
    write_ok(dir, &s);
    check_openai(dir, &s);
    expect_dir_files(dir, 0);

    /* CLIP-like statistics, so forward passes on random models stay sane. */
    stacl_st_file *f = open_model(dir);
    double w = s.width, depth = 2.0 * s.layers;
    expect_stats(f, "visual.ln_pre.weight", 1.0, 0.05, 0.1, 0.3);
    expect_stats(f, "visual.ln_pre.bias", 0.0, 0.05, 0.1, 0.3);
    expect_stats(f, "visual.transformer.resblocks.0.ln_1.weight", 1.0, 0.05, 0.1, 0.3);
    expect_stats(f, "visual.transformer.resblocks.1.ln_2.weight", 1.0, 0.05, 0.1, 0.3);
    expect_stats(f, "visual.ln_post.weight", 1.0, 0.05, 0.1, 0.3);
    expect_stats(f, "visual.positional_embedding", 0.0, 0.02, 1 / sqrt(w), 0.05);
    expect_stats(f, "visual.conv1.weight", 0.0, 0.01, 1 / sqrt(3.0 * 8 * 8), 0.05);
    expect_stats(f, "visual.transformer.resblocks.0.attn.in_proj_weight", 0.0, 0.01, 1 / sqrt(w), 0.05);
    expect_stats(f, "visual.transformer.resblocks.0.attn.out_proj.weight", 0.0, 0.01,
                 1 / sqrt(w) / sqrt(depth), 0.05);
    expect_stats(f, "visual.transformer.resblocks.1.mlp.c_fc.weight", 0.0, 0.01, 1 / sqrt(2 * w), 0.05);
    expect_stats(f, "visual.transformer.resblocks.1.mlp.c_proj.weight", 0.0, 0.01,
                 1 / sqrt(w) / sqrt(depth), 0.05);
    expect_stats(f, "visual.transformer.resblocks.1.mlp.c_fc.bias", 0.0, 0.01, 0.02, 0.3);
    expect_stats(f, "visual.proj", 0.0, 0.02, 1 / sqrt(w), 0.05);
    stacl_st_close(f);

    tu_remove_tree(dir);
    free(dir);
}

static void test_openai_no_projection(void **state) {
    (void)state;
    char *dir = temp_dir();
    stacl_random_clip_spec s = tiny_openai();
    s.proj_dim = 0;
    write_ok(dir, &s);
    check_openai(dir, &s);
    tu_remove_tree(dir);
    free(dir);
}

static void check_hf(const char *dir, const stacl_random_clip_spec *s) {
    stacl_st_file *f = open_model(dir);
    const stacl_dtype dt = s->f16 ? STACL_DT_F16 : STACL_DT_F32;
    const int64_t w = s->width, m = s->mlp_width, p = s->patch;
    const int64_t L = (s->image_size / s->patch) * (s->image_size / s->patch) + 1;
    int expected = 0;
    char name[160];

    EXPECT(f, "vision_model.embeddings.class_embedding", dt, w);
    EXPECT(f, "vision_model.embeddings.patch_embedding.weight", dt, w, 3, p, p);
    EXPECT(f, "vision_model.embeddings.position_embedding.weight", dt, L, w);
    const stacl_st_tensor *ids = EXPECT(f, "vision_model.embeddings.position_ids", STACL_DT_I64, 1, L);
    int64_t *idv = malloc((size_t)L * sizeof *idv);
    assert_non_null(idv);
    assert_int_equal(stacl_st_read_i64(f, ids, idv), STACL_OK);
    for (int64_t i = 0; i < L; i++) assert_int_equal(idv[i], i);
    free(idv);
    EXPECT(f, "vision_model.pre_layrnorm.weight", dt, w);
    EXPECT(f, "vision_model.pre_layrnorm.bias", dt, w);
    expected += 6;
    for (int l = 0; l < s->layers; l++) {
#define BLK(suffix, ...)                                                            \
    do {                                                                            \
        snprintf(name, sizeof name, "vision_model.encoder.layers.%d.%s", l, suffix); \
        EXPECT(f, name, dt, __VA_ARGS__);                                           \
        expected++;                                                                 \
    } while (0)
        BLK("self_attn.q_proj.weight", w, w);
        BLK("self_attn.q_proj.bias", w);
        BLK("self_attn.k_proj.weight", w, w);
        BLK("self_attn.k_proj.bias", w);
        BLK("self_attn.v_proj.weight", w, w);
        BLK("self_attn.v_proj.bias", w);
        BLK("self_attn.out_proj.weight", w, w);
        BLK("self_attn.out_proj.bias", w);
        BLK("layer_norm1.weight", w);
        BLK("layer_norm1.bias", w);
        BLK("mlp.fc1.weight", m, w);
        BLK("mlp.fc1.bias", m);
        BLK("mlp.fc2.weight", w, m);
        BLK("mlp.fc2.bias", w);
        BLK("layer_norm2.weight", w);
        BLK("layer_norm2.bias", w);
#undef BLK
    }
    EXPECT(f, "vision_model.post_layernorm.weight", dt, w);
    EXPECT(f, "vision_model.post_layernorm.bias", dt, w);
    expected += 2;
    if (s->proj_dim > 0) {
        EXPECT(f, "visual_projection.weight", dt, s->proj_dim, w);
        expect(f, "logit_scale", dt, 0, NULL);
        expected += 2;
    } else {
        assert_null(stacl_st_find(f, "visual_projection.weight"));
        assert_null(stacl_st_find(f, "logit_scale"));
    }
    assert_null(stacl_st_find(f, "visual_projection.bias"));
    assert_int_equal(stacl_st_count(f), expected);
    assert_string_equal(stacl_st_metadata(f, "format"), "pt");
    stacl_st_close(f);
}

static int json_int(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) fail_msg("config: %s missing or not a number", key);
    return (int)v->valuedouble;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v)) fail_msg("config: %s missing or not a string", key);
    return v->valuestring;
}

static void check_vision_fields(const cJSON *v, const stacl_random_clip_spec *s) {
    assert_int_equal(json_int(v, "hidden_size"), s->width);
    assert_int_equal(json_int(v, "intermediate_size"), s->mlp_width);
    assert_int_equal(json_int(v, "num_attention_heads"), s->heads);
    assert_int_equal(json_int(v, "num_hidden_layers"), s->layers);
    assert_int_equal(json_int(v, "patch_size"), s->patch);
    assert_int_equal(json_int(v, "image_size"), s->image_size);
    assert_int_equal(json_int(v, "num_channels"), 3);
    assert_int_equal(json_int(v, "projection_dim"), s->proj_dim);
    assert_string_equal(json_str(v, "hidden_act"), s->act == STACL_ACT_GELU ? "gelu" : "quick_gelu");
    assert_string_equal(json_str(v, "model_type"), "clip_vision_model");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(v, "layer_norm_eps");
    assert_true(cJSON_IsNumber(eps));
    assert_float_equal(eps->valuedouble, 1e-5, 1e-12);
}

static cJSON *read_config(const char *dir) {
    char *path = path_in(dir, "config.json");
    char *text = tu_read_file(path, NULL);
    if (!text) fail_msg("cannot read %s", path);
    cJSON *root = cJSON_Parse(text);
    if (!root) fail_msg("%s does not parse", path);
    free(text);
    free(path);
    return root;
}

static const char *first_architecture(const cJSON *root) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    assert_true(cJSON_IsArray(arch));
    assert_int_equal(cJSON_GetArraySize(arch), 1);
    const cJSON *a0 = cJSON_GetArrayItem(arch, 0);
    assert_true(cJSON_IsString(a0));
    return a0->valuestring;
}

static void test_hf_clip_model(void **state) {
    (void)state;
    char *dir = temp_dir();
    stacl_random_clip_spec s = tiny_hf();
    write_ok(dir, &s);
    check_hf(dir, &s);
    expect_dir_files(dir, 1);

    cJSON *root = read_config(dir);
    assert_string_equal(first_architecture(root), "CLIPModel");
    assert_string_equal(json_str(root, "model_type"), "clip");
    assert_int_equal(json_int(root, "projection_dim"), s.proj_dim);
    const cJSON *vision = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    assert_true(cJSON_IsObject(vision));
    check_vision_fields(vision, &s);
    cJSON_Delete(root);

    stacl_st_file *f = open_model(dir);
    expect_stats(f, "vision_model.encoder.layers.0.layer_norm1.weight", 1.0, 0.05, 0.1, 0.35);
    expect_stats(f, "vision_model.post_layernorm.weight", 1.0, 0.05, 0.1, 0.35);
    expect_stats(f, "vision_model.pre_layrnorm.weight", 1.0, 0.05, 0.1, 0.35);
    stacl_st_close(f);

    tu_remove_tree(dir);
    free(dir);
}

static void test_hf_vision_model(void **state) {
    (void)state;
    char *dir = temp_dir();
    stacl_random_clip_spec s = tiny_hf();
    s.proj_dim = 0;
    s.act = STACL_ACT_QUICK_GELU;
    write_ok(dir, &s);
    check_hf(dir, &s);

    cJSON *root = read_config(dir);
    assert_string_equal(first_architecture(root), "CLIPVisionModel");
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "vision_config"));
    check_vision_fields(root, &s);
    cJSON_Delete(root);

    tu_remove_tree(dir);
    free(dir);
}

/* One spec in both layouts is one model: the loader tests compare them. */
static void test_layouts_hold_same_model(void **state) {
    (void)state;
    char *da = temp_dir(), *db = temp_dir();
    stacl_random_clip_spec s = tiny_openai();
    write_ok(da, &s);
    s.layout = STACL_LAYOUT_HF;
    write_ok(db, &s);
    stacl_st_file *a = open_model(da), *b = open_model(db);
    const size_t w = (size_t)s.width, P = (size_t)s.proj_dim;
    char an[160], bn[160];

    static const char *const same[][2] = {
        {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
        {"logit_scale", "logit_scale"},
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const stacl_st_tensor *t = stacl_st_find(a, same[i][0]);
        assert_non_null(t);
        float *x = read_f32(a, same[i][0]), *y = read_f32(b, same[i][1]);
        assert_true(tu_max_abs_diff(x, y, (size_t)t->numel) == 0.0);
        free(x);
        free(y);
    }
    static const char *const block[][2] = {
        {"attn.out_proj.weight", "self_attn.out_proj.weight"},
        {"attn.out_proj.bias", "self_attn.out_proj.bias"},
        {"ln_1.weight", "layer_norm1.weight"},   {"ln_1.bias", "layer_norm1.bias"},
        {"ln_2.weight", "layer_norm2.weight"},   {"ln_2.bias", "layer_norm2.bias"},
        {"mlp.c_fc.weight", "mlp.fc1.weight"},   {"mlp.c_fc.bias", "mlp.fc1.bias"},
        {"mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.c_proj.bias", "mlp.fc2.bias"},
    };
    static const char *const qkv[3] = {"q", "k", "v"};
    for (int l = 0; l < s.layers; l++) {
        for (size_t i = 0; i < sizeof block / sizeof block[0]; i++) {
            snprintf(an, sizeof an, "visual.transformer.resblocks.%d.%s", l, block[i][0]);
            snprintf(bn, sizeof bn, "vision_model.encoder.layers.%d.%s", l, block[i][1]);
            const stacl_st_tensor *t = stacl_st_find(a, an);
            assert_non_null(t);
            float *x = read_f32(a, an), *y = read_f32(b, bn);
            assert_true(tu_max_abs_diff(x, y, (size_t)t->numel) == 0.0);
            free(x);
            free(y);
        }
        snprintf(an, sizeof an, "visual.transformer.resblocks.%d.attn.in_proj_weight", l);
        float *inw = read_f32(a, an);
        snprintf(an, sizeof an, "visual.transformer.resblocks.%d.attn.in_proj_bias", l);
        float *inb = read_f32(a, an);
        for (int j = 0; j < 3; j++) {
            snprintf(bn, sizeof bn, "vision_model.encoder.layers.%d.self_attn.%s_proj.weight", l, qkv[j]);
            float *y = read_f32(b, bn);
            assert_true(tu_max_abs_diff(inw + j * w * w, y, w * w) == 0.0);
            free(y);
            snprintf(bn, sizeof bn, "vision_model.encoder.layers.%d.self_attn.%s_proj.bias", l, qkv[j]);
            y = read_f32(b, bn);
            assert_true(tu_max_abs_diff(inb + j * w, y, w) == 0.0);
            free(y);
        }
        free(inw);
        free(inb);
    }
    float *proj = read_f32(a, "visual.proj"), *vp = read_f32(b, "visual_projection.weight");
    for (size_t i = 0; i < w; i++)
        for (size_t j = 0; j < P; j++) assert_true(proj[i * P + j] == vp[j * w + i]);
    free(proj);
    free(vp);

    stacl_st_close(a);
    stacl_st_close(b);
    tu_remove_tree(da);
    tu_remove_tree(db);
    free(da);
    free(db);
}

static int files_equal(const char *da, const char *db, const char *name) {
    char *pa = path_in(da, name), *pb = path_in(db, name);
    size_t na = 0, nb = 0;
    char *a = tu_read_file(pa, &na), *b = tu_read_file(pb, &nb);
    assert_non_null(a);
    assert_non_null(b);
    int eq = na == nb && memcmp(a, b, na) == 0;
    free(a);
    free(b);
    free(pa);
    free(pb);
    return eq;
}

static void test_deterministic(void **state) {
    (void)state;
    char *d1 = temp_dir(), *d2 = temp_dir(), *d3 = temp_dir();
    stacl_random_clip_spec s = tiny_hf();
    write_ok(d1, &s);
    write_ok(d2, &s);
    assert_true(files_equal(d1, d2, "model.safetensors"));
    assert_true(files_equal(d1, d2, "config.json"));
    s.seed++;
    write_ok(d3, &s);
    assert_false(files_equal(d1, d3, "model.safetensors"));

    s = tiny_openai();
    write_ok(d1, &s);
    write_ok(d2, &s);
    assert_true(files_equal(d1, d2, "model.safetensors"));
    s.seed = 12345;
    write_ok(d3, &s);
    assert_false(files_equal(d1, d3, "model.safetensors"));

    tu_remove_tree(d1);
    tu_remove_tree(d2);
    tu_remove_tree(d3);
    free(d1);
    free(d2);
    free(d3);
}

/* F16 files hold the F32 model rounded to half, and keep I64 position ids. */
static void test_f16(void **state) {
    (void)state;
    for (int layout = 0; layout < 2; layout++) {
        char *d32 = temp_dir(), *d16 = temp_dir();
        stacl_random_clip_spec s = layout ? tiny_hf() : tiny_openai();
        write_ok(d32, &s);
        s.f16 = 1;
        write_ok(d16, &s);
        if (layout) check_hf(d16, &s);
        else check_openai(d16, &s);

        stacl_st_file *a = open_model(d32), *b = open_model(d16);
        assert_int_equal(stacl_st_count(a), stacl_st_count(b));
        for (int i = 0; i < stacl_st_count(b); i++) {
            const stacl_st_tensor *tb = stacl_st_at(b, i);
            const stacl_st_tensor *ta = stacl_st_find(a, tb->name);
            assert_non_null(ta);
            if (ta->dtype == STACL_DT_I64) {
                assert_int_equal(tb->dtype, STACL_DT_I64);
                continue;
            }
            assert_int_equal(tb->dtype, STACL_DT_F16);
            const float *x = stacl_st_data(a, ta);
            const uint16_t *h = stacl_st_data(b, tb);
            for (uint64_t k = 0; k < tb->numel; k++) {
                float xf, hf;
                uint16_t hk;
                memcpy(&xf, x + k, sizeof xf);
                memcpy(&hk, h + k, sizeof hk);
                hf = stacl_f16_to_f32(hk);
                if (hk != stacl_f32_to_f16(xf)) fail_msg("%s[%llu]: %g stored as %g", tb->name, (unsigned long long)k, xf, hf);
            }
        }
        stacl_st_close(a);
        stacl_st_close(b);
        tu_remove_tree(d32);
        tu_remove_tree(d16);
        free(d32);
        free(d16);
    }
}

typedef struct bad_case {
    const char *what;     /* substring the message must contain */
    stacl_random_clip_spec spec;
} bad_case;

static void test_invalid_specs(void **state) {
    (void)state;
    char *base = temp_dir();
    char *dir = path_in(base, "never");
    bad_case cases[32];
    int n = 0;
#define BAD(msg, field, value)            \
    do {                                  \
        cases[n].what = (msg);            \
        cases[n].spec = tiny_openai();    \
        cases[n].spec.field = (value);    \
        n++;                              \
    } while (0)
    BAD("width", width, 0);
    BAD("width", width, -64);
    BAD("layers", layers, 0);
    BAD("heads", heads, 0);
    BAD("mlp_width", mlp_width, 0);
    BAD("patch", patch, 0);
    BAD("image_size", image_size, 0);
    BAD("proj_dim", proj_dim, -1);
    BAD("divisible", image_size, 36);    /* 36 % 8 */
    BAD("heads == width/64", heads, 2);  /* 64 wide: OpenAI wants 1 head */
    BAD("QuickGELU", act, STACL_ACT_GELU);
    BAD("layout", layout, (stacl_layout)7);
    BAD("activation", act, (stacl_activation)9);
#undef BAD
    cases[n].what = "divisible"; /* width % heads, HF layout */
    cases[n].spec = tiny_hf();
    cases[n].spec.heads = 5;
    n++;
    cases[n].what = "heads == width/64"; /* width not a multiple of 64 */
    cases[n].spec = tiny_hf();
    cases[n].spec.layout = STACL_LAYOUT_OPENAI;
    cases[n].spec.act = STACL_ACT_QUICK_GELU;
    cases[n].spec.heads = 1;
    n++;

    for (int i = 0; i < n; i++) {
        stacl_status st = stacl_random_clip_write(dir, &cases[i].spec);
        if (st != STACL_ERR_INVALID_ARG)
            fail_msg("case %d (%s): status %d, message '%s'", i, cases[i].what, st, stacl_last_error());
        if (!strstr(stacl_last_error(), cases[i].what))
            fail_msg("case %d: message '%s' does not mention '%s'", i, stacl_last_error(), cases[i].what);
        /* Validation happens before anything touches the disk. */
        assert_false(file_exists(dir));
    }

    stacl_random_clip_spec ok = tiny_openai();
    assert_int_equal(stacl_random_clip_write(NULL, &ok), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_random_clip_write("", &ok), STACL_ERR_INVALID_ARG);
    assert_int_equal(stacl_random_clip_write(dir, NULL), STACL_ERR_INVALID_ARG);
    assert_true(strlen(stacl_last_error()) > 0);

    tu_remove_tree(base);
    free(dir);
    free(base);
}

static void test_unwritable_dir(void **state) {
    (void)state;
    char *base = temp_dir();
    char *file = path_in(base, "plain_file");
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    char *dir = path_in(file, "model");
    stacl_random_clip_spec s = tiny_openai();
    assert_int_equal(stacl_random_clip_write(dir, &s), STACL_ERR_IO);
    assert_non_null(strstr(stacl_last_error(), dir));
    /* The regular file itself is not a directory either. */
    assert_int_equal(stacl_random_clip_write(file, &s), STACL_ERR_IO);
    assert_non_null(strstr(stacl_last_error(), file));
    s = tiny_hf();
    assert_int_equal(stacl_random_clip_write(dir, &s), STACL_ERR_IO);

    tu_remove_tree(base);
    free(dir);
    free(file);
    free(base);
}

static void test_creates_nested_and_overwrites(void **state) {
    (void)state;
    char *base = temp_dir();
    char *dir = path_in(base, "a/b/c");
    stacl_random_clip_spec s = tiny_hf();
    write_ok(dir, &s);
    check_hf(dir, &s);
    write_ok(dir, &s); /* an existing directory is fine */
    expect_dir_files(dir, 1);

    /* Switching layouts must not leave an HF config next to OpenAI names. */
    s = tiny_openai();
    write_ok(dir, &s);
    check_openai(dir, &s);
    expect_dir_files(dir, 0);

    tu_remove_tree(base);
    free(dir);
    free(base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_spec),
        cmocka_unit_test(test_openai_layout),
        cmocka_unit_test(test_openai_no_projection),
        cmocka_unit_test(test_hf_clip_model),
        cmocka_unit_test(test_hf_vision_model),
        cmocka_unit_test(test_layouts_hold_same_model),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_invalid_specs),
        cmocka_unit_test(test_unwritable_dir),
        cmocka_unit_test(test_creates_nested_and_overwrites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
