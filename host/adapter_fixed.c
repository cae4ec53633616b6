/* adapter_fixed.c: fixed-point adapters (see adapter_fixed.h): formats,
 * quantization of the float parameters (round half to even or stochastic),
 * the integer checkpoint format and the forward of one site. */
#include "adapter_fixed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx_rng.h"
#include "ops_fixed.h"
#include "ops_fixed_backward.h"
#include "safetensors.h"

/* "qI.F" with I + F = 16 and I >= 1 (F fractional bits), ending at end. */
static int parse_q16(const char *p, const char *end, int *frac) {
    int ib = -1, fb = -1, used = 0;
    if (sscanf(p, "q%d.%d%n", &ib, &fb, &used) != 2 || p + used != end) return 0;
    if (ib < 1 || fb < 0 || fb > STACL_FX_MAX_FRAC || ib + fb != 16) return 0;
    *frac = fb;
    return 1;
}

stacl_status stacl_fx_parse(const char *name, stacl_fx_kind *kind, int *frac_w, int *frac_act) {
    const char *slash = name ? strchr(name, '/') : NULL, *wend = slash ? slash : name ? name + strlen(name) : NULL;
    *frac_act = STACL_FX_ACT_FRAC;
    int ok = name != NULL;
    if (ok && (size_t)(wend - name) == 4 && strncmp(name, "int8", 4) == 0) {
        *kind = STACL_FX_INT8;
        *frac_w = 0;
    } else if (ok && parse_q16(name, wend, frac_w)) {
        *kind = STACL_FX_Q16;
    } else {
        ok = 0;
    }
    if (ok && slash) ok = parse_q16(slash + 1, slash + strlen(slash), frac_act);
    if (ok) return STACL_OK;
    return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format '%s': expected WEIGHTS[/ACTIVATIONS], WEIGHTS qI.F "
                      "with I + F = 16 and I >= 1 (q8.8, q4.12, ...) or int8, ACTIVATIONS qI.F (default q8.8)",
                      name ? name : "(null)");
}

/* Output channels of an adapter tensor and the channel of buffer element j:
 * fc1 [W, A] -> a = j % A, conv [A, K] -> j / K, fc2 [A, W] -> j % W;
 * biases are one per-tensor scale (1 channel). */
typedef struct { size_t n, numel, mod, div; int weight; } tensor_channels;

static tensor_channels channels_of(const adapter_tensor *t) {
    tensor_channels c = {1, 1, 0, 0, t->decay};
    for (int d = 0; d < t->ndim; d++) c.numel *= (size_t)t->shape[d];
    if (!t->decay) return c;
    if (t->ndim == 5) { /* conv [A, 1, kt, kh, kw] */
        c.n = (size_t)t->shape[0];
        c.div = c.numel / c.n;
    } else {            /* linear, file [out, in], buffer [in, out] */
        c.n = (size_t)t->shape[0];
        c.mod = c.n;
    }
    return c;
}

static size_t channel_of(const tensor_channels *c, size_t j) {
    if (!c->weight) return 0;
    return c->div ? j / c->div : j % c->mod;
}

/* Frexp exponent of the largest |v| (|v| < 2^e), or INT32_MIN-ish when 0. */
static int max_exponent(double m) {
    if (!(m > 0.0)) return -1000;
    int e;
    frexp(m, &e);
    return e;
}

/* The common int16 grid of an INT8 tensor: the finest channel scale, but
 * no more than 8 bits above the coarsest (so every int8 value shifts into
 * int16 exactly); channels finer than that are rounded onto it. */
static int int8_common_frac(const int8_t *frac, size_t n) {
    int lo = 127, hi = -128;
    for (size_t i = 0; i < n; i++) {
        if (frac[i] < lo) lo = frac[i];
        if (frac[i] > hi) hi = frac[i];
    }
    return hi < lo + 8 ? hi : lo + 8;
}

/* Finds the adapter tensor of a site's weight at buffer offset off. */
static int tensor_frac(const stacl_adapter *ad, size_t off, size_t channels) {
    const adapter_fixed *fx = ad->fx;
    if (fx->kind == STACL_FX_Q16) return fx->frac_w;
    return int8_common_frac(fx->frac + off, channels);
}

