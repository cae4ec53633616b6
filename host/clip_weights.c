/* clip_weights.c: maps CLIP checkpoints onto stacl's canonical vision
 * layout. Two layouts exist in the wild: OpenAI/open_clip
 * (visual.transformer.resblocks.N.*, config implied by shapes, heads =
 * width/64) and Hugging Face (vision_model.encoder.layers.N.*, config.json).
 * Every tensor is checked against the shape the config implies, and errors
 * name the file, the tensor, the expected and the found shape. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "model_internal.h"
#include "safetensors.h"

int stacl_vision_tokens(const stacl_vision_config *cfg) {
    int grid = cfg->image_size / cfg->patch;
    return grid * grid + 1;
}

stacl_status stacl_vision_plan(const stacl_vision_config *cfg, vision_offsets *off) {
    size_t w = (size_t)cfg->width, m = (size_t)cfg->mlp_width, p = (size_t)cfg->patch;
    size_t cursor = 0;
    memset(off, 0, sizeof *off);
#define TAKE(field, count) (off->field = cursor, cursor += (count))
    TAKE(patch_w, w * 3 * p * p);
    TAKE(cls, w);
    TAKE(pos, (size_t)stacl_vision_tokens(cfg) * w);
    TAKE(ln_pre_w, w);
    TAKE(ln_pre_b, w);
    TAKE(ln_post_w, w);
    TAKE(ln_post_b, w);
    TAKE(proj, w * (size_t)cfg->proj_dim);
#undef TAKE
    off->blocks = calloc((size_t)cfg->layers, sizeof *off->blocks);
    if (!off->blocks) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory planning the model");
    for (int l = 0; l < cfg->layers; l++) {
        vision_block_offsets *b = &off->blocks[l];
#define TAKE(field, count) (b->field = cursor, cursor += (count))
        TAKE(ln1_w, w); TAKE(ln1_b, w);
        TAKE(qkv_w, 3 * w * w); TAKE(qkv_b, 3 * w);
        TAKE(out_w, w * w); TAKE(out_b, w);
        TAKE(ln2_w, w); TAKE(ln2_b, w);
        TAKE(fc1_w, m * w); TAKE(fc1_b, m);
        TAKE(fc2_w, w * m); TAKE(fc2_b, w);
#undef TAKE
    }
    off->total = cursor;
    return STACL_OK;
}

void stacl_vision_offsets_free(vision_offsets *off) {
    free(off->blocks);
    off->blocks = NULL;
}

/* ---- tensor lookup with shape checks ------------------------------------ */

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Finds `name` and checks its shape (ndim dims given in `dims`). */
static stacl_status need(const stacl_st_file *f, const char *name, int ndim, const int64_t *dims,
                         const stacl_st_tensor **out) {
    const stacl_st_tensor *t = stacl_st_find(f, name);
    char want[128], got[128];
    format_shape(want, sizeof want, ndim, dims);
    if (!t) return stacl_fail(STACL_ERR_MISSING, "%s: missing tensor '%s' (expected shape %s)", stacl_st_path(f), name, want);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        format_shape(got, sizeof got, t->ndim, t->shape);
        return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", stacl_st_path(f), name, got, want);
    }
    if (!stacl_dtype_is_float(t->dtype))
        return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F16, BF16)",
                          stacl_st_path(f), name, stacl_dtype_name(t->dtype));
    *out = t;
    return STACL_OK;
}

