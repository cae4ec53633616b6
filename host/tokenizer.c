/* tokenizer.c: CLIP's byte-level BPE tokenizer (openai/CLIP
 * simple_tokenizer.py, also Hugging Face's CLIPTokenizer): the vocabulary
 * from OpenAI's bpe_simple_vocab_16e6.txt.gz (read through zlib) or Hugging
 * Face's vocab.json + merges.txt, merge ranks, and the BPE of each
 * pre-token, with a cache for repeated words. Cleanup and pre-tokenization
 * are in text_clean.c. BPE runs on vocabulary ids rather than strings: a
 * merge (a, b) is looked up by the ids of a and b and yields the id of a+b,
 * which is the same as CLIP's string merges since every string has one id. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>
#include <utf8proc.h>
#include <zlib.h>

#include "runtime.h"
#include "text_clean.h"

/* CLIP keeps the first 49152 - 256 - 2 merges of the file (after its
 * version line); both tokenizers slice the same way. */
#define CLIP_MERGES (49152 - 256 - 2)
#define CACHE_MAX_IDS (1u << 22) /* the word cache is emptied beyond this */

/* ---- hash maps ---------------------------------------------------------- */

/* Open addressing, byte-string keys (owned copies) -> int64 values. */
typedef struct str_map {
    char **keys;
    size_t *lens;
    int64_t *vals;
    size_t cap, count;
} str_map;

static uint64_t key_hash(const void *k, size_t n) { return stacl_hash64(STACL_HASH_SEED, k, n); }

static void map_free(str_map *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys ? m->keys[i] : NULL);
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

static int64_t *map_find(const str_map *m, const char *k, size_t n) {
    if (!m->cap) return NULL;
    for (size_t i = key_hash(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return NULL;
        if (m->lens[i] == n && memcmp(m->keys[i], k, n) == 0) return &m->vals[i];
    }
}

static stacl_status map_put(str_map *m, const char *k, size_t n, int64_t v);

static stacl_status map_grow(str_map *m) {
    str_map old = *m;
    size_t cap = old.cap ? old.cap * 2 : 1024;
    m->keys = calloc(cap, sizeof *m->keys);
    m->lens = calloc(cap, sizeof *m->lens);
    m->vals = calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->count = 0;
    if (!m->keys || !m->lens || !m->vals) {
        map_free(m);
        *m = old;
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    }
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.keys[i]) continue;
        size_t j = key_hash(old.keys[i], old.lens[i]) & (cap - 1);
        while (m->keys[j]) j = (j + 1) & (cap - 1);
        m->keys[j] = old.keys[i];
        m->lens[j] = old.lens[i];
        m->vals[j] = old.vals[i];
        m->count++;
    }
    free(old.keys);
    free(old.lens);
    free(old.vals);
    return STACL_OK;
}

/* Inserts or overwrites (a later duplicate wins, as in a Python dict). */
static stacl_status map_put(str_map *m, const char *k, size_t n, int64_t v) {
    int64_t *hit = map_find(m, k, n);
    if (hit) {
        *hit = v;
        return STACL_OK;
    }
    if ((m->count + 1) * 2 > m->cap) {
        stacl_status st = map_grow(m);
        if (st != STACL_OK) return st;
    }
    size_t i = key_hash(k, n) & (m->cap - 1);
    while (m->keys[i]) i = (i + 1) & (m->cap - 1);
    m->keys[i] = malloc(n ? n : 1);
    if (!m->keys[i]) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    memcpy(m->keys[i], k, n);
    m->lens[i] = n;
    m->vals[i] = v;
    m->count++;
    return STACL_OK;
}

static int64_t pair_key(int32_t a, int32_t b) { return (int64_t)(((uint64_t)(uint32_t)a << 32) | (uint32_t)b); }

/* ---- the tokenizer -------------------------------------------------------- */

struct stacl_tokenizer {
    str_map vocab;     /* symbol string -> id */
    str_map merges;    /* pair_key(a, b) as 8 bytes -> rank << 32 | merged id */
    int32_t byte_sym[256], byte_sym_end[256]; /* ids of byte b, and of b + "</w>" */
    int32_t sot, eot;
    int vocab_size;
    str_map cache;     /* pre-token (UTF-8) -> offset of [count, ids...] in pool */
    int32_t *pool;
    size_t pool_n, pool_cap;
    char path[4352];
};