stacl_fx_format stacl_fx_site_format(const stacl_adapter *ad, const adapter_site *s) {
    const size_t W = (size_t)ad->model->cfg.width, A = (size_t)ad->info.width;
    const int act = ad->fx->frac_act;
    stacl_fx_format f = {act, tensor_frac(ad, s->fc1_w, A), act, tensor_frac(ad, s->conv_w, A), act,
                         tensor_frac(ad, s->fc2_w, W)};
    return f;
}

/* v * 2^frac rounded to an integer in [lo, hi]: half to even, or up with
 * probability equal to the fraction when u (a 64-bit draw) is given. */
static int64_t round_scaled(float v, int frac, const uint64_t *u, double lo, double hi) {
    if (isnan(v)) return 0;
    double x = ldexp((double)v, frac); /* exact */
    if (x <= lo) return (int64_t)lo;
    if (x >= hi) return (int64_t)hi;
    double q;
    if (u) {
        q = floor(x);
        const double r = x - q; /* exact: x has at most 24 significant bits */
        if (ldexp((double)(*u >> 11), -53) < r) q += 1.0;
    } else {
        q = nearbyint(x); /* default rounding mode: half to even */
    }
    if (q > hi) q = hi;
    if (q < lo) q = lo;
    return (int64_t)q;
}

static stacl_status fx_alloc(stacl_adapter *ad) {
    if (ad->fx) return STACL_OK;
    const size_t n = ad->total ? ad->total : 1;
    adapter_fixed *fx = calloc(1, sizeof *fx);
    if (fx) {
        fx->frac = calloc(n, 1);
        fx->qw = calloc(n, sizeof *fx->qw);
        fx->qb = calloc(n, sizeof *fx->qb);
        fx->w8 = calloc(n, 1);
    }
    if (!fx || !fx->frac || !fx->qw || !fx->qb || !fx->w8) {
        stacl_fx_free(fx);
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory for the fixed-point adapter");
    }
    stacl_status st = stacl_device_buffer(ad->ctx, n * sizeof *fx->qw, CL_MEM_READ_ONLY, NULL,
                                          "the fixed-point adapter weights", NULL, &fx->dqw);
    if (st == STACL_OK)
        st = stacl_device_buffer(ad->ctx, n * sizeof *fx->qb, CL_MEM_READ_ONLY, NULL,
                                 "the fixed-point adapter biases", NULL, &fx->dqb);
    if (st != STACL_OK) {
        stacl_fx_free(fx);
        return st;
    }
    ad->fx = fx;
    return STACL_OK;
}

static stacl_status fx_upload(stacl_adapter *ad) {
    adapter_fixed *fx = ad->fx;
    stacl_ctx *ctx = ad->ctx;
    const size_t n = ad->total ? ad->total : 1;
    cl_int err = clEnqueueWriteBuffer(ctx->queue, fx->dqw, CL_TRUE, 0, n * sizeof *fx->qw, fx->qw, 0, NULL, NULL);
    if (err == CL_SUCCESS)
        err = clEnqueueWriteBuffer(ctx->queue, fx->dqb, CL_TRUE, 0, n * sizeof *fx->qb, fx->qb, 0, NULL, NULL);
    return err == CL_SUCCESS ? STACL_OK : stacl_cl_fail(ctx, err, "uploading the fixed-point adapter");
}

/* The bias scale of the site tensor at offset off: activations + the
 * matching weight's grid. Biases follow their weight in the buffer
 * (plan_site: fc1_w, fc1_b, conv_w, conv_b, fc2_w, fc2_b). */
static int bias_frac(const stacl_adapter *ad, const adapter_tensor *weight) {
    const tensor_channels c = channels_of(weight);
    return ad->fx->frac_act + tensor_frac(ad, weight->off, c.n);
}

