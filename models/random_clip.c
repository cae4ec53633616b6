/* random_clip.c: writes random CLIP vision towers in the real OpenAI and
 * Hugging Face file layouts, so tests, the demo and benchmarks have models
 * without downloading weights (see random_clip.h).
 *
 * Every logical parameter draws from its own PRNG stream, keyed by the seed
 * and a layout-independent name. So the two layouts written from one spec
 * (QuickGELU) hold the same model: HF q/k/v are the row blocks of OpenAI's
 * in_proj, and visual_projection.weight is visual.proj transposed. Loader
 * tests rely on that to compare layouts. */
#include "random_clip.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cJSON.h>

#include "atomic_file.h"
#include "safetensors.h"
#include "status.h"

/* Generous bounds that keep every size product far from overflowing size_t
 * (the largest tensor is then < 2^46 bytes, which malloc simply refuses). */
#define MAX_DIM 65536
#define MAX_LAYERS 4096
#define MAX_IMAGE 16384

stacl_random_clip_spec stacl_random_clip_default_spec(void) {
    stacl_random_clip_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.layout = STACL_LAYOUT_OPENAI;
    spec.width = 768;
    spec.layers = 12;
    spec.heads = 12;
    spec.mlp_width = 3072;
    spec.patch = 16;
    spec.image_size = 224;
    spec.proj_dim = 512;
    spec.act = STACL_ACT_QUICK_GELU;
    spec.f16 = 0;
    spec.seed = 0;
    spec.text_width = 512;
    spec.text_layers = 0;
    spec.text_context = 77;
    spec.text_vocab = 49408;
    return spec;
}

/* ---- PRNG: splitmix64 seeding xoshiro256**, Marsaglia polar normals ---- */

typedef struct rng {
    uint64_t s[4];
    double spare;
    int has_spare;
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

static uint64_t fnv1a64(const char *str) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        h ^= *p;
        h *= 0x100000001B3ull;
    }
    return h;
}

static void rng_init(rng *r, uint64_t seed, const char *key) {
    uint64_t sm = seed;
    uint64_t x = splitmix64(&sm) ^ fnv1a64(key);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0.0;
}

/* Uniform in (-1, 1) with 53 random bits. */
static double rng_signed_unit(rng *r) {
    return (double)(xoshiro_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* The polar method avoids sin/cos, which matters for ~86M draws. */
static double rng_normal(rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = rng_signed_unit(r);
        v = rng_signed_unit(r);
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double m = sqrt(-2.0 * log(s) / s);
    r->spare = v * m;
    r->has_spare = 1;
    return u * m;
}

/* ---- tensor collection ------------------------------------------------ */

typedef struct slot {
    char name[128];
    stacl_dtype dtype;
    int ndim;
    int64_t shape[STACL_ST_MAX_DIMS];
    void *data; /* owned */
} slot;

typedef struct builder {
    const stacl_random_clip_spec *spec;
    slot *slots;
    int n, cap;
} builder;

static void builder_free(builder *b) {
    for (int i = 0; i < b->n; i++) free(b->slots[i].data);
    free(b->slots);
    b->slots = NULL;
    b->n = b->cap = 0;
}

static size_t shape_numel(int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

/* Allocates n floats filled with mean + std * N(0,1) from the stream `key`. */
static stacl_status new_normal(builder *b, const char *key, size_t n, double mean, double std,
                               float **out) {
    *out = NULL;
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "random model: cannot allocate %zu bytes for '%s'",
                          n * sizeof *p, key);
    rng r;
    rng_init(&r, b->spec->seed, key);
    for (size_t i = 0; i < n; i++) p[i] = (float)(mean + std * rng_normal(&r));
    *out = p;
    return STACL_OK;
}

/* Takes ownership of data (a float buffer of the shape's size) even on
 * failure; stores it as F16 when the spec asks, freeing the f32 copy at once
 * so that peak memory stays near the F16 file size. */
static stacl_status add_float(builder *b, const char *name, float *data, int ndim,
                              const int64_t *shape) {
    stacl_status st = STACL_OK;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        slot *grown = realloc(b->slots, (size_t)cap * sizeof *grown);
        if (!grown) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory adding '%s'", name);
        b->slots = grown;
        b->cap = cap;
    }
    slot *s = &b->slots[b->n];
    memset(s, 0, sizeof *s);
    const size_t len = strlen(name);
    if (len >= sizeof s->name) FAIL(STACL_ERR_INVALID_ARG, "random model: tensor name too long: '%s'", name);
    memcpy(s->name, name, len + 1);
    s->ndim = ndim;
    for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
    if (b->spec->f16) {
        size_t n = shape_numel(ndim, shape);
        uint16_t *h = malloc((n ? n : 1) * sizeof *h);
        if (!h)
            FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: cannot allocate %zu bytes for '%s'",
                 n * sizeof *h, name);
        for (size_t i = 0; i < n; i++) h[i] = stacl_f32_to_f16(data[i]);
        s->dtype = STACL_DT_F16;
        s->data = h;
    } else {
        s->dtype = STACL_DT_F32;
        s->data = data;
        data = NULL;
    }
    b->n++;
cleanup:
    free(data);
    return st;
}