/* GPT-2/CLIP's reversible byte -> character map, in vocabulary order: the
 * printable bytes keep their code point, the 68 others become 256 + n. */
static void byte_chars(int32_t order[256], int32_t cp[256]) {
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) cp[b] = -1;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
            order[n++] = b;
            cp[b] = b;
        }
    for (int b = 0; b < 256; b++)
        if (cp[b] < 0) {
            order[n++] = b;
            cp[b] = 256 + extra++;
        }
}

static size_t put_utf8(int32_t c, char *dst) { return (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)dst); }

static stacl_status vocab_add(stacl_tokenizer *t, const char *s, size_t n, int32_t id) {
    if (id + 1 > t->vocab_size) t->vocab_size = id + 1;
    return map_put(&t->vocab, s, n, id);
}

static stacl_status vocab_id(const stacl_tokenizer *t, const char *s, size_t n, int32_t *id, const char *what) {
    int64_t *v = map_find(&t->vocab, s, n);
    if (!v) return stacl_fail(STACL_ERR_FORMAT, "%s: the vocabulary has no entry '%.*s' (%s)", t->path, (int)n, s, what);
    *id = (int32_t)*v;
    return STACL_OK;
}

/* Reads a whole file, gzip'd or plain (zlib reads both). */
static stacl_status read_file(const char *path, char **text, size_t *len) {
    stacl_status st = STACL_OK;
    size_t cap = 1 << 20, n = 0;
    char *buf = NULL;
    gzFile gz = gzopen(path, "rb");
    if (!gz) FAIL(STACL_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    buf = malloc(cap + 1);
    if (!buf) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
    for (;;) {
        if (n == cap) {
            if (cap > (256u << 20)) FAIL(STACL_ERR_FORMAT, "'%s' is larger than 256 MiB: not a vocabulary", path);
            char *grown = realloc(buf, cap * 2 + 1);
            if (!grown) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory reading '%s'", path);
            buf = grown;
            cap *= 2;
        }
        int got = gzread(gz, buf + n, (unsigned)(cap - n));
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            FAIL(STACL_ERR_FORMAT, "cannot read '%s': %s", path, msg);
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
cleanup:
    if (gz) gzclose(gz);
    free(buf);
    return st;
}

/* Adds merges from `text` (lines after the first, up to CLIP_MERGES);
 * with openai_vocab the merged strings also become vocabulary entries
 * 512 + rank, as simple_tokenizer.py builds them. */
static stacl_status add_merges(stacl_tokenizer *t, char *text, int openai_vocab) {
    stacl_status st = STACL_OK;
    char *line = strchr(text, '\n');
    int rank = 0, lineno = 2;
    char joined[1024];
    while (line && rank < CLIP_MERGES) {
        char *start = line + 1;
        line = strchr(start, '\n');
        if (line) *line = '\0';
        /* Python's str.split(): runs of whitespace, no empty parts. */
        char *parts[3] = {0};
        int np = 0;
        for (char *save = NULL, *tok = strtok_r(start, " \t\r\f\v", &save); tok; tok = strtok_r(NULL, " \t\r\f\v", &save))
            if (np < 3) parts[np++] = tok; else np++;
        if (np == 0 && !line) break; /* trailing newline at the end */
        if (np != 2) FAIL(STACL_ERR_FORMAT, "%s: line %d is not a merge 'a b'", t->path, lineno);
        size_t la = strlen(parts[0]), lb = strlen(parts[1]);
        if (la + lb >= sizeof joined) FAIL(STACL_ERR_FORMAT, "%s: line %d is too long", t->path, lineno);
        memcpy(joined, parts[0], la);
        memcpy(joined + la, parts[1], lb);
        if (openai_vocab) TRY(vocab_add(t, joined, la + lb, 512 + rank));
        int32_t a = 0, b = 0, m = 0;
        TRY(vocab_id(t, parts[0], la, &a, "first half of a merge"));
        TRY(vocab_id(t, parts[1], lb, &b, "second half of a merge"));
        TRY(vocab_id(t, joined, la + lb, &m, "result of a merge"));
        int64_t key = pair_key(a, b);
        TRY(map_put(&t->merges, (const char *)&key, sizeof key, ((int64_t)rank << 32) | (uint32_t)m));
        rank++;
        lineno++;
    }
    if (rank == 0) FAIL(STACL_ERR_FORMAT, "%s: no merges found", t->path);
cleanup:
    return st;
}

static stacl_status load_openai(stacl_tokenizer *t, const char *path) {
    stacl_status st = STACL_OK;
    char *text = NULL;
    size_t len = 0;
    int32_t order[256], cp[256];
    char s[16];
    TRY(read_file(path, &text, &len));
    if (strlen(text) != len) FAIL(STACL_ERR_FORMAT, "%s: contains NUL bytes: not a BPE merges file", path);
    byte_chars(order, cp);
    for (int i = 0; i < 256; i++) {
        size_t n = put_utf8(cp[order[i]], s);
        TRY(vocab_add(t, s, n, i));
        memcpy(s + n, "</w>", 4);
        TRY(vocab_add(t, s, n + 4, 256 + i));
    }
    TRY(add_merges(t, text, 1));
    TRY(vocab_add(t, "<|startoftext|>", 15, t->vocab_size));
    TRY(vocab_add(t, "<|endoftext|>", 13, t->vocab_size));
cleanup:
    free(text);
    return st;
}

static stacl_status load_hf(stacl_tokenizer *t, const char *dir) {
    stacl_status st = STACL_OK;
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    TRY(read_file(path, &text, &len));
    root = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(root)) FAIL(STACL_ERR_FORMAT, "%s: not a JSON object", path);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e7 || !e->string)
            FAIL(STACL_ERR_FORMAT, "%s: entry '%s' is not a token id", path, e->string ? e->string : "?");
        TRY(vocab_add(t, e->string, strlen(e->string), (int32_t)e->valuedouble));
    }
    free(text);
    text = NULL;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    TRY(read_file(path, &text, &len));
    snprintf(t->path, sizeof t->path, "%s", path);
    TRY(add_merges(t, text, 0));
    snprintf(t->path, sizeof t->path, "%s", dir);
