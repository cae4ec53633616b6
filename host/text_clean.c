/* text_clean.c: CLIP's text cleanup and pre-tokenization, to the code point.
 * The reference is Python (html.unescape, str.strip, regex's \s, str.lower,
 * regex's \p{L}/\p{N}); where Python and Unicode tables differ in detail
 * (str.isspace vs White_Space, İ and final sigma in lower()) this file
 * follows Python, because the ids must equal CLIP's. Character classes come
 * from utf8proc, the HTML5 references from Python's own table
 * (html_entities.inc, generated). ftfy is not applied (docs/text.md). */
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "text_clean.h"

#include "html_entities.inc"

void stacl_cp_free(cp_buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static stacl_status cp_push(cp_buf *b, int32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = c;
    return STACL_OK;
}

stacl_status stacl_utf8_decode(const char *s, size_t len, cp_buf *out) {
    stacl_status st = STACL_OK;
    out->n = 0;
    size_t i = 0;
    while (i < len) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0)
            return stacl_fail(STACL_ERR_INVALID_ARG, "invalid UTF-8 at byte offset %zu (byte 0x%02x)", i,
                              (unsigned)(unsigned char)s[i]);
        TRY(cp_push(out, c));
        i += (size_t)k;
    }
cleanup:
    return st;
}

/* ---- character classes -------------------------------------------------- */

/* regex's \s: the Unicode White_Space property. */
static int is_regex_space(int32_t c) {
    if ((c >= 0x09 && c <= 0x0d) || c == 0x85) return 1;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP;
}

/* Python's str.isspace() (what strip() removes): White_Space plus the
 * information separators U+001C..U+001F (bidi class B or S). */
static int is_py_space(int32_t c) { return is_regex_space(c) || (c >= 0x1c && c <= 0x1f); }

static int is_letter(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

/* Under re.IGNORECASE regex excludes a character from the negated class
 * [^\s\p{L}\p{N}] when one of its case variants is a letter, while
 * [\p{L}] still does not match it: such a character matches no alternative
 * and is dropped like whitespace. Over all of Unicode this is U+0345
 * COMBINING GREEK YPOGEGRAMMENI (upper case U+0399), found by comparing
 * every code point with Python. */
static int has_letter_case_variant(int32_t c) {
    return is_letter(utf8proc_toupper(c)) || is_letter(utf8proc_tolower(c)) || is_letter(utf8proc_totitle(c));
}

static int is_number(int32_t c) {
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO;
}

/* Unicode Cased and Case_Ignorable, for the final-sigma rule of lower(). */
static int is_cased(int32_t c) {
    return utf8proc_islower(c) || utf8proc_isupper(c) || utf8proc_category(c) == UTF8PROC_CATEGORY_LT;
}

static int is_case_ignorable(int32_t c) {
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_SK:
        return 1;
    default:
        break;
    }
    /* Word_Break MidLetter, MidNumLet and Single_Quote. */
    static const int32_t mid[] = {0x27, 0x2e, 0x3a, 0xb7, 0x387, 0x55f, 0x5f4, 0x2018, 0x2019, 0x2024,
                                  0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a};
    for (size_t i = 0; i < sizeof mid / sizeof mid[0]; i++)
        if (c == mid[i]) return 1;
    return 0;
}

/* ---- html.unescape ------------------------------------------------------- */

static int entity_cmp(const void *key, const void *elem) {
    const char *k = key;
    const char *name = ((const char *const *)elem)[0];
    return strcmp(k, name);
}

static const char *entity_lookup(const char *name) {
    const size_t n = sizeof html5_entities / sizeof html5_entities[0];
    const void *hit = bsearch(name, html5_entities, n, sizeof html5_entities[0], entity_cmp);
    return hit ? ((const char *const *)hit)[1] : NULL;
}

static stacl_status push_utf8(cp_buf *out, const char *s) {
    stacl_status st = STACL_OK;
    size_t len = strlen(s), i = 0;
    while (i < len) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0) return stacl_fail(STACL_ERR_FORMAT, "bad entry in the HTML entity table");
        TRY(cp_push(out, c));
        i += (size_t)k;
    }
cleanup:
    return st;
}