/* Reads tensor `name` of the given shape into dst. */
stacl_status stacl_clip_load(const stacl_st_file *f, const char *name, int ndim, const int64_t *dims, float *dst) {
    const stacl_st_tensor *t = NULL;
    stacl_status st = need(f, name, ndim, dims, &t);
    return st != STACL_OK ? st : stacl_st_read_f32(f, t, dst);
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define LOAD1(name, a, dst) TRY(stacl_clip_load(f, name, 1, DIMS(a), dst))
#define LOAD2(name, a, b, dst) TRY(stacl_clip_load(f, name, 2, DIMS(a, b), dst))

/* Reads [rows, cols] from the file into dst transposed, as [cols, rows]. */
stacl_status stacl_clip_load_transposed(const stacl_st_file *f, const char *name, int64_t rows, int64_t cols, float *dst) {
    float *tmp = malloc((size_t)(rows * cols) * sizeof *tmp);
    if (!tmp) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", name);
    stacl_status st = stacl_clip_load(f, name, 2, DIMS(rows, cols), tmp);
    if (st == STACL_OK)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = tmp[r * cols + c];
    free(tmp);
    return st;
}

/* ---- config ---------------------------------------------------------------- */

int stacl_clip_count_layers(const stacl_st_file *f, const char *fmt) {
    char name[256];
    int n = 0;
    for (;;) {
        snprintf(name, sizeof name, fmt, n);
        if (!stacl_st_find(f, name)) return n;
        n++;
    }
}

/* Width, patch, image size, layers, MLP width and projection from shapes. */
static stacl_status config_from_shapes(const stacl_st_file *f, stacl_layout layout, stacl_vision_config *cfg) {
    const int hf = layout == STACL_LAYOUT_HF;
    const char *patch_name = hf ? "vision_model.embeddings.patch_embedding.weight" : "visual.conv1.weight";
    const char *pos_name = hf ? "vision_model.embeddings.position_embedding.weight" : "visual.positional_embedding";
    const char *fc1_name = hf ? "vision_model.encoder.layers.0.mlp.fc1.weight" : "visual.transformer.resblocks.0.mlp.c_fc.weight";
    const stacl_st_tensor *patch = stacl_st_find(f, patch_name);
    const stacl_st_tensor *pos = stacl_st_find(f, pos_name);
    const stacl_st_tensor *fc1 = stacl_st_find(f, fc1_name);
    const char *path = stacl_st_path(f);
    if (!patch || patch->ndim != 4 || patch->shape[1] != 3 || patch->shape[2] != patch->shape[3] || patch->shape[2] <= 0)
        return stacl_fail(patch ? STACL_ERR_SHAPE : STACL_ERR_MISSING,
                          "%s: tensor '%s' must exist with shape [width, 3, patch, patch]", path, patch_name);
    cfg->width = (int)patch->shape[0];
    cfg->patch = (int)patch->shape[2];
    if (!pos || pos->ndim != 2 || pos->shape[1] != cfg->width || pos->shape[0] < 2)
        return stacl_fail(pos ? STACL_ERR_SHAPE : STACL_ERR_MISSING,
                          "%s: tensor '%s' must exist with shape [tokens, %d]", path, pos_name, cfg->width);
    int grid = (int)lround(sqrt((double)(pos->shape[0] - 1)));
    if ((int64_t)grid * grid + 1 != pos->shape[0])
        return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' has %lld positions, not 1 + a square number of patches",
                          path, pos_name, (long long)pos->shape[0]);
    cfg->image_size = grid * cfg->patch;
    cfg->layers = stacl_clip_count_layers(f, hf ? "vision_model.encoder.layers.%d.layer_norm1.weight"
                                     : "visual.transformer.resblocks.%d.ln_1.weight");
    if (cfg->layers == 0) return stacl_fail(STACL_ERR_MISSING, "%s: no transformer blocks found in the vision tower", path);
    if (!fc1 || fc1->ndim != 2 || fc1->shape[1] != cfg->width)
        return stacl_fail(fc1 ? STACL_ERR_SHAPE : STACL_ERR_MISSING, "%s: tensor '%s' must exist with shape [mlp_width, %d]",
                          path, fc1_name, cfg->width);
    cfg->mlp_width = (int)fc1->shape[0];
    const stacl_st_tensor *proj = stacl_st_find(f, hf ? "visual_projection.weight" : "visual.proj");
    cfg->proj_dim = 0;
    if (proj) {
        if (proj->ndim != 2 || proj->shape[hf ? 1 : 0] != cfg->width)
            return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' must have shape %s", path,
                              hf ? "visual_projection.weight" : "visual.proj", hf ? "[proj_dim, width]" : "[width, proj_dim]");
        cfg->proj_dim = (int)proj->shape[hf ? 0 : 1];
    }
    cfg->ln_eps = 1e-5f;
    cfg->act = STACL_ACT_QUICK_GELU;
    cfg->layout = layout;
    return STACL_OK;
}

