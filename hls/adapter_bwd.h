// adapter_bwd.h: the fixed-point ST-Adapter BACKWARD for Vitis HLS: nine
// extern "C" top functions (adapter_bwd.cpp), one per stage of the backward
// of one adapter site, sequenced by the host exactly as the OpenCL kernels of
// kernels/adapter_fixed_backward.cl are (host/train_fixed.c): the host reads
// the small int "slots" (exponent, bit lengths) between stages and derives the
// shifts from them. Arithmetic: docs/fpga.md, "Fixed-point backward and
// stochastic rounding"; bit-exact with the OpenCL kernels and the plain-C
// reference through the golden files tests/data/fixed_bwd/*.bin (checked by
// `make csim`, hls/tb_adapter_bwd.cpp).
//
// Types, buffer limits and lane counts come from adapter_fwd.h (act_t, wgt_t,
// prod_t, acc_t: ap_int under __SYNTHESIS__ / -DHAVE_AP_TYPES, <stdint.h>
// types otherwise; ADAPTER_MAX_W 1024, _A 512, _T 16, _P 256, _K 27).
// Layouts as the forward: g, xq [F, 1 + P, W] (the class-token row 0 of each
// frame is never read or written); gu [F, P, W]; h, y, gy, gh and the int64
// accumulators [F, P, A] (= [clips, T, grid, grid, A]); w1t [W, A],
// cw [A, K], w2t [A, W]. F = frames (= clips * T), P = patches (= grid^2).
#ifndef STACL_HLS_ADAPTER_BWD_H
#define STACL_HLS_ADAPTER_BWD_H

#include <stdint.h>

#include "adapter_fwd.h"

#if defined(__SYNTHESIS__) || defined(HAVE_AP_TYPES)
typedef ap_int<16> grad_t; // narrowed gradients (gu, gy, gh): int16 on a power-of-two grid chosen per call
typedef ap_int<32> slot_t; // the int "slots" the host reads between stages (exponent, bit lengths)
#else
typedef int16_t grad_t;
typedef int32_t slot_t;
#endif

// The empty-gradient and non-finite values of the exponent slot (as
// host/ops_fixed_backward.h: STACL_FX_EXP_ZERO / STACL_FX_EXP_NONFINITE).
#define ADAPTER_BWD_EXP_ZERO (-1000)
#define ADAPTER_BWD_EXP_NONFINITE 1000

// Parallelism: the four fc stages (fc2_input, fc1_input, fc2_params,
// fc1_params) do ADAPTER_BWD_LANES int16 x int16 MACs per cycle (one DSP
// each, the weight or block buffers partitioned cyclically that many ways);
// the two conv stages one tap per cycle; the element-wise stages (exponent,
// quantize_grad, narrow) one element per cycle with the Philox rounds
// unrolled in the pipeline. The weight-gradient stages accumulate over blocks
// of ADAPTER_BWD_ROW_BLOCK patch rows held on chip (a register accumulator per
// lane inside a block, one read-modify-write of the on-chip int64 gradient
// per block: no loop-carried memory hazard at II=1).
#define ADAPTER_BWD_LANES 16
#define ADAPTER_BWD_ROW_BLOCK 128

// ---- Generator and rounding (also used by the testbench's self-checks) ----
// Philox4x32-10 (Random123; Salmon et al., SC'11), implemented here on its own
// (no host/ header): ctr = (c0, c1, c2, c3), key = (k0, k1).
void adapter_bwd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);
// The draw of element `index` of tensor `tensor`: key (seed lo, seed hi),
// counter (index, tensor, step lo, step hi), result (r1 << 32) | r0.
uint64_t adapter_bwd_rand64(uint64_t seed, uint64_t step, uint32_t tensor, uint32_t index);
// Stochastic rounding of v by s bits (0 <= s <= 62) with the draw u:
// q = floor(v / 2^s), r = v - q 2^s, result q + ((u >> (64 - s)) < r).
int64_t adapter_bwd_sr(int64_t v, unsigned s, uint64_t u);
// rint(g 2^k) (round half to even) clamped to [-2^46, 2^46], as the float
// kernels compute it (float product, rint, clamp in float), for 0 <= k <= 64,
// on the float's bits (no float unit); NaN -> 0.
int64_t adapter_bwd_grad_to_fixed(float g, unsigned k);

// ---- Top functions, in the host's order. Each writes nothing (and reads
// nothing) when its *_supported check is 0: sizes beyond the on-chip buffers
// (the forward's limits), even kernels, element indices beyond 32 bits, or a
// shift/scale outside its range. ----

// 1. slots[slot] = max(slots[slot], e) with e the largest frexp exponent of
//    the finite nonzero g over the patch rows (|g| < 2^e <= 2|g|); zeros add
//    nothing; a NaN or infinity gives ADAPTER_BWD_EXP_NONFINITE. The host fills
//    the slot with ADAPTER_BWD_EXP_ZERO first; frac_gu = clamp(14 - e, 0, 48).
extern "C" void adapter_bwd_grad_exponent(const float *g, slot_t *slots, unsigned slot, unsigned frames,
                                          unsigned patches, unsigned width);
int adapter_bwd_grad_exponent_supported(unsigned frames, unsigned patches, unsigned width);