/* Python's _replace_charref for a numeric reference with value num
 * (saturated above 0x10FFFF). */
static stacl_status push_numeric(cp_buf *out, uint32_t num) {
    for (size_t i = 0; i < sizeof html_invalid_charrefs / sizeof html_invalid_charrefs[0]; i++)
        if (html_invalid_charrefs[i].code == num) return cp_push(out, (int32_t)html_invalid_charrefs[i].value);
    if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return cp_push(out, 0xfffd);
    for (size_t i = 0; i < sizeof html_invalid_codepoints / sizeof html_invalid_codepoints[0]; i++)
        if (html_invalid_codepoints[i] == num) return STACL_OK;
    return cp_push(out, (int32_t)num);
}

static int hex_digit(int32_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python: re.sub(r'&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)',
 * _replace_charref, s). */
stacl_status stacl_html_unescape(const cp_buf *in, cp_buf *out) {
    stacl_status st = STACL_OK;
    const int32_t *s = in->v;
    const size_t n = in->n;
    out->n = 0;
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&' || i + 1 >= n) {
            TRY(cp_push(out, s[i++]));
            continue;
        }
        size_t j = i + 1;
        if (s[j] == '#') {
            int hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t k = j + 1 + (size_t)hex;
            uint32_t num = 0;
            size_t digits = 0;
            while (k < n && (hex ? hex_digit(s[k]) >= 0 : (s[k] >= '0' && s[k] <= '9'))) {
                uint32_t d = (uint32_t)(hex ? hex_digit(s[k]) : s[k] - '0');
                num = num > 0x110000 ? num : num * (hex ? 16u : 10u) + d;
                k++;
                digits++;
            }
            if (!digits && hex) {
                /* "&#x" without digits: the decimal branch cannot match
                 * either ('x'), so the '&' stays. */
                TRY(cp_push(out, s[i++]));
                continue;
            }
            if (!digits) {
                TRY(cp_push(out, s[i++]));
                continue;
            }
            if (k < n && s[k] == ';') k++;
            TRY(push_numeric(out, num));
            i = k;
            continue;
        }
        /* Named: up to 32 characters other than \t \n \f space < & # ;,
         * then an optional ';'. */
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' && s[k] != '<' &&
               s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) {
            TRY(cp_push(out, s[i++]));
            continue;
        }
        if (k < n && s[k] == ';') k++;
        /* The name in ASCII (entity names are ASCII; anything else fails
         * the lookup and is kept as is). */
        char name[40];
        size_t len = k - j, ascii = 0;
        while (ascii < len && s[j + ascii] > 0 && s[j + ascii] < 128) {
            name[ascii] = (char)s[j + ascii];
            ascii++;
        }
        const char *value = NULL;
        size_t used = 0;
        if (ascii == len) {
            name[len] = '\0';
            value = entity_lookup(name);
            used = len;
        }
        /* Longest prefix of at least 2 characters that is a name. */
        for (size_t x = (ascii == len ? len : ascii + 1) - 1; !value && x >= 2; x--) {
            if (x > ascii) continue;
            name[x] = '\0';
            value = entity_lookup(name);
            used = x;
        }
        if (value) {
            TRY(push_utf8(out, value));
            for (size_t r = j + used; r < k; r++) TRY(cp_push(out, s[r]));
        } else {
            for (size_t r = i; r < k; r++) TRY(cp_push(out, s[r]));
        }
        i = k;
    }
cleanup:
    return st;
}

/* ---- cleanup ------------------------------------------------------------ */

/* Python's str.lower(): simple lowercase mappings, plus the two context or
 * length changing rules Python applies: U+0130 -> "i\u0307" and the final
 * sigma. */
static stacl_status lower(const cp_buf *in, cp_buf *out) {
    stacl_status st = STACL_OK;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        int32_t c = in->v[i];
        if (c == 0x130) {
            TRY(cp_push(out, 'i'));
            TRY(cp_push(out, 0x307));
        } else if (c == 0x3a3) {
            /* \p{cased}\p{case-ignorable}* U+03A3 !(\p{case-ignorable}* \p{cased}) */
            size_t j = i;
            while (j > 0 && is_case_ignorable(in->v[j - 1])) j--;
            int final = j > 0 && is_cased(in->v[j - 1]);
            if (final) {
                size_t k = i + 1;
                while (k < in->n && is_case_ignorable(in->v[k])) k++;
                final = k == in->n || !is_cased(in->v[k]);
            }
            TRY(cp_push(out, final ? 0x3c2 : 0x3c3));
        } else {
            TRY(cp_push(out, utf8proc_tolower(c)));
        }
    }
