/* adapter_fwd_swi.cl: the fixed-point ST-Adapter forward as ONE single-
 * work-item OpenCL C 1.2 kernel, for the OpenCL FPGA SDKs that compile
 * loop-pipelined "tasks" (Intel FPGA SDK for OpenCL: `aoc`, `make -C hls
 * aocx`), and for any other OpenCL device (PoCL in the tests). Arithmetic
 * exactly as kernels/adapter_fixed.cl, hls/adapter_fwd.cpp and the plain-C
 * reference tests/unit/reference_fixed.c (docs/fpga.md, "Fixed-point
 * adapter arithmetic"): int16 activations and weights, int32 biases, exact
 * int64 sums, narrowing by an arithmetic shift rounded half to even, then
 * saturation to int16; residual add saturated once. Checked bit for bit
 * against the golden files by tests/unit/test_fixed_kernels.c.
 *
 * Enqueue with a global and a local size of 1 (clEnqueueTask semantics):
 * one work-item walks every loop, so an FPGA compiler can pipeline them
 * (II = 1 targets in the comments), where the NDRange kernels of
 * kernels/adapter_fixed.cl rely on many work-items instead.
 *
 * Per clip: fc1 over its patch rows -> h, the depthwise conv over its
 * [T, grid, grid] volume -> y, fc2 + residual back into x's patch rows.
 * h and y [clips * T, grid^2, aw] are global buffers the kernel writes
 * (kept, so that tests can compare every stage). Each input row is first copied into a private row
 * buffer (registers / on-chip RAM on an FPGA) and SWI_LANES output channels
 * are summed side by side, so a pipelined inner loop reads one row value
 * and SWI_LANES weights per iteration. Weights are read from global memory
 * (the SDK's load units cache and burst them); a build for one model can
 * move them on chip by sizing __local arrays, which this portable version
 * does not assume (PoCL reports 512 KiB of local memory, ViT-B's fc1 and
 * fc2 weights alone are 1.1 MiB).
 *
 * status[0] gets 0 when the kernel ran, 1 when the shape or the format is
 * outside what it supports (then nothing else is written): width <=
 * SWI_MAX_W, aw <= SWI_MAX_A, odd kernel sizes, every frac in 0..15 and
 * every shift >= 0. */

#ifndef SWI_MAX_W
#define SWI_MAX_W 1024 /* private row buffer of x: ViT-B/16 (768) and ViT-L/14 (1024) */
#endif
#ifndef SWI_MAX_A
#define SWI_MAX_A 512 /* private row buffer of y */
#endif
#ifndef SWI_LANES
#define SWI_LANES 16 /* output channels summed side by side (MACs per cycle on an FPGA) */
#endif

#ifdef INTELFPGA_CL
#define SWI_TASK __attribute__((max_global_work_dim(0))) __attribute__((reqd_work_group_size(1, 1, 1)))
#else
#define SWI_TASK __attribute__((reqd_work_group_size(1, 1, 1)))
#endif

/* floor(v / 2^s) rounded half to even, 0 <= s <= 62 (s = 0: v). */
static long swi_shift_rne(long v, uint s) {
    if (s == 0) return v;
    long q = v >= 0 ? (v >> s) : ~((~v) >> s);
    const long r = v - q * ((long)1 << s);
    const long mid = (long)1 << (s - 1);
    if (r > mid || (r == mid && (q & 1) != 0)) q += 1;
    return q;
}

