/* clip_text_weights.c: maps the text tower of CLIP checkpoints onto stacl's
 * canonical layout, as clip_weights.c does for the vision tower. OpenAI /
 * open_clip names: token_embedding.weight, positional_embedding,
 * transformer.resblocks.N.*, ln_final, text_projection [W, P]; heads =
 * width / 64, QuickGELU. Hugging Face: text_model.* with the head count,
 * activation and eps from config.json (text_config, or the top level of a
 * CLIPTextConfig), text_projection.weight [P, W] (transposed on load). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "model_internal.h"
#include "safetensors.h"

stacl_status stacl_text_plan(const stacl_text_config *cfg, text_offsets *off) {
    size_t w = (size_t)cfg->width, m = (size_t)cfg->mlp_width, cursor = 0;
    memset(off, 0, sizeof *off);
#define TAKE(field, count) (off->field = cursor, cursor += (count))
    TAKE(tok_emb, (size_t)cfg->vocab_size * w);
    TAKE(pos, (size_t)cfg->context_length * w);
    TAKE(ln_final_w, w);
    TAKE(ln_final_b, w);
    TAKE(proj, w * (size_t)cfg->proj_dim);
#undef TAKE
    off->blocks = calloc((size_t)cfg->layers, sizeof *off->blocks);
    if (!off->blocks) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory planning the text tower");
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

void stacl_text_offsets_shift(const stacl_text_config *cfg, text_offsets *off, size_t base) {
    off->tok_emb += base;
    off->pos += base;
    off->ln_final_w += base;
    off->ln_final_b += base;
    off->proj += base;
    for (int l = 0; l < cfg->layers; l++) {
        vision_block_offsets *b = &off->blocks[l];
        size_t *fields[] = {&b->ln1_w, &b->ln1_b, &b->qkv_w, &b->qkv_b, &b->out_w, &b->out_b,
                            &b->ln2_w, &b->ln2_b, &b->fc1_w, &b->fc1_b, &b->fc2_w, &b->fc2_b};
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) *fields[i] += base;
    }
}

void stacl_text_offsets_free(text_offsets *off) {
    free(off->blocks);
    off->blocks = NULL;
}

#define DIMS(...) ((const int64_t[]){__VA_ARGS__})
#define LOAD1(name, a, dst) TRY(stacl_clip_load(f, name, 1, DIMS(a), dst))
#define LOAD2(name, a, b, dst) TRY(stacl_clip_load(f, name, 2, DIMS(a, b), dst))

/* Sizes from the tensor shapes. */
static stacl_status config_from_shapes(const stacl_st_file *f, stacl_layout layout, stacl_text_config *cfg) {
    const int hf = layout == STACL_LAYOUT_HF;
    const char *path = stacl_st_path(f);
    const char *emb_name = hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
    const char *pos_name = hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
    const char *fc1_name = hf ? "text_model.encoder.layers.0.mlp.fc1.weight" : "transformer.resblocks.0.mlp.c_fc.weight";
    const char *proj_name = hf ? "text_projection.weight" : "text_projection";
    const stacl_st_tensor *emb = stacl_st_find(f, emb_name);
    const stacl_st_tensor *pos = stacl_st_find(f, pos_name);
    const stacl_st_tensor *fc1 = stacl_st_find(f, fc1_name);
    const stacl_st_tensor *proj = stacl_st_find(f, proj_name);
    if (emb->ndim != 2 || emb->shape[0] < 1 || emb->shape[1] < 1)
        return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' must have shape [vocab, width]", path, emb_name);
    cfg->vocab_size = (int)emb->shape[0];
    cfg->width = (int)emb->shape[1];
    if (!pos || pos->ndim != 2 || pos->shape[1] != cfg->width || pos->shape[0] < 1)
        return stacl_fail(pos ? STACL_ERR_SHAPE : STACL_ERR_MISSING, "%s: tensor '%s' must exist with shape [context, %d]",
                          path, pos_name, cfg->width);
    cfg->context_length = (int)pos->shape[0];
    cfg->layers = stacl_clip_count_layers(f, hf ? "text_model.encoder.layers.%d.layer_norm1.weight"
                                                : "transformer.resblocks.%d.ln_1.weight");
    if (cfg->layers == 0) return stacl_fail(STACL_ERR_MISSING, "%s: no transformer blocks found in the text tower", path);
    if (!fc1 || fc1->ndim != 2 || fc1->shape[1] != cfg->width)
        return stacl_fail(fc1 ? STACL_ERR_SHAPE : STACL_ERR_MISSING, "%s: tensor '%s' must exist with shape [mlp_width, %d]",
                          path, fc1_name, cfg->width);
    cfg->mlp_width = (int)fc1->shape[0];
    cfg->proj_dim = 0;
    if (proj) {
        if (proj->ndim != 2 || proj->shape[hf ? 1 : 0] != cfg->width)
            return stacl_fail(STACL_ERR_SHAPE, "%s: tensor '%s' must have shape %s", path, proj_name,
                              hf ? "[proj_dim, width]" : "[width, proj_dim]");
        cfg->proj_dim = (int)proj->shape[hf ? 0 : 1];
    }
    cfg->ln_eps = 1e-5f;
    cfg->act = STACL_ACT_QUICK_GELU;
    cfg->layout = layout;
    return STACL_OK;
}