static int json_int(const cJSON *obj, const char *key, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v)) return 0;
    *out = (int)v->valuedouble;
    return 1;
}

stacl_status stacl_json_read_file(const char *path, cJSON **out) {
    stacl_status st = STACL_OK;
    size_t len = 0;
    char *text = NULL;
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) FAIL(STACL_ERR_MISSING, "%s: cannot open the Hugging Face config (needed for the number of heads)", path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (size < 0 || size > (64 << 20)) { fclose(fp); FAIL(STACL_ERR_FORMAT, "%s: unreasonable size", path); }
    text = malloc((size_t)size + 1);
    if (!text) { fclose(fp); FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading %s", path); }
    len = fread(text, 1, (size_t)size, fp);
    fclose(fp);
    *out = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        FAIL(STACL_ERR_FORMAT, "%s: not a JSON object", path);
    }
cleanup:
    free(text);
    return st;
}

stacl_status stacl_hf_tower_config(const char *config_path, const char *section, const char *label,
                                   const stacl_hf_size *sizes, int n_sizes, int *heads, float *ln_eps,
                                   stacl_activation *act) {
    stacl_status st = STACL_OK;
    cJSON *root = NULL;
    char key[64];
    TRY(stacl_json_read_file(config_path, &root));
    /* CLIPModel keeps each tower's fields in "<tower>_config" (older files:
     * "<tower>_config_dict"); CLIPVisionModel / CLIPTextModel have them at
     * the top level. */
    snprintf(key, sizeof key, "%s", section);
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, key);
    snprintf(key, sizeof key, "%s_dict", section);
    if (!cJSON_IsObject(tc)) tc = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsObject(tc)) tc = root;
    if (!json_int(tc, "num_attention_heads", heads))
        FAIL(STACL_ERR_MISSING, "%s: no %s num_attention_heads (%s)", config_path, label, section);
    for (int i = 0; i < n_sizes; i++) {
        int v;
        if (json_int(tc, sizes[i].key, &v) && v != sizes[i].value)
            FAIL(STACL_ERR_SHAPE, "%s: %s %s is %d but the weights imply %d", config_path, label, sizes[i].key, v,
                 sizes[i].value);
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(tc, "layer_norm_eps");
    if (cJSON_IsNumber(eps)) *ln_eps = (float)eps->valuedouble;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(tc, "hidden_act");
    if (cJSON_IsString(name)) {
        if (strcmp(name->valuestring, "quick_gelu") == 0) *act = STACL_ACT_QUICK_GELU;
        else if (strcmp(name->valuestring, "gelu") == 0) *act = STACL_ACT_GELU;
        else FAIL(STACL_ERR_UNSUPPORTED, "%s: %s hidden_act '%s' is not supported (quick_gelu, gelu)", config_path,
                  label, name->valuestring);
    }
cleanup:
    cJSON_Delete(root);
    return st;
}

/* Heads, activation and eps come from config.json; the sizes that the
 * shapes already fixed must agree with it. */
static stacl_status apply_hf_config(const char *config_path, stacl_vision_config *cfg) {
    const stacl_hf_size sizes[] = {
        {"hidden_size", cfg->width}, {"intermediate_size", cfg->mlp_width}, {"num_hidden_layers", cfg->layers},
        {"patch_size", cfg->patch}, {"image_size", cfg->image_size}};
    return stacl_hf_tower_config(config_path, "vision_config", "vision", sizes, (int)(sizeof sizes / sizeof sizes[0]),
                                 &cfg->heads, &cfg->ln_eps, &cfg->act);
}

/* ---- per-layout weight reading ------------------------------------------- */

/* Reads residual block l of a CLIP transformer (either tower) into the
 * canonical block layout. prefix: "visual.transformer.resblocks",
 * "transformer.resblocks" (OpenAI) or "vision_model.encoder.layers",
 * "text_model.encoder.layers" (Hugging Face). */
