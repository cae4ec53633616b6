/* zeroshot.c: CLIP zero-shot classification (see zeroshot.h): class
 * lists, templates, template-averaged class embeddings with an on-disk
 * cache, frame-averaged video embeddings, softmax probabilities. The
 * protocol is CLIP's prompt ensembling applied to videos as in ActionCLIP /
 * ViFi-CLIP: normalize, average, normalize. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "model_internal.h"
#include "npy.h"
#include "zeroshot.h"

void stacl_names_free(stacl_names *names) {
    for (int i = 0; i < names->n; i++) free(names->v[i]);
    free(names->v);
    names->v = NULL;
    names->n = 0;
}

static stacl_status names_push(stacl_names *names, char *s) {
    char **v = realloc(names->v, (size_t)(names->n + 1) * sizeof *v);
    if (!v) {
        free(s);
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    names->v = v;
    names->v[names->n++] = s;
    return STACL_OK;
}

/* Lines of a text file without their "\n" / "\r\n"; *lines malloc'd. */
static stacl_status read_lines(const char *path, stacl_names *lines) {
    stacl_status st = STACL_OK;
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!f) return stacl_fail(STACL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *copy = strdup(line);
        if (!copy) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
        TRY(names_push(lines, copy));
    }
cleanup:
    free(line);
    fclose(f);
    return st;
}

/* The second CSV field onwards of `line` as one name, unquoted. */
static char *csv_name(const char *rest) {
    size_t n = strlen(rest);
    char *out = malloc(n + 1), *w = out;
    if (!out) return NULL;
    if (*rest == '"') {
        for (const char *p = rest + 1; *p; p++) {
            if (*p == '"' && p[1] == '"') *w++ = '"', p++;
            else if (*p == '"') break;
            else *w++ = *p;
        }
    } else {
        memcpy(out, rest, n);
        w = out + n;
    }
    *w = '\0';
    return out;
}

stacl_status stacl_class_names_load(const char *path, stacl_names *names) {
    stacl_status st = STACL_OK;
    stacl_names lines = {0};
    names->v = NULL;
    names->n = 0;
    TRY(read_lines(path, &lines));
    int first = lines.n > 0 && strncmp(lines.v[0], "id,", 3) == 0 ? 1 : 0; /* the header */
    int count = 0;
    for (int i = first; i < lines.n; i++) count += lines.v[i][0] != '\0';
    if (count == 0) FAIL(STACL_ERR_FORMAT, "%s: no classes (expected lines 'id,name')", path);
    names->v = calloc((size_t)count, sizeof *names->v);
    if (!names->v) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    names->n = count;
    for (int i = first; i < lines.n; i++) {
        const char *l = lines.v[i];
        if (!*l) continue;
        char *end = NULL;
        errno = 0;
        long id = strtol(l, &end, 10);
        if (end == l || *end != ',' || errno || id < 0 || id >= count)
            FAIL(STACL_ERR_FORMAT, "%s: line %d: expected 'id,name' with id in 0..%d, got '%s'", path, i + 1,
                 count - 1, l);
        if (names->v[id]) FAIL(STACL_ERR_FORMAT, "%s: line %d: class id %ld appears twice", path, i + 1, id);
        names->v[id] = csv_name(end + 1);
        if (!names->v[id]) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!names->v[id][0]) FAIL(STACL_ERR_FORMAT, "%s: line %d: empty class name", path, i + 1);
    }
cleanup:
    if (st != STACL_OK) stacl_names_free(names);
    stacl_names_free(&lines);
    return st;
}