cleanup:
    return st;
}

stacl_status stacl_text_clean(const cp_buf *in, cp_buf *out) {
    stacl_status st = STACL_OK;
    cp_buf a = {0}, b = {0};
    TRY(stacl_html_unescape(in, &a));
    TRY(stacl_html_unescape(&a, &b));
    /* strip (str.isspace), then collapse \s runs to ' ', then strip again. */
    size_t lo = 0, hi = b.n;
    while (lo < hi && is_py_space(b.v[lo])) lo++;
    while (hi > lo && is_py_space(b.v[hi - 1])) hi--;
    a.n = 0;
    for (size_t i = lo; i < hi;) {
        if (is_regex_space(b.v[i])) {
            while (i < hi && is_regex_space(b.v[i])) i++;
            TRY(cp_push(&a, ' '));
        } else {
            TRY(cp_push(&a, b.v[i++]));
        }
    }
    lo = 0;
    hi = a.n;
    while (lo < hi && is_py_space(a.v[lo])) lo++;
    while (hi > lo && is_py_space(a.v[hi - 1])) hi--;
    b.n = 0;
    for (size_t i = lo; i < hi; i++) TRY(cp_push(&b, a.v[i]));
    TRY(lower(&b, out));
cleanup:
    stacl_cp_free(&a);
    stacl_cp_free(&b);
    return st;
}

/* ---- pre-tokenization --------------------------------------------------- */

/* Case-insensitive equality as regex's IGNORECASE sees it on lower-case
 * text: the only lower-case letter that folds onto one of the pattern's
 * letters is U+017F LONG S (onto 's'). */
static int same_ci(int32_t c, char p) { return c == p || (p == 's' && c == 0x17f); }

/* Length of lit matched at s[i] case-insensitively, 0 if none. */
static size_t match_literal(const int32_t *s, size_t n, size_t i, const char *lit) {
    size_t len = strlen(lit);
    if (n - i < len) return 0;
    for (size_t k = 0; k < len; k++)
        if (!same_ci(s[i + k], lit[k])) return 0;
    return len;
}

static int exact_literal(const int32_t *s, size_t len, const char *lit) {
    if (strlen(lit) != len) return 0;
    for (size_t k = 0; k < len; k++)
        if (s[k] != lit[k]) return 0;
    return 1;
}

stacl_status stacl_text_split(const cp_buf *text, text_piece **pieces, size_t *count) {
    static const char *const specials[2] = {"<|startoftext|>", "<|endoftext|>"};
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    const int32_t *s = text->v;
    const size_t n = text->n;
    *pieces = NULL;
    *count = 0;
    text_piece *out = malloc((n + 1) * sizeof *out); /* at most one piece per code point */
    if (!out) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory in the tokenizer");
    size_t np = 0, i = 0;
    while (i < n) {
        size_t len = 0;
        int special = 0;
        for (int k = 0; k < 2 && !len; k++)
            if ((len = match_literal(s, n, i, specials[k])) && exact_literal(s + i, len, specials[k])) special = k + 1;
        for (size_t k = 0; k < sizeof contractions / sizeof contractions[0] && !len; k++)
            len = match_literal(s, n, i, contractions[k]);
        if (!len && is_letter(s[i]))
            while (i + len < n && is_letter(s[i + len])) len++;
        if (!len && is_number(s[i])) len = 1;
        if (!len)
            while (i + len < n && !is_regex_space(s[i + len]) && !is_letter(s[i + len]) && !is_number(s[i + len]) &&
                   !has_letter_case_variant(s[i + len]))
                len++;
        if (!len) {
            i++; /* whitespace (or U+0345): no alternative matches here */
            continue;
        }
        out[np].start = i;
        out[np].end = i + len;
        out[np].special = special;
        np++;
        i += len;
    }
    *pieces = out;
    *count = np;
    return STACL_OK;
}
