/* reference_fixed.c: see reference_fixed.h. */
#include "reference_fixed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ref_fx_fc1(const stacl_fx_format *f, const fx_shape *s, const int16_t *x, const int16_t *w1t,
                const int32_t *b1, int16_t *h) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    const unsigned shift = (unsigned)(f->frac_x + f->frac_w1 - f->frac_h);
    for (size_t fr = 0; fr < F; fr++)
        for (size_t p = 0; p < P; p++) {
            const int16_t *xr = x + (fr * (P + 1) + 1 + p) * W;
            for (size_t a = 0; a < A; a++) {
                int64_t acc = b1[a];
                for (size_t c = 0; c < W; c++) acc += (int64_t)xr[c] * (int64_t)w1t[c * A + a];
                h[(fr * P + p) * A + a] = stacl_fx_sat16(stacl_fx_shift_rne(acc, shift));
            }
        }
}

void ref_fx_dwconv3d(const stacl_fx_format *f, const fx_shape *s, const int16_t *h, const int16_t *cw,
                     const int32_t *cb, int16_t *y) {
    const long T = (long)s->T, G = (long)s->grid, P = G * G, A = (long)s->aw;
    const long kt = (long)s->kt, kh = (long)s->kh, kw = (long)s->kw;
    const unsigned shift = (unsigned)(f->frac_h + f->frac_wc - f->frac_y);
    for (long n = 0; n < (long)s->clips; n++)
        for (long t = 0; t < T; t++)
            for (long r = 0; r < G; r++)
                for (long c = 0; c < G; c++)
                    for (long a = 0; a < A; a++) {
                        int64_t acc = cb[a];
                        for (long dt = 0; dt < kt; dt++)
                            for (long dh = 0; dh < kh; dh++)
                                for (long dw = 0; dw < kw; dw++) {
                                    const long tt = t + dt - kt / 2, rr = r + dh - kh / 2, cc = c + dw - kw / 2;
                                    if (tt < 0 || tt >= T || rr < 0 || rr >= G || cc < 0 || cc >= G) continue;
                                    acc += (int64_t)h[((n * T + tt) * P + rr * G + cc) * A + a] *
                                           (int64_t)cw[((a * kt + dt) * kh + dh) * kw + dw];
                                }
                        y[((n * T + t) * P + r * G + c) * A + a] = stacl_fx_sat16(stacl_fx_shift_rne(acc, shift));
                    }
}

void ref_fx_fc2_residual(const stacl_fx_format *f, const fx_shape *s, const int16_t *y, const int16_t *w2t,
                         const int32_t *b2, int16_t *x) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    const unsigned shift = (unsigned)(f->frac_y + f->frac_w2 - f->frac_x);
    for (size_t fr = 0; fr < F; fr++)
        for (size_t p = 0; p < P; p++) {
            int16_t *xr = x + (fr * (P + 1) + 1 + p) * W;
            for (size_t c = 0; c < W; c++) {
                int64_t acc = b2[c];
                for (size_t a = 0; a < A; a++) acc += (int64_t)y[(fr * P + p) * A + a] * (int64_t)w2t[a * W + c];
                xr[c] = stacl_fx_sat16((int64_t)xr[c] + stacl_fx_shift_rne(acc, shift));
            }
        }
}

static size_t n_x(const fx_shape *s) { return s->clips * s->T * (s->grid * s->grid + 1) * s->width; }
static size_t n_h(const fx_shape *s) { return s->clips * s->T * s->grid * s->grid * s->aw; }
static size_t n_k(const fx_shape *s) { return s->kt * s->kh * s->kw; }

int fx_case_alloc(fx_case *c) {
    const fx_shape *s = &c->s;
    c->x = calloc(n_x(s) + 1, 2);
    c->out = calloc(n_x(s) + 1, 2);
    c->h = calloc(n_h(s) + 1, 2);
    c->y = calloc(n_h(s) + 1, 2);
    c->w1t = calloc(s->width * s->aw + 1, 2);
    c->w2t = calloc(s->width * s->aw + 1, 2);
    c->cw = calloc(s->aw * n_k(s) + 1, 2);
    c->b1 = calloc(s->aw + 1, 4);
    c->cb = calloc(s->aw + 1, 4);
    c->b2 = calloc(s->width + 1, 4);
    return c->x && c->out && c->h && c->y && c->w1t && c->w2t && c->cw && c->b1 && c->cb && c->b2 ? 0 : -1;
}

