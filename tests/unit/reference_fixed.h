/* reference_fixed.h: the plain-C reference of the fixed-point ST-Adapter
 * forward (docs/fpga.md, "Fixed-point adapter arithmetic"): the definition
 * that kernels/adapter_fixed.cl and hls/adapter_fwd.cpp must reproduce bit
 * for bit. Written for clarity (one output at a time, loops in the
 * documented order), not speed. Layouts as the kernels: x [F, 1 + P, W]
 * (class rows first, untouched), h, y [F, P, A], w1t [W, A], cw [A, kt, kh,
 * kw], w2t [A, W]; biases int32 at the accumulator's scale.
 *
 * Also the golden-file format shared with the HLS testbench
 * (tests/data/fixed/NAME.bin, read by hls/tb_adapter_fwd.cpp). */
#ifndef STACL_REFERENCE_FIXED_H
#define STACL_REFERENCE_FIXED_H

#include <stddef.h>
#include <stdint.h>

#include "fixed_point.h"

typedef struct fx_shape {
    size_t clips, T, grid, width, aw, kt, kh, kw;
} fx_shape;

void ref_fx_fc1(const stacl_fx_format *f, const fx_shape *s, const int16_t *x, const int16_t *w1t,
                const int32_t *b1, int16_t *h);
void ref_fx_dwconv3d(const stacl_fx_format *f, const fx_shape *s, const int16_t *h, const int16_t *cw,
                     const int32_t *cb, int16_t *y);
/* In place on the patch rows of x. */
void ref_fx_fc2_residual(const stacl_fx_format *f, const fx_shape *s, const int16_t *y, const int16_t *w2t,
                         const int32_t *b2, int16_t *x);

/* One golden case: inputs, parameters and the reference's three outputs.
 * File (little-endian): "STACLFX1", 14 uint32 (clips, T, grid, width, aw,
 * kt, kh, kw, frac_x, frac_w1, frac_h, frac_wc, frac_y, frac_w2), then
 * int16 x [F, 1+P, W], int16 w1t [W, A], int32 b1 [A], int16 cw [A, K],
 * int32 cb [A], int16 w2t [A, W], int32 b2 [W], int16 h [F, P, A],
 * int16 y [F, P, A], int16 out [F, 1+P, W]. */
typedef struct fx_case {
    fx_shape s;
    stacl_fx_format f;
    int16_t *x, *w1t, *cw, *w2t, *h, *y, *out;
    int32_t *b1, *cb, *b2;
} fx_case;

/* Allocates every array of c for c->s (zeroed); 0 on success. */
int fx_case_alloc(fx_case *c);
void fx_case_free(fx_case *c);
/* Fills h, y, out from the inputs with the reference. */
void fx_case_run_reference(fx_case *c);
/* 0 on success, -1 on an I/O or format error (message on stderr). */
int fx_case_write(const fx_case *c, const char *path);
int fx_case_read(fx_case *c, const char *path);


/* ---- the training (backward) kernels, kernels/adapter_fixed_backward.cl.
 * Same layouts; g and x are float [F, 1 + P, W] (patch rows only), gu
 * [F, P, W], gy, gh [F, P, A]; int64 sums exact; stochastic rounding with
 * stacl_fx_rand64(seed, step, tensor, element). Written as scatters where
 * the kernels gather (the transposed conv, the weight gradients), so the
 * two are independent formulations of the same sums. Functions that feed a
 * scale slot return the max bit length (or exponent). */
#include "fx_rng.h"

void ref_fxb_quantize_rows(const fx_shape *s, int frac, const float *x, int16_t *xq);
void ref_fxb_fc2_update(const stacl_fx_format *f, const fx_shape *s, const int16_t *y, const int16_t *w2t,
                        const int32_t *b2, float *x);
int ref_fxb_grad_exponent(const fx_shape *s, const float *g); /* -1000 all zero, 1000 non-finite */
void ref_fxb_quantize_grad_sr(const fx_shape *s, int frac, uint64_t seed, uint64_t step, uint32_t tensor,
                              const float *g, int16_t *gu);
