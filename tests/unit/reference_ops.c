/* reference_ops.c: see reference_ops.h. Deliberately naive loops over the
 * logical indices, in double, so that they are easy to check by eye. */
#include "reference_ops.h"

#include <math.h>
#include <stdlib.h>

void ref_layernorm(size_t rows, size_t cols, double eps, const float *x, size_t x_stride, float *y,
                   size_t y_stride, const float *gamma, const float *beta) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_stride;
        float *yr = y + r * y_stride;
        double mean = 0.0;
        for (size_t c = 0; c < cols; c++) mean += xr[c];
        mean /= (double)cols;
        double var = 0.0;
        for (size_t c = 0; c < cols; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
        var /= (double)cols;
        const double inv_std = 1.0 / sqrt(var + eps);
        /* Statistics are complete before the first write: in place is safe. */
        for (size_t c = 0; c < cols; c++)
            yr[c] = (float)(((double)xr[c] - mean) * inv_std * (double)gamma[c] + (double)beta[c]);
    }
}

void ref_softmax(size_t rows, size_t cols, size_t causal_len, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols;
        float *yr = y + r * cols;
        size_t valid = cols;
        if (causal_len > 0 && r % causal_len + 1 < cols) valid = r % causal_len + 1;
        double m = -INFINITY;
        for (size_t c = 0; c < valid; c++)
            if (xr[c] > m) m = xr[c];
        double sum = 0.0;
        for (size_t c = 0; c < valid; c++) sum += exp((double)xr[c] - m);
        for (size_t c = 0; c < cols; c++) yr[c] = c < valid ? (float)(exp((double)xr[c] - m) / sum) : 0.0f;
    }
}

double ref_quick_gelu(double v) { return v / (1.0 + exp(-1.702 * v)); }

double ref_gelu(double v) { return 0.5 * v * (1.0 + erf(v / sqrt(2.0))); }

void ref_bias_act(ref_act act, size_t rows, size_t cols, float *y, const float *bias) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            const double v = (double)y[r * cols + c] + (double)bias[c];
            double out = v;
            if (act == REF_ACT_QUICK_GELU) out = ref_quick_gelu(v);
            else if (act == REF_ACT_GELU) out = ref_gelu(v);
            y[r * cols + c] = (float)out;
        }
}

void ref_split_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, float q_scale,
                     const float *qkv, float *q, float *k, float *v) {
    const size_t W = heads * head_dim;
    for (size_t f = 0; f < frames; f++)
        for (size_t t = 0; t < tokens; t++)
            for (size_t h = 0; h < heads; h++)
                for (size_t d = 0; d < head_dim; d++) {
                    /* source: qkv[f, t, which, h, d] */
                    const float *src = qkv + ((f * tokens + t) * 3) * W + h * head_dim + d;
                    /* destination: [f, h, t, d] */
                    const size_t dst = ((f * heads + h) * tokens + t) * head_dim + d;
                    q[dst] = (float)((double)src[0] * (double)q_scale);
                    k[dst] = src[W];
                    v[dst] = src[2 * W];
                }
}

void ref_merge_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, const float *o, float *y) {
    for (size_t f = 0; f < frames; f++)
        for (size_t h = 0; h < heads; h++)
            for (size_t t = 0; t < tokens; t++)
                for (size_t d = 0; d < head_dim; d++)
                    y[(f * tokens + t) * heads * head_dim + h * head_dim + d] =
                        o[((f * heads + h) * tokens + t) * head_dim + d];
}

void ref_im2col(size_t frames, size_t size, size_t patch, const float *img, float *cols) {
    const size_t G = size / patch, K = 3 * patch * patch;
    for (size_t f = 0; f < frames; f++)
        for (size_t gy = 0; gy < G; gy++)
            for (size_t gx = 0; gx < G; gx++) {
                float *row = cols + ((f * G + gy) * G + gx) * K;
                for (size_t c = 0; c < 3; c++)
                    for (size_t ky = 0; ky < patch; ky++)
                        for (size_t kx = 0; kx < patch; kx++)
                            row[(c * patch + ky) * patch + kx] =
                                img[((f * 3 + c) * size + gy * patch + ky) * size + gx * patch + kx];
            }
}

