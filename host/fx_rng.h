/* fx_rng.h: the counter-based generator behind stacl's stochastic rounding
 * (docs/fpga.md, "Fixed-point backward and stochastic rounding"):
 * Philox4x32-10 (Salmon et al., SC'11, as in Random123), keyed so that any
 * implementation (host C, kernels/adapter_fixed_backward.cl, an FPGA
 * kernel) draws the same bits for the same element without state:
 *   key = (seed low, seed high), counter = (index, tensor, step low, step high)
 * and the 64-bit draw is (r1 << 32) | r0 of the output words. Header-only,
 * valid C11 and C++. */
#ifndef STACL_FX_RNG_H
#define STACL_FX_RNG_H

#include <stdint.h>

static inline void stacl_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0, hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static inline uint64_t stacl_fx_rand64(uint64_t seed, uint64_t step, uint32_t tensor, uint32_t index) {
    const uint32_t ctr[4] = {index, tensor, (uint32_t)step, (uint32_t)(step >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t r[4];
    stacl_philox4x32_10(ctr, key, r);
    return ((uint64_t)r[1] << 32) | r[0];
}

/* v / 2^s rounded stochastically (0 <= s <= 62): floor, plus one when the
 * top s bits of the draw u fall below the remainder, so the expected
 * result is exactly v / 2^s. s = 0: v. */
static inline int64_t stacl_fx_sr_round(int64_t v, unsigned s, uint64_t u) {
    if (s == 0) return v;
    const int64_t q = v >= 0 ? (v >> s) : ~((~v) >> s);
    const uint64_t r = (uint64_t)(v - q * ((int64_t)1 << s)); /* in [0, 2^s) */
    return q + ((u >> (64 - s)) < r ? 1 : 0);
}

#endif