stacl_status stacl_fx_quantize_params(stacl_adapter *ad, const float *params, const stacl_fx_sr *sr,
                                      float *mirror) {
    stacl_status st = STACL_OK;
    adapter_tensor *t = NULL;
    TRY(fx_alloc(ad));
    adapter_fixed *fx = ad->fx;
    const int n = stacl_adapter_tensors(ad, &t);
    if (n < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++) {
        const adapter_tensor *x = &t[i];
        if (x->off >= ad->fc_w && ad->info.classes) continue; /* the head stays float */
        const tensor_channels ch = channels_of(x);
        const float *v = params + x->off;
        if (ch.weight && fx->kind == STACL_FX_INT8) {
            /* Channel scales from the values: the largest |v| maps below 128. */
            double *mx = calloc(ch.n, sizeof *mx);
            if (!mx) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
            for (size_t j = 0; j < ch.numel; j++) {
                const double a = fabs((double)v[j]);
                if (a > mx[channel_of(&ch, j)]) mx[channel_of(&ch, j)] = a;
            }
            for (size_t c = 0; c < ch.n; c++) {
                int f = 7 - max_exponent(mx[c]);
                f = f < 0 ? 0 : f > STACL_FX_MAX_FRAC ? STACL_FX_MAX_FRAC : f;
                /* |w| in [127.5, 128) steps would round to 128 and saturate. */
                while (f > 0 && nearbyint(ldexp(mx[c], f)) > 127.0) f--;
                fx->frac[x->off + c] = (int8_t)f;
            }
            free(mx);
            const int common = int8_common_frac(fx->frac + x->off, ch.n);
            for (size_t j = 0; j < ch.numel; j++) {
                const int f = fx->frac[x->off + channel_of(&ch, j)];
                uint64_t u = sr ? stacl_fx_rand64(sr->seed, sr->step, 0x80000000u | (uint32_t)i, (uint32_t)j) : 0;
                const int64_t q = round_scaled(v[j], f, sr ? &u : NULL, -128.0, 127.0);
                fx->w8[x->off + j] = (int8_t)q;
                fx->qw[x->off + j] = common >= f ? (int16_t)(q * ((int64_t)1 << (common - f)))
                                                 : stacl_fx_sat16(stacl_fx_shift_rne(q, (unsigned)(f - common)));
                if (mirror) mirror[x->off + j] = (float)ldexp((double)q, -f);
            }
        } else if (ch.weight) {
            fx->frac[x->off] = (int8_t)fx->frac_w;
            for (size_t j = 0; j < ch.numel; j++) {
                uint64_t u = sr ? stacl_fx_rand64(sr->seed, sr->step, 0x80000000u | (uint32_t)i, (uint32_t)j) : 0;
                const int64_t q = round_scaled(v[j], fx->frac_w, sr ? &u : NULL, -32768.0, 32767.0);
                fx->qw[x->off + j] = (int16_t)q;
                if (mirror) mirror[x->off + j] = (float)ldexp((double)q, -fx->frac_w);
            }
        } else { /* a bias: its weight is the previous tensor */
            const int f = bias_frac(ad, &t[i - 1]);
            fx->frac[x->off] = (int8_t)f;
            for (size_t j = 0; j < ch.numel; j++) {
                uint64_t u = sr ? stacl_fx_rand64(sr->seed, sr->step, 0x80000000u | (uint32_t)i, (uint32_t)j) : 0;
                const int64_t q = round_scaled(v[j], f, sr ? &u : NULL, -2147483648.0, 2147483647.0);
                fx->qb[x->off + j] = (int32_t)q;
                if (mirror) mirror[x->off + j] = (float)ldexp((double)q, -f);
            }
        }
    }
    TRY(fx_upload(ad));
cleanup:
    free(t);
    return st;
}

stacl_status stacl_fx_run_site(const stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x, size_t h,
                               size_t y, size_t xq, size_t clips, size_t T) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = ad->ctx;
    const adapter_fixed *fx = ad->fx;
    const stacl_vision_config *c = &ad->model->cfg;
    const size_t F = clips * T, W = (size_t)c->width, A = (size_t)ad->info.width;
    const size_t grid = (size_t)(c->image_size / c->patch), P = grid * grid;
    const int *k = ad->info.kernel;
    const stacl_fx_format fmt = stacl_fx_site_format(ad, s);
    /* int16 views of float regions: element offsets double. */
    TRY(stacl_op_fx_quantize_rows(ctx, F, P, W, fmt.frac_x, ws, x, ws, 2 * xq));
    TRY(stacl_op_adapter_fc1_q(ctx, &fmt, F, P, W, A, ws, 2 * xq, fx->dqw, s->fc1_w, fx->dqb, s->fc1_b, ws, 2 * h));
    TRY(stacl_op_adapter_dwconv3d_q(ctx, &fmt, clips, T, grid, A, (size_t)k[0], (size_t)k[1], (size_t)k[2], ws, 2 * h,
                                    fx->dqw, s->conv_w, fx->dqb, s->conv_b, ws, 2 * y));
    TRY(stacl_op_adapter_fc2_update_q(ctx, &fmt, F, P, W, A, ws, 2 * y, fx->dqw, s->fc2_w, fx->dqb, s->fc2_b, ws, x));