cleanup:
    cJSON_Delete(root);
    free(text);
    return st;
}

static int is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

stacl_status stacl_tokenizer_load(stacl_tokenizer **out, const char *path) {
    stacl_status st = STACL_OK;
    stacl_tokenizer *t = NULL;
    *out = NULL;
    if (!path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_tokenizer_load: NULL path");
    t = calloc(1, sizeof *t);
    if (!t) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(t->path, sizeof t->path, "%s", path);
    if (is_dir(path)) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s/vocab.json", path);
        if (!is_file(probe))
            FAIL(STACL_ERR_MISSING, "%s: no vocab.json + merges.txt in this folder (or give the path of "
                 "bpe_simple_vocab_16e6.txt.gz)", path);
        TRY(load_hf(t, path));
    } else {
        TRY(load_openai(t, path));
    }
    int32_t order[256], cp[256];
    char s[16];
    byte_chars(order, cp);
    for (int b = 0; b < 256; b++) {
        size_t n = put_utf8(cp[b], s);
        TRY(vocab_id(t, s, n, &t->byte_sym[b], "a byte symbol"));
        memcpy(s + n, "</w>", 4);
        TRY(vocab_id(t, s, n + 4, &t->byte_sym_end[b], "a byte symbol with </w>"));
    }
    TRY(vocab_id(t, "<|startoftext|>", 15, &t->sot, "the start token"));
    TRY(vocab_id(t, "<|endoftext|>", 13, &t->eot, "the end token"));
    *out = t;
    t = NULL;
cleanup:
    if (st != STACL_OK) stacl_fail_context(st, "loading the tokenizer vocabulary");
    stacl_tokenizer_free(t);
    return st;
}

