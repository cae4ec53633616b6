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

#endif