cleanup:
    return st;
}

/* ---- integer checkpoints ------------------------------------------------ */

int stacl_fx_is_checkpoint(const stacl_st_file *f) { return stacl_st_metadata(f, "stacl_fixed_point") != NULL; }

stacl_status stacl_fx_read_checkpoint(stacl_adapter *ad, const stacl_st_file *f, float *host) {
    stacl_status st = STACL_OK;
    adapter_tensor *t = NULL;
    int64_t *buf = NULL;
    const char *name = stacl_st_metadata(f, "stacl_fixed_point"), *path = stacl_st_path(f);
    const char *act = stacl_st_metadata(f, "stacl_frac_act");
    stacl_fx_kind kind = STACL_FX_Q16;
    int frac_w = 0, frac_act = STACL_FX_ACT_FRAC, used = 0;
    if (strchr(name, '/') || stacl_fx_parse(name, &kind, &frac_w, &frac_act) != STACL_OK)
        FAIL(STACL_ERR_FORMAT, "%s: metadata stacl_fixed_point = '%s' is not a known weight format", path, name);
    if (!act || sscanf(act, "%d%n", &frac_act, &used) != 1 || act[used] || frac_act < 0 ||
        frac_act > STACL_FX_MAX_FRAC)
        FAIL(STACL_ERR_FORMAT, "%s: metadata stacl_frac_act = '%s': expected the activations' fractional bits, 0..15",
             path, act ? act : "(missing)");
    TRY(fx_alloc(ad));
    adapter_fixed *fx = ad->fx;
    fx->kind = kind;
    fx->frac_w = frac_w;
    fx->frac_act = frac_act;
    if (frac_act == STACL_FX_ACT_FRAC) snprintf(fx->name, sizeof fx->name, "%s", name);
    else snprintf(fx->name, sizeof fx->name, "%.5s/q%d.%d", name, (16 - frac_act) % 100, frac_act % 100);
    const int n = stacl_adapter_tensors(ad, &t);
    buf = malloc((ad->total ? ad->total : 1) * sizeof *buf);
    if (n < 0 || !buf) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++) {
        const adapter_tensor *x = &t[i];
        const stacl_st_tensor *e = stacl_st_find(f, x->name);
        if (!e) FAIL(STACL_ERR_MISSING, "%s: tensor '%s' is missing", path, x->name);
        const tensor_channels ch = channels_of(x);
        int shape_ok = e->ndim == x->ndim;
        for (int d = 0; shape_ok && d < x->ndim; d++) shape_ok = e->shape[d] == x->shape[d];
        if (!shape_ok) FAIL(STACL_ERR_SHAPE, "%s: tensor '%s' does not have the adapter's shape", path, x->name);
        if (x->off >= ad->fc_w && ad->info.classes) { /* the float head */
            if (e->dtype != STACL_DT_F32) FAIL(STACL_ERR_FORMAT, "%s: '%s' must be F32", path, x->name);
            TRY(stacl_st_read_f32(f, e, host + x->off));
            continue;
        }
        const stacl_dtype want = !ch.weight ? STACL_DT_I32 : kind == STACL_FX_INT8 ? STACL_DT_I8 : STACL_DT_I16;
        if (e->dtype != want)
            FAIL(STACL_ERR_FORMAT, "%s: '%s' is %s, a %s checkpoint stores it as %s", path, x->name,
                 stacl_dtype_name(e->dtype), name, stacl_dtype_name(want));
        char fname[160];
        snprintf(fname, sizeof fname, "%s_frac", x->name);
        const stacl_st_tensor *ef = stacl_st_find(f, fname);
        const size_t nf = kind == STACL_FX_INT8 && ch.weight ? ch.n : 1;
        if (!ef || ef->dtype != STACL_DT_I8 || ef->numel != nf)
            FAIL(STACL_ERR_FORMAT, "%s: '%s' must be an I8 tensor of %zu element(s)", path, fname, nf);
        int64_t fr[4096];
        int64_t *frp = nf <= 4096 ? fr : malloc(nf * sizeof *frp);
        if (!frp) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
        st = stacl_st_read_i64(f, ef, frp);
        for (size_t c = 0; st == STACL_OK && c < nf; c++) {
            if (frp[c] < 0 || frp[c] > (ch.weight ? STACL_FX_MAX_FRAC : 30))
                st = stacl_fail(STACL_ERR_FORMAT, "%s: '%s'[%zu] = %lld is out of range", path, fname, c,
                                (long long)frp[c]);
            else fx->frac[x->off + c] = (int8_t)frp[c];
        }
        if (frp != fr) free(frp);
        if (st != STACL_OK) goto cleanup;
        if (ch.weight && kind == STACL_FX_Q16 && fx->frac[x->off] != frac_w)
            FAIL(STACL_ERR_FORMAT, "%s: '%s' = %d, the format %s says %d", path, fname, fx->frac[x->off], name, frac_w);
        TRY(stacl_st_read_i64(f, e, buf));
        for (size_t j = 0; j < ch.numel; j++) {
            /* file layout -> buffer layout (2-D weights are transposed) */
            size_t dst = j;
            if (x->transposed) {
                const size_t rows = (size_t)x->shape[0], cols = (size_t)x->shape[1];
                dst = (j % cols) * rows + j / cols;
            }
            if (!ch.weight) {
                fx->qb[x->off + dst] = (int32_t)buf[j];
                host[x->off + dst] = (float)ldexp((double)buf[j], -fx->frac[x->off]);
            } else {
                const int fc = fx->frac[x->off + (kind == STACL_FX_INT8 ? channel_of(&ch, dst) : 0)];
                if (kind == STACL_FX_INT8) fx->w8[x->off + dst] = (int8_t)buf[j];
                else fx->qw[x->off + dst] = (int16_t)buf[j];
                host[x->off + dst] = (float)ldexp((double)buf[j], -fc);
            }
        }
        if (ch.weight && kind == STACL_FX_INT8) { /* expand onto the int16 grid */
            const int common = int8_common_frac(fx->frac + x->off, ch.n);
            for (size_t j = 0; j < ch.numel; j++) {
                const int fc = fx->frac[x->off + channel_of(&ch, j)];
                const int64_t q = fx->w8[x->off + j];
                fx->qw[x->off + j] = common >= fc ? (int16_t)(q * ((int64_t)1 << (common - fc)))
                                                  : stacl_fx_sat16(stacl_fx_shift_rne(q, (unsigned)(fc - common)));
            }
        }
        if (!ch.weight) { /* the bias scale must be its accumulator's */
            const int want_frac = bias_frac(ad, &t[i - 1]);
            if (fx->frac[x->off] != want_frac)
                FAIL(STACL_ERR_FORMAT, "%s: '%s' = %d, expected %d (activations + weight grid)", path, fname,
                     fx->frac[x->off], want_frac);
        }
    }
    TRY(fx_upload(ad));
