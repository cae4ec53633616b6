// adapter_fwd.h: the fixed-point ST-Adapter forward for Vitis HLS (the top
// function adapter_fwd in adapter_fwd.cpp). Arithmetic: docs/fpga.md,
// "Fixed-point adapter arithmetic"; bit-exact with kernels/adapter_fixed.cl
// and tests/unit/reference_fixed.c (checked by `make csim` on the golden files
// in tests/data/fixed).
//
// The integer types sit behind typedefs: ap_int<N> under Vitis HLS
// (__SYNTHESIS__) or with -DHAVE_AP_TYPES, plain <stdint.h> types otherwise,
// so that g++ compiles the kernel for C simulation without the vendor headers.
#ifndef STACL_HLS_ADAPTER_FWD_H
#define STACL_HLS_ADAPTER_FWD_H

#include <stdint.h>

#if defined(__SYNTHESIS__) || defined(HAVE_AP_TYPES)
#include <ap_int.h>
typedef ap_int<16> act_t;  // activations (x, h, y): int16, frac_x / frac_h / frac_y fractional bits
typedef ap_int<16> wgt_t;  // weights: int16, frac_w1 / frac_wc / frac_w2 fractional bits
typedef ap_int<32> bias_t; // biases: int32 at the accumulator's scale
typedef ap_int<32> prod_t; // one int16 x int16 product (|p| <= 2^30)
typedef ap_int<64> acc_t;  // exact sums: |acc| <= 2^31 + K 2^30 < 2^63 for K < 2^32
#else
typedef int16_t act_t;
typedef int16_t wgt_t;
typedef int32_t bias_t;
typedef int32_t prod_t;
typedef int64_t acc_t;
#endif

// On-chip buffer sizes (the largest shapes one synthesized kernel takes):
// ViT-B/16 and ViT-L/14 widths, adapter width up to 512, clips up to 16
// frames of a 16x16 grid, depthwise kernels of up to 27 taps (3x3x3).
#define ADAPTER_MAX_W 1024
#define ADAPTER_MAX_A 512
#define ADAPTER_MAX_T 16
#define ADAPTER_MAX_P 256
#define ADAPTER_MAX_K 27
// Parallelism: fc1 computes ADAPTER_PA output channels per cycle, fc2
// ADAPTER_PC outputs per cycle (one DSP MAC each); the conv one tap per cycle.
#define ADAPTER_PA 16
#define ADAPTER_PC 16

// x: [clips * T, 1 + grid^2, width] int16, class token first; the patch rows
// of x_out get sat16(x_res + fc2(dwconv(fc1(x_in)))), nothing else of x_out is
// written. In place: pass the same buffer as x_in, x_res and x_out (three
// AXI ports so that the load and the residual/store stages run concurrently).
// Weights in the OpenCL kernels' layouts: w1t [width, aw], cw [aw, kt, kh,
// kw], w2t [aw, width]; biases b1 [aw], cb [aw], b2 [width]. Shapes beyond
// the ADAPTER_MAX_* buffers, even kernel sizes or an invalid format: nothing
// is written (check with adapter_fwd_supported first).
extern "C" void adapter_fwd(const act_t *x_in, const act_t *x_res, act_t *x_out, const wgt_t *w1t, const bias_t *b1,
                            const wgt_t *cw, const bias_t *cb, const wgt_t *w2t, const bias_t *b2, unsigned clips,
                            unsigned T, unsigned grid, unsigned width, unsigned aw, unsigned kt, unsigned kh,
                            unsigned kw, unsigned frac_x, unsigned frac_w1, unsigned frac_h, unsigned frac_wc,
                            unsigned frac_y, unsigned frac_w2);

// 1 when adapter_fwd handles these sizes and this format, else 0.
int adapter_fwd_supported(unsigned clips, unsigned T, unsigned grid, unsigned width, unsigned aw, unsigned kt,
                          unsigned kh, unsigned kw, unsigned frac_x, unsigned frac_w1, unsigned frac_h,
                          unsigned frac_wc, unsigned frac_y, unsigned frac_w2);

#endif
