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

/* ---- training kernels ----------------------------------------------------- */

#include <math.h>

/* Element offset of patch p of frame f in a [F, 1 + P, W] tensor. */
static size_t row_of(const fx_shape *s, size_t f, size_t p) {
    const size_t P = s->grid * s->grid;
    return (f * (P + 1) + 1 + p) * s->width;
}

static int bitlen64(int64_t v) {
    uint64_t a = v < 0 ? (uint64_t)(-v) : (uint64_t)v;
    int b = 0;
    while (a) b++, a >>= 1;
    return b;
}

void ref_fxb_quantize_rows(const fx_shape *s, int frac, const float *x, int16_t *xq) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < s->width; c++) xq[row_of(s, f, p) + c] = stacl_fx_quantize(x[row_of(s, f, p) + c], frac);
}

void ref_fxb_fc2_update(const stacl_fx_format *f, const fx_shape *s, const int16_t *y, const int16_t *w2t,
                        const int32_t *b2, float *x) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    const unsigned shift = (unsigned)(f->frac_y + f->frac_w2 - f->frac_x);
    for (size_t fr = 0; fr < F; fr++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                int64_t acc = b2[c];
                for (size_t a = 0; a < A; a++) acc += (int64_t)y[(fr * P + p) * A + a] * w2t[a * W + c];
                const int16_t u = stacl_fx_sat16(stacl_fx_shift_rne(acc, shift));
                float *xv = &x[row_of(s, fr, p) + c];
                *xv = *xv + ldexpf((float)u, -f->frac_x);
            }
}

int ref_fxb_grad_exponent(const fx_shape *s, const float *g) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid;
    int e = -1000;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < s->width; c++) {
                const float v = g[row_of(s, f, p) + c];
                if (!isfinite(v)) return 1000;
                if (v != 0.0f) {
                    int ex;
                    frexpf(v, &ex);
                    if (ex > e) e = ex;
                }
            }
    return e;
}

void ref_fxb_quantize_grad_sr(const fx_shape *s, int frac, uint64_t seed, uint64_t step, uint32_t tensor,
                              const float *g, int16_t *gu) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width;
    const double lim = 70368744177664.0; /* 2^46 */
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                const size_t i = (f * P + p) * W + c;
                double v = nearbyint((double)ldexpf(g[row_of(s, f, p) + c], frac + 16));
                v = v < -lim ? -lim : v > lim ? lim : v;
                gu[i] = stacl_fx_sat16(stacl_fx_sr_round((int64_t)v, 16, stacl_fx_rand64(seed, step, tensor, (uint32_t)i)));
            }
}

int ref_fxb_fc2_backward_input(const fx_shape *s, const int16_t *gu, const int16_t *w2t, int64_t *acc) {
    const size_t rows = s->clips * s->T * s->grid * s->grid, W = s->width, A = s->aw;
    int bits = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t a = 0; a < A; a++) {
            int64_t v = 0;
            for (size_t c = 0; c < W; c++) v += (int64_t)gu[r * W + c] * w2t[a * W + c];
            acc[r * A + a] = v;
            if (bitlen64(v) > bits) bits = bitlen64(v);
        }
    return bits;
}

static int saturated16(int16_t v) { return v == INT16_MAX || v == INT16_MIN; }

void ref_fxb_narrow_sr(size_t n, unsigned shift, uint64_t seed, uint64_t step, uint32_t tensor, const int64_t *acc,
                       const int16_t *act, int16_t *dst) {
    for (size_t i = 0; i < n; i++)
        dst[i] = act && saturated16(act[i]) ? 0 : stacl_fx_sat16(stacl_fx_sr_round(acc[i], shift, stacl_fx_rand64(seed, step, tensor, (uint32_t)i)));
}

/* Visits every (output position, tap, in-range input position) of the
 * forward depthwise conv of one channel layout: out and in are element
 * offsets (channel 0) into [clips, T, grid, grid, A]. */
