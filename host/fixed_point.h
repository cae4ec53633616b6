/* fixed_point.h: the scalar arithmetic of stacl's fixed-point adapter
 * (docs/fpga.md, "Fixed-point adapter arithmetic"), shared by the host, the
 * plain-C reference of the tests and (re-implemented, compared bit for bit)
 * kernels/adapter_fixed.cl and hls/adapter_fwd.cpp.
 *
 * Values are int16 with `frac` fractional bits (value = q / 2^frac); biases
 * int32 at an accumulator's scale; products accumulate exactly in int64.
 * Narrowing is an arithmetic right shift rounded half to even, then
 * saturation to [-32768, 32767] (never a wrap). */
#ifndef STACL_FIXED_POINT_H
#define STACL_FIXED_POINT_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define STACL_FX_MAX_FRAC 15 /* fractional bits of an int16 format: 0..15 */

/* The fractional bits of every tensor of one adapter (q8.8 -> 8, q4.12 ->
 * 12). Shifts: fc1 frac_x + frac_w1 - frac_h, conv frac_h + frac_wc -
 * frac_y, fc2 frac_y + frac_w2 - frac_x; each must be >= 0. */
typedef struct stacl_fx_format {
    int frac_x;  /* residual stream (adapter input and output) */
    int frac_w1; /* fc1 weight; fc1 bias at frac_x + frac_w1 */
    int frac_h;  /* fc1 output = conv input */
    int frac_wc; /* conv weight; conv bias at frac_h + frac_wc */
    int frac_y;  /* conv output = fc2 input */
    int frac_w2; /* fc2 weight; fc2 bias at frac_y + frac_w2 */
} stacl_fx_format;

/* q8.8 activations everywhere, q4.12 weights (the documented default). */
#define STACL_FX_FORMAT_DEFAULT ((stacl_fx_format){8, 12, 8, 12, 8, 12})

/* STACL_OK when every frac is in 0..15 and every shift >= 0, else
 * STACL_ERR_INVALID_ARG naming the offending field. */
stacl_status stacl_fx_format_check(const stacl_fx_format *f);

/* floor(v / 2^s) rounded half to even, for 0 <= s <= 62 (s = 0: v). */
static inline int64_t stacl_fx_shift_rne(int64_t v, unsigned s) {
    if (s == 0) return v;
    /* floor division without shifting a negative value (implementation-
     * defined in C): for v < 0, ~v = -v - 1 >= 0. */
    int64_t q = v >= 0 ? (v >> s) : ~((~v) >> s);
    const int64_t r = v - q * ((int64_t)1 << s); /* in [0, 2^s) */
    const int64_t half = (int64_t)1 << (s - 1);
    if (r > half || (r == half && (q & 1))) q += 1;
    return q;
}

static inline int16_t stacl_fx_sat16(int64_t v) {
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

/* Float -> int16 with `frac` fractional bits: x * 2^frac (exact in double)
 * rounded half to even, saturated; NaN -> 0. */
int16_t stacl_fx_quantize(float x, int frac);
/* Same to int32 (biases at an accumulator's scale, frac 0..30). */
int32_t stacl_fx_quantize32(float x, int frac);
void stacl_fx_quantize_array(const float *x, size_t n, int frac, int16_t *q);
float stacl_fx_dequantize(int64_t q, int frac); /* q / 2^frac */

#endif