void stacl_tokenizer_free(stacl_tokenizer *tok) {
    if (!tok) return;
    map_free(&tok->vocab);
    map_free(&tok->merges);
    map_free(&tok->cache);
    free(tok->pool);
    free(tok);
}

int32_t stacl_tokenizer_sot(const stacl_tokenizer *tok) { return tok->sot; }
int32_t stacl_tokenizer_eot(const stacl_tokenizer *tok) { return tok->eot; }
int stacl_tokenizer_vocab_size(const stacl_tokenizer *tok) { return tok->vocab_size; }

stacl_status stacl_tokenizer_default_vocab(const char *model_path, char *buf, size_t cap) {
    char dir[4096], probe[4200];
    if (model_path && *model_path) {
        snprintf(dir, sizeof dir, "%s", model_path);
        if (!is_dir(dir)) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0'; else snprintf(dir, sizeof dir, ".");
        }
        snprintf(probe, sizeof probe, "%s/vocab.json", dir);
        char merges[4200];
        snprintf(merges, sizeof merges, "%s/merges.txt", dir);
        if (is_file(probe) && is_file(merges)) {
            snprintf(buf, cap, "%s", dir);
            return STACL_OK;
        }
        snprintf(probe, sizeof probe, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
        if (is_file(probe)) {
            snprintf(buf, cap, "%s", probe);
            return STACL_OK;
        }
    }
    /* Installed with stacl: next to the running program (a relocated
     * install: bin/../share/stacl), at the configured prefix; a build tree
     * uses the source copy. */
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(probe, sizeof probe, "%s/../share/stacl/bpe_simple_vocab_16e6.txt.gz", exe);
            if (is_file(probe)) {
                snprintf(buf, cap, "%s", probe);
                return STACL_OK;
            }
        }
    }
    static const char *const fallbacks[] = {STACL_VOCAB_INSTALLED, STACL_VOCAB_SOURCE};
    for (size_t i = 0; i < sizeof fallbacks / sizeof fallbacks[0]; i++)
        if (is_file(fallbacks[i])) {
            snprintf(buf, cap, "%s", fallbacks[i]);
            return STACL_OK;
        }
    return stacl_fail(STACL_ERR_MISSING, "no BPE vocabulary found: give --vocab (bpe_simple_vocab_16e6.txt.gz or a folder "
                      "with vocab.json + merges.txt), put one next to the model, or install stacl (%s)",
                      STACL_VOCAB_INSTALLED);
}

/* ---- BPE ------------------------------------------------------------------ */

/* Merges the symbols sym[0..n) in place, lowest rank first, each pass
 * merging every occurrence left to right; returns the new count. */
static size_t bpe(const stacl_tokenizer *t, int32_t *sym, size_t n) {
    while (n > 1) {
        int64_t best_rank = -1;
        int32_t best_a = 0, best_b = 0, best_m = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            int64_t key = pair_key(sym[i], sym[i + 1]);
            const int64_t *v = map_find(&t->merges, (const char *)&key, sizeof key);
            if (v && (best_rank < 0 || (*v >> 32) < best_rank)) {
                best_rank = *v >> 32;
                best_a = sym[i];
                best_b = sym[i + 1];
                best_m = (int32_t)(*v & 0xffffffff);
            }
        }
        if (best_rank < 0) break;
        size_t w = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && sym[i] == best_a && sym[i + 1] == best_b) {
                sym[w++] = best_m;
                i += 2;
            } else {
                sym[w++] = sym[i++];
            }
        }
        n = w;
    }
    return n;
}

static stacl_status ids_push(int32_t **ids, size_t *n, size_t *cap, int32_t v) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 32;
        int32_t *g = realloc(*ids, c * sizeof *g);
        if (!g) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
        *ids = g;
        *cap = c;
    }
    (*ids)[(*n)++] = v;
    return STACL_OK;
}