void ref_conv2d_patch(size_t frames, size_t size, size_t patch, size_t width, const float *img,
                      const float *weight, float *out) {
    const size_t G = size / patch;
    for (size_t f = 0; f < frames; f++)
        for (size_t oy = 0; oy < G; oy++)
            for (size_t ox = 0; ox < G; ox++)
                for (size_t o = 0; o < width; o++) {
                    double acc = 0.0;
                    for (size_t c = 0; c < 3; c++)
                        for (size_t ky = 0; ky < patch; ky++)
                            for (size_t kx = 0; kx < patch; kx++) {
                                const size_t iy = oy * patch + ky, ix = ox * patch + kx;
                                acc += (double)img[((f * 3 + c) * size + iy) * size + ix] *
                                       (double)weight[((o * 3 + c) * patch + ky) * patch + kx];
                            }
                    out[((f * G + oy) * G + ox) * width + o] = (float)acc;
                }
}

void ref_assemble_tokens(size_t frames, size_t n_patches, size_t width, const float *patches, const float *cls,
                         const float *pos, float *x) {
    const size_t L = n_patches + 1;
    for (size_t f = 0; f < frames; f++)
        for (size_t t = 0; t < L; t++)
            for (size_t c = 0; c < width; c++) {
                const double tok = t == 0 ? (double)cls[c] : (double)patches[(f * n_patches + t - 1) * width + c];
                x[(f * L + t) * width + c] = (float)(tok + (double)pos[t * width + c]);
            }
}

/* Unpacked fallback (and the definition): element by element. */
static void gemm_direct(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const float *a,
                        size_t lda, const float *b, size_t ldb, double beta, float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0.0;
            for (size_t p = 0; p < k; p++) {
                const double av = trans_a ? a[p * lda + i] : a[i * lda + p];
                const double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += av * bv;
            }
            double out = alpha * acc;
            if (beta != 0.0) out += beta * (double)c[i * ldc + j];
            c[i * ldc + j] = (float)out;
        }
}

void ref_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha, const float *a, size_t lda,
              const float *b, size_t ldb, double beta, float *c, size_t ldc) {
    /* Same sums as gemm_direct, with op(a) rows and op(b) columns first
     * copied into contiguous double arrays (fast enough for the large
     * shapes of the tests). */
    double *ap = m && k ? malloc(m * k * sizeof *ap) : NULL, *bp = n && k ? malloc(n * k * sizeof *bp) : NULL;
    if (!ap || !bp) {
        free(ap);
        free(bp);
        gemm_direct(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    for (size_t i = 0; i < m; i++)
        for (size_t p = 0; p < k; p++) ap[i * k + p] = trans_a ? a[p * lda + i] : a[i * lda + p];
    for (size_t j = 0; j < n; j++)
        for (size_t p = 0; p < k; p++) bp[j * k + p] = trans_b ? b[j * ldb + p] : b[p * ldb + j];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            const double *ar = ap + i * k, *bc = bp + j * k;
            double acc = 0.0;
            for (size_t p = 0; p < k; p++) acc += ar[p] * bc[p];
            double out = alpha * acc;
            if (beta != 0.0) out += beta * (double)c[i * ldc + j];
            c[i * ldc + j] = (float)out;
        }
    free(ap);
    free(bp);
}

void ref_embed_tokens(size_t n, size_t ctx, size_t width, const int *tokens, const float *table, const float *pos,
                      float *x) {
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < ctx; t++)
            for (size_t c = 0; c < width; c++)
                x[(i * ctx + t) * width + c] =
                    (float)((double)table[(size_t)tokens[i * ctx + t] * width + c] + (double)pos[t * width + c]);
}

void ref_gather_rows(size_t n, size_t width, const float *x, const int *rows, float *y) {
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < width; c++) y[r * width + c] = x[(size_t)rows[r] * width + c];
}

/* ---- ST-Adapter ------------------------------------------------------------ */

void ref_adapter_fc1(size_t frames, size_t patches, size_t width, size_t aw, const float *x, const float *w1,
                     const float *b1, float *h, float *mag) {
    for (size_t f = 0; f < frames; f++)
        for (size_t p = 0; p < patches; p++) {
            const float *xr = x + (f * (patches + 1) + 1 + p) * width;
            for (size_t a = 0; a < aw; a++) {
                double acc = b1[a], m = fabs((double)b1[a]);
                for (size_t c = 0; c < width; c++) {
                    acc += (double)xr[c] * w1[a * width + c];
                    m += fabs((double)xr[c] * w1[a * width + c]);
                }
                h[(f * patches + p) * aw + a] = (float)acc;
                if (mag) mag[(f * patches + p) * aw + a] = (float)m;
            }
        }
}

