/* text_clean.h: CLIP's text cleanup and pre-tokenization on Unicode code
 * points (utf8proc for the character classes): UTF-8 decoding with the byte
 * offset of any invalid sequence, html.unescape twice, strip, whitespace
 * collapse, Python's str.lower(), and the pre-tokenization pattern of
 * openai/CLIP simple_tokenizer.py. */
#ifndef STACL_TEXT_CLEAN_H
#define STACL_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* A growable array of code points (free v). */
typedef struct cp_buf {
    int32_t *v;
    size_t n, cap;
} cp_buf;

void stacl_cp_free(cp_buf *b);

/* Decodes UTF-8 into out (replacing its content); invalid input is
 * STACL_ERR_INVALID_ARG naming the byte offset. */
stacl_status stacl_utf8_decode(const char *s, size_t len, cp_buf *out);

/* Python's html.unescape() (HTML5 named and numeric references). */
stacl_status stacl_html_unescape(const cp_buf *in, cp_buf *out);

/* CLIP's basic_clean (without ftfy) + whitespace_clean + lower():
 * unescape twice, strip, runs of whitespace -> one space, strip, lower. */
stacl_status stacl_text_clean(const cp_buf *in, cp_buf *out);

/* One pre-token: code points [start, end); special = 1 for exactly
 * "<|startoftext|>", 2 for exactly "<|endoftext|>", else 0. */
typedef struct text_piece {
    size_t start, end;
    int special;
} text_piece;

/* Splits cleaned text as CLIP's pattern (with re.IGNORECASE)
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 * does with findall. *pieces is malloc'd. */
stacl_status stacl_text_split(const cp_buf *text, text_piece **pieces, size_t *count);

#endif