stacl_status stacl_templates_load(const char *path, stacl_names *templates) {
    stacl_status st = STACL_OK;
    templates->v = NULL;
    templates->n = 0;
    if (!path) {
        char *t = strdup("a video of a {}.");
        return t ? names_push(templates, t) : stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    stacl_names lines = {0};
    TRY(read_lines(path, &lines));
    for (int i = 0; i < lines.n; i++) {
        if (!lines.v[i][0]) continue;
        if (!strstr(lines.v[i], "{}"))
            FAIL(STACL_ERR_FORMAT, "%s: line %d has no '{}' for the class name: '%s'", path, i + 1, lines.v[i]);
        TRY(names_push(templates, lines.v[i]));
        lines.v[i] = NULL;
    }
    if (templates->n == 0) FAIL(STACL_ERR_FORMAT, "%s: no templates", path);
cleanup:
    for (int i = 0; i < lines.n; i++) free(lines.v[i]);
    free(lines.v);
    if (st != STACL_OK) stacl_names_free(templates);
    return st;
}

void stacl_descriptions_free(stacl_names *per_class, int n_classes) {
    if (!per_class) return;
    for (int k = 0; k < n_classes; k++) stacl_names_free(&per_class[k]);
    free(per_class);
}

stacl_status stacl_descriptions_load(const char *path, int n_classes, stacl_names **per_class) {
    stacl_status st = STACL_OK;
    cJSON *root = NULL;
    stacl_names *d = calloc((size_t)n_classes, sizeof *d);
    *per_class = NULL;
    if (!d) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    TRY(stacl_json_read_file(path, &root));
    for (const cJSON *e = root->child; e; e = e->next) {
        char *end = NULL;
        long k = strtol(e->string ? e->string : "", &end, 10);
        if (!e->string || end == e->string || *end || k < 0 || k >= n_classes)
            FAIL(STACL_ERR_FORMAT, "%s: key '%s' is not a class index in 0..%d", path, e->string ? e->string : "?",
                 n_classes - 1);
        const cJSON *items = e;
        int n = cJSON_IsArray(e) ? cJSON_GetArraySize(e) : 1;
        for (int i = 0; i < n; i++) {
            const cJSON *s = cJSON_IsArray(items) ? cJSON_GetArrayItem(items, i) : items;
            if (!cJSON_IsString(s) || !s->valuestring[0]) continue; /* malformed entries: skipped */
            char *copy = strdup(s->valuestring);
            if (!copy) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
            TRY(names_push(&d[k], copy));
        }
    }
    for (int k = 0; k < n_classes; k++)
        if (d[k].n == 0) FAIL(STACL_ERR_FORMAT, "%s: no description for class %d", path, k);
    *per_class = d;
    d = NULL;
cleanup:
    cJSON_Delete(root);
    stacl_descriptions_free(d, n_classes);
    return st;
}

void stacl_l2_normalize(float *x, size_t n) {
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    if (ss <= 0.0) return;
    const double inv = 1.0 / sqrt(ss);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x[i] * inv);
}