cleanup:
    free(buf);
    free(t);
    return st;
}

stacl_status stacl_fx_write_checkpoint(const stacl_adapter *ad, const float *host, const char *path) {
    stacl_status st = STACL_OK;
    adapter_tensor *t = NULL;
    stacl_st_entry *e = NULL;
    char (*names)[160] = NULL;
    unsigned char *data = NULL;
    const adapter_fixed *fx = ad->fx;
    const int n = stacl_adapter_tensors(ad, &t);
    if (n < 0) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    const size_t total = ad->total ? ad->total : 1;
    e = calloc(2 * (size_t)n + 1, sizeof *e);
    names = calloc(2 * (size_t)n + 1, sizeof *names);
    /* Bytes: each element at most 4 (I32/F32), each frac 1. */
    data = malloc(total * 5);
    if (!e || !names || !data) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory writing %s", path);
    unsigned char *cur = data;
    int k = 0;
    for (int i = 0; i < n; i++) {
        const adapter_tensor *x = &t[i];
        const tensor_channels ch = channels_of(x);
        const int head = x->off >= ad->fc_w && ad->info.classes;
        const stacl_dtype dt = head ? STACL_DT_F32 : !ch.weight ? STACL_DT_I32
                               : fx->kind == STACL_FX_INT8 ? STACL_DT_I8 : STACL_DT_I16;
        e[k].name = x->name;
        e[k].dtype = dt;
        e[k].ndim = x->ndim;
        for (int d = 0; d < x->ndim; d++) e[k].shape[d] = x->shape[d];
        e[k].data = cur;
        for (size_t j = 0; j < ch.numel; j++) {
            size_t src = j; /* file index j -> buffer index */
            if (x->transposed) {
                const size_t rows = (size_t)x->shape[0], cols = (size_t)x->shape[1];
                src = (j % cols) * rows + j / cols;
            }
            src += x->off;
            if (dt == STACL_DT_F32) { memcpy(cur, &host[src], 4); cur += 4; }
            else if (dt == STACL_DT_I32) { memcpy(cur, &fx->qb[src], 4); cur += 4; }
            else if (dt == STACL_DT_I16) { memcpy(cur, &fx->qw[src], 2); cur += 2; }
            else { *cur++ = (unsigned char)fx->w8[src]; }
        }
        k++;
        if (head) continue;
        snprintf(names[k], sizeof names[k], "%s_frac", x->name);
        const size_t nf = fx->kind == STACL_FX_INT8 && ch.weight ? ch.n : 1;
        e[k].name = names[k];
        e[k].dtype = STACL_DT_I8;
        e[k].ndim = 1;
        e[k].shape[0] = (int64_t)nf;
        e[k].data = cur;
        for (size_t c = 0; c < nf; c++) *cur++ = (unsigned char)fx->frac[x->off + c];
        k++;
    }
    char act[8], weights[16];
    snprintf(act, sizeof act, "%d", fx->frac_act);
    snprintf(weights, sizeof weights, "%.*s", (int)strcspn(fx->name, "/"), fx->name);
    TRY(stacl_st_write(path, e, k, (const char *const[]){"format", "stacl_fixed_point", "stacl_frac_act"},
                       (const char *const[]){"pt", weights, act}, 3));
cleanup:
    free(data);
    free(names);
    free(e);
    free(t);
    return st;
}