stacl_status stacl_clip_read_block(const stacl_st_file *f, stacl_layout layout, const char *prefix, int l, int64_t w,
                                   int64_t m, const vision_block_offsets *b, float *p) {
    stacl_status st = STACL_OK;
    char n[256];
#define NAME(suffix) (snprintf(n, sizeof n, "%s.%d.%s", prefix, l, suffix), n)
    if (layout == STACL_LAYOUT_OPENAI) {
        LOAD1(NAME("ln_1.weight"), w, p + b->ln1_w);
        LOAD1(NAME("ln_1.bias"), w, p + b->ln1_b);
        LOAD2(NAME("attn.in_proj_weight"), 3 * w, w, p + b->qkv_w);
        LOAD1(NAME("attn.in_proj_bias"), 3 * w, p + b->qkv_b);
        LOAD2(NAME("attn.out_proj.weight"), w, w, p + b->out_w);
        LOAD1(NAME("attn.out_proj.bias"), w, p + b->out_b);
        LOAD1(NAME("ln_2.weight"), w, p + b->ln2_w);
        LOAD1(NAME("ln_2.bias"), w, p + b->ln2_b);
        LOAD2(NAME("mlp.c_fc.weight"), m, w, p + b->fc1_w);
        LOAD1(NAME("mlp.c_fc.bias"), m, p + b->fc1_b);
        LOAD2(NAME("mlp.c_proj.weight"), w, m, p + b->fc2_w);
        LOAD1(NAME("mlp.c_proj.bias"), w, p + b->fc2_b);
    } else {
        LOAD1(NAME("layer_norm1.weight"), w, p + b->ln1_w);
        LOAD1(NAME("layer_norm1.bias"), w, p + b->ln1_b);
        /* Separate q, k, v projections stack into OpenAI's fused order. */
        static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
        for (int j = 0; j < 3; j++) {
            char suffix[64];
            snprintf(suffix, sizeof suffix, "self_attn.%s.weight", qkv[j]);
            LOAD2(NAME(suffix), w, w, p + b->qkv_w + (size_t)(j * w * w));
            snprintf(suffix, sizeof suffix, "self_attn.%s.bias", qkv[j]);
            LOAD1(NAME(suffix), w, p + b->qkv_b + (size_t)(j * w));
        }
        LOAD2(NAME("self_attn.out_proj.weight"), w, w, p + b->out_w);
        LOAD1(NAME("self_attn.out_proj.bias"), w, p + b->out_b);
        LOAD1(NAME("layer_norm2.weight"), w, p + b->ln2_w);
        LOAD1(NAME("layer_norm2.bias"), w, p + b->ln2_b);
        LOAD2(NAME("mlp.fc1.weight"), m, w, p + b->fc1_w);
        LOAD1(NAME("mlp.fc1.bias"), m, p + b->fc1_b);
        LOAD2(NAME("mlp.fc2.weight"), w, m, p + b->fc2_w);
        LOAD1(NAME("mlp.fc2.bias"), w, p + b->fc2_b);
    }
#undef NAME
cleanup:
    return st;
}


static stacl_status read_openai(const stacl_st_file *f, const stacl_vision_config *c, const vision_offsets *o,
                                float *p) {
    stacl_status st = STACL_OK;
    const int64_t w = c->width, m = c->mlp_width, pp = c->patch, L = stacl_vision_tokens(c);
    TRY(stacl_clip_load(f, "visual.conv1.weight", 4, DIMS(w, 3, pp, pp), p + o->patch_w));
    LOAD1("visual.class_embedding", w, p + o->cls);
    LOAD2("visual.positional_embedding", L, w, p + o->pos);
    LOAD1("visual.ln_pre.weight", w, p + o->ln_pre_w);
    LOAD1("visual.ln_pre.bias", w, p + o->ln_pre_b);
    LOAD1("visual.ln_post.weight", w, p + o->ln_post_w);
    LOAD1("visual.ln_post.bias", w, p + o->ln_post_b);
    if (c->proj_dim) LOAD2("visual.proj", w, c->proj_dim, p + o->proj);
    for (int l = 0; l < c->layers; l++)
        TRY(stacl_clip_read_block(f, STACL_LAYOUT_OPENAI, "visual.transformer.resblocks", l, w, m, &o->blocks[l], p));
cleanup:
    return st;
}