/* Generates a tensor from stream `key` and adds it as `name`. */
static stacl_status add_normal(builder *b, const char *name, const char *key, double mean,
                               double std, int ndim, const int64_t *shape) {
    float *p = NULL;
    stacl_status st = new_normal(b, key, shape_numel(ndim, shape), mean, std, &p);
    if (st != STACL_OK) return st;
    return add_float(b, name, p, ndim, shape);
}

/* ---- the two layouts -------------------------------------------------- */

/* Standard deviations of CLIP's initialisation: activations stay O(1). */
typedef struct inits {
    double emb, patch, attn_in, attn_out, fc1, fc2, proj;
} inits;

static inits clip_inits(const stacl_random_clip_spec *s) {
    inits in;
    double w = s->width, depth = 2.0 * s->layers;
    in.emb = 1.0 / sqrt(w);
    in.patch = 1.0 / sqrt(3.0 * s->patch * s->patch);
    in.attn_in = 1.0 / sqrt(w);
    in.attn_out = 1.0 / sqrt(w) / sqrt(depth);
    in.fc1 = 1.0 / sqrt(2.0 * w);
    in.fc2 = 1.0 / sqrt(w) / sqrt(depth);
    in.proj = 1.0 / sqrt(w);
    return in;
}

#define LN_STD 0.1
#define BIAS_STD 0.02

static int spec_tokens(const stacl_random_clip_spec *s) {
    int g = s->image_size / s->patch;
    return g * g + 1;
}

static double logit_scale_value(void) { return log(1.0 / 0.07); }

/* Stream keys are the OpenAI names (with .q/.k/.v suffixes for the parts of
 * in_proj), whatever the layout being written. */
static stacl_status add_layernorm(builder *b, const char *name, const char *key, int64_t w) {
    stacl_status st = STACL_OK;
    char n1[160], k1[160];
    snprintf(n1, sizeof n1, "%s.weight", name);
    snprintf(k1, sizeof k1, "%s.weight", key);
    TRY(add_normal(b, n1, k1, 1.0, LN_STD, 1, &w));
    snprintf(n1, sizeof n1, "%s.bias", name);
    snprintf(k1, sizeof k1, "%s.bias", key);
    TRY(add_normal(b, n1, k1, 0.0, LN_STD, 1, &w));
cleanup:
    return st;
}

static stacl_status add_scalar(builder *b, const char *name, double value) {
    float *p = malloc(sizeof *p);
    if (!p) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory adding '%s'", name);
    *p = (float)value;
    return add_float(b, name, p, 0, NULL);
}

