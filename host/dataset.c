/* dataset.c: list and class-name file parsing (see dataset.h). Files are
 * read whole; lines may end in \n or \r\n; blank lines and lines starting
 * with '#' are ignored. */
#include "dataset.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

typedef struct entry {
    char *path;
    int label;
    int line;
} entry;

struct stacl_dataset {
    char *list_path;
    entry *items;
    int n, cap;
    char **names; /* class names by id, may have NULL holes */
    int n_names;
    int max_label;
    char **rejected;
    int n_rejected, cap_rejected;
};

int stacl_dataset_size(const stacl_dataset *ds) { return ds->n; }
const char *stacl_dataset_path(const stacl_dataset *ds, int i) { return ds->items[i].path; }
int stacl_dataset_label(const stacl_dataset *ds, int i) { return ds->items[i].label; }
int stacl_dataset_line(const stacl_dataset *ds, int i) { return ds->items[i].line; }
const char *stacl_dataset_list_path(const stacl_dataset *ds) { return ds->list_path; }
int stacl_dataset_num_classes(const stacl_dataset *ds) { return ds->n_names ? ds->n_names : ds->max_label + 1; }
const char *stacl_dataset_class_name(const stacl_dataset *ds, int label) {
    return label >= 0 && label < ds->n_names ? ds->names[label] : NULL;
}
int stacl_dataset_num_rejected(const stacl_dataset *ds) { return ds->n_rejected; }
const char *stacl_dataset_rejected(const stacl_dataset *ds, int k) { return ds->rejected[k]; }

void stacl_dataset_free(stacl_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) free(ds->items[i].path);
    for (int i = 0; i < ds->n_names; i++) free(ds->names[i]);
    for (int i = 0; i < ds->n_rejected; i++) free(ds->rejected[i]);
    free(ds->items);
    free(ds->names);
    free(ds->rejected);
    free(ds->list_path);
    free(ds);
}

static char *read_text(const char *path, const char *what, stacl_status *st) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *st = stacl_fail(STACL_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) {
        *st = stacl_fail(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory reading %s", path, what);
        return NULL;
    }
    if (err) {
        free(buf);
        *st = stacl_fail(STACL_ERR_IO, "%s: read error in %s", path, what);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        *st = stacl_fail(STACL_ERR_FORMAT, "%s: %s is not text (NUL bytes)", path, what);
        return NULL;
    }
    *st = STACL_OK;
    return buf;
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Splits a CSV line in place into at most max fields (quotes: "a,b" and ""
 * for a quote). Returns the field count, -1 on an unterminated quote. */
static int csv_split(char *line, char **fields, int max) {
    int n = 0;
    char *r = line, *w = line;
    while (n < max) {
        fields[n++] = w;
        while (*r == ' ' || *r == '\t') r++;
        if (*r == '"') {
            r++;
            for (;;) {
                if (!*r) return -1;
                if (*r == '"') {
                    if (r[1] == '"') { *w++ = '"'; r += 2; continue; }
                    r++;
                    break;
                }
                *w++ = *r++;
            }
            while (*r && *r != ',') r++; /* junk after the closing quote is dropped */
        } else {
            while (*r && *r != ',') *w++ = *r++;
        }
        if (*r != ',') { *w = '\0'; break; }
        r++;
        *w++ = '\0';
    }
    for (int i = 0; i < n; i++) fields[i] = trim(fields[i]);
    return n;
}

static int parse_int(const char *s, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 0 || v > INT_MAX) return 0;
    *out = v;
    return 1;
}

static int add_rejected(stacl_dataset *ds, const char *fmt_path, int line, const char *reason, const char *what) {
    if (ds->n_rejected == ds->cap_rejected) {
        int cap = ds->cap_rejected ? ds->cap_rejected * 2 : 8;
        char **nr = realloc(ds->rejected, sizeof *nr * (size_t)cap);
        if (!nr) return 0;
        ds->rejected = nr;
        ds->cap_rejected = cap;
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s:%d: %s%s%.300s%s", fmt_path, line, reason, what ? " '" : "", what ? what : "",
             what ? "'" : "");
    return (ds->rejected[ds->n_rejected++] = strdup(msg)) != NULL;
}