void ref_adapter_dwconv3d(size_t clips, size_t T, size_t grid, size_t aw, size_t kt, size_t kh, size_t kw,
                          const float *h, const float *w, const float *b, float *y, float *mag) {
    const long pt = (long)kt / 2, ph = (long)kh / 2, pw = (long)kw / 2, G = (long)grid;
    for (size_t n = 0; n < clips; n++)
        for (long t = 0; t < (long)T; t++)
            for (long r = 0; r < G; r++)
                for (long c = 0; c < G; c++)
                    for (size_t a = 0; a < aw; a++) {
                        double acc = b[a], m = fabs((double)b[a]);
                        for (long dt = 0; dt < (long)kt; dt++)
                            for (long dh = 0; dh < (long)kh; dh++)
                                for (long dw = 0; dw < (long)kw; dw++) {
                                    const long tt = t + dt - pt, rr = r + dh - ph, cc = c + dw - pw;
                                    if (tt < 0 || tt >= (long)T || rr < 0 || rr >= G || cc < 0 || cc >= G) continue;
                                    const double v = (double)h[((n * T + (size_t)tt) * grid * grid +
                                                                (size_t)(rr * G + cc)) * aw + a] *
                                                     w[((a * kt + (size_t)dt) * kh + (size_t)dh) * kw + (size_t)dw];
                                    acc += v;
                                    m += fabs(v);
                                }
                        const size_t o = ((n * T + (size_t)t) * grid * grid + (size_t)(r * G + c)) * aw + a;
                        y[o] = (float)acc;
                        if (mag) mag[o] = (float)m;
                    }
}

void ref_adapter_fc2_residual(size_t frames, size_t patches, size_t width, size_t aw, const float *y,
                              const float *w2, const float *b2, float *x, float *mag) {
    for (size_t f = 0; f < frames; f++)
        for (size_t p = 0; p < patches; p++) {
            float *xr = x + (f * (patches + 1) + 1 + p) * width;
            const float *yr = y + (f * patches + p) * aw;
            for (size_t c = 0; c < width; c++) {
                double acc = b2[c], m = fabs((double)b2[c]) + fabs((double)xr[c]);
                for (size_t a = 0; a < aw; a++) {
                    acc += (double)yr[a] * w2[c * aw + a];
                    m += fabs((double)yr[a] * w2[c * aw + a]);
                }
                xr[c] = (float)((double)xr[c] + acc);
                if (mag) mag[(f * patches + p) * width + c] = (float)m;
            }
        }
}

void ref_adapter_mean_cls(size_t clips, size_t T, size_t tokens, size_t width, const float *x, float *m) {
    for (size_t n = 0; n < clips; n++)
        for (size_t c = 0; c < width; c++) {
            double acc = 0.0;
            for (size_t t = 0; t < T; t++) acc += x[((n * T + t) * tokens) * width + c];
            m[n * width + c] = (float)(acc / (double)T);
        }
}

/* ---- backward passes ------------------------------------------------------- */

double ref_quick_gelu_grad(double v) {
    const double s = 1.0 / (1.0 + exp(-1.702 * v));
    return s + 1.702 * v * s * (1.0 - s);
}

double ref_gelu_grad(double v) {
    return 0.5 * (1.0 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
}

void ref_layernorm_backward(size_t rows, size_t cols, double eps, const float *x, size_t x_stride,
                            const float *gamma, const float *dy, size_t dy_stride, float *dx, size_t dx_stride,
                            float *mag) {
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * x_stride, *dyr = dy + r * dy_stride;
        float *dxr = dx + r * dx_stride;
        double mean = 0.0, var = 0.0;
        for (size_t c = 0; c < cols; c++) mean += xr[c];
        mean /= (double)cols;
        for (size_t c = 0; c < cols; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
        const double rstd = 1.0 / sqrt(var / (double)cols + eps);
        double mg = 0.0, mgx = 0.0, mag_g = 0.0, mag_gx = 0.0;
        for (size_t c = 0; c < cols; c++) {
            const double g = (double)dyr[c] * gamma[c], xhat = ((double)xr[c] - mean) * rstd;
            mg += g;
            mgx += g * xhat;
            mag_g += fabs(g);
            mag_gx += fabs(g * xhat);
        }
        mg /= (double)cols;
        mgx /= (double)cols;
        mag_g /= (double)cols;
        mag_gx /= (double)cols;
        const double m = 1.0 + fabs(mean) * rstd;
        for (size_t c = 0; c < cols; c++) {
            const double g = (double)dyr[c] * gamma[c], xhat = ((double)xr[c] - mean) * rstd;
            const double old = dxr[c];
            const double scale =
                fabs(g) + mag_g + fabs(xhat) * (fabs(mgx) + mag_gx) + m * (fabs(mgx) + fabs(xhat) * mag_g);
            if (mag) mag[r * cols + c] = (float)(fabs(old) + rstd * scale);
            dxr[c] = (float)(old + rstd * (g - mg - xhat * mgx));
        }
    }
}

void ref_softmax_backward(size_t rows, size_t cols, const float *p, float *dp, float *mag) {
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * cols;
        float *dr = dp + r * cols;
        double s = 0.0, m = 0.0;
        for (size_t c = 0; c < cols; c++) {
            s += (double)pr[c] * dr[c];
            m += fabs((double)pr[c] * dr[c]);
        }
        for (size_t c = 0; c < cols; c++) {
            if (mag) mag[r * cols + c] = (float)((double)pr[c] * (fabs((double)dr[c]) + m));
            dr[c] = (float)((double)pr[c] * ((double)dr[c] - s));
        }
    }
}