void fx_case_free(fx_case *c) {
    free(c->x); free(c->out); free(c->h); free(c->y); free(c->w1t); free(c->w2t); free(c->cw);
    free(c->b1); free(c->cb); free(c->b2);
    memset(&c->x, 0, sizeof *c - offsetof(fx_case, x));
}

void fx_case_run_reference(fx_case *c) {
    ref_fx_fc1(&c->f, &c->s, c->x, c->w1t, c->b1, c->h);
    ref_fx_dwconv3d(&c->f, &c->s, c->h, c->cw, c->cb, c->y);
    memcpy(c->out, c->x, n_x(&c->s) * sizeof *c->out);
    ref_fx_fc2_residual(&c->f, &c->s, c->y, c->w2t, c->b2, c->out);
}

static const char magic[8] = {'S', 'T', 'A', 'C', 'L', 'F', 'X', '1'};

/* The arrays of a case in file order: pointer, element size, count. */
static void layout(const fx_case *c, void *ptr[10], size_t size[10], size_t count[10]) {
    const fx_shape *s = &c->s;
    void *p[10] = {c->x, c->w1t, c->b1, c->cw, c->cb, c->w2t, c->b2, c->h, c->y, c->out};
    const size_t z[10] = {2, 2, 4, 2, 4, 2, 4, 2, 2, 2};
    const size_t n[10] = {n_x(s), s->width * s->aw, s->aw, s->aw * n_k(s), s->aw, s->aw * s->width, s->width,
                          n_h(s), n_h(s), n_x(s)};
    memcpy(ptr, p, sizeof p);
    memcpy(size, z, sizeof z);
    memcpy(count, n, sizeof n);
}

int fx_case_write(const fx_case *c, const char *path) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); return -1; }
    const uint32_t hdr[14] = {(uint32_t)c->s.clips, (uint32_t)c->s.T, (uint32_t)c->s.grid, (uint32_t)c->s.width,
                              (uint32_t)c->s.aw, (uint32_t)c->s.kt, (uint32_t)c->s.kh, (uint32_t)c->s.kw,
                              (uint32_t)c->f.frac_x, (uint32_t)c->f.frac_w1, (uint32_t)c->f.frac_h,
                              (uint32_t)c->f.frac_wc, (uint32_t)c->f.frac_y, (uint32_t)c->f.frac_w2};
    int ok = fwrite(magic, 1, 8, fp) == 8 && fwrite(hdr, 4, 14, fp) == 14; /* little-endian hosts only */
    void *p[10];
    size_t z[10], n[10];
    layout(c, p, z, n);
    for (int i = 0; i < 10 && ok; i++) ok = fwrite(p[i], z[i], n[i], fp) == n[i];
    if (fclose(fp) != 0) ok = 0;
    if (!ok) fprintf(stderr, "%s: write failed\n", path);
    return ok ? 0 : -1;
}

int fx_case_read(fx_case *c, const char *path) {
    memset(c, 0, sizeof *c);
    FILE *fp = fopen(path, "rb");
    if (!fp) { perror(path); return -1; }
    char m[8];
    uint32_t hdr[14];
    int ok = fread(m, 1, 8, fp) == 8 && memcmp(m, magic, 8) == 0 && fread(hdr, 4, 14, fp) == 14;
    for (int i = 0; i < 8 && ok; i++) ok = hdr[i] >= 1 && hdr[i] <= 4096;
    if (ok) {
        c->s = (fx_shape){hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], hdr[7]};
        c->f = (stacl_fx_format){(int)hdr[8], (int)hdr[9], (int)hdr[10], (int)hdr[11], (int)hdr[12], (int)hdr[13]};
        ok = stacl_fx_format_check(&c->f) == STACL_OK && fx_case_alloc(c) == 0;
    }
    void *p[10];
    size_t z[10], n[10];
    if (ok) layout(c, p, z, n);
    for (int i = 0; i < 10 && ok; i++) ok = fread(p[i], z[i], n[i], fp) == n[i];
    if (ok) ok = fgetc(fp) == EOF;
    fclose(fp);
    if (!ok) {
        fprintf(stderr, "%s: not a valid STACLFX1 golden file\n", path);
        fx_case_free(c);
        return -1;
    }
    return 0;
}