static stacl_status load_names(stacl_dataset *ds, const char *path) {
    stacl_status st = STACL_OK;
    char *text = read_text(path, "class-names file", &st);
    if (!text) return st;
    int cap = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *l = trim(line);
        if (!*l || *l == '#') continue;
        long id = -1;
        char *name = l, *fields[3];
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", l);
        int nf = strchr(l, ',') ? csv_split(copy, fields, 3) : 1;
        if (nf == 2 && parse_int(fields[0], &id)) {
            name = fields[1];
        } else if (nf == 2 && lineno == 1 && strcmp(fields[0], "id") == 0) {
            continue; /* id,name header */
        } else if (nf != 1) {
            FAIL(STACL_ERR_FORMAT, "%s:%d: expected 'id,name' or one class name per line", path, lineno);
        } else {
            id = ds->n_names;
        }
        if (id > 1000000) FAIL(STACL_ERR_FORMAT, "%s:%d: class id %ld too large", path, lineno, id);
        if (id >= cap) {
            int ncap = cap ? cap : 64;
            while (ncap <= id) ncap *= 2;
            char **nn = realloc(ds->names, sizeof *nn * (size_t)ncap);
            if (!nn) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
            memset(nn + cap, 0, sizeof *nn * (size_t)(ncap - cap));
            ds->names = nn;
            cap = ncap;
        }
        if (ds->names[id]) FAIL(STACL_ERR_FORMAT, "%s:%d: class id %ld given twice", path, lineno, id);
        if (!(ds->names[id] = strdup(name))) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
        if (id + 1 > ds->n_names) ds->n_names = (int)id + 1;
    }
    if (ds->n_names == 0) FAIL(STACL_ERR_FORMAT, "%s: no class names", path);
    for (int i = 0; i < ds->n_names; i++)
        if (!ds->names[i]) FAIL(STACL_ERR_FORMAT, "%s: class id %d is missing (ids must be 0..%d)", path, i,
                                ds->n_names - 1);
cleanup:
    free(text);
    return st;
}

static int find_name(const stacl_dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_names; i++)
        if (strcmp(ds->names[i], name) == 0) return i;
    return -1;
}

static int add_entry(stacl_dataset *ds, const char *dir, const char *path, int label, int line) {
    if (ds->n == ds->cap) {
        int cap = ds->cap ? ds->cap * 2 : 64;
        entry *ni = realloc(ds->items, sizeof *ni * (size_t)cap);
        if (!ni) return 0;
        ds->items = ni;
        ds->cap = cap;
    }
    size_t len = strlen(dir) + strlen(path) + 2;
    char *full = malloc(len);
    if (!full) return 0;
    if (path[0] == '/' || !*dir) snprintf(full, len, "%s", path);
    else snprintf(full, len, "%s/%s", dir, path);
    ds->items[ds->n++] = (entry){full, label, line};
    if (label > ds->max_label) ds->max_label = label;
    return 1;
}

stacl_status stacl_dataset_load(stacl_dataset **out, const char *list_path, const char *class_names) {
    stacl_status st = STACL_OK;
    char *text = NULL;
    *out = NULL;
    stacl_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->list_path = strdup(list_path))) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of memory");
    ds->max_label = -1;
    if (class_names) TRY(load_names(ds, class_names));
    text = read_text(list_path, "dataset list", &st);
    if (!text) goto cleanup;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", list_path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else dir[0] = '\0';
    size_t lp = strlen(list_path);
    int csv = lp >= 4 && strcmp(list_path + lp - 4, ".csv") == 0;
    int lineno = 0, first = 1;
    char *p = text;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *l = trim(p);
        p = nl ? nl + 1 : p + strlen(p);
        if (!*l || *l == '#') continue;
        if (first && !csv && strchr(l, ',')) csv = 1; /* a .txt holding CSV */
        char *path = NULL, *label = NULL, *f[3];
        if (csv) {
            int nf = csv_split(l, f, 3);
            if (first && nf == 2 && strcmp(f[0], "path") == 0 && strcmp(f[1], "label") == 0) {
                first = 0;
                continue;
            }
            if (nf < 0) { add_rejected(ds, list_path, lineno, "unterminated quote", NULL); first = 0; continue; }
            if (nf != 2 || !*f[0] || !*f[1]) {
                add_rejected(ds, list_path, lineno, "expected 'path,label', got", l);
                first = 0;
                continue;
            }
            path = f[0];
            label = f[1];
        } else {
            /* path is the first field, the label the last */
            path = l;
            char *e = l;
            while (*e && !isspace((unsigned char)*e)) e++;
            char *last = e;
            if (*e) {
                *e = '\0';
                char *q = trim(e + 1);
                char *sp = q + strlen(q);
                while (sp > q && !isspace((unsigned char)sp[-1])) sp--;
                last = sp;
            }
            if (!*last) {
                add_rejected(ds, list_path, lineno, "expected 'path label', no label after", path);
                first = 0;
                continue;
            }
            label = last;
        }
        first = 0;
        long id;
        if (parse_int(label, &id)) {
            if (ds->n_names && id >= ds->n_names) {
                char what[64];
                snprintf(what, sizeof what, "%ld (%d classes)", id, ds->n_names);
                add_rejected(ds, list_path, lineno, "label out of range:", what);
                continue;
            }
        } else if (!ds->n_names) {
            add_rejected(ds, list_path, lineno, "label is not an integer and no class-names file was given:", label);
            continue;
        } else if ((id = find_name(ds, label)) < 0) {
            add_rejected(ds, list_path, lineno, "unknown class name", label);
            continue;
        }
        if (!add_entry(ds, dir, path, (int)id, lineno)) FAIL(STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", list_path);
    }
    if (ds->n == 0)
        FAIL(STACL_ERR_FORMAT, "%s: no usable entry (%d rejected%s%s)", list_path, ds->n_rejected,
             ds->n_rejected ? ", first: " : "", ds->n_rejected ? ds->rejected[0] : "");
    free(text);
    *out = ds;
    return STACL_OK;
cleanup:
    free(text);
    stacl_dataset_free(ds);
    return st;
}