int ref_fxb_fc2_backward_input(const fx_shape *s, const int16_t *gu, const int16_t *w2t, int64_t *acc);
/* act (may be NULL): where act[i] saturated, dst[i] = 0. */
void ref_fxb_narrow_sr(size_t n, unsigned shift, uint64_t seed, uint64_t step, uint32_t tensor, const int64_t *acc,
                       const int16_t *act, int16_t *dst);
int ref_fxb_dwconv3d_backward_input(const fx_shape *s, const int16_t *gy, const int16_t *cw, int64_t *acc);
/* Nothing is added where xq saturated. */
void ref_fxb_fc1_backward_input(const fx_shape *s, int scale, const int16_t *gh, const int16_t *w1t,
                                const int16_t *xq, float *g);
void ref_fxb_fc2_backward_params(const fx_shape *s, const int16_t *y, const int16_t *gu, int64_t *dw, int64_t *db);
void ref_fxb_dwconv3d_backward_params(const fx_shape *s, const int16_t *h, const int16_t *gy, int64_t *dw,
                                      int64_t *db);
void ref_fxb_fc1_backward_params(const fx_shape *s, const int16_t *xq, const int16_t *gh, int64_t *dw, int64_t *db);
void ref_fxb_accumulate_grad(size_t n, int scale, const int64_t *acc, float *grad);

/* One adapter site's whole backward as the host sequences it (spec
 * /work/spec_fixed_bwd.md section 4, docs/fpga.md "Fixed-point backward and
 * stochastic rounding"), and its golden file (tests/data/fixed_bwd/NAME.bin,
 * shared with HLS). Little-endian: "STACLFB1", uint32 x 20 (clips, T, grid,
 * width, aw, kt, kh, kw, frac_x, frac_w1, frac_h, frac_wc, frac_y, frac_w2,
 * t_gu, t_gy, t_gh, e_g (int32), frac_gu, 0), uint64 seed, step, uint32 b_gy,
 * s_gy, b_gh, s_gh, then the arrays in the order of the struct: inputs g_in
 * float [F, 1+P, W], xq [F, 1+P, W] (class rows 0), h, y [F, P, A], w1t
 * [W, A], cw [A, K], w2t [A, W] (int16); outputs gu int16 [F, P, W], gy_acc
 * int64, gy int16, gh_acc int64, gh int16 [F, P, A], gx_acc int64 [F, P, W],
 * g_out float [F, 1+P, W], dw2 [A, W], db2 [W], dcw [A, K], dcb [A], dw1t
 * [W, A], db1 [A] (int64). */
typedef struct fxb_case {
    fx_shape s;
    stacl_fx_format f;
    uint32_t t_gu, t_gy, t_gh; /* tensor ids of the three stochastic roundings */
    uint64_t seed, step;
    int32_t e_g, frac_gu;                /* computed: the exponent slot, clamp(14 - e_g, 0, 48) */
    uint32_t b_gy, s_gy, b_gh, s_gh;     /* computed: bit-length slots, max(0, b - 14) */
    float *g_in;                         /* inputs */
    int16_t *xq, *h, *y, *w1t, *cw, *w2t;
    int16_t *gu;                         /* outputs */
    int64_t *gy_acc;
    int16_t *gy;
    int64_t *gh_acc;
    int16_t *gh;
    int64_t *gx_acc;
    float *g_out;
    int64_t *dw2, *db2, *dcw, *dcb, *dw1t, *db1;
} fxb_case;

/* Allocates every array for c->s (zeroed); 0 on success. */
int fxb_case_alloc(fxb_case *c);
void fxb_case_free(fxb_case *c);
/* Steps 1-8 on the inputs (e_g .. s_gh and every output); -1 when the
 * gradient is not finite (nothing after e_g is written). */
int fxb_case_run_reference(fxb_case *c);
int fxb_case_frac_gy(const fxb_case *c); /* frac_gu + frac_w2 - s_gy */
int fxb_case_frac_gh(const fxb_case *c); /* frac_gy + frac_wc - s_gh */
/* The file's bytes (malloc'ed into *out); 0 when out of memory. */
size_t fxb_case_serialize(const fxb_case *c, unsigned char **out);
int fxb_case_write(const fxb_case *c, const char *path);
int fxb_case_read(fxb_case *c, const char *path);

#endif