/* Appends the ids of one pre-token (its UTF-8 bytes) via the cache. */
static stacl_status encode_word(stacl_tokenizer *t, const char *word, size_t len, int32_t **ids, size_t *n,
                                size_t *cap) {
    stacl_status st = STACL_OK;
    int32_t *sym = NULL;
    const int64_t *hit = map_find(&t->cache, word, len);
    if (hit) {
        const int32_t *e = t->pool + *hit;
        for (int32_t i = 0; i < e[0]; i++) TRY(ids_push(ids, n, cap, e[1 + i]));
        return STACL_OK;
    }
    sym = malloc((len ? len : 1) * sizeof *sym);
    if (!sym) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    for (size_t i = 0; i < len; i++)
        sym[i] = i + 1 < len ? t->byte_sym[(unsigned char)word[i]] : t->byte_sym_end[(unsigned char)word[i]];
    size_t m = bpe(t, sym, len);
    for (size_t i = 0; i < m; i++) TRY(ids_push(ids, n, cap, sym[i]));
    if (t->pool_n + m + 1 > CACHE_MAX_IDS) { /* bounded memory: start over */
        map_free(&t->cache);
        t->pool_n = 0;
    }
    if (t->pool_n + m + 1 > t->pool_cap) {
        size_t c = t->pool_cap ? t->pool_cap : 4096;
        while (c < t->pool_n + m + 1) c *= 2;
        int32_t *g = realloc(t->pool, c * sizeof *g);
        if (!g) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
        t->pool = g;
        t->pool_cap = c;
    }
    TRY(map_put(&t->cache, word, len, (int64_t)t->pool_n));
    t->pool[t->pool_n] = (int32_t)m;
    memcpy(t->pool + t->pool_n + 1, sym, m * sizeof *sym);
    t->pool_n += m + 1;
cleanup:
    free(sym);
    return st;
}

stacl_status stacl_tokenizer_encode(stacl_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *count) {
    stacl_status st = STACL_OK;
    cp_buf raw = {0}, clean = {0};
    text_piece *pieces = NULL;
    size_t np = 0, n = 0, cap = 0;
    char *word = NULL;
    int32_t *out = NULL;
    *ids = NULL;
    *count = 0;
    if (!tok || (!text && len)) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_tokenizer_encode: NULL argument");
    TRY(stacl_utf8_decode(text, len, &raw));
    TRY(stacl_text_clean(&raw, &clean));
    TRY(stacl_text_split(&clean, &pieces, &np));
    word = malloc(clean.n * 4 + 1);
    if (!word) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    for (size_t p = 0; p < np; p++) {
        if (pieces[p].special) {
            TRY(ids_push(&out, &n, &cap, pieces[p].special == 1 ? tok->sot : tok->eot));
            continue;
        }
        size_t wl = 0;
        for (size_t i = pieces[p].start; i < pieces[p].end; i++) wl += put_utf8(clean.v[i], word + wl);
        TRY(encode_word(tok, word, wl, &out, &n, &cap));
    }
    if (!out) { /* no ids: still a valid (empty) array to free */
        out = malloc(sizeof *out);
        if (!out) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    }
    *ids = out;
    *count = n;
    out = NULL;
cleanup:
    free(out);
    free(word);
    free(pieces);
    stacl_cp_free(&raw);
    stacl_cp_free(&clean);
    return st;
}

stacl_status stacl_tokenize(stacl_tokenizer *tok, const char *text, int context_length, int truncate, int32_t *row) {
    stacl_status st = STACL_OK;
    int32_t *ids = NULL;
    size_t n = 0;
    if (!tok || !text || !row || context_length < 2)
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_tokenize: NULL argument or context_length < 2");
    TRY(stacl_tokenizer_encode(tok, text, strlen(text), &ids, &n));
    size_t ctx = (size_t)context_length;
    if (n + 2 > ctx && !truncate)
        FAIL(STACL_ERR_INVALID_ARG, "the text has %zu tokens with <|startoftext|> and <|endoftext|>, more than the "
             "context length %d", n + 2, context_length);
    memset(row, 0, ctx * sizeof *row);
    row[0] = tok->sot;
    size_t keep = n + 2 > ctx ? ctx - 2 : n;
    memcpy(row + 1, ids, keep * sizeof *ids);
    row[keep + 1] = tok->eot;
    stacl_clear_error();
cleanup:
    free(ids);
    return st;
}
