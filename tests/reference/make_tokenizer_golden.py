#!/usr/bin/python3
"""make_tokenizer_golden.py: golden token ids for stacl's C tokenizer.

    /usr/bin/python3 tests/reference/make_tokenizer_golden.py [--data DIR] [--check]

An independent implementation of CLIP's tokenizer (openai/CLIP
simple_tokenizer.py: byte-level BPE over bpe_simple_vocab_16e6.txt.gz), written
from the published algorithm with Debian's python3-regex for the Unicode
classes. ftfy.fix_text is left out on purpose (stacl has no C equivalent of its
mojibake repair, see docs/text.md); everything else is CLIP's: html.unescape
twice, strip, whitespace collapse, lower(), the pre-tokenization pattern (with
re.IGNORECASE, as CLIP compiles it), `</w>` end-of-word marks, merge ranks.

Inputs: every class name in DIR/labels/*.csv (`id,name`, the name may be
quoted and contain commas) and every sentence in DIR/descriptions/*.json
(`{"class index": [sentences]}`; anything that is not a string is skipped),
deduplicated and sorted, plus hand-picked edge cases (EDGE_CASES below).
DIR defaults to ../shared/data next to the repository.

Writes tests/data/tokenizer/golden.txt.gz: one line per string,
`<utf-8 bytes as hex>\\t<ids>` where ids are the space-separated BPE ids of
the text without <|startoftext|>/<|endoftext|> and without padding (the C test
derives the 77-token rows, truncation and the too-long error from them).
--check: compare with the committed file instead of writing it.

Also writes host/html_entities.inc (with --entities): the HTML5 named
character references and the numeric-reference fix-up tables of Python's
html module, which the C unescape uses so that both agree entity for entity.
"""

import argparse
import csv
import glob
import gzip
import html
import html.entities
import io
import json
import os
import sys

import regex as re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = os.path.join(REPO, "models", "bpe_simple_vocab_16e6.txt.gz")
OUT = os.path.join(REPO, "tests", "data", "tokenizer", "golden.txt.gz")
ENTITIES = os.path.join(REPO, "host", "html_entities.inc")