typedef void (*conv_visit)(void *u, size_t out, size_t in, size_t tap);
static void conv_pairs(const fx_shape *s, conv_visit fn, void *u) {
    const size_t P = s->grid * s->grid, A = s->aw;
    const long g = (long)s->grid, T = (long)s->T;
    for (size_t n = 0; n < s->clips; n++)
        for (long t = 0; t < T; t++)
            for (long r = 0; r < g; r++)
                for (long c = 0; c < g; c++)
                    for (size_t dt = 0; dt < s->kt; dt++)
                        for (size_t dh = 0; dh < s->kh; dh++)
                            for (size_t dw = 0; dw < s->kw; dw++) {
                                const long tt = t + (long)dt - (long)s->kt / 2, rr = r + (long)dh - (long)s->kh / 2,
                                           cc = c + (long)dw - (long)s->kw / 2;
                                if (tt < 0 || tt >= T || rr < 0 || rr >= g || cc < 0 || cc >= g) continue;
                                const size_t out = ((n * s->T + (size_t)t) * P + (size_t)(r * g + c)) * A;
                                const size_t in = ((n * s->T + (size_t)tt) * P + (size_t)(rr * g + cc)) * A;
                                fn(u, out, in, (dt * s->kh + dh) * s->kw + dw);
                            }
}

typedef struct { const fx_shape *s; const int16_t *a, *b; int64_t *acc; } conv_job;

/* dL/dh[in] += dL/dy[out] * w[tap], per channel (the transposed conv). */
static void scatter_input(void *u, size_t out, size_t in, size_t tap) {
    conv_job *j = u;
    const size_t A = j->s->aw, K = j->s->kt * j->s->kh * j->s->kw;
    for (size_t a = 0; a < A; a++) j->acc[in + a] += (int64_t)j->a[out + a] * j->b[a * K + tap];
}

/* dL/dw[a, tap] += dL/dy[out] * h[in]. */
static void scatter_params(void *u, size_t out, size_t in, size_t tap) {
    conv_job *j = u;
    const size_t A = j->s->aw, K = j->s->kt * j->s->kh * j->s->kw;
    for (size_t a = 0; a < A; a++) j->acc[a * K + tap] += (int64_t)j->a[out + a] * j->b[in + a];
}

int ref_fxb_dwconv3d_backward_input(const fx_shape *s, const int16_t *gy, const int16_t *cw, int64_t *acc) {
    const size_t n = s->clips * s->T * s->grid * s->grid * s->aw;
    memset(acc, 0, n * sizeof *acc);
    conv_job j = {s, gy, cw, acc};
    conv_pairs(s, scatter_input, &j);
    int bits = 0;
    for (size_t i = 0; i < n; i++)
        if (bitlen64(acc[i]) > bits) bits = bitlen64(acc[i]);
    return bits;
}

void ref_fxb_fc1_backward_input(const fx_shape *s, int scale, const int16_t *gh, const int16_t *w1t,
                                const int16_t *xq, float *g) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                int64_t v = 0;
                for (size_t a = 0; a < A; a++) v += (int64_t)gh[(f * P + p) * A + a] * w1t[c * A + a];
                float *gv = &g[row_of(s, f, p) + c];
                if (!saturated16(xq[row_of(s, f, p) + c])) *gv = *gv + ldexpf((float)v, -scale);
            }
}

void ref_fxb_fc2_backward_params(const fx_shape *s, const int16_t *y, const int16_t *gu, int64_t *dw, int64_t *db) {
    const size_t rows = s->clips * s->T * s->grid * s->grid, W = s->width, A = s->aw;
    memset(dw, 0, A * W * sizeof *dw);
    memset(db, 0, W * sizeof *db);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < W; c++) {
            db[c] += gu[r * W + c];
            for (size_t a = 0; a < A; a++) dw[a * W + c] += (int64_t)y[r * A + a] * gu[r * W + c];
        }
}