/* template with every "{}" replaced by name. */
static char *fill(const char *tmpl, const char *name) {
    size_t n = strlen(tmpl) + 1, nl = strlen(name);
    for (const char *p = strstr(tmpl, "{}"); p; p = strstr(p + 2, "{}")) n += nl;
    char *out = malloc(n), *w = out;
    if (!out) return NULL;
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '}') {
            memcpy(w, name, nl);
            w += nl;
            p += 2;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

int stacl_zs_cache_dir(char *dir, size_t cap) {
    const char *env = getenv("STACL_CACHE_DIR");
    if (env) {
        if (!*env) return 0;
        snprintf(dir, cap, "%s", env);
    } else if ((env = getenv("XDG_CACHE_HOME")) && *env) {
        snprintf(dir, cap, "%s/stacl", env);
    } else if ((env = getenv("HOME")) && *env) {
        snprintf(dir, cap, "%s/.cache", env);
        mkdir(dir, 0755);
        snprintf(dir, cap, "%s/.cache/stacl", env);
    } else {
        return 0;
    }
    return mkdir(dir, 0755) == 0 || errno == EEXIST;
}

static uint64_t hash_str(uint64_t h, const char *s) { return stacl_hash64(h, s, strlen(s) + 1); }

stacl_status stacl_zs_class_embeddings(stacl_model *model, stacl_tokenizer *tok, const stacl_names *classes,
                                       const stacl_names *templates, const stacl_names *descriptions,
                                       const char *vocab_path, const char *cache_dir,
                                       float **out, int *dim, int *from_cache) {
    stacl_status st = STACL_OK;
    const stacl_text_config *c = stacl_model_text_config(model);
    stacl_text_state *state = NULL;
    int32_t *rows = NULL;
    float *emb = NULL, *per = NULL;
    char cache[4200] = "";
    stacl_npy cached = {0};
    *out = NULL;
    *from_cache = 0;
    if (!c) {
        st = stacl_text_state_create(&state, model, 1); /* the message says why there is no text tower */
        goto cleanup;
    }
    const int C = classes->n, L = c->context_length;
    int Tn = templates->n; /* prompts per class, at most */
    if (descriptions)
        for (int k = 0; k < C; k++) Tn = descriptions[k].n > Tn ? descriptions[k].n : Tn;
    const int P = (int)stacl_text_output_size(model, 1);
    *dim = P;
    if (cache_dir) {
        struct stat sb;
        char real[PATH_MAX];
        uint64_t h = STACL_HASH_SEED;
        h = hash_str(h, realpath(model->file, real) ? real : model->file);
        if (stat(model->file, &sb) == 0) {
            int64_t meta[3] = {(int64_t)sb.st_size, (int64_t)sb.st_mtim.tv_sec, (int64_t)sb.st_mtim.tv_nsec};
            h = stacl_hash64(h, meta, sizeof meta);
        }
        h = hash_str(h, vocab_path ? vocab_path : "");
        for (int i = 0; i < C; i++) h = hash_str(h, classes->v[i]);
        h = stacl_hash64(h, "|", 1);
        if (descriptions) {
            for (int k = 0; k < C; k++) {
                h = stacl_hash64(h, "#", 1);
                for (int i = 0; i < descriptions[k].n; i++) h = hash_str(h, descriptions[k].v[i]);
            }
        } else {
            for (int i = 0; i < templates->n; i++) h = hash_str(h, templates->v[i]);
        }
        snprintf(cache, sizeof cache, "%s/zeroshot-%016llx.npy", cache_dir, (unsigned long long)h);
        if (stacl_npy_read_f32(cache, &cached) == STACL_OK && cached.ndim == 2 && cached.shape[0] == C &&
            cached.shape[1] == P) {
            *out = cached.data;
            cached.data = NULL;
            *from_cache = 1;
            goto cleanup;
        }
        stacl_clear_error(); /* a missing or stale cache entry is not an error */
    }
    /* One class at a time: its templates are one batch. */
    rows = malloc((size_t)Tn * (size_t)L * sizeof *rows);
    emb = calloc((size_t)C * (size_t)P, sizeof *emb);
    per = malloc((size_t)Tn * (size_t)P * sizeof *per);
    if (!rows || !emb || !per) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory for %d class embeddings", C);
    TRY(stacl_text_state_create(&state, model, Tn));
    for (int k = 0; k < C; k++) {
        const int np = descriptions ? descriptions[k].n : templates->n;
        for (int t = 0; t < np; t++) {
            char *text = descriptions ? strdup(descriptions[k].v[t]) : fill(templates->v[t], classes->v[k]);
            if (!text) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
            st = stacl_tokenize(tok, text, L, 1, rows + (size_t)t * L); /* a prompt past the context is cut, not refused */
            free(text);
            if (st != STACL_OK) {
                stacl_fail_context(st, "class %d '%s', prompt %d", k, classes->v[k], t + 1);
                goto cleanup;
            }
        }
        TRY(stacl_text_forward(state, rows, np, per));
        float *e = emb + (size_t)k * P;
        for (int t = 0; t < np; t++) {
            stacl_l2_normalize(per + (size_t)t * P, (size_t)P);
            for (int j = 0; j < P; j++) e[j] += per[(size_t)t * P + j];
        }
        for (int j = 0; j < P; j++) e[j] /= (float)np;
        stacl_l2_normalize(e, (size_t)P);
    }
    if (cache[0]) {
        const int64_t shape[2] = {C, P};
        if (stacl_npy_write_f32(cache, emb, shape, 2) != STACL_OK) stacl_clear_error(); /* best effort */
    }
    *out = emb;
    emb = NULL;
cleanup:
    stacl_npy_release(&cached);
    stacl_text_state_free(state);
    free(rows);
    free(emb);
    free(per);
    return st;
}

void stacl_zs_video_embedding(const float *frames, int n_frames, int dim, float *out) {
    for (int j = 0; j < dim; j++) out[j] = 0.0f;
    for (int f = 0; f < n_frames; f++) {
        const float *x = frames + (size_t)f * dim;
        double ss = 0.0;
        for (int j = 0; j < dim; j++) ss += (double)x[j] * x[j];
        const double inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        for (int j = 0; j < dim; j++) out[j] += (float)(x[j] * inv / n_frames);
    }
    stacl_l2_normalize(out, (size_t)dim);
}

void stacl_zs_probabilities(const float *video, const float *classes, int n_classes, int dim, float scale,
                            float *probs) {
    double m = -INFINITY, sum = 0.0;
    for (int k = 0; k < n_classes; k++) {
        double dot = 0.0;
        for (int j = 0; j < dim; j++) dot += (double)video[j] * classes[(size_t)k * dim + j];
        probs[k] = (float)(scale * dot);
        if (probs[k] > m) m = probs[k];
    }
    for (int k = 0; k < n_classes; k++) sum += exp(probs[k] - m);
    for (int k = 0; k < n_classes; k++) probs[k] = (float)(exp(probs[k] - m) / sum);
}