static stacl_status read_hf(const stacl_st_file *f, const stacl_vision_config *c, const vision_offsets *o, float *p) {
    stacl_status st = STACL_OK;
    const int64_t w = c->width, m = c->mlp_width, pp = c->patch, L = stacl_vision_tokens(c);
    TRY(stacl_clip_load(f, "vision_model.embeddings.patch_embedding.weight", 4, DIMS(w, 3, pp, pp), p + o->patch_w));
    LOAD1("vision_model.embeddings.class_embedding", w, p + o->cls);
    LOAD2("vision_model.embeddings.position_embedding.weight", L, w, p + o->pos);
    LOAD1("vision_model.pre_layrnorm.weight", w, p + o->ln_pre_w);
    LOAD1("vision_model.pre_layrnorm.bias", w, p + o->ln_pre_b);
    LOAD1("vision_model.post_layernorm.weight", w, p + o->ln_post_w);
    LOAD1("vision_model.post_layernorm.bias", w, p + o->ln_post_b);
    if (c->proj_dim) TRY(stacl_clip_load_transposed(f, "visual_projection.weight", c->proj_dim, w, p + o->proj));
    for (int l = 0; l < c->layers; l++)
        TRY(stacl_clip_read_block(f, STACL_LAYOUT_HF, "vision_model.encoder.layers", l, w, m, &o->blocks[l], p));
cleanup:
    return st;
}

stacl_status stacl_clip_heads(const char *file, const char *tower, stacl_layout layout, int width, int *heads) {
    if (layout == STACL_LAYOUT_OPENAI) {
        /* OpenAI's files carry no head count: its convention is 64-wide heads. */
        if (width % 64 != 0)
            return stacl_fail(STACL_ERR_SHAPE, "%s: %swidth %d is not a multiple of 64, so the OpenAI layout's head "
                              "count (width/64) is undefined", file, tower, width);
        *heads = width / 64;
    }
    if (*heads <= 0 || width % *heads != 0)
        return stacl_fail(STACL_ERR_SHAPE, "%s: %swidth %d is not divisible by %d heads", file, tower, width, *heads);
    return STACL_OK;
}

/* ---- entry point ----------------------------------------------------------- */

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

stacl_status stacl_clip_read_vision(const char *path, stacl_vision_config *cfg, vision_offsets *off,
                                    float **params, char *resolved_path, size_t resolved_cap) {
    stacl_status st = STACL_OK;
    stacl_st_file *f = NULL;
    float *p = NULL;
    char file[4096], dir[4096], config_path[4200];
    memset(cfg, 0, sizeof *cfg);
    memset(off, 0, sizeof *off);
    *params = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0)
        FAIL(STACL_ERR_IO, "model path '%s' does not exist: give a folder holding model.safetensors "
             "(+ config.json for Hugging Face files) or a .safetensors file", path);
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        snprintf(file, sizeof file, "%s/model.safetensors", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
    }
    if (resolved_path) snprintf(resolved_path, resolved_cap, "%s", file);
    TRY(stacl_st_open(&f, file));
    stacl_layout layout;
    if (stacl_st_find(f, "visual.conv1.weight")) layout = STACL_LAYOUT_OPENAI;
    else if (stacl_st_find(f, "vision_model.embeddings.patch_embedding.weight")) layout = STACL_LAYOUT_HF;
    else FAIL(STACL_ERR_MISSING, "%s: no CLIP vision tower found: expected 'visual.conv1.weight' (OpenAI layout) or "
              "'vision_model.embeddings.patch_embedding.weight' (Hugging Face layout)", file);
    TRY(config_from_shapes(f, layout, cfg));
    if (layout == STACL_LAYOUT_HF) {
        snprintf(config_path, sizeof config_path, "%s/config.json", dir);
        TRY(apply_hf_config(config_path, cfg));
    }
    TRY(stacl_clip_heads(file, "", layout, cfg->width, &cfg->heads));
    TRY(stacl_vision_plan(cfg, off));
    p = malloc(off->total * sizeof *p);
    if (!p) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory: %zu floats for %s", off->total, file);
    TRY(layout == STACL_LAYOUT_HF ? read_hf(f, cfg, off, p) : read_openai(f, cfg, off, p));
    *params = p;
    p = NULL;
cleanup:
    free(p);
    if (st != STACL_OK) stacl_vision_offsets_free(off);
    stacl_st_close(f);
    return st;
}