void stacl_fx_free(adapter_fixed *fx) {
    if (!fx) return;
    if (fx->dqw) clReleaseMemObject(fx->dqw);
    if (fx->dqb) clReleaseMemObject(fx->dqb);
    free(fx->frac);
    free(fx->qw);
    free(fx->qb);
    free(fx->w8);
    free(fx);
}

/* ---- public API ---------------------------------------------------------- */

stacl_status stacl_adapter_set_fixed_point(stacl_adapter *ad, const char *format) {
    stacl_status st = STACL_OK;
    float *host = NULL;
    stacl_fx_kind kind = STACL_FX_Q16;
    int frac_w = 0, frac_act = STACL_FX_ACT_FRAC;
    if (!ad || !format) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_adapter_set_fixed_point: NULL argument");
    TRY(stacl_adapter_fixed_format_check(format));
    TRY(stacl_fx_parse(format, &kind, &frac_w, &frac_act));
    if (ad->info.n_pre_attn + ad->info.n_pre_mlp == 0)
        FAIL(STACL_ERR_INVALID_ARG, "fixed point: the adapter has no adapter sites (a head only stays float)");
    host = malloc((ad->total ? ad->total : 1) * sizeof *host);
    if (!host) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    TRY(stacl_adapter_read_params(ad, host));
    TRY(fx_alloc(ad));
    ad->fx->kind = kind;
    ad->fx->frac_w = frac_w;
    ad->fx->frac_act = frac_act;
    snprintf(ad->fx->name, sizeof ad->fx->name, "%s", format);
    TRY(stacl_fx_quantize_params(ad, host, NULL, host));
    TRY(stacl_adapter_write_params(ad, host)); /* the float buffer mirrors the integer values (the head stays) */
cleanup:
    free(host);
    return st;
}

const char *stacl_adapter_fixed_point(const stacl_adapter *ad) { return ad && ad->fx ? ad->fx->name : NULL; }

stacl_status stacl_adapter_fixed_format_check(const char *format) {
    stacl_fx_kind kind = STACL_FX_Q16;
    int frac_w = 0, frac_act = STACL_FX_ACT_FRAC;
    if (format && strlen(format) >= sizeof(((adapter_fixed *)0)->name))
        return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format '%s' is too long", format);
    return stacl_fx_parse(format, &kind, &frac_w, &frac_act);
}