def byte_to_unicode():
    """The reversible byte -> printable character map of GPT-2/CLIP."""
    """Returns (table, order): order is the vocabulary order of the 256 byte
    symbols: the printable bytes first, then the others (as CLIP lists them)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = {b: chr(b) for b in keep}
    order = list(keep)
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            order.append(b)
            extra += 1
    return table, order


class ClipBpe:
    SOT = "<|startoftext|>"
    EOT = "<|endoftext|>"

    def __init__(self, vocab_gz):
        lines = gzip.open(vocab_gz).read().decode("utf-8").split("\n")
        merges = [tuple(l.split()) for l in lines[1:49152 - 256 - 2 + 1]]
        self.b2u, order = byte_to_unicode()
        symbols = [self.b2u[b] for b in order]
        names = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [self.SOT, self.EOT]
        self.ids = {n: i for i, n in enumerate(names)}
        self.rank = {m: i for i, m in enumerate(merges)}
        self.by_rank = merges
        self.memo = {}
        self.pattern = re.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            re.IGNORECASE)

    def merge_word(self, word):
        """BPE of one pre-token (already mapped to byte characters)."""
        if word in (self.SOT, self.EOT):
            return [word]
        if word in self.memo:
            return self.memo[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best = r
            if best is None:
                break
            a, b = self.by_rank[best]
            merged = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self.memo[word] = parts
        return parts

    def clean(self, text):
        text = html.unescape(html.unescape(text)).strip()
        text = re.sub(r"\s+", " ", text).strip()
        return text.lower()

    def encode(self, text):
        out = []
        for tok in self.pattern.findall(self.clean(text)):
            mapped = "".join(self.b2u[b] for b in tok.encode("utf-8"))
            out.extend(self.ids[p] for p in self.merge_word(mapped))
        return out


EDGE_CASES = [
    "", " ", "   \t\n  ", "a", "A", "Hello, World!", "hello world", "HELLO WORLD",
    "it's", "IT'S", "they're we've I'm you'll he'd don't", "'s", "''s", "!'s", "'sa", "'x", "o'clock",
    "rock 'n' roll", "a   b\t\tc\n\nd", "  leading and trailing  ",
    "12345", "3.14159", "1,000,000", "x2", "2x", "v1.2.3-beta", "٣٤٥ arabic digits", "Ⅻ roman twelve", "½ ¾ ²",
    "!!!", "...", "?!?!", "-- -- --", "a-b_c/d\\e", "(parenthesis) [brackets] {braces}", "@user #hashtag $100 50%",
    "C++ & C#", "e-mail: someone@example.com", "https://example.com/path?q=1&r=2",
    "café", "naïve résumé", "Straße", "Ærøskøbing", "İstanbul", "ΟΔΥΣΣΕΥΣ", "Σ", "ΑΣ ΣΑ", "ﬁre ﬂy", "ſtop 'ſ",
    "東京タワー", "中文分词测试", "한국어 텍스트", "Привет, мир!", "مرحبا بالعالم", "שלום עולם", "हिन्दी पाठ", "ภาษาไทย",
    "emoji 😀😃😄 party 🎉", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "❤️ heart", "flags 🇫🇷🇩🇪",
    "tab\there", "zero\u200bwidth", "no\u00a0break", "ideographic\u3000space", "line\u2028sep", "nel\u0085x",
    "ctrl\u001cchar", "\u001cleading ctrl", "bell\u0007", "soft\u00adhyphen", "combining e\u0301 accent",
    "&amp; &lt;b&gt; &quot;quoted&quot; &#39;single&#39;", "&amp;amp; double", "&copy 2020 &reg;", "&notit; &notin;",
    "&#65;&#x42;&#X43;", "&#0; &#128; &#x80; &#150;", "&#xD800; &#1114112; &#99999999999999999999;", "&bogus; & ;",
    "&lt", "&AMP;", "&Amp;", "fish &amp chips", "&#x1F600;", "&nbsp;x", "&#13;cr",
    "<|startoftext|>", "<|endoftext|>", "a<|endoftext|>b", "<|STARTOFTEXT|>", "<|startoftext|", "<|ſtartoftext|>",
    "\u0345\u03c3 x\u0345\u03a3 \u0345", "a\u0345b", "ⓐⓑ Ⓐ ⅰⅱ Ⅲ", "\u212a kelvin \u212b",
    "a video of a dog.", "A photo of a {}.", "mixed CASE WoRdS", "supercalifragilisticexpialidocious",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "the " * 40, "word " * 75, "word " * 76, "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 4,
    " ".join(str(i) for i in range(60)), "🎉" * 30, "x" * 1000,
]


def collect(data):
    texts = set()
    for path in sorted(glob.glob(os.path.join(data, "labels", "*.csv"))):
        with open(path, encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if i == 0 or len(row) < 2:
                    continue
                texts.add(",".join(row[1:]))
    for path in sorted(glob.glob(os.path.join(data, "descriptions", "*.json"))):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        values = doc.values() if isinstance(doc, dict) else doc
        for v in values:
            for s in (v if isinstance(v, list) else [v]):
                if isinstance(s, str):
                    texts.add(s)
    return sorted(texts)


def write_entities(path):
    """C table of HTML5 references, sorted by name for bsearch."""
    def c_str(s):
        return '"' + "".join(c if 32 <= ord(c) < 127 and c not in '"\\?' else "\\%03o" % b
                             for c in s for b in c.encode("utf-8")) + '"'
    lines = ["/* html_entities.inc: generated by tests/reference/make_tokenizer_golden.py --entities",
             " * from Python's html module (the WHATWG HTML5 named references and the",
             " * numeric-reference fix-ups), so that stacl's unescape equals html.unescape. */",
             "static const struct { const char *name; const char *value; } html5_entities[] = {"]
    for name in sorted(html.entities.html5, key=lambda n: n.encode("utf-8")):
        lines.append("    {%s, %s}," % (c_str(name), c_str(html.entities.html5[name])))
    lines.append("};")
    lines.append("static const struct { unsigned code; unsigned value; } html_invalid_charrefs[] = {")
    for k in sorted(html._invalid_charrefs):
        lines.append("    {0x%x, 0x%x}," % (k, ord(html._invalid_charrefs[k])))
    lines.append("};")
    lines.append("static const unsigned html_invalid_codepoints[] = {")
    cps = sorted(html._invalid_codepoints)
    for i in range(0, len(cps), 8):
        lines.append("    " + " ".join("0x%x," % c for c in cps[i:i + 8]))
    lines.append("};")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(REPO), "shared", "data"))
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--entities", action="store_true", help="also write host/html_entities.inc")
    args = ap.parse_args()
    if args.entities:
        write_entities(ENTITIES)
    bpe = ClipBpe(VOCAB)
    texts = collect(args.data) + EDGE_CASES
    buf = io.StringIO()
    seen = set()
    n = 0
    for t in texts:
        if t in seen:
            continue
        seen.add(t)
        ids = bpe.encode(t)
        buf.write(t.encode("utf-8").hex() + "\t" + " ".join(map(str, ids)) + "\n")
        n += 1
    raw = buf.getvalue().encode("ascii")
    # mtime=0 and no file name: the same input gives the same bytes.
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as g:
        g.write(raw)
    if args.check:
        with open(OUT, "rb") as f:
            old = gzip.decompress(f.read())
        if old != raw:
            print("tokenizer golden differs from %s" % OUT, file=sys.stderr)
            return 1
        print("tokenizer golden matches (%d strings)" % n)
        return 0
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "wb") as f:
        f.write(out.getvalue())
    print("wrote %s: %d strings" % (OUT, n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
