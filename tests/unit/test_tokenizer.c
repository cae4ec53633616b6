/* test_tokenizer.c: the C tokenizer against the goldens of an independent
 * Python implementation (tests/reference/make_tokenizer_golden.py: every
 * class name and description sentence of ../shared/data plus edge cases),
 * the 77-token rows, truncation, invalid UTF-8, and the Hugging Face
 * vocab.json + merges.txt format giving the same ids as OpenAI's file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <zlib.h>

#include "stacl.h"
#include "test_util.h"

#define VOCAB STACL_SOURCE_DIR "/models/bpe_simple_vocab_16e6.txt.gz"
#define GOLDEN STACL_TEST_DATA "/tokenizer/golden.txt.gz"

typedef struct golden {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n;
} golden;

static golden *goldens;
static size_t n_goldens;
static stacl_tokenizer *tok;

static int hexval(char c) { return c >= 'a' ? c - 'a' + 10 : c - '0'; }

/* Reads the gzip'd golden file: "<hex utf-8>\t<ids>" per line. */
static void load_goldens(void) {
    gzFile gz = gzopen(GOLDEN, "rb");
    assert_non_null(gz);
    size_t cap = 1 << 22, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    for (int got; (got = gzread(gz, buf + n, (unsigned)(cap - n))) > 0;) {
        n += (size_t)got;
        if (n == cap) {
            buf = realloc(buf, 2 * cap + 1);
            assert_non_null(buf);
            cap *= 2;
        }
    }
    gzclose(gz);
    buf[n] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
    goldens = calloc(lines, sizeof *goldens);
    assert_non_null(goldens);
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        golden *g = &goldens[n_goldens++];
        char *tab = strchr(line, '\t');
        assert_non_null(tab);
        g->len = (size_t)(tab - line) / 2;
        g->text = malloc(g->len + 1);
        for (size_t i = 0; i < g->len; i++) g->text[i] = (char)(hexval(line[2 * i]) * 16 + hexval(line[2 * i + 1]));
        g->text[g->len] = '\0';
        g->ids = malloc((strlen(tab) + 1) * sizeof *g->ids);
        for (char *p = tab + 1, *end; *p; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            g->ids[g->n++] = (int32_t)v;
        }
    }
    free(buf);
}

static int setup(void **state) {
    (void)state;
    if (stacl_tokenizer_load(&tok, VOCAB) != STACL_OK) {
        fprintf(stderr, "%s\n", stacl_last_error());
        return -1;
    }
    load_goldens();
    return tu_group_setup(state);
}

static int teardown(void **state) {
    stacl_tokenizer_free(tok);
    for (size_t i = 0; i < n_goldens; i++) {
        free(goldens[i].text);
        free(goldens[i].ids);
    }
    free(goldens);
    return tu_group_teardown(state);
}

static size_t mismatches(stacl_tokenizer *t, size_t stride) {
    size_t bad = 0;
    for (size_t i = 0; i < n_goldens; i += stride) {
        const golden *g = &goldens[i];
        int32_t *ids = NULL;
        size_t n = 0;
        if (stacl_tokenizer_encode(t, g->text, g->len, &ids, &n) != STACL_OK) {
            fprintf(stderr, "golden %zu '%s': %s\n", i, g->text, stacl_last_error());
            bad++;
            continue;
        }
        if (n != g->n || memcmp(ids, g->ids, n * sizeof *ids) != 0) {
            if (bad < 10) {
                fprintf(stderr, "mismatch for '%s':\n  c:", g->text);
                for (size_t k = 0; k < n; k++) fprintf(stderr, " %d", ids[k]);
                fprintf(stderr, "\n  py:");
                for (size_t k = 0; k < g->n; k++) fprintf(stderr, " %d", g->ids[k]);
                fprintf(stderr, "\n");
            }
            bad++;
        }
        free(ids);
    }
    return bad;
}

static void test_goldens_exact(void **state) {
    (void)state;
    assert_true(n_goldens > 20000);
    size_t bad = mismatches(tok, 1);
    printf("[ tokenizer ] %zu strings, %zu mismatches\n", n_goldens, bad);
    assert_int_equal(bad, 0);
    /* Twice: the second pass runs from the word cache. */
    assert_int_equal(mismatches(tok, 7), 0);
}