static stacl_status build_openai(builder *b) {
    stacl_status st = STACL_OK;
    const stacl_random_clip_spec *s = b->spec;
    inits in = clip_inits(s);
    int64_t w = s->width, m = s->mlp_width, p = s->patch, L = spec_tokens(s);
    char name[160], key[160];
    float *buf = NULL;

    TRY(add_normal(b, "visual.class_embedding", "visual.class_embedding", 0.0, in.emb, 1, &w));
    TRY(add_normal(b, "visual.positional_embedding", "visual.positional_embedding", 0.0, in.emb, 2,
                   (int64_t[]){L, w}));
    TRY(add_normal(b, "visual.conv1.weight", "visual.conv1.weight", 0.0, in.patch, 4,
                   (int64_t[]){w, 3, p, p}));
    TRY(add_layernorm(b, "visual.ln_pre", "visual.ln_pre", w));

    for (int l = 0; l < s->layers; l++) {
        char pre[96];
        snprintf(pre, sizeof pre, "visual.transformer.resblocks.%d", l);
        snprintf(name, sizeof name, "%s.ln_1", pre);
        TRY(add_layernorm(b, name, name, w));

        /* q, k, v are separate streams (see the top of the file). */
        static const char *const parts[3] = {"q", "k", "v"};
        size_t ww = (size_t)(w * w);
        buf = malloc(3 * ww * sizeof *buf);
        if (!buf) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for %s.attn.in_proj_weight", pre);
        for (size_t j = 0; j < 3; j++) {
            rng r;
            snprintf(key, sizeof key, "%s.attn.in_proj_weight.%s", pre, parts[j]);
            rng_init(&r, s->seed, key);
            for (size_t i = 0; i < ww; i++) buf[j * ww + i] = (float)(in.attn_in * rng_normal(&r));
        }
        snprintf(name, sizeof name, "%s.attn.in_proj_weight", pre);
        st = add_float(b, name, buf, 2, (int64_t[]){3 * w, w});
        buf = NULL;
        TRY(st);
        buf = malloc(3 * (size_t)w * sizeof *buf);
        if (!buf) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for %s.attn.in_proj_bias", pre);
        for (int j = 0; j < 3; j++) {
            rng r;
            snprintf(key, sizeof key, "%s.attn.in_proj_bias.%s", pre, parts[j]);
            rng_init(&r, s->seed, key);
            for (int64_t i = 0; i < w; i++) buf[j * w + i] = (float)(BIAS_STD * rng_normal(&r));
        }
        snprintf(name, sizeof name, "%s.attn.in_proj_bias", pre);
        st = add_float(b, name, buf, 1, (int64_t[]){3 * w});
        buf = NULL;
        TRY(st);

        snprintf(name, sizeof name, "%s.attn.out_proj.weight", pre);
        TRY(add_normal(b, name, name, 0.0, in.attn_out, 2, (int64_t[]){w, w}));
        snprintf(name, sizeof name, "%s.attn.out_proj.bias", pre);
        TRY(add_normal(b, name, name, 0.0, BIAS_STD, 1, &w));
        snprintf(name, sizeof name, "%s.ln_2", pre);
        TRY(add_layernorm(b, name, name, w));
        snprintf(name, sizeof name, "%s.mlp.c_fc.weight", pre);
        TRY(add_normal(b, name, name, 0.0, in.fc1, 2, (int64_t[]){m, w}));
        snprintf(name, sizeof name, "%s.mlp.c_fc.bias", pre);
        TRY(add_normal(b, name, name, 0.0, BIAS_STD, 1, &m));
        snprintf(name, sizeof name, "%s.mlp.c_proj.weight", pre);
        TRY(add_normal(b, name, name, 0.0, in.fc2, 2, (int64_t[]){w, m}));
        snprintf(name, sizeof name, "%s.mlp.c_proj.bias", pre);
        TRY(add_normal(b, name, name, 0.0, BIAS_STD, 1, &w));
    }

    TRY(add_layernorm(b, "visual.ln_post", "visual.ln_post", w));
    if (s->proj_dim > 0)
        TRY(add_normal(b, "visual.proj", "visual.proj", 0.0, in.proj, 2,
                       (int64_t[]){w, s->proj_dim}));
    TRY(add_scalar(b, "logit_scale", logit_scale_value()));
cleanup:
    free(buf);
    return st;
}