void ref_split_merged(size_t frames, size_t tokens, size_t heads, size_t head_dim, const float *y, float *o) {
    for (size_t f = 0; f < frames; f++)
        for (size_t h = 0; h < heads; h++)
            for (size_t t = 0; t < tokens; t++)
                for (size_t d = 0; d < head_dim; d++)
                    o[((f * heads + h) * tokens + t) * head_dim + d] =
                        y[(f * tokens + t) * heads * head_dim + h * head_dim + d];
}

void ref_join_heads(size_t frames, size_t tokens, size_t heads, size_t head_dim, float q_scale, const float *dq,
                    const float *dk, const float *dv, float *dqkv) {
    const size_t W = heads * head_dim;
    for (size_t f = 0; f < frames; f++)
        for (size_t t = 0; t < tokens; t++)
            for (size_t h = 0; h < heads; h++)
                for (size_t d = 0; d < head_dim; d++) {
                    const size_t src = ((f * heads + h) * tokens + t) * head_dim + d;
                    float *dst = dqkv + (f * tokens + t) * 3 * W + h * head_dim + d;
                    dst[0] = (float)((double)dq[src] * (double)q_scale);
                    dst[W] = dk[src];
                    dst[2 * W] = dv[src];
                }
}

void ref_layernorm_row_d(size_t cols, double eps, const double *x, const double *gamma, const double *beta,
                         double *y) {
    double mean = 0.0, var = 0.0;
    for (size_t c = 0; c < cols; c++) mean += x[c];
    mean /= (double)cols;
    for (size_t c = 0; c < cols; c++) var += (x[c] - mean) * (x[c] - mean);
    const double rstd = 1.0 / sqrt(var / (double)cols + eps);
    for (size_t c = 0; c < cols; c++) y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c];
}

void ref_softmax_row_d(size_t cols, size_t valid, const double *x, double *y) {
    double m = -INFINITY, sum = 0.0;
    for (size_t c = 0; c < valid; c++)
        if (x[c] > m) m = x[c];
    for (size_t c = 0; c < valid; c++) sum += exp(x[c] - m);
    for (size_t c = 0; c < cols; c++) y[c] = c < valid ? exp(x[c] - m) / sum : 0.0;
}

/* ---- ST-Adapter in double ---------------------------------------------------- */

/* Index of element a of row (f, p) of an [F, P, A] tensor, and of channel c
 * of the patch row (f, p) of the residual stream [F, 1 + P, W]. */
#define ACT_AT(s, f, p, a) (((f) * (s)->grid * (s)->grid + (p)) * (s)->aw + (a))
#define PATCH_AT(s, f, p, c) (((f) * ((s)->grid * (s)->grid + 1) + 1 + (p)) * (s)->width + (c))

/* The tap (dt, dh, dw) source of output position (n, t, r, c): the linear
 * position index of [clips * T, grid * grid], or -1 outside the volume. */
static long conv_src(const ref_adapter_shape *s, size_t n, long t, long r, long c, long dt, long dh, long dw) {
    const long tt = t + dt - (long)s->kt / 2, rr = r + dh - (long)s->kh / 2, cc = c + dw - (long)s->kw / 2;
    const long G = (long)s->grid;
    if (tt < 0 || tt >= (long)s->T || rr < 0 || rr >= G || cc < 0 || cc >= G) return -1;
    return ((long)n * (long)s->T + tt) * G * G + rr * G + cc;
}