// 2. gu[i] = sat16(sr(v, 16, rand64(seed, step, tensor, i))) for
//    i = (f P + p) W + c, where v = rint(g[f, 1 + p, c] 2^(frac + 16)) in float
//    clamped to +-2^46 (computed on the float's bits: no float unit). frac <= 48.
extern "C" void adapter_bwd_quantize_grad(const float *g, grad_t *gu, unsigned frames, unsigned patches,
                                          unsigned width, unsigned frac, uint64_t seed, uint64_t step,
                                          unsigned tensor);
int adapter_bwd_quantize_grad_supported(unsigned frames, unsigned patches, unsigned width, unsigned frac);

// 3. gy_acc[r, a] = sum_c gu[r, c] w2t[a, c] (int64, r = f P + p);
//    slots[slot] = max(slots[slot], max bitlen |gy_acc|) (|v| < 2^bitlen).
extern "C" void adapter_bwd_fc2_input(const grad_t *gu, const wgt_t *w2t, acc_t *gy_acc, slot_t *slots,
                                      unsigned slot, unsigned frames, unsigned patches, unsigned width,
                                      unsigned aw);
int adapter_bwd_fc2_input_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw);

// 4. (and 6.) dst[i] = 0 where use_act and act[i] is +-saturated (32767 or
//    -32768: the clamp's derivative), else sat16(sr(acc[i], shift,
//    rand64(seed, step, tensor, i))), i < n. act is not read when use_act is 0.
extern "C" void adapter_bwd_narrow(const acc_t *acc, const act_t *act, grad_t *dst, unsigned n, unsigned shift,
                                   uint64_t seed, uint64_t step, unsigned tensor, unsigned use_act);
int adapter_bwd_narrow_supported(unsigned n, unsigned shift);

// 5. The transposed depthwise conv (zero padding k/2 inside each clip's
//    [T, grid, grid] volume): gh_acc[n, t, r, c, a] = sum over the taps
//    (dt, dh, dw) whose source (t - dt + kt/2, r - dh + kh/2, c - dw + kw/2) is
//    in range of gy[n, source, a] cw[a, dt, dh, dw]; slots[slot] = max bitlen.
extern "C" void adapter_bwd_conv_input(const grad_t *gy, const wgt_t *cw, acc_t *gh_acc, slot_t *slots,
                                       unsigned slot, unsigned clips, unsigned T, unsigned grid, unsigned aw,
                                       unsigned kt, unsigned kh, unsigned kw);
int adapter_bwd_conv_input_supported(unsigned clips, unsigned T, unsigned grid, unsigned aw, unsigned kt,
                                     unsigned kh, unsigned kw);

// 7. gx = sum_a gh[r, a] w1t[c, a] (int64); g_out[f, 1 + p, c] =
//    g_in[f, 1 + p, c] + (float)gx 2^-scale (int64 -> float to nearest even,
//    then an exact power-of-two scale, one float add), or g_in unchanged where
//    xq[f, 1 + p, c] is saturated. scale = frac_gh + frac_w1 in [-127, 126].
//    In place: g_in == g_out. When store_acc is 1 the sums also go to
//    gx_acc [F, P, W] (the golden files hold them; a trainer passes 0).
extern "C" void adapter_bwd_fc1_input(const grad_t *gh, const wgt_t *w1t, const act_t *xq, const float *g_in,
                                      float *g_out, acc_t *gx_acc, unsigned store_acc, unsigned frames,
                                      unsigned patches, unsigned width, unsigned aw, int scale);
int adapter_bwd_fc1_input_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw, int scale);

// 8a. dw2[a, c] = sum_r y[r, a] gu[r, c]; db2[c] = sum_r gu[r, c] (int64,
//     overwritten).
extern "C" void adapter_bwd_fc2_params(const act_t *y, const grad_t *gu, acc_t *dw2, acc_t *db2, unsigned frames,
                                       unsigned patches, unsigned width, unsigned aw);
int adapter_bwd_fc2_params_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw);

// 8b. dcw[a, dt, dh, dw] = sum over (n, t, r, c) with an in-range
//     (t + dt - kt/2, r + dh - kh/2, c + dw - kw/2) of gy[n, t, r, c, a]
//     h[n, t + dt - kt/2, r + dh - kh/2, c + dw - kw/2, a]; dcb[a] = sum gy[..., a].
extern "C" void adapter_bwd_conv_params(const act_t *h, const grad_t *gy, acc_t *dcw, acc_t *dcb, unsigned clips,
                                        unsigned T, unsigned grid, unsigned aw, unsigned kt, unsigned kh,
                                        unsigned kw);
int adapter_bwd_conv_params_supported(unsigned clips, unsigned T, unsigned grid, unsigned aw, unsigned kt,
                                      unsigned kh, unsigned kw);

// 8c. dw1t[c, a] = sum_r xq[f, 1 + p, c] gh[r, a]; db1[a] = sum_r gh[r, a].
extern "C" void adapter_bwd_fc1_params(const act_t *xq, const grad_t *gh, acc_t *dw1t, acc_t *db1, unsigned frames,
                                       unsigned patches, unsigned width, unsigned aw);
int adapter_bwd_fc1_params_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw);

#endif