static stacl_status build_hf(builder *b) {
    stacl_status st = STACL_OK;
    const stacl_random_clip_spec *s = b->spec;
    inits in = clip_inits(s);
    int64_t w = s->width, m = s->mlp_width, p = s->patch, L = spec_tokens(s);
    char name[160], key[160];
    float *tmp = NULL, *t = NULL;
    int64_t *ids = NULL;

    TRY(add_normal(b, "vision_model.embeddings.class_embedding", "visual.class_embedding", 0.0,
                   in.emb, 1, &w));
    TRY(add_normal(b, "vision_model.embeddings.patch_embedding.weight", "visual.conv1.weight", 0.0,
                   in.patch, 4, (int64_t[]){w, 3, p, p}));
    TRY(add_normal(b, "vision_model.embeddings.position_embedding.weight",
                   "visual.positional_embedding", 0.0, in.emb, 2, (int64_t[]){L, w}));

    /* position_ids is an integer buffer, never converted to F16. */
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        slot *grown = realloc(b->slots, (size_t)cap * sizeof *grown);
        if (!grown) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory adding position_ids");
        b->slots = grown;
        b->cap = cap;
    }
    ids = malloc((size_t)L * sizeof *ids);
    if (!ids) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for position_ids");
    for (int64_t i = 0; i < L; i++) ids[i] = i;
    {
        slot *sl = &b->slots[b->n++];
        memset(sl, 0, sizeof *sl);
        snprintf(sl->name, sizeof sl->name, "vision_model.embeddings.position_ids");
        sl->dtype = STACL_DT_I64;
        sl->ndim = 2;
        sl->shape[0] = 1;
        sl->shape[1] = L;
        sl->data = ids;
        ids = NULL;
    }
    TRY(add_layernorm(b, "vision_model.pre_layrnorm", "visual.ln_pre", w));

    for (int l = 0; l < s->layers; l++) {
        char pre[96], opre[96];
        snprintf(pre, sizeof pre, "vision_model.encoder.layers.%d", l);
        snprintf(opre, sizeof opre, "visual.transformer.resblocks.%d", l);
        static const char *const parts[3] = {"q", "k", "v"};
        for (int j = 0; j < 3; j++) {
            snprintf(name, sizeof name, "%s.self_attn.%s_proj.weight", pre, parts[j]);
            snprintf(key, sizeof key, "%s.attn.in_proj_weight.%s", opre, parts[j]);
            TRY(add_normal(b, name, key, 0.0, in.attn_in, 2, (int64_t[]){w, w}));
            snprintf(name, sizeof name, "%s.self_attn.%s_proj.bias", pre, parts[j]);
            snprintf(key, sizeof key, "%s.attn.in_proj_bias.%s", opre, parts[j]);
            TRY(add_normal(b, name, key, 0.0, BIAS_STD, 1, &w));
        }
        snprintf(name, sizeof name, "%s.self_attn.out_proj.weight", pre);
        snprintf(key, sizeof key, "%s.attn.out_proj.weight", opre);
        TRY(add_normal(b, name, key, 0.0, in.attn_out, 2, (int64_t[]){w, w}));
        snprintf(name, sizeof name, "%s.self_attn.out_proj.bias", pre);
        snprintf(key, sizeof key, "%s.attn.out_proj.bias", opre);
        TRY(add_normal(b, name, key, 0.0, BIAS_STD, 1, &w));
        snprintf(name, sizeof name, "%s.layer_norm1", pre);
        snprintf(key, sizeof key, "%s.ln_1", opre);
        TRY(add_layernorm(b, name, key, w));
        snprintf(name, sizeof name, "%s.mlp.fc1.weight", pre);
        snprintf(key, sizeof key, "%s.mlp.c_fc.weight", opre);
        TRY(add_normal(b, name, key, 0.0, in.fc1, 2, (int64_t[]){m, w}));
        snprintf(name, sizeof name, "%s.mlp.fc1.bias", pre);
        snprintf(key, sizeof key, "%s.mlp.c_fc.bias", opre);
        TRY(add_normal(b, name, key, 0.0, BIAS_STD, 1, &m));
        snprintf(name, sizeof name, "%s.mlp.fc2.weight", pre);
        snprintf(key, sizeof key, "%s.mlp.c_proj.weight", opre);
        TRY(add_normal(b, name, key, 0.0, in.fc2, 2, (int64_t[]){w, m}));
        snprintf(name, sizeof name, "%s.mlp.fc2.bias", pre);
        snprintf(key, sizeof key, "%s.mlp.c_proj.bias", opre);
        TRY(add_normal(b, name, key, 0.0, BIAS_STD, 1, &w));
        snprintf(name, sizeof name, "%s.layer_norm2", pre);
        snprintf(key, sizeof key, "%s.ln_2", opre);
        TRY(add_layernorm(b, name, key, w));
    }

    TRY(add_layernorm(b, "vision_model.post_layernorm", "visual.ln_post", w));
    if (s->proj_dim > 0) {
        /* HF stores the projection as a Linear weight [proj, w]: the
         * transpose of OpenAI's [w, proj] matrix, drawn from the same stream. */
        int64_t P = s->proj_dim;
        TRY(new_normal(b, "visual.proj", (size_t)(w * P), 0.0, in.proj, &tmp));
        t = malloc((size_t)(w * P) * sizeof *t);
        if (!t) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for visual_projection.weight");
        for (int64_t i = 0; i < w; i++)
            for (int64_t j = 0; j < P; j++) t[j * w + i] = tmp[i * P + j];
        st = add_float(b, "visual_projection.weight", t, 2, (int64_t[]){P, w});
        t = NULL;
        TRY(st);
        TRY(add_scalar(b, "logit_scale", logit_scale_value()));
    }