/* Heads, activation and eps from config.json; sizes must agree. */
static stacl_status apply_hf_config(const char *config_path, stacl_text_config *cfg) {
    const stacl_hf_size sizes[] = {
        {"hidden_size", cfg->width}, {"intermediate_size", cfg->mlp_width}, {"num_hidden_layers", cfg->layers},
        {"max_position_embeddings", cfg->context_length}, {"vocab_size", cfg->vocab_size}};
    return stacl_hf_tower_config(config_path, "text_config", "text", sizes, (int)(sizeof sizes / sizeof sizes[0]),
                                 &cfg->heads, &cfg->ln_eps, &cfg->act);
}

static stacl_status read_openai(const stacl_st_file *f, const stacl_text_config *c, const text_offsets *o, float *p) {
    stacl_status st = STACL_OK;
    const int64_t w = c->width, m = c->mlp_width;
    LOAD2("token_embedding.weight", c->vocab_size, w, p + o->tok_emb);
    LOAD2("positional_embedding", c->context_length, w, p + o->pos);
    LOAD1("ln_final.weight", w, p + o->ln_final_w);
    LOAD1("ln_final.bias", w, p + o->ln_final_b);
    if (c->proj_dim) LOAD2("text_projection", w, c->proj_dim, p + o->proj);
    for (int l = 0; l < c->layers; l++)
        TRY(stacl_clip_read_block(f, STACL_LAYOUT_OPENAI, "transformer.resblocks", l, w, m, &o->blocks[l], p));
cleanup:
    return st;
}

static stacl_status read_hf(const stacl_st_file *f, const stacl_text_config *c, const text_offsets *o, float *p) {
    stacl_status st = STACL_OK;
    const int64_t w = c->width, m = c->mlp_width;
    LOAD2("text_model.embeddings.token_embedding.weight", c->vocab_size, w, p + o->tok_emb);
    LOAD2("text_model.embeddings.position_embedding.weight", c->context_length, w, p + o->pos);
    LOAD1("text_model.final_layer_norm.weight", w, p + o->ln_final_w);
    LOAD1("text_model.final_layer_norm.bias", w, p + o->ln_final_b);
    if (c->proj_dim) TRY(stacl_clip_load_transposed(f, "text_projection.weight", c->proj_dim, w, p + o->proj));
    for (int l = 0; l < c->layers; l++)
        TRY(stacl_clip_read_block(f, STACL_LAYOUT_HF, "text_model.encoder.layers", l, w, m, &o->blocks[l], p));
cleanup:
    return st;
}

stacl_status stacl_clip_read_text(const char *file, const char *dir, int *present, stacl_text_config *cfg,
                                  text_offsets *off, float **params) {
    stacl_status st = STACL_OK;
    stacl_st_file *f = NULL;
    float *p = NULL;
    char config_path[4200];
    *present = 0;
    *params = NULL;
    memset(cfg, 0, sizeof *cfg);
    memset(off, 0, sizeof *off);
    TRY(stacl_st_open(&f, file));
    stacl_layout layout;
    if (stacl_st_find(f, "token_embedding.weight")) layout = STACL_LAYOUT_OPENAI;
    else if (stacl_st_find(f, "text_model.embeddings.token_embedding.weight")) layout = STACL_LAYOUT_HF;
    else goto cleanup; /* a vision-only file */
    *present = 1;
    TRY(config_from_shapes(f, layout, cfg));
    if (layout == STACL_LAYOUT_HF) {
        snprintf(config_path, sizeof config_path, "%s/config.json", dir);
        TRY(apply_hf_config(config_path, cfg));
    }
    TRY(stacl_clip_heads(file, "text ", layout, cfg->width, &cfg->heads));
    TRY(stacl_text_plan(cfg, off));
    p = malloc(off->total * sizeof *p);
    if (!p) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory: %zu floats for the text tower of %s", off->total, file);
    TRY(layout == STACL_LAYOUT_HF ? read_hf(f, cfg, off, p) : read_openai(f, cfg, off, p));
    *params = p;
    p = NULL;
cleanup:
    free(p);
    if (st != STACL_OK) stacl_text_offsets_free(off);
    stacl_st_close(f);
    return st;
}

stacl_status stacl_clip_read_logit_scale(const char *file, int *present, float *value) {
    stacl_status st = STACL_OK;
    stacl_st_file *f = NULL;
    *present = 0;
    *value = 0.0f;
    TRY(stacl_st_open(&f, file));
    const stacl_st_tensor *t = stacl_st_find(f, "logit_scale");
    if (!t) goto cleanup;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    if (n != 1 || !stacl_dtype_is_float(t->dtype))
        FAIL(STACL_ERR_SHAPE, "%s: tensor 'logit_scale' must be one float (CLIP's log temperature)", file);
    TRY(stacl_st_read_f32(f, t, value));
    *present = 1;
cleanup:
    stacl_st_close(f);
    return st;
}