static void test_rows(void **state) {
    (void)state;
    int32_t row[STACL_CONTEXT_LENGTH];
    assert_int_equal(stacl_tokenize(tok, "a photo of a cat", STACL_CONTEXT_LENGTH, 0, row), STACL_OK);
    const int32_t want[] = {49406, 320, 1125, 539, 320, 2368, 49407};
    assert_memory_equal(row, want, sizeof want);
    for (int i = 7; i < STACL_CONTEXT_LENGTH; i++) assert_int_equal(row[i], 0);
    assert_int_equal(stacl_tokenizer_sot(tok), 49406);
    assert_int_equal(stacl_tokenizer_eot(tok), 49407);
    assert_int_equal(stacl_tokenizer_vocab_size(tok), 49408);
    assert_int_equal(stacl_tokenize(tok, "", STACL_CONTEXT_LENGTH, 0, row), STACL_OK);
    assert_int_equal(row[0], 49406);
    assert_int_equal(row[1], 49407);
    assert_int_equal(row[2], 0);

    /* 75 words fit exactly; 76 do not, unless truncated (ending in EOT). */
    char text[1024] = "";
    for (int i = 0; i < 75; i++) strcat(text, "word ");
    assert_int_equal(stacl_tokenize(tok, text, STACL_CONTEXT_LENGTH, 0, row), STACL_OK);
    assert_int_equal(row[76], 49407);
    strcat(text, "word");
    assert_int_equal(stacl_tokenize(tok, text, STACL_CONTEXT_LENGTH, 0, row), STACL_ERR_INVALID_ARG);
    tu_expect_message("78 tokens", "context length 77");
    assert_int_equal(stacl_tokenize(tok, text, STACL_CONTEXT_LENGTH, 1, row), STACL_OK);
    assert_int_equal(row[0], 49406);
    assert_int_equal(row[75], row[1]);
    assert_int_equal(row[76], 49407);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    int32_t *ids = NULL;
    size_t n = 0;
    static const struct { const char *bytes; size_t len; const char *offset; } cases[] = {
        {"abc\xff", 4, "offset 3"},           /* never valid */
        {"ok \xc3", 4, "offset 3"},           /* truncated sequence */
        {"\xe2\x82", 2, "offset 0"},          /* truncated 3-byte */
        {"xy\xc0\xaf", 4, "offset 2"},        /* overlong '/' */
        {"s\xed\xa0\x80", 4, "offset 1"},     /* UTF-16 surrogate */
        {"a\x80z", 3, "offset 1"},            /* stray continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(stacl_tokenizer_encode(tok, cases[i].bytes, cases[i].len, &ids, &n), STACL_ERR_INVALID_ARG);
        assert_null(ids);
        tu_expect_message("invalid UTF-8", cases[i].offset);
    }
}

/* Writes Hugging Face's vocab.json + merges.txt for the same vocabulary,
 * derived from OpenAI's file as transformers' CLIPTokenizer files are. */
static void write_hf_vocab(const char *dir) {
    int32_t cp[256], order[256];
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++) cp[b] = -1;
    for (int b = 0; b < 256; b++)
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) cp[b] = b, order[n++] = b;
    for (int b = 0; b < 256; b++)
        if (cp[b] < 0) cp[b] = 256 + extra++, order[n++] = b;
    cJSON *vocab = cJSON_CreateObject();
    char s[64];
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 256; i++) {
            int32_t c = cp[order[i]];
            size_t k = 0;
            if (c < 0x80) s[k++] = (char)c;
            else s[k++] = (char)(0xc0 | (c >> 6)), s[k++] = (char)(0x80 | (c & 0x3f));
            s[k] = '\0';
            if (pass) strcat(s, "</w>");
            cJSON_AddNumberToObject(vocab, s, pass * 256 + i);
        }
    gzFile gz = gzopen(VOCAB, "rb");
    assert_non_null(gz);
    size_t cap = 4 << 20;
    char *text = malloc(cap);
    int len = gzread(gz, text, (unsigned)cap - 1);
    gzclose(gz);
    assert_true(len > 0);
    text[len] = '\0';
    char path[700];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#version: 0.2\n");
    char *save = NULL;
    int line = 0, id = 512;
    for (char *l = strtok_r(text, "\n", &save); l && id < 49406; l = strtok_r(NULL, "\n", &save), line++) {
        if (line == 0) continue;
        fprintf(f, "%s\n", l);
        char joined[256];
        const char *sp = strchr(l, ' ');
        assert_non_null(sp);
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - l), l, sp + 1);
        cJSON_AddNumberToObject(vocab, joined, id++);
    }
    fclose(f);
    cJSON_AddNumberToObject(vocab, "<|startoftext|>", 49406);
    cJSON_AddNumberToObject(vocab, "<|endoftext|>", 49407);
    char *json = cJSON_PrintUnformatted(vocab);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    assert_int_equal(tu_write_file(path, json, strlen(json)), 0);
    free(json);
    cJSON_Delete(vocab);
    free(text);
}

static void test_hf_vocab(void **state) {
    (void)state;
    char dir[600];
    TU_PATH(dir, "hf_vocab");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    write_hf_vocab(dir);
    stacl_tokenizer *hf = NULL;
    assert_int_equal(stacl_tokenizer_load(&hf, dir), STACL_OK);
    assert_int_equal(stacl_tokenizer_vocab_size(hf), 49408);
    assert_int_equal(mismatches(hf, 13), 0);
    stacl_tokenizer_free(hf);

    /* The default lookup prefers a model folder's own files. */
    char found[4096];
    assert_int_equal(stacl_tokenizer_default_vocab(dir, found, sizeof found), STACL_OK);
    assert_string_equal(found, dir);
    assert_int_equal(stacl_tokenizer_default_vocab(NULL, found, sizeof found), STACL_OK);
    assert_non_null(strstr(found, "bpe_simple_vocab_16e6.txt.gz"));
}

static void test_bad_vocab(void **state) {
    (void)state;
    stacl_tokenizer *t = NULL;
    char path[600];
    assert_int_equal(stacl_tokenizer_load(&t, "/nonexistent/vocab.txt.gz"), STACL_ERR_IO);
    tu_expect_message("/nonexistent/vocab.txt.gz", NULL);
    TU_PATH(path, "bad.txt");
    assert_int_equal(tu_write_file(path, "#version\nab cd ef\n", 18), 0);
    assert_int_equal(stacl_tokenizer_load(&t, path), STACL_ERR_FORMAT);
    tu_expect_message("line 2", NULL);
    assert_int_equal(stacl_tokenizer_load(&t, tu_group_dir), STACL_ERR_MISSING);
    tu_expect_message("vocab.json", NULL);
    assert_null(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_goldens_exact), cmocka_unit_test(test_rows), cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_hf_vocab), cmocka_unit_test(test_bad_vocab),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