cleanup:
    free(tmp);
    free(t);
    free(ids);
    return st;
}

/* The text tower in either layout, streams keyed by the OpenAI names (so
 * both layouts again hold the same model). */
static stacl_status build_text(builder *b, int hf) {
    stacl_status st = STACL_OK;
    const stacl_random_clip_spec *s = b->spec;
    const int64_t w = s->text_width, m = 4 * s->text_width, V = s->text_vocab, L = s->text_context;
    const int64_t P = s->proj_dim;
    const double attn_in = 1.0 / sqrt((double)w), out_std = attn_in / sqrt(2.0 * s->text_layers);
    char name[160], key[160];
    float *tmp = NULL, *t = NULL;
    TRY(add_normal(b, hf ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight",
                   "token_embedding.weight", 0.0, 0.02, 2, (int64_t[]){V, w}));
    TRY(add_normal(b, hf ? "text_model.embeddings.position_embedding.weight" : "positional_embedding",
                   "positional_embedding", 0.0, 0.01, 2, (int64_t[]){L, w}));
    for (int l = 0; l < s->text_layers; l++) {
        char pre[96], opre[96];
        snprintf(opre, sizeof opre, "transformer.resblocks.%d", l);
        snprintf(pre, sizeof pre, hf ? "text_model.encoder.layers.%d" : "transformer.resblocks.%d", l);
        static const char *const parts[3] = {"q", "k", "v"};
        if (hf) {
            for (int j = 0; j < 3; j++) {
                snprintf(name, sizeof name, "%s.self_attn.%s_proj.weight", pre, parts[j]);
                snprintf(key, sizeof key, "%s.attn.in_proj_weight.%s", opre, parts[j]);
                TRY(add_normal(b, name, key, 0.0, attn_in, 2, (int64_t[]){w, w}));
                snprintf(name, sizeof name, "%s.self_attn.%s_proj.bias", pre, parts[j]);
                snprintf(key, sizeof key, "%s.attn.in_proj_bias.%s", opre, parts[j]);
                TRY(add_normal(b, name, key, 0.0, BIAS_STD, 1, &w));
            }
        } else {
            /* in_proj = the q, k, v streams stacked. */
            for (int bias = 0; bias < 2; bias++) {
                size_t part = bias ? (size_t)w : (size_t)(w * w);
                t = malloc(3 * part * sizeof *t);
                if (!t) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for %s.attn", pre);
                for (int j = 0; j < 3; j++) {
                    rng r;
                    snprintf(key, sizeof key, "%s.attn.in_proj_%s.%s", opre, bias ? "bias" : "weight", parts[j]);
                    rng_init(&r, s->seed, key);
                    for (size_t i = 0; i < part; i++) t[j * part + i] = (float)((bias ? BIAS_STD : attn_in) * rng_normal(&r));
                }
                snprintf(name, sizeof name, "%s.attn.in_proj_%s", pre, bias ? "bias" : "weight");
                st = bias ? add_float(b, name, t, 1, (int64_t[]){3 * w}) : add_float(b, name, t, 2, (int64_t[]){3 * w, w});
                t = NULL;
                TRY(st);
            }
        }
        static const struct { const char *hf, *oa; } names[] = {
            {"self_attn.out_proj", "attn.out_proj"}, {"layer_norm1", "ln_1"}, {"mlp.fc1", "mlp.c_fc"},
            {"mlp.fc2", "mlp.c_proj"}, {"layer_norm2", "ln_2"}};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            snprintf(name, sizeof name, "%s.%s", pre, hf ? names[k].hf : names[k].oa);
            snprintf(key, sizeof key, "%s.%s", opre, names[k].oa);
            if (k == 1 || k == 4) {
                TRY(add_layernorm(b, name, key, w));
                continue;
            }
            const int64_t rows = k == 2 ? m : w, cols = k == 3 ? m : w;
            const double std = k == 2 ? 1.0 / sqrt(2.0 * w) : out_std;
            char n2[200], k2[200];
            snprintf(n2, sizeof n2, "%s.weight", name);
            snprintf(k2, sizeof k2, "%s.weight", key);
            TRY(add_normal(b, n2, k2, 0.0, std, 2, (int64_t[]){rows, cols}));
            snprintf(n2, sizeof n2, "%s.bias", name);
            snprintf(k2, sizeof k2, "%s.bias", key);
            TRY(add_normal(b, n2, k2, 0.0, BIAS_STD, 1, &rows));
        }
    }
    TRY(add_layernorm(b, hf ? "text_model.final_layer_norm" : "ln_final", "ln_final", w));
    if (!hf) {
        TRY(add_normal(b, "text_projection", "text_projection", 0.0, attn_in, 2, (int64_t[]){w, P}));
    } else {
        /* HF: a Linear weight [P, w], the transpose of OpenAI's [w, P]. */
        TRY(new_normal(b, "text_projection", (size_t)(w * P), 0.0, attn_in, &tmp));
        t = malloc((size_t)(w * P) * sizeof *t);
        if (!t) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory for text_projection.weight");
        for (int64_t i = 0; i < w; i++)
            for (int64_t j = 0; j < P; j++) t[j * w + i] = tmp[i * P + j];
        st = add_float(b, "text_projection.weight", t, 2, (int64_t[]){P, w});
        t = NULL;
        TRY(st);
    }
