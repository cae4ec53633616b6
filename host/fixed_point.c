/* fixed_point.c: see fixed_point.h. */
#include "fixed_point.h"

#include <math.h>

stacl_status stacl_fx_format_check(const stacl_fx_format *f) {
    const int v[6] = {f->frac_x, f->frac_w1, f->frac_h, f->frac_wc, f->frac_y, f->frac_w2};
    static const char *const names[6] = {"frac_x", "frac_w1", "frac_h", "frac_wc", "frac_y", "frac_w2"};
    for (int i = 0; i < 6; i++)
        if (v[i] < 0 || v[i] > STACL_FX_MAX_FRAC)
            return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format: %s = %d is outside 0..%d", names[i], v[i],
                              STACL_FX_MAX_FRAC);
    if (f->frac_x + f->frac_w1 < f->frac_h)
        return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format: frac_h %d > frac_x + frac_w1 = %d", f->frac_h,
                          f->frac_x + f->frac_w1);
    if (f->frac_h + f->frac_wc < f->frac_y)
        return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format: frac_y %d > frac_h + frac_wc = %d", f->frac_y,
                          f->frac_h + f->frac_wc);
    if (f->frac_y + f->frac_w2 < f->frac_x)
        return stacl_fail(STACL_ERR_INVALID_ARG, "fixed-point format: frac_x %d > frac_y + frac_w2 = %d", f->frac_x,
                          f->frac_y + f->frac_w2);
    return STACL_OK;
}

/* v rounded half to even (independent of the floating-point environment's
 * rounding mode), v finite. */
static double round_half_even(double v) {
    double f = floor(v);
    const double d = v - f; /* exact: f is v with its fraction bits cleared */
    if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0)) f += 1.0;
    return f;
}

static double scaled_rne(float x, int frac, double lo, double hi) {
    if (isnan(x)) return 0.0;
    const double v = ldexp((double)x, frac); /* exact: a float times a power of two */
    if (v >= hi) return hi;
    if (v <= lo) return lo;
    const double r = round_half_even(v);
    return r > hi ? hi : r < lo ? lo : r;
}

int16_t stacl_fx_quantize(float x, int frac) {
    return (int16_t)scaled_rne(x, frac, -32768.0, 32767.0);
}

int32_t stacl_fx_quantize32(float x, int frac) {
    return (int32_t)scaled_rne(x, frac, -2147483648.0, 2147483647.0);
}

void stacl_fx_quantize_array(const float *x, size_t n, int frac, int16_t *q) {
    for (size_t i = 0; i < n; i++) q[i] = stacl_fx_quantize(x[i], frac);
}

float stacl_fx_dequantize(int64_t q, int frac) {
    return (float)ldexp((double)q, -frac);
}