void ref_fxb_dwconv3d_backward_params(const fx_shape *s, const int16_t *h, const int16_t *gy, int64_t *dw,
                                      int64_t *db) {
    const size_t n = s->clips * s->T * s->grid * s->grid, A = s->aw, K = s->kt * s->kh * s->kw;
    memset(dw, 0, A * K * sizeof *dw);
    memset(db, 0, A * sizeof *db);
    for (size_t e = 0; e < n; e++)
        for (size_t a = 0; a < A; a++) db[a] += gy[e * A + a];
    conv_job j = {s, gy, h, dw};
    conv_pairs(s, scatter_params, &j);
}

void ref_fxb_fc1_backward_params(const fx_shape *s, const int16_t *xq, const int16_t *gh, int64_t *dw, int64_t *db) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    memset(dw, 0, W * A * sizeof *dw);
    memset(db, 0, A * sizeof *db);
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t a = 0; a < A; a++) {
                const int64_t gv = gh[(f * P + p) * A + a];
                db[a] += gv;
                for (size_t c = 0; c < W; c++) dw[c * A + a] += (int64_t)xq[row_of(s, f, p) + c] * gv;
            }
}

void ref_fxb_accumulate_grad(size_t n, int scale, const int64_t *acc, float *grad) {
    for (size_t i = 0; i < n; i++) grad[i] = grad[i] + ldexpf((float)acc[i], -scale);
}

/* ---- one site's whole backward (spec section 4) and its golden files --- */

static size_t fxb_nx(const fx_shape *s) { return s->clips * s->T * (s->grid * s->grid + 1) * s->width; }
static size_t fxb_nu(const fx_shape *s) { return s->clips * s->T * s->grid * s->grid * s->width; }
static size_t fxb_nh(const fx_shape *s) { return s->clips * s->T * s->grid * s->grid * s->aw; }
static size_t fxb_nk(const fx_shape *s) { return s->kt * s->kh * s->kw; }

#define FXB_ARRAYS 20

/* The arrays of a backward case in file order: pointer, element size, count. */
static void fxb_layout(const fxb_case *c, void *ptr[FXB_ARRAYS], size_t size[FXB_ARRAYS], size_t count[FXB_ARRAYS]) {
    const fx_shape *s = &c->s;
    const size_t W = s->width, A = s->aw, K = fxb_nk(s), NX = fxb_nx(s), NU = fxb_nu(s), NH = fxb_nh(s);
    void *p[FXB_ARRAYS] = {c->g_in, c->xq,     c->h,  c->y,      c->w1t, c->cw,     c->w2t, c->gu,  c->gy_acc, c->gy,
                           c->gh_acc, c->gh,   c->gx_acc, c->g_out, c->dw2, c->db2, c->dcw, c->dcb, c->dw1t, c->db1};
    const size_t z[FXB_ARRAYS] = {4, 2, 2, 2, 2, 2, 2, 2, 8, 2, 8, 2, 8, 4, 8, 8, 8, 8, 8, 8};
    const size_t n[FXB_ARRAYS] = {NX, NX, NH, NH, W * A, A * K, A * W, NU, NH, NH,
                                  NH, NH, NU, NX, A * W, W,     A * K, A,  W * A, A};
    memcpy(ptr, p, sizeof p);
    memcpy(size, z, sizeof z);
    memcpy(count, n, sizeof n);
}

int fxb_case_alloc(fxb_case *c) {
    void *p[FXB_ARRAYS];
    size_t z[FXB_ARRAYS], n[FXB_ARRAYS];
    fxb_layout(c, p, z, n);
    void **slot[FXB_ARRAYS] = {(void **)&c->g_in, (void **)&c->xq,     (void **)&c->h,     (void **)&c->y,
                               (void **)&c->w1t,  (void **)&c->cw,     (void **)&c->w2t,   (void **)&c->gu,
                               (void **)&c->gy_acc, (void **)&c->gy,   (void **)&c->gh_acc, (void **)&c->gh,
                               (void **)&c->gx_acc, (void **)&c->g_out, (void **)&c->dw2,  (void **)&c->db2,
                               (void **)&c->dcw,  (void **)&c->dcb,    (void **)&c->dw1t,  (void **)&c->db1};
    int ok = 1;
    for (int i = 0; i < FXB_ARRAYS; i++) {
        *slot[i] = calloc(n[i] + 1, z[i]);
        ok = ok && *slot[i];
    }
    return ok ? 0 : -1;
}