cleanup:
    free(tmp);
    free(t);
    return st;
}

/* ---- files ------------------------------------------------------------ */

static char *join_path(const char *dir, const char *file) {
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, file);
    return p;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Like mkdir -p, so `gen-model out/models/vitb` works on a fresh tree. */
static stacl_status make_dirs(const char *dir) {
    stacl_status st = STACL_OK;
    char *copy = malloc(strlen(dir) + 1);
    if (!copy) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory");
    strcpy(copy, dir);
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0777) != 0) {
            int err = errno;
            /* An existing directory is fine even where mkdir reports EACCES. */
            if (!is_dir(copy))
                FAIL(STACL_ERR_IO, "cannot create directory '%s' (at '%s'): %s", dir, copy,
                     strerror(err == EEXIST ? ENOTDIR : err));
        }
        *p = saved;
        if (saved == '\0') break;
    }
cleanup:
    free(copy);
    return st;
}

static cJSON *vision_fields(cJSON *obj, const stacl_random_clip_spec *s, int *ok) {
    *ok &= cJSON_AddNumberToObject(obj, "hidden_size", s->width) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "intermediate_size", s->mlp_width) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "num_attention_heads", s->heads) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "num_hidden_layers", s->layers) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "patch_size", s->patch) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "image_size", s->image_size) != NULL;
    *ok &= cJSON_AddStringToObject(obj, "hidden_act",
                                   s->act == STACL_ACT_GELU ? "gelu" : "quick_gelu") != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "layer_norm_eps", 1e-5) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "num_channels", 3) != NULL;
    *ok &= cJSON_AddNumberToObject(obj, "projection_dim", s->proj_dim) != NULL;
    *ok &= cJSON_AddStringToObject(obj, "model_type", "clip_vision_model") != NULL;
    return obj;
}