void ref_adapter_forward_d(const ref_adapter_shape *s, const double *x, const double *w1, const double *b1,
                           const double *cw, const double *cb, const double *w2, const double *b2, double *h,
                           double *y, double *out) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw, K = s->kt * s->kh * s->kw;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t a = 0; a < A; a++) {
                double acc = b1[a];
                for (size_t c = 0; c < W; c++) acc += x[PATCH_AT(s, f, p, c)] * w1[a * W + c];
                h[ACT_AT(s, f, p, a)] = acc;
            }
    for (size_t n = 0; n < s->clips; n++)
        for (long t = 0; t < (long)s->T; t++)
            for (long r = 0; r < (long)s->grid; r++)
                for (long c = 0; c < (long)s->grid; c++) {
                    const size_t pos = (n * s->T + (size_t)t) * P + (size_t)r * s->grid + (size_t)c;
                    for (size_t a = 0; a < A; a++) {
                        double acc = cb[a];
                        for (long dt = 0; dt < (long)s->kt; dt++)
                            for (long dh = 0; dh < (long)s->kh; dh++)
                                for (long dw = 0; dw < (long)s->kw; dw++) {
                                    const long src = conv_src(s, n, t, r, c, dt, dh, dw);
                                    if (src < 0) continue;
                                    acc += h[(size_t)src * A + a] *
                                           cw[a * K + (size_t)((dt * (long)s->kh + dh) * (long)s->kw + dw)];
                                }
                        y[pos * A + a] = acc;
                    }
                }
    for (size_t f = 0; f < F; f++) {
        for (size_t c = 0; c < W; c++) out[f * (P + 1) * W + c] = x[f * (P + 1) * W + c];
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                double acc = b2[c];
                for (size_t a = 0; a < A; a++) acc += y[ACT_AT(s, f, p, a)] * w2[c * A + a];
                out[PATCH_AT(s, f, p, c)] = x[PATCH_AT(s, f, p, c)] + acc;
            }
    }
}

void ref_adapter_fc2_backward_input_d(const ref_adapter_shape *s, const double *dout, const double *w2, double *dy,
                                     double *mag) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t a = 0; a < A; a++) {
                double acc = 0.0, m = 0.0;
                for (size_t c = 0; c < W; c++) {
                    const double v = dout[PATCH_AT(s, f, p, c)] * w2[c * A + a];
                    acc += v;
                    m += fabs(v);
                }
                dy[ACT_AT(s, f, p, a)] = acc;
                if (mag) mag[ACT_AT(s, f, p, a)] = m;
            }
}

void ref_adapter_fc2_backward_params_d(const ref_adapter_shape *s, const double *y, const double *dout,
                                      double *gw2, double *gb2, double *mag_w, double *mag_b) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    for (size_t c = 0; c < W; c++) {
        double bacc = 0.0, bm = 0.0;
        for (size_t f = 0; f < F; f++)
            for (size_t p = 0; p < P; p++) {
                bacc += dout[PATCH_AT(s, f, p, c)];
                bm += fabs(dout[PATCH_AT(s, f, p, c)]);
            }
        gb2[c] = bacc;
        if (mag_b) mag_b[c] = bm;
        for (size_t a = 0; a < A; a++) {
            double acc = 0.0, m = 0.0;
            for (size_t f = 0; f < F; f++)
                for (size_t p = 0; p < P; p++) {
                    const double v = dout[PATCH_AT(s, f, p, c)] * y[ACT_AT(s, f, p, a)];
                    acc += v;
                    m += fabs(v);
                }
            gw2[c * A + a] = acc;
            if (mag_w) mag_w[c * A + a] = m;
        }
    }
}

/* The adjoint written as a scatter over the forward's taps: every forward
 * term y[pos] += w h[src] sends dy[pos] w back to dh[src] (a different
 * derivation from the kernel's gather over flipped taps). */