void fxb_case_free(fxb_case *c) {
    void *p[FXB_ARRAYS];
    size_t z[FXB_ARRAYS], n[FXB_ARRAYS];
    fxb_layout(c, p, z, n);
    for (int i = 0; i < FXB_ARRAYS; i++) free(p[i]);
    memset(&c->g_in, 0, sizeof *c - offsetof(fxb_case, g_in));
}

int fxb_case_run_reference(fxb_case *c) {
    const fx_shape *s = &c->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    const size_t NX = fxb_nx(s), NH = fxb_nh(s);
    /* 1: the exponent and frac_gu */
    c->e_g = ref_fxb_grad_exponent(s, c->g_in);
    if (c->e_g == 1000 /* STACL_FX_EXP_NONFINITE */) return -1;
    const int fg = 14 - c->e_g;
    c->frac_gu = fg < 0 ? 0 : fg > 48 ? 48 : fg;
    /* 2: gu */
    ref_fxb_quantize_grad_sr(s, c->frac_gu, c->seed, c->step, c->t_gu, c->g_in, c->gu);
    /* 3-4: gy */
    const int bgy = ref_fxb_fc2_backward_input(s, c->gu, c->w2t, c->gy_acc);
    c->b_gy = (uint32_t)bgy;
    c->s_gy = bgy > 14 ? (uint32_t)(bgy - 14) : 0;
    ref_fxb_narrow_sr(NH, c->s_gy, c->seed, c->step, c->t_gy, c->gy_acc, c->y, c->gy);
    /* 5-6: gh */
    const int bgh = ref_fxb_dwconv3d_backward_input(s, c->gy, c->cw, c->gh_acc);
    c->b_gh = (uint32_t)bgh;
    c->s_gh = bgh > 14 ? (uint32_t)(bgh - 14) : 0;
    ref_fxb_narrow_sr(NH, c->s_gh, c->seed, c->step, c->t_gh, c->gh_acc, c->h, c->gh);
    /* 7: gx (the int64 sums, and the float gradient they are added to) */
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t ch = 0; ch < W; ch++) {
                int64_t v = 0;
                for (size_t a = 0; a < A; a++) v += (int64_t)c->gh[(f * P + p) * A + a] * c->w1t[ch * A + a];
                c->gx_acc[(f * P + p) * W + ch] = v;
            }
    memcpy(c->g_out, c->g_in, NX * sizeof *c->g_out);
    const int frac_gh = fxb_case_frac_gh(c);
    ref_fxb_fc1_backward_input(s, frac_gh + c->f.frac_w1, c->gh, c->w1t, c->xq, c->g_out);
    /* 8: parameter gradients */
    ref_fxb_fc2_backward_params(s, c->y, c->gu, c->dw2, c->db2);
    ref_fxb_dwconv3d_backward_params(s, c->h, c->gy, c->dcw, c->dcb);
    ref_fxb_fc1_backward_params(s, c->xq, c->gh, c->dw1t, c->db1);
    return 0;
}

int fxb_case_frac_gy(const fxb_case *c) { return c->frac_gu + c->f.frac_w2 - (int)c->s_gy; }
int fxb_case_frac_gh(const fxb_case *c) { return fxb_case_frac_gy(c) + c->f.frac_wc - (int)c->s_gh; }

static const char fxb_magic[8] = {'S', 'T', 'A', 'C', 'L', 'F', 'B', '1'};

/* Appends n bytes to a growing buffer; 0 on success. */
static int put(unsigned char **buf, size_t *len, size_t *cap, const void *src, size_t n) {
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n) nc *= 2;
        unsigned char *nb = realloc(*buf, nc);
        if (!nb) return -1;
        *buf = nb, *cap = nc;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    return 0;
}