static char *hf_config_text(const stacl_random_clip_spec *s) {
    int ok = 1;
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_CreateArray();
    if (!root || !arch) goto done;
    cJSON_AddItemToObject(root, "architectures", arch);
    if (s->proj_dim > 0) {
        ok &= cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPModel"));
        ok &= cJSON_AddStringToObject(root, "model_type", "clip") != NULL;
        ok &= cJSON_AddNumberToObject(root, "projection_dim", s->proj_dim) != NULL;
        cJSON *vision = cJSON_AddObjectToObject(root, "vision_config");
        ok &= vision != NULL;
        if (vision) vision_fields(vision, s, &ok);
        if (s->text_layers > 0) {
            cJSON *text = cJSON_AddObjectToObject(root, "text_config");
            ok &= text != NULL;
            if (text) {
                ok &= cJSON_AddNumberToObject(text, "hidden_size", s->text_width) != NULL;
                ok &= cJSON_AddNumberToObject(text, "intermediate_size", 4 * s->text_width) != NULL;
                ok &= cJSON_AddNumberToObject(text, "num_attention_heads", s->text_width / 64) != NULL;
                ok &= cJSON_AddNumberToObject(text, "num_hidden_layers", s->text_layers) != NULL;
                ok &= cJSON_AddNumberToObject(text, "max_position_embeddings", s->text_context) != NULL;
                ok &= cJSON_AddNumberToObject(text, "vocab_size", s->text_vocab) != NULL;
                ok &= cJSON_AddStringToObject(text, "hidden_act", "quick_gelu") != NULL;
                ok &= cJSON_AddNumberToObject(text, "layer_norm_eps", 1e-5) != NULL;
                ok &= cJSON_AddNumberToObject(text, "projection_dim", s->proj_dim) != NULL;
                ok &= cJSON_AddStringToObject(text, "model_type", "clip_text_model") != NULL;
            }
        }
    } else {
        ok &= cJSON_AddItemToArray(arch, cJSON_CreateString("CLIPVisionModel"));
        /* vision_fields ends with model_type = clip_vision_model. */
        vision_fields(root, s, &ok);
    }
    if (ok) text = cJSON_Print(root);
done:
    if (root) cJSON_Delete(root);
    else cJSON_Delete(arch);
    return text;
}

/* Written to a temporary name and renamed, like the safetensors file, so a
 * reader never sees a half-written config. */
static stacl_status write_text_atomic(const char *path, const char *text) {
    stacl_status st = STACL_OK;
    stacl_atomic_file af = {0};
    TRY(stacl_atomic_open(&af, path, 0));
    TRY(stacl_atomic_write(&af, text, strlen(text)));
    TRY(stacl_atomic_write(&af, "\n", 1));
    TRY(stacl_atomic_commit(&af));
cleanup:
    stacl_atomic_abort(&af);
    return st;
}

static stacl_status validate(const char *dir, const stacl_random_clip_spec *s) {
    if (!dir || !*dir) return stacl_fail(STACL_ERR_INVALID_ARG, "random model: no output directory");
    if (!s) return stacl_fail(STACL_ERR_INVALID_ARG, "random model: spec is NULL");
    if (s->layout != STACL_LAYOUT_OPENAI && s->layout != STACL_LAYOUT_HF)
        return stacl_fail(STACL_ERR_INVALID_ARG, "random model: unknown layout %d", (int)s->layout);
    if (s->act != STACL_ACT_QUICK_GELU && s->act != STACL_ACT_GELU)
        return stacl_fail(STACL_ERR_INVALID_ARG, "random model: unknown activation %d", (int)s->act);
    struct { const char *name; int value, max; } sizes[] = {
        {"width", s->width, MAX_DIM},         {"layers", s->layers, MAX_LAYERS},
        {"heads", s->heads, MAX_DIM},         {"mlp_width", s->mlp_width, MAX_DIM},
        {"patch", s->patch, MAX_IMAGE},       {"image_size", s->image_size, MAX_IMAGE},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i].value <= 0 || sizes[i].value > sizes[i].max)
            return stacl_fail(STACL_ERR_INVALID_ARG, "random model: %s must be in 1..%d, got %d",
                              sizes[i].name, sizes[i].max, sizes[i].value);
    if (s->proj_dim < 0 || s->proj_dim > MAX_DIM)
        return stacl_fail(STACL_ERR_INVALID_ARG,
                          "random model: proj_dim must be in 0..%d (0 = no projection), got %d",
                          MAX_DIM, s->proj_dim);
    if (s->image_size % s->patch != 0)
        return stacl_fail(STACL_ERR_INVALID_ARG,
                          "random model: image_size %d is not divisible by patch %d", s->image_size,
                          s->patch);
    if (s->width % s->heads != 0)
        return stacl_fail(STACL_ERR_INVALID_ARG,
                          "random model: width %d is not divisible by heads %d", s->width, s->heads);
    if (s->text_layers < 0 || s->text_layers > MAX_LAYERS)
        return stacl_fail(STACL_ERR_INVALID_ARG, "random model: text_layers must be in 0..%d, got %d", MAX_LAYERS,
                          s->text_layers);
    if (s->text_layers > 0) {
        if (s->proj_dim <= 0)
            return stacl_fail(STACL_ERR_INVALID_ARG, "random model: a text tower needs a projection (proj_dim > 0)");
        if (s->text_width <= 0 || s->text_width > MAX_DIM || s->text_width % 64 != 0)
            return stacl_fail(STACL_ERR_INVALID_ARG, "random model: text_width must be a multiple of 64 in 64..%d "
                              "(heads = width/64), got %d", MAX_DIM, s->text_width);
        if (s->text_context <= 0 || s->text_context > MAX_DIM || s->text_vocab <= 0 || s->text_vocab > (1 << 20))
            return stacl_fail(STACL_ERR_INVALID_ARG, "random model: text context %d or vocab %d out of range",
                              s->text_context, s->text_vocab);
    }
    if (s->layout == STACL_LAYOUT_OPENAI) {
        /* OpenAI checkpoints do not record heads; loaders infer width/64. */
        if (s->width % 64 != 0 || s->heads != s->width / 64)
            return stacl_fail(STACL_ERR_INVALID_ARG,
                              "random model: the OpenAI layout needs heads == width/64 "
                              "(width %d, heads %d); use the HF layout for other head counts",
                              s->width, s->heads);
        if (s->act != STACL_ACT_QUICK_GELU)
            return stacl_fail(STACL_ERR_INVALID_ARG,
                              "random model: the OpenAI layout is always QuickGELU; "
                              "use the HF layout for GELU");
    }
    return STACL_OK;
}