void ref_adapter_dwconv3d_backward_input_d(const ref_adapter_shape *s, const double *dy, const double *cw,
                                          double *dh, double *mag) {
    const size_t P = s->grid * s->grid, A = s->aw, K = s->kt * s->kh * s->kw, n_all = s->clips * s->T * P * A;
    for (size_t i = 0; i < n_all; i++) {
        dh[i] = 0.0;
        if (mag) mag[i] = 0.0;
    }
    for (size_t n = 0; n < s->clips; n++)
        for (long t = 0; t < (long)s->T; t++)
            for (long r = 0; r < (long)s->grid; r++)
                for (long c = 0; c < (long)s->grid; c++) {
                    const size_t pos = (n * s->T + (size_t)t) * P + (size_t)r * s->grid + (size_t)c;
                    for (long dt = 0; dt < (long)s->kt; dt++)
                        for (long dh_ = 0; dh_ < (long)s->kh; dh_++)
                            for (long dw = 0; dw < (long)s->kw; dw++) {
                                const long src = conv_src(s, n, t, r, c, dt, dh_, dw);
                                if (src < 0) continue;
                                const size_t k = (size_t)((dt * (long)s->kh + dh_) * (long)s->kw + dw);
                                for (size_t a = 0; a < A; a++) {
                                    const double v = dy[pos * A + a] * cw[a * K + k];
                                    dh[(size_t)src * A + a] += v;
                                    if (mag) mag[(size_t)src * A + a] += fabs(v);
                                }
                            }
                }
}

void ref_adapter_dwconv3d_backward_params_d(const ref_adapter_shape *s, const double *h, const double *dy,
                                           double *gcw, double *gcb, double *mag_w, double *mag_b) {
    const size_t P = s->grid * s->grid, A = s->aw, K = s->kt * s->kh * s->kw;
    for (size_t i = 0; i < A * K; i++) {
        gcw[i] = 0.0;
        if (mag_w) mag_w[i] = 0.0;
    }
    for (size_t a = 0; a < A; a++) {
        gcb[a] = 0.0;
        if (mag_b) mag_b[a] = 0.0;
    }
    for (size_t n = 0; n < s->clips; n++)
        for (long t = 0; t < (long)s->T; t++)
            for (long r = 0; r < (long)s->grid; r++)
                for (long c = 0; c < (long)s->grid; c++) {
                    const size_t pos = (n * s->T + (size_t)t) * P + (size_t)r * s->grid + (size_t)c;
                    for (size_t a = 0; a < A; a++) {
                        gcb[a] += dy[pos * A + a];
                        if (mag_b) mag_b[a] += fabs(dy[pos * A + a]);
                    }
                    for (long dt = 0; dt < (long)s->kt; dt++)
                        for (long dh_ = 0; dh_ < (long)s->kh; dh_++)
                            for (long dw = 0; dw < (long)s->kw; dw++) {
                                const long src = conv_src(s, n, t, r, c, dt, dh_, dw);
                                if (src < 0) continue;
                                const size_t k = (size_t)((dt * (long)s->kh + dh_) * (long)s->kw + dw);
                                for (size_t a = 0; a < A; a++) {
                                    const double v = dy[pos * A + a] * h[(size_t)src * A + a];
                                    gcw[a * K + k] += v;
                                    if (mag_w) mag_w[a * K + k] += fabs(v);
                                }
                            }
                }
}

void ref_adapter_fc1_backward_input_d(const ref_adapter_shape *s, const double *dh, const double *w1, double *dxp,
                                     double *mag) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t c = 0; c < W; c++) {
                double acc = 0.0, m = 0.0;
                for (size_t a = 0; a < A; a++) {
                    const double v = dh[ACT_AT(s, f, p, a)] * w1[a * W + c];
                    acc += v;
                    m += fabs(v);
                }
                dxp[(f * P + p) * W + c] = acc;
                if (mag) mag[(f * P + p) * W + c] = m;
            }
}

void ref_adapter_fc1_backward_params_d(const ref_adapter_shape *s, const double *x, const double *dh, double *gw1,
                                      double *gb1, double *mag_w, double *mag_b) {
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw;
    for (size_t a = 0; a < A; a++) {
        double bacc = 0.0, bm = 0.0;
        for (size_t f = 0; f < F; f++)
            for (size_t p = 0; p < P; p++) {
                bacc += dh[ACT_AT(s, f, p, a)];
                bm += fabs(dh[ACT_AT(s, f, p, a)]);
            }
        gb1[a] = bacc;
        if (mag_b) mag_b[a] = bm;
        for (size_t c = 0; c < W; c++) {
            double acc = 0.0, m = 0.0;
            for (size_t f = 0; f < F; f++)
                for (size_t p = 0; p < P; p++) {
                    const double v = dh[ACT_AT(s, f, p, a)] * x[PATCH_AT(s, f, p, c)];
                    acc += v;
                    m += fabs(v);
                }
            gw1[a * W + c] = acc;
            if (mag_w) mag_w[a * W + c] = m;
        }
    }
}