static short swi_sat16(long v) {
    return (short)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

SWI_TASK
__kernel void adapter_fwd_swi(__global short *restrict x, __global const short *restrict w1t,
                              __global const int *restrict b1, __global const short *restrict cw,
                              __global const int *restrict cb, __global const short *restrict w2t,
                              __global const int *restrict b2, __global short *restrict h, __global short *restrict y,
                              __global int *restrict status, uint clips, uint T, uint grid, uint width, uint aw,
                              uint kt, uint kh, uint kw, uint frac_x, uint frac_w1, uint frac_h, uint frac_wc,
                              uint frac_y, uint frac_w2) {
    if (width < 1 || width > SWI_MAX_W || aw < 1 || aw > SWI_MAX_A || clips < 1 || T < 1 || grid < 1 ||
        kt % 2 == 0 || kh % 2 == 0 || kw % 2 == 0 || frac_x > 15 || frac_w1 > 15 || frac_h > 15 ||
        frac_wc > 15 || frac_y > 15 || frac_w2 > 15 || frac_h > frac_x + frac_w1 ||
        frac_y > frac_h + frac_wc || frac_x > frac_y + frac_w2) {
        status[0] = 1;
        return;
    }
    const uint s1 = frac_x + frac_w1 - frac_h, sc = frac_h + frac_wc - frac_y, s2 = frac_y + frac_w2 - frac_x;
    const uint P = grid * grid, K = kt * kh * kw;
    const int pt = (int)kt / 2, ph = (int)kh / 2, pw = (int)kw / 2;
    short row[SWI_MAX_W > SWI_MAX_A ? SWI_MAX_W : SWI_MAX_A];
    long acc[SWI_LANES];

    for (uint n = 0; n < clips; n++) {
        __global short *hn = h + (size_t)n * T * P * aw, *yn = y + (size_t)n * T * P * aw;
        /* fc1: h[t, p, a] = sat16(rne((b1[a] + sum_c x[t, 1 + p, c] w1t[c, a]) >> s1)) */
        for (uint r = 0; r < T * P; r++) {
            __global const short *xr = x + ((size_t)(n * T + r / P) * (P + 1) + 1 + r % P) * width;
            for (uint c = 0; c < width; c++) row[c] = xr[c]; /* II = 1 */
            for (uint a0 = 0; a0 < aw; a0 += SWI_LANES) {
#pragma unroll
                for (uint l = 0; l < SWI_LANES; l++) acc[l] = a0 + l < aw ? (long)b1[a0 + l] : 0;
                for (uint c = 0; c < width; c++) { /* II = 1: SWI_LANES MACs */
                    const int xv = row[c];
                    __global const short *wr = w1t + (size_t)c * aw + a0;
#pragma unroll
                    for (uint l = 0; l < SWI_LANES; l++)
                        if (a0 + l < aw) acc[l] += (long)(xv * (int)wr[l]);
                }
#pragma unroll
                for (uint l = 0; l < SWI_LANES; l++)
                    if (a0 + l < aw) hn[(size_t)r * aw + a0 + l] = swi_sat16(swi_shift_rne(acc[l], s1));
            }
        }
        /* conv: y[t, p, a] = sat16(rne((cb[a] + sum over in-range taps, (dt, dh, dw) order) >> sc)) */
        for (uint i = 0; i < T * P * aw; i++) { /* II = 1 over the taps below */
            const uint a = i % aw, p = (i / aw) % P;
            const int t = (int)(i / (aw * P)), pr = (int)(p / grid), pc = (int)(p % grid);
            long sum = (long)cb[a];
            for (uint k = 0; k < K; k++) {
                const int tt = t + (int)(k / (kh * kw)) - pt, rr = pr + (int)((k / kw) % kh) - ph,
                          cc = pc + (int)(k % kw) - pw;
                if (tt >= 0 && tt < (int)T && rr >= 0 && rr < (int)grid && cc >= 0 && cc < (int)grid)
                    sum += (long)((int)hn[((size_t)tt * P + (size_t)rr * grid + cc) * aw + a] * (int)cw[a * K + k]);
            }
            yn[i] = swi_sat16(swi_shift_rne(sum, sc));
        }
        /* fc2 + residual: x[t, 1 + p, c] = sat16(x + rne((b2[c] + sum_a y[t, p, a] w2t[a, c]) >> s2)) */
        for (uint r = 0; r < T * P; r++) {
            for (uint a = 0; a < aw; a++) row[a] = yn[(size_t)r * aw + a]; /* II = 1 */
            __global short *xr = x + ((size_t)(n * T + r / P) * (P + 1) + 1 + r % P) * width;
            for (uint c0 = 0; c0 < width; c0 += SWI_LANES) {
#pragma unroll
                for (uint l = 0; l < SWI_LANES; l++) acc[l] = c0 + l < width ? (long)b2[c0 + l] : 0;
                for (uint a = 0; a < aw; a++) { /* II = 1: SWI_LANES MACs */
                    const int yv = row[a];
                    __global const short *wr = w2t + (size_t)a * width + c0;
#pragma unroll
                    for (uint l = 0; l < SWI_LANES; l++)
                        if (c0 + l < width) acc[l] += (long)(yv * (int)wr[l]);
                }
#pragma unroll
                for (uint l = 0; l < SWI_LANES; l++)
                    if (c0 + l < width) xr[c0 + l] = swi_sat16((long)xr[c0 + l] + swi_shift_rne(acc[l], s2));
            }
        }
    }
    status[0] = 0;
}