stacl_status stacl_random_clip_write(const char *dir, const stacl_random_clip_spec *spec) {
    stacl_status st = STACL_OK;
    builder b = {spec, NULL, 0, 0};
    stacl_st_entry *entries = NULL;
    char *model_path = NULL, *config_path = NULL, *config = NULL;
    static const char *const meta_keys[1] = {"format"};
    static const char *const meta_values[1] = {"pt"};

    stacl_clear_error();
    TRY(validate(dir, spec));
    model_path = join_path(dir, "model.safetensors");
    config_path = join_path(dir, "config.json");
    if (!model_path || !config_path) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory");
    TRY(make_dirs(dir));

    if (spec->layout == STACL_LAYOUT_OPENAI) TRY(build_openai(&b));
    else TRY(build_hf(&b));
    if (spec->text_layers > 0) TRY(build_text(&b, spec->layout == STACL_LAYOUT_HF));

    entries = calloc((size_t)b.n, sizeof *entries);
    if (!entries) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory");
    for (int i = 0; i < b.n; i++) {
        entries[i].name = b.slots[i].name;
        entries[i].dtype = b.slots[i].dtype;
        entries[i].ndim = b.slots[i].ndim;
        memcpy(entries[i].shape, b.slots[i].shape, sizeof entries[i].shape);
        entries[i].data = b.slots[i].data;
    }
    TRY(stacl_st_write(model_path, entries, b.n, meta_keys, meta_values, 1));

    if (spec->layout == STACL_LAYOUT_HF) {
        config = hf_config_text(spec);
        if (!config) FAIL(STACL_ERR_OUT_OF_MEMORY, "random model: out of memory building '%s'", config_path);
        TRY(write_text_atomic(config_path, config));
    } else if (remove(config_path) != 0 && errno != ENOENT) {
        /* A config.json left by an earlier HF model in this directory would
         * make loaders read these OpenAI names as HF. */
        FAIL(STACL_ERR_IO, "cannot remove stale '%s': %s", config_path, strerror(errno));
    }
cleanup:
    free(entries);
    builder_free(&b);
    cJSON_free(config);
    free(model_path);
    free(config_path);
    return st;
}

int stacl_random_clip_preset(const char *name, stacl_random_clip_spec *spec) {
    *spec = stacl_random_clip_default_spec();
    if (strcmp(name, "vit-b16") == 0) return 1;
    if (strcmp(name, "small") == 0) {
        spec->width = 192, spec->layers = 4, spec->heads = 3, spec->mlp_width = 768, spec->proj_dim = 128;
        spec->text_width = 128;
        return 1;
    }
    if (strcmp(name, "tiny") == 0) {
        spec->width = 64, spec->layers = 2, spec->heads = 1, spec->mlp_width = 256, spec->patch = 8;
        spec->image_size = 32, spec->proj_dim = 32, spec->text_width = 64;
        return 1;
    }
    return 0;
}