/* Little-endian hosts only (as fx_case_write). */
size_t fxb_case_serialize(const fxb_case *c, unsigned char **out) {
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    const uint32_t hdr[20] = {(uint32_t)c->s.clips, (uint32_t)c->s.T, (uint32_t)c->s.grid, (uint32_t)c->s.width,
                              (uint32_t)c->s.aw, (uint32_t)c->s.kt, (uint32_t)c->s.kh, (uint32_t)c->s.kw,
                              (uint32_t)c->f.frac_x, (uint32_t)c->f.frac_w1, (uint32_t)c->f.frac_h,
                              (uint32_t)c->f.frac_wc, (uint32_t)c->f.frac_y, (uint32_t)c->f.frac_w2, c->t_gu, c->t_gy,
                              c->t_gh, (uint32_t)c->e_g, (uint32_t)c->frac_gu, 0};
    const uint64_t ss[2] = {c->seed, c->step};
    const uint32_t bs[4] = {c->b_gy, c->s_gy, c->b_gh, c->s_gh};
    int ok = put(&buf, &len, &cap, fxb_magic, 8) == 0 && put(&buf, &len, &cap, hdr, sizeof hdr) == 0 &&
             put(&buf, &len, &cap, ss, sizeof ss) == 0 && put(&buf, &len, &cap, bs, sizeof bs) == 0;
    void *p[FXB_ARRAYS];
    size_t z[FXB_ARRAYS], n[FXB_ARRAYS];
    fxb_layout(c, p, z, n);
    for (int i = 0; i < FXB_ARRAYS && ok; i++) ok = put(&buf, &len, &cap, p[i], z[i] * n[i]) == 0;
    if (!ok) {
        free(buf);
        *out = NULL;
        return 0;
    }
    *out = buf;
    return len;
}

int fxb_case_write(const fxb_case *c, const char *path) {
    unsigned char *buf;
    const size_t len = fxb_case_serialize(c, &buf);
    FILE *fp = len ? fopen(path, "wb") : NULL;
    if (!fp) {
        perror(path);
        free(buf);
        return -1;
    }
    int ok = fwrite(buf, 1, len, fp) == len;
    if (fclose(fp) != 0) ok = 0;
    free(buf);
    if (!ok) fprintf(stderr, "%s: write failed\n", path);
    return ok ? 0 : -1;
}

int fxb_case_read(fxb_case *c, const char *path) {
    memset(c, 0, sizeof *c);
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        perror(path);
        return -1;
    }
    char m[8];
    uint32_t hdr[20], bs[4];
    uint64_t ss[2];
    int ok = fread(m, 1, 8, fp) == 8 && memcmp(m, fxb_magic, 8) == 0 && fread(hdr, 4, 20, fp) == 20 &&
             fread(ss, 8, 2, fp) == 2 && fread(bs, 4, 4, fp) == 4;
    for (int i = 0; i < 8 && ok; i++) ok = hdr[i] >= 1 && hdr[i] <= 4096;
    if (ok) {
        c->s = (fx_shape){hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], hdr[7]};
        c->f = (stacl_fx_format){(int)hdr[8], (int)hdr[9], (int)hdr[10], (int)hdr[11], (int)hdr[12], (int)hdr[13]};
        c->t_gu = hdr[14], c->t_gy = hdr[15], c->t_gh = hdr[16];
        c->e_g = (int32_t)hdr[17], c->frac_gu = (int32_t)hdr[18];
        c->seed = ss[0], c->step = ss[1];
        c->b_gy = bs[0], c->s_gy = bs[1], c->b_gh = bs[2], c->s_gh = bs[3];
        ok = hdr[19] == 0 && stacl_fx_format_check(&c->f) == STACL_OK && fxb_case_alloc(c) == 0;
    }
    void *p[FXB_ARRAYS];
    size_t z[FXB_ARRAYS], n[FXB_ARRAYS];
    if (ok) fxb_layout(c, p, z, n);
    for (int i = 0; i < FXB_ARRAYS && ok; i++) ok = fread(p[i], z[i], n[i], fp) == n[i];
    if (ok) ok = fgetc(fp) == EOF;
    fclose(fp);
    if (!ok) {
        fprintf(stderr, "%s: not a valid STACLFB1 golden file\n", path);
        fxb_case_free(c);
        return -1;
    }
    return 0;
}
