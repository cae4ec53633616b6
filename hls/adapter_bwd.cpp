// adapter_bwd.cpp: the fixed-point ST-Adapter backward as nine Vitis HLS top
// functions (see adapter_bwd.h and docs/fpga.md, "Backward kernels"). The host
// sequences them as it does the OpenCL kernels, reading the slots in between:
//
//   adapter_bwd_grad_exponent          g -> slot e                 (host: frac_gu)
//   adapter_bwd_quantize_grad          g -> gu                     load -> quantize+SR -> store
//   adapter_bwd_fc2_input              gu, w2t -> gy_acc, slot b   load -> 16-lane MAC -> store+bitlen
//   adapter_bwd_narrow                 gy_acc, y -> gy             load -> mask+SR -> store
//   adapter_bwd_conv_input             gy, cw -> gh_acc, slot b    load -> transposed conv -> store+bitlen
//   adapter_bwd_narrow                 gh_acc, h -> gh
//   adapter_bwd_fc1_input              gh, w1t, xq, g -> g         load -> 16-lane MAC -> float update
//   adapter_bwd_fc2_params             y, gu -> dw2, db2           load -> blocked 16-lane MAC -> store
//   adapter_bwd_conv_params            h, gy -> dcw, dcb           load -> per-clip taps -> store
//   adapter_bwd_fc1_params             xq, gh -> dw1t, db1         load -> blocked 16-lane MAC -> store
//
// Every sum of int16 x int16 products is exact in 64 bits (the order is then
// irrelevant to the result); the narrowings are stochastic roundings whose
// draws come from this file's own Philox4x32-10, keyed per element, so the
// bits equal those of the OpenCL kernels and the C reference for the same
// (seed, step, tensor, element).
#include "adapter_bwd.h"

#include "hls_compat.h"

// ============================================================================
// Scalar helpers
// ============================================================================

// Philox4x32-10: two 32 x 32 -> 64 multiplies per round (the round is a
// bijection on the counter), the key bumped by the Weyl constants between
// rounds. Unrolled: 20 multipliers in a fully pipelined II=1 datapath.
void adapter_bwd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
#pragma HLS INLINE
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
PHILOX_ROUNDS:
    for (int round = 0; round < 10; round++) {
#pragma HLS UNROLL
        const uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
        const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0), hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u; // the bump after round 10 is never used
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint64_t adapter_bwd_rand64(uint64_t seed, uint64_t step, uint32_t tensor, uint32_t index) {
#pragma HLS INLINE
    const uint32_t ctr[4] = {index, tensor, uint32_t(step), uint32_t(step >> 32)};
    const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    uint32_t r[4];
    adapter_bwd_philox4x32_10(ctr, key, r);
    return (uint64_t(r[1]) << 32) | r[0];
}

// floor(v / 2^s) without shifting a negative value (for v < 0, ~v = -v - 1 >= 0).
static int64_t floor_shift(int64_t v, unsigned s) {
#pragma HLS INLINE
    return v >= 0 ? (v >> s) : ~((~v) >> s);
}

int64_t adapter_bwd_sr(int64_t v, unsigned s, uint64_t u) {
#pragma HLS INLINE
    if (s == 0) return v;
    const int64_t q = floor_shift(v, s);
    const uint64_t r = uint64_t(v - q * (int64_t(1) << s)); // in [0, 2^s)
    return (u >> (64 - s)) < r ? q + 1 : q;
}

static grad_t sat16(int64_t v) {
#pragma HLS INLINE
    return grad_t(v > 32767 ? int64_t(32767) : v < -32768 ? int64_t(-32768) : v);
}

static bool saturated16(act_t v) {
#pragma HLS INLINE
    return int(v) == 32767 || int(v) == -32768;
}

// Bits of |v| (0 for 0): |v| < 2^bitlen; |v| < 2^63 here (sums below 2^47).
static unsigned bitlen64(int64_t v) {
#pragma HLS INLINE
    const uint64_t a = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
    unsigned b = 0;
BITLEN:
    for (unsigned i = 0; i < 64; i++) {
#pragma HLS UNROLL
        if ((a >> i) != 0) b = i + 1;
    }
    return b;
}

static uint32_t float_bits(float f) {
#pragma HLS INLINE
    union {
        float f;
        uint32_t u;
    } c;
    c.f = f;
    return c.u;
}

static float bits_float(uint32_t u) {
#pragma HLS INLINE
    union {
        float f;
        uint32_t u;
    } c;
    c.u = u;
    return c.f;
}

// The frexp exponent of a float (|g| < 2^e <= 2|g|) from its bits:
// ADAPTER_BWD_EXP_ZERO for +-0, ADAPTER_BWD_EXP_NONFINITE for NaN and inf.
static int frexp_exponent(uint32_t b) {
#pragma HLS INLINE
    const unsigned be = (b >> 23) & 0xffu, m = b & 0x7fffffu;
    if (be == 0xffu) return ADAPTER_BWD_EXP_NONFINITE;
    if (be != 0) return int(be) - 126;
    if (m == 0) return ADAPTER_BWD_EXP_ZERO;
    return int(bitlen64(int64_t(m))) - 149; // subnormal m 2^-149
}

// rint(g 2^k) clamped to +-2^46, for 0 <= k <= 64, as the float kernels do it
// (float product, round to nearest even, clamp in float) but on the bits: the
// product by a power of two is exact unless it overflows (then the clamp
// applies) and cannot underflow for k >= 0. NaN -> 0 (the host stops on a
// non-finite gradient before this stage).
static int64_t grad_bits_to_fixed(uint32_t b, unsigned k) {
#pragma HLS INLINE
    const int64_t lim = int64_t(1) << 46;
    const unsigned be = (b >> 23) & 0xffu;
    const bool neg = (b >> 31) != 0;
    int64_t mag;
    if (be == 0xffu) {
        mag = (b & 0x7fffffu) != 0 ? 0 : lim; // NaN -> 0, inf clamps
    } else {
        const int64_t m = int64_t(b & 0x7fffffu) | (be != 0 ? int64_t(1) << 23 : 0); // |g| = m 2^lsb
        const int lsb = (be != 0 ? int(be) - 150 : -149) + int(k);                    // g 2^k = m 2^lsb
        if (m == 0) {
            mag = 0;
        } else if (lsb >= 0) {
            mag = int(bitlen64(m)) + lsb > 46 ? lim : m << lsb; // >= 2^46: the clamp; below: exact
        } else if (lsb < -62) {
            mag = 0; // m < 2^24: below 2^-38
        } else {
            // round to nearest, ties to even, of m / 2^-lsb (m > 0)
            const unsigned s = unsigned(-lsb);
            int64_t q = m >> s;
            const int64_t r = m - (q << s), half = int64_t(1) << (s - 1);
            if (r > half || (r == half && (q & 1) != 0)) q++;
            mag = q;
        }
    }
    return neg ? -mag : mag;
}

int64_t adapter_bwd_grad_to_fixed(float g, unsigned k) {
#pragma HLS INLINE
    return grad_bits_to_fixed(float_bits(g), k);
}

// Offset of patch row r (= f P + p) in a [F, 1 + P, W] tensor.
static uint64_t patch_row(uint64_t r, unsigned P, unsigned W) {
#pragma HLS INLINE
    return ((r / P) * (P + 1) + 1 + r % P) * W;
}

// Element indices (and the Philox counter word) are 32-bit, as in OpenCL.
static bool fits_u32(uint64_t frames, uint64_t patches, uint64_t width) {
    return frames * (patches + 1) * width <= 0xffffffffull;
}

static bool rows_ok(unsigned frames, unsigned patches, unsigned width) {
    return frames >= 1 && patches >= 1 && patches <= ADAPTER_MAX_P && width >= 1 && width <= ADAPTER_MAX_W &&
           fits_u32(frames, patches, width);
}

static bool conv_ok(unsigned clips, unsigned T, unsigned grid, unsigned aw, unsigned kt, unsigned kh, unsigned kw) {
    if (clips < 1 || T < 1 || T > ADAPTER_MAX_T || grid < 1 || grid > 16 || grid * grid > ADAPTER_MAX_P) return false;
    if (aw < 1 || aw > ADAPTER_MAX_A || !fits_u32(uint64_t(clips) * T, uint64_t(grid) * grid, aw)) return false;
    if (kt % 2 == 0 || kh % 2 == 0 || kw % 2 == 0 || kt * kh * kw > ADAPTER_MAX_K) return false;
    return true;
}

int adapter_bwd_grad_exponent_supported(unsigned frames, unsigned patches, unsigned width) {
    return rows_ok(frames, patches, width) ? 1 : 0;
}
int adapter_bwd_quantize_grad_supported(unsigned frames, unsigned patches, unsigned width, unsigned frac) {
    return rows_ok(frames, patches, width) && frac <= 48 ? 1 : 0;
}
int adapter_bwd_fc2_input_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw) {
    return rows_ok(frames, patches, width) && aw >= 1 && aw <= ADAPTER_MAX_A && fits_u32(frames, patches, aw) ? 1 : 0;
}
int adapter_bwd_narrow_supported(unsigned n, unsigned shift) { return n >= 1 && shift <= 62 ? 1 : 0; }
int adapter_bwd_conv_input_supported(unsigned clips, unsigned T, unsigned grid, unsigned aw, unsigned kt,
                                     unsigned kh, unsigned kw) {
    return conv_ok(clips, T, grid, aw, kt, kh, kw) ? 1 : 0;
}
int adapter_bwd_fc1_input_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw, int scale) {
    return adapter_bwd_fc2_input_supported(frames, patches, width, aw) && scale >= -127 && scale <= 126 ? 1 : 0;
}
int adapter_bwd_fc2_params_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw) {
    return adapter_bwd_fc2_input_supported(frames, patches, width, aw);
}
int adapter_bwd_conv_params_supported(unsigned clips, unsigned T, unsigned grid, unsigned aw, unsigned kt,
                                      unsigned kh, unsigned kw) {
    return conv_ok(clips, T, grid, aw, kt, kh, kw) ? 1 : 0;
}
int adapter_bwd_fc1_params_supported(unsigned frames, unsigned patches, unsigned width, unsigned aw) {
    return adapter_bwd_fc2_input_supported(frames, patches, width, aw);
}

// The lanes index a0 + j / c0 + j with a0, c0 multiples of the lane count
// below the maximum: always inside the buffers, bank j for lane j.
static_assert(ADAPTER_MAX_A % ADAPTER_BWD_LANES == 0 && ADAPTER_MAX_W % ADAPTER_BWD_LANES == 0,
              "buffer maxima must be multiples of the lane count");

// ============================================================================
// On-chip buffers (each used by one top function). Sizes at the compiled-in
// maxima; docs/fpga.md gives the memory for ViT-B/16 shapes.
// ============================================================================
// fc2_input: w2t [A][W], banked ADAPTER_BWD_LANES ways along A (16 outputs a
// per cycle): 1 MiB.
static wgt_t fc2i_w[ADAPTER_MAX_A][ADAPTER_MAX_W];
// conv_input: the conv weight [A][K] and one clip of gy (the transposed
// conv's window spans whole frames; up to 4 MiB, URAM).
static wgt_t convi_w[ADAPTER_MAX_A][ADAPTER_MAX_K];
static grad_t convi_gy[ADAPTER_MAX_T * ADAPTER_MAX_P * ADAPTER_MAX_A];
// fc1_input: w1t [W][A], banked along W (16 outputs c per cycle): 1 MiB.
static wgt_t fc1i_w[ADAPTER_MAX_W][ADAPTER_MAX_A];
// fc2_params: the int64 gradient [A + 1][W] (row A: the bias; 4.1 MiB,
// URAM), one block of rows of y and gu (gu banked along W).
static acc_t fc2p_acc[ADAPTER_MAX_A + 1][ADAPTER_MAX_W];
static act_t fc2p_y[ADAPTER_BWD_ROW_BLOCK][ADAPTER_MAX_A];
static grad_t fc2p_gu[ADAPTER_BWD_ROW_BLOCK][ADAPTER_MAX_W];
// conv_params: the int64 gradient [A][K + 1] (column K: the bias) and one clip
// of h and of gy (up to 4 MiB each, URAM).
static acc_t convp_acc[ADAPTER_MAX_A][ADAPTER_MAX_K + 1];
static act_t convp_h[ADAPTER_MAX_T * ADAPTER_MAX_P * ADAPTER_MAX_A];
static grad_t convp_gy[ADAPTER_MAX_T * ADAPTER_MAX_P * ADAPTER_MAX_A];
// fc1_params: the int64 gradient [W + 1][A] (row W: the bias; 4 MiB, URAM),
// one block of rows of xq and gh (gh banked along A).
static acc_t fc1p_acc[ADAPTER_MAX_W + 1][ADAPTER_MAX_A];
static act_t fc1p_x[ADAPTER_BWD_ROW_BLOCK][ADAPTER_MAX_W];
static grad_t fc1p_gh[ADAPTER_BWD_ROW_BLOCK][ADAPTER_MAX_A];

// ============================================================================
// Shared stream processes
// ============================================================================

// The patch rows of a [F, 1 + P, W] float tensor, as bits, row after row.
static void load_float_rows(const float *g, hls::stream<uint32_t> &gs, unsigned rows, unsigned P, unsigned W) {
LOAD_G_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const uint64_t base = patch_row(r, P, W);
    LOAD_G_COLS:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            gs.write(float_bits(g[base + c]));
        }
    }
}

// n contiguous values (n < 2^32: the *_supported checks bound every element count).
template <typename T> static void load_contig(const T *src, hls::stream<T> &s, unsigned n) {
LOAD_CONTIG:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        s.write(src[i]);
    }
}

// n int64 sums to dst; slots[slot] = max(slots[slot], max bitlen) at the end.
static void store_acc_bitlen(hls::stream<acc_t> &s, acc_t *dst, slot_t *slots, unsigned slot, unsigned n) {
    unsigned bits = 0;
STORE_ACC:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const acc_t v = s.read();
        dst[i] = v;
        const unsigned b = bitlen64(int64_t(v));
        if (b > bits) bits = b;
    }
    const int old = int(slots[slot]);
    if (int(bits) > old) slots[slot] = slot_t(int(bits));
}

// ============================================================================
// 1. grad_exponent
// ============================================================================
extern "C" void adapter_bwd_grad_exponent(const float *g, slot_t *slots, unsigned slot, unsigned frames,
                                          unsigned patches, unsigned width) {
#pragma HLS INTERFACE m_axi port = g offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = slots offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = slot
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = return
    if (!adapter_bwd_grad_exponent_supported(frames, patches, width)) return;
    const unsigned rows = frames * patches;
    int e = ADAPTER_BWD_EXP_ZERO; // the max is order-independent: one compare-select per cycle
EXP_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const uint64_t base = patch_row(r, patches, width);
    EXP_COLS:
        for (unsigned c = 0; c < width; c++) {
#pragma HLS PIPELINE II = 1
            const int v = frexp_exponent(float_bits(g[base + c]));
            if (v > e) e = v;
        }
    }
    const int old = int(slots[slot]);
    if (e > old) slots[slot] = slot_t(e);
}

// ============================================================================
// 2. quantize_grad
// ============================================================================
static void quantize_sr_stage(hls::stream<uint32_t> &gs, hls::stream<grad_t> &us, unsigned n, unsigned k,
                              uint64_t seed, uint64_t step, unsigned tensor) {
QUANT_ELEMS:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const int64_t v = grad_bits_to_fixed(gs.read(), k);
        us.write(sat16(adapter_bwd_sr(v, 16, adapter_bwd_rand64(seed, step, tensor, i))));
    }
}

template <typename T> static void store_contig(hls::stream<T> &s, T *dst, unsigned n) {
STORE_CONTIG:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        dst[i] = s.read();
    }
}

static void quantize_grad_dataflow(const float *g, grad_t *gu, unsigned rows, unsigned P, unsigned W, unsigned k,
                                   uint64_t seed, uint64_t step, unsigned tensor) {
#pragma HLS DATAFLOW
    hls::stream<uint32_t> gs("gs");
    hls::stream<grad_t> us("us");
#pragma HLS STREAM variable = gs depth = 64
#pragma HLS STREAM variable = us depth = 64
    load_float_rows(g, gs, rows, P, W);
    quantize_sr_stage(gs, us, rows * W, k, seed, step, tensor);
    store_contig(us, gu, rows * W);
}

extern "C" void adapter_bwd_quantize_grad(const float *g, grad_t *gu, unsigned frames, unsigned patches,
                                          unsigned width, unsigned frac, uint64_t seed, uint64_t step,
                                          unsigned tensor) {
#pragma HLS INTERFACE m_axi port = g offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = gu offset = slave bundle = gmem1
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = frac
#pragma HLS INTERFACE s_axilite port = seed
#pragma HLS INTERFACE s_axilite port = step
#pragma HLS INTERFACE s_axilite port = tensor
#pragma HLS INTERFACE s_axilite port = return
    if (!adapter_bwd_quantize_grad_supported(frames, patches, width, frac)) return;
    quantize_grad_dataflow(g, gu, frames * patches, patches, width, frac + 16, seed, step, tensor);
}

// ============================================================================
// 3. fc2_input: gy_acc[r, a] = sum_c gu[r, c] w2t[a, c]
// ============================================================================
static void fc2_input_stage(hls::stream<grad_t> &us, hls::stream<acc_t> &os, unsigned rows, unsigned W, unsigned A) {
    grad_t urow[ADAPTER_MAX_W];
FC2I_ROWS:
    for (unsigned r = 0; r < rows; r++) {
    FC2I_READ:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            urow[c] = us.read();
        }
    FC2I_CHUNKS:
        for (unsigned a0 = 0; a0 < A; a0 += ADAPTER_BWD_LANES) {
            acc_t acc[ADAPTER_BWD_LANES];
#pragma HLS ARRAY_PARTITION variable = acc complete
        FC2I_INIT:
            for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                acc[j] = 0;
            }
        FC2I_MAC:
            for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
                const grad_t uv = urow[c];
            FC2I_LANES:
                for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                    // lanes past A compute a sum that is never written (bank j of a0 + j stays static)
                    const prod_t p = prod_t(uv) * prod_t(fc2i_w[a0 + j][c]);
                    acc[j] += acc_t(p);
                }
            }
        FC2I_WRITE:
            for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS PIPELINE II = 1
                if (a0 + j < A) os.write(acc[j]);
            }
        }
    }
}

static void fc2_input_dataflow(const grad_t *gu, acc_t *gy_acc, slot_t *slots, unsigned slot, unsigned rows,
                               unsigned W, unsigned A) {
#pragma HLS DATAFLOW
    hls::stream<grad_t> us("us");
    hls::stream<acc_t> os("os");
#pragma HLS STREAM variable = us depth = 64
#pragma HLS STREAM variable = os depth = 64
    load_contig(gu, us, rows * W);
    fc2_input_stage(us, os, rows, W, A);
    store_acc_bitlen(os, gy_acc, slots, slot, rows * A);
}

extern "C" void adapter_bwd_fc2_input(const grad_t *gu, const wgt_t *w2t, acc_t *gy_acc, slot_t *slots,
                                      unsigned slot, unsigned frames, unsigned patches, unsigned width,
                                      unsigned aw) {
#pragma HLS INTERFACE m_axi port = gu offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = w2t offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = gy_acc offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = slots offset = slave bundle = gmem3
#pragma HLS INTERFACE s_axilite port = slot
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_PARTITION variable = fc2i_w cyclic factor = 16 dim = 1
    if (!adapter_bwd_fc2_input_supported(frames, patches, width, aw)) return;
LOAD_W2:
    for (unsigned i = 0; i < aw * width; i++) {
#pragma HLS PIPELINE II = 1
        fc2i_w[i / width][i % width] = w2t[i];
    }
    fc2_input_dataflow(gu, gy_acc, slots, slot, frames * patches, width, aw);
}

// ============================================================================
// 4./6. narrow: dst = mask ? 0 : sat16(sr(acc, shift))
// ============================================================================
static void narrow_load(const acc_t *acc, const act_t *act, hls::stream<acc_t> &vs, hls::stream<bool> &ms, unsigned n,
                        unsigned use_act) {
NARROW_LOAD:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        vs.write(acc[i]);
        ms.write(use_act != 0 && saturated16(act[i]));
    }
}

static void narrow_stage(hls::stream<acc_t> &vs, hls::stream<bool> &ms, hls::stream<grad_t> &ds, unsigned n,
                         unsigned shift, uint64_t seed, uint64_t step, unsigned tensor) {
NARROW_ELEMS:
    for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
        const int64_t v = int64_t(vs.read());
        const bool masked = ms.read();
        const grad_t q = sat16(adapter_bwd_sr(v, shift, adapter_bwd_rand64(seed, step, tensor, i)));
        ds.write(masked ? grad_t(0) : q);
    }
}

static void narrow_dataflow(const acc_t *acc, const act_t *act, grad_t *dst, unsigned n, unsigned shift,
                            uint64_t seed, uint64_t step, unsigned tensor, unsigned use_act) {
#pragma HLS DATAFLOW
    hls::stream<acc_t> vs("vs");
    hls::stream<bool> ms("ms");
    hls::stream<grad_t> ds("ds");
#pragma HLS STREAM variable = vs depth = 64
#pragma HLS STREAM variable = ms depth = 64
#pragma HLS STREAM variable = ds depth = 64
    narrow_load(acc, act, vs, ms, n, use_act);
    narrow_stage(vs, ms, ds, n, shift, seed, step, tensor);
    store_contig(ds, dst, n);
}

extern "C" void adapter_bwd_narrow(const acc_t *acc, const act_t *act, grad_t *dst, unsigned n, unsigned shift,
                                   uint64_t seed, uint64_t step, unsigned tensor, unsigned use_act) {
#pragma HLS INTERFACE m_axi port = acc offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = act offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = dst offset = slave bundle = gmem2
#pragma HLS INTERFACE s_axilite port = n
#pragma HLS INTERFACE s_axilite port = shift
#pragma HLS INTERFACE s_axilite port = seed
#pragma HLS INTERFACE s_axilite port = step
#pragma HLS INTERFACE s_axilite port = tensor
#pragma HLS INTERFACE s_axilite port = use_act
#pragma HLS INTERFACE s_axilite port = return
    if (!adapter_bwd_narrow_supported(n, shift)) return;
    narrow_dataflow(acc, act, dst, n, shift, seed, step, tensor, use_act);
}

// ============================================================================
// 5. conv_input: the transposed depthwise conv, one tap per cycle
// ============================================================================
static void conv_input_stage(hls::stream<grad_t> &gs, hls::stream<acc_t> &os, unsigned clips, unsigned T,
                             unsigned G, unsigned A, unsigned kt, unsigned kh, unsigned kw) {
    const unsigned P = G * G, n = T * P * A, K = kt * kh * kw;
    const int pt = int(kt / 2), ph = int(kh / 2), pw = int(kw / 2);
CONVI_CLIPS:
    for (unsigned clip = 0; clip < clips; clip++) {
    CONVI_FILL:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            convi_gy[i] = gs.read();
        }
    CONVI_POS:
        for (unsigned pos = 0; pos < T * P; pos++) {
            const int t = int(pos / P), r = int((pos % P) / G), c = int(pos % G);
        CONVI_CH:
            for (unsigned a = 0; a < A; a++) {
                acc_t acc = 0;
                int dt = 0, dh = 0, dw = 0;
            CONVI_TAPS:
                for (unsigned k = 0; k < K; k++) {
#pragma HLS PIPELINE II = 1
                    const int tt = t - dt + pt, rr = r - dh + ph, cc = c - dw + pw; // the source of tap k
                    if (tt >= 0 && tt < int(T) && rr >= 0 && rr < int(G) && cc >= 0 && cc < int(G)) {
                        const prod_t p =
                            prod_t(convi_gy[(unsigned(tt) * P + unsigned(rr) * G + unsigned(cc)) * A + a]) *
                            prod_t(convi_w[a][k]);
                        acc += acc_t(p);
                    }
                    if (++dw == int(kw)) {
                        dw = 0;
                        if (++dh == int(kh)) {
                            dh = 0;
                            ++dt;
                        }
                    }
                }
                os.write(acc);
            }
        }
    }
}

static void conv_input_dataflow(const grad_t *gy, acc_t *gh_acc, slot_t *slots, unsigned slot, unsigned clips,
                                unsigned T, unsigned G, unsigned A, unsigned kt, unsigned kh, unsigned kw) {
#pragma HLS DATAFLOW
    hls::stream<grad_t> gs("gs");
    hls::stream<acc_t> os("os");
#pragma HLS STREAM variable = gs depth = 64
#pragma HLS STREAM variable = os depth = 64
    const unsigned n = clips * T * G * G * A;
    load_contig(gy, gs, n);
    conv_input_stage(gs, os, clips, T, G, A, kt, kh, kw);
    store_acc_bitlen(os, gh_acc, slots, slot, n);
}

extern "C" void adapter_bwd_conv_input(const grad_t *gy, const wgt_t *cw, acc_t *gh_acc, slot_t *slots,
                                       unsigned slot, unsigned clips, unsigned T, unsigned grid, unsigned aw,
                                       unsigned kt, unsigned kh, unsigned kw) {
#pragma HLS INTERFACE m_axi port = gy offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = cw offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = gh_acc offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = slots offset = slave bundle = gmem3
#pragma HLS INTERFACE s_axilite port = slot
#pragma HLS INTERFACE s_axilite port = clips
#pragma HLS INTERFACE s_axilite port = T
#pragma HLS INTERFACE s_axilite port = grid
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = kt
#pragma HLS INTERFACE s_axilite port = kh
#pragma HLS INTERFACE s_axilite port = kw
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS BIND_STORAGE variable = convi_gy type = ram_2p impl = uram
    if (!adapter_bwd_conv_input_supported(clips, T, grid, aw, kt, kh, kw)) return;
    const unsigned K = kt * kh * kw;
LOAD_CW:
    for (unsigned i = 0; i < aw * K; i++) {
#pragma HLS PIPELINE II = 1
        convi_w[i / K][i % K] = cw[i];
    }
    conv_input_dataflow(gy, gh_acc, slots, slot, clips, T, grid, aw, kt, kh, kw);
}

// ============================================================================
// 7. fc1_input: g += float(sum_a gh w1t) 2^-scale where xq is not saturated
// ============================================================================
static void fc1_input_stage(hls::stream<grad_t> &hs, hls::stream<acc_t> &os, unsigned rows, unsigned W, unsigned A) {
    grad_t hrow[ADAPTER_MAX_A];
FC1I_ROWS:
    for (unsigned r = 0; r < rows; r++) {
    FC1I_READ:
        for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
            hrow[a] = hs.read();
        }
    FC1I_CHUNKS:
        for (unsigned c0 = 0; c0 < W; c0 += ADAPTER_BWD_LANES) {
            acc_t acc[ADAPTER_BWD_LANES];
#pragma HLS ARRAY_PARTITION variable = acc complete
        FC1I_INIT:
            for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                acc[j] = 0;
            }
        FC1I_MAC:
            for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
                const grad_t hv = hrow[a];
            FC1I_LANES:
                for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                    const prod_t p = prod_t(hv) * prod_t(fc1i_w[c0 + j][a]);
                    acc[j] += acc_t(p);
                }
            }
        FC1I_WRITE:
            for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS PIPELINE II = 1
                if (c0 + j < W) os.write(acc[j]);
            }
        }
    }
}

// g_out = g_in + float(gx) 2^-scale (xq not saturated) or g_in, on the patch
// rows; the sums to gx_acc when store_acc.
static void fc1_input_store(hls::stream<acc_t> &os, const act_t *xq, const float *g_in, float *g_out, acc_t *gx_acc,
                            unsigned store_acc, unsigned rows, unsigned P, unsigned W, int scale) {
    const float inv = bits_float(uint32_t(127 - scale) << 23); // 2^-scale, a normal float for -127 <= scale <= 126
FC1I_STORE_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const uint64_t base = patch_row(r, P, W);
    FC1I_STORE_COLS:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            const acc_t v = os.read();
            const float gi = g_in[base + c];
            const float d = float(int64_t(v)) * inv; // int64 -> float to nearest even, then exact unless subnormal
            g_out[base + c] = saturated16(xq[base + c]) ? gi : gi + d;
            if (store_acc) gx_acc[uint64_t(r) * W + c] = v;
        }
    }
}

static void fc1_input_dataflow(const grad_t *gh, const act_t *xq, const float *g_in, float *g_out, acc_t *gx_acc,
                               unsigned store_acc, unsigned rows, unsigned P, unsigned W, unsigned A, int scale) {
#pragma HLS DATAFLOW
    hls::stream<grad_t> hs("hs");
    hls::stream<acc_t> os("os");
#pragma HLS STREAM variable = hs depth = 64
#pragma HLS STREAM variable = os depth = 64
    load_contig(gh, hs, rows * A);
    fc1_input_stage(hs, os, rows, W, A);
    fc1_input_store(os, xq, g_in, g_out, gx_acc, store_acc, rows, P, W, scale);
}

extern "C" void adapter_bwd_fc1_input(const grad_t *gh, const wgt_t *w1t, const act_t *xq, const float *g_in,
                                      float *g_out, acc_t *gx_acc, unsigned store_acc, unsigned frames,
                                      unsigned patches, unsigned width, unsigned aw, int scale) {
#pragma HLS INTERFACE m_axi port = gh offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = w1t offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = g_in offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = g_out offset = slave bundle = gmem4
#pragma HLS INTERFACE m_axi port = gx_acc offset = slave bundle = gmem5
#pragma HLS INTERFACE s_axilite port = store_acc
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = scale
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_PARTITION variable = fc1i_w cyclic factor = 16 dim = 1
    if (!adapter_bwd_fc1_input_supported(frames, patches, width, aw, scale)) return;
LOAD_W1:
    for (unsigned i = 0; i < width * aw; i++) {
#pragma HLS PIPELINE II = 1
        fc1i_w[i / aw][i % aw] = w1t[i];
    }
    fc1_input_dataflow(gh, xq, g_in, g_out, gx_acc, store_acc, frames * patches, patches, width, aw, scale);
}

// ============================================================================
// 8a. fc2_params: dw2[a, c] = sum_r y[r, a] gu[r, c]; db2[c] = sum_r gu[r, c]
// ============================================================================
// Rows arrive as y row (A values) then gu row (W values). Per block of up to
// ADAPTER_BWD_ROW_BLOCK rows: for every a (a == A: the bias, y = 1) and every
// 16 columns, the block's rows are summed in 16 register accumulators (one
// MAC per lane per cycle), then added once to the on-chip gradient.
static void load_fc2_rows(const act_t *y, const grad_t *gu, hls::stream<act_t> &ys, hls::stream<grad_t> &us,
                          unsigned rows, unsigned W, unsigned A) {
LOAD_FC2P_ROWS:
    for (unsigned r = 0; r < rows; r++) {
    LOAD_FC2P_Y:
        for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
            ys.write(y[uint64_t(r) * A + a]);
        }
    LOAD_FC2P_GU:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            us.write(gu[uint64_t(r) * W + c]);
        }
    }
}

// A weight gradient over row blocks: acc[p][q] += sum_r in[r][p] g[r][q] for
// p < NP, and the bias row acc[NP][q] += sum_r g[r][q] (a constant-1 input),
// each lane summing one block of rows in a register so that the on-chip
// int64 gradient is read and written once per block (no read-modify-write
// at II = 1). fc2: in = y, g = gu; fc1: in = xq, g = gh. The buffers are
// the callers' statics, where their partitioning is declared.
template <int MAXP, int MAXQ>
static void params_stage(hls::stream<act_t> &ins, hls::stream<grad_t> &gs, act_t (&in_blk)[ADAPTER_BWD_ROW_BLOCK][MAXP],
                         grad_t (&g_blk)[ADAPTER_BWD_ROW_BLOCK][MAXQ], acc_t (&grad)[MAXP + 1][MAXQ], unsigned rows,
                         unsigned NP, unsigned NQ) {
PARAMS_BLOCKS:
    for (unsigned r0 = 0; r0 < rows; r0 += ADAPTER_BWD_ROW_BLOCK) {
        const unsigned nr = rows - r0 < ADAPTER_BWD_ROW_BLOCK ? rows - r0 : ADAPTER_BWD_ROW_BLOCK;
    PARAMS_FILL:
        for (unsigned rr = 0; rr < nr; rr++) {
        PARAMS_FILL_IN:
            for (unsigned p = 0; p < NP; p++) {
#pragma HLS PIPELINE II = 1
                in_blk[rr][p] = ins.read();
            }
        PARAMS_FILL_G:
            for (unsigned q = 0; q < NQ; q++) {
#pragma HLS PIPELINE II = 1
                g_blk[rr][q] = gs.read();
            }
        }
    PARAMS_OUT_ROWS:
        for (unsigned p = 0; p <= NP; p++) {
        PARAMS_CHUNKS:
            for (unsigned q0 = 0; q0 < NQ; q0 += ADAPTER_BWD_LANES) {
                acc_t acc[ADAPTER_BWD_LANES];
#pragma HLS ARRAY_PARTITION variable = acc complete
            PARAMS_INIT:
                for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                    acc[j] = 0;
                }
            PARAMS_MAC:
                for (unsigned rr = 0; rr < nr; rr++) {
#pragma HLS PIPELINE II = 1
                    const prod_t v = p < NP ? prod_t(in_blk[rr][p]) : prod_t(1);
                PARAMS_LANES:
                    for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                        acc[j] += acc_t(v * prod_t(g_blk[rr][q0 + j]));
                    }
                }
            PARAMS_ADD:
                for (unsigned j = 0; j < ADAPTER_BWD_LANES; j++) {
#pragma HLS UNROLL
                    if (q0 + j < NQ) grad[p][q0 + j] += acc[j];
                }
            }
        }
    }
}

static void fc2_params_dataflow(const act_t *y, const grad_t *gu, unsigned rows, unsigned W, unsigned A) {
#pragma HLS DATAFLOW
    hls::stream<act_t> ys("ys");
    hls::stream<grad_t> us("us");
#pragma HLS STREAM variable = ys depth = 512
#pragma HLS STREAM variable = us depth = 1024
    load_fc2_rows(y, gu, ys, us, rows, W, A);
    params_stage<ADAPTER_MAX_A, ADAPTER_MAX_W>(ys, us, fc2p_y, fc2p_gu, fc2p_acc, rows, A, W);
}

extern "C" void adapter_bwd_fc2_params(const act_t *y, const grad_t *gu, acc_t *dw2, acc_t *db2, unsigned frames,
                                       unsigned patches, unsigned width, unsigned aw) {
#pragma HLS INTERFACE m_axi port = y offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = gu offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = dw2 offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = db2 offset = slave bundle = gmem2
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_PARTITION variable = fc2p_gu cyclic factor = 16 dim = 2
#pragma HLS ARRAY_PARTITION variable = fc2p_acc cyclic factor = 16 dim = 2
#pragma HLS BIND_STORAGE variable = fc2p_acc type = ram_2p impl = uram
    if (!adapter_bwd_fc2_params_supported(frames, patches, width, aw)) return;
FC2P_CLEAR:
    for (unsigned i = 0; i < (aw + 1) * width; i++) {
#pragma HLS PIPELINE II = 1
        fc2p_acc[i / width][i % width] = 0;
    }
    fc2_params_dataflow(y, gu, frames * patches, width, aw);
FC2P_STORE_W:
    for (unsigned i = 0; i < aw * width; i++) {
#pragma HLS PIPELINE II = 1
        dw2[i] = fc2p_acc[i / width][i % width];
    }
FC2P_STORE_B:
    for (unsigned c = 0; c < width; c++) {
#pragma HLS PIPELINE II = 1
        db2[c] = fc2p_acc[aw][c];
    }
}

// ============================================================================
// 8b. conv_params: dcw[a, k] = sum gy[pos, a] h[pos + offset(k), a] (in range);
//     dcb[a] = sum gy[pos, a]. Per clip, h and gy on chip; per (a, tap) one
//     pass over the clip's positions (one MAC per cycle, register
//     accumulator), added once to the on-chip gradient (column K: the bias).
// ============================================================================
static void load_conv_clips(const act_t *h, const grad_t *gy, hls::stream<act_t> &hs, hls::stream<grad_t> &gs,
                            unsigned clips, unsigned n) {
LOAD_CONVP_CLIPS:
    for (unsigned clip = 0; clip < clips; clip++) {
        const uint64_t base = uint64_t(clip) * n;
    LOAD_CONVP_H:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            hs.write(h[base + i]);
        }
    LOAD_CONVP_GY:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            gs.write(gy[base + i]);
        }
    }
}

static void conv_params_stage(hls::stream<act_t> &hs, hls::stream<grad_t> &gs, unsigned clips, unsigned T,
                              unsigned G, unsigned A, unsigned kt, unsigned kh, unsigned kw) {
    const unsigned P = G * G, n = T * P * A, K = kt * kh * kw;
CONVP_CLIPS:
    for (unsigned clip = 0; clip < clips; clip++) {
    CONVP_FILL_H:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            convp_h[i] = hs.read();
        }
    CONVP_FILL_GY:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            convp_gy[i] = gs.read();
        }
    CONVP_CH:
        for (unsigned a = 0; a < A; a++) {
        CONVP_TAPS:
            for (unsigned k = 0; k <= K; k++) { // k == K: the bias (every position, factor 1)
                const int dt = int(k / (kh * kw)) - int(kt / 2), dh = int((k / kw) % kh) - int(kh / 2),
                          dw = int(k % kw) - int(kw / 2);
                acc_t acc = 0;
                int t = 0, r = 0, c = 0;
            CONVP_POS:
                for (unsigned pos = 0; pos < T * P; pos++) {
#pragma HLS PIPELINE II = 1
                    const int tt = t + dt, rr = r + dh, cc = c + dw;
                    const acc_t gv = acc_t(convp_gy[pos * A + a]);
                    if (k == K) {
                        acc += gv;
                    } else if (tt >= 0 && tt < int(T) && rr >= 0 && rr < int(G) && cc >= 0 && cc < int(G)) {
                        const prod_t p =
                            prod_t(gv) * prod_t(convp_h[(unsigned(tt) * P + unsigned(rr) * G + unsigned(cc)) * A + a]);
                        acc += acc_t(p);
                    }
                    if (++c == int(G)) {
                        c = 0;
                        if (++r == int(G)) {
                            r = 0;
                            ++t;
                        }
                    }
                }
                convp_acc[a][k] += acc;
            }
        }
    }
}

static void conv_params_dataflow(const act_t *h, const grad_t *gy, unsigned clips, unsigned T, unsigned G,
                                 unsigned A, unsigned kt, unsigned kh, unsigned kw) {
#pragma HLS DATAFLOW
    hls::stream<act_t> hs("hs");
    hls::stream<grad_t> gs("gs");
#pragma HLS STREAM variable = hs depth = 64
#pragma HLS STREAM variable = gs depth = 64
    load_conv_clips(h, gy, hs, gs, clips, T * G * G * A);
    conv_params_stage(hs, gs, clips, T, G, A, kt, kh, kw);
}

extern "C" void adapter_bwd_conv_params(const act_t *h, const grad_t *gy, acc_t *dcw, acc_t *dcb, unsigned clips,
                                        unsigned T, unsigned grid, unsigned aw, unsigned kt, unsigned kh,
                                        unsigned kw) {
#pragma HLS INTERFACE m_axi port = h offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = gy offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = dcw offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = dcb offset = slave bundle = gmem2
#pragma HLS INTERFACE s_axilite port = clips
#pragma HLS INTERFACE s_axilite port = T
#pragma HLS INTERFACE s_axilite port = grid
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = kt
#pragma HLS INTERFACE s_axilite port = kh
#pragma HLS INTERFACE s_axilite port = kw
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS BIND_STORAGE variable = convp_h type = ram_2p impl = uram
#pragma HLS BIND_STORAGE variable = convp_gy type = ram_2p impl = uram
    if (!adapter_bwd_conv_params_supported(clips, T, grid, aw, kt, kh, kw)) return;
    const unsigned K = kt * kh * kw;
CONVP_CLEAR:
    for (unsigned i = 0; i < aw * (K + 1); i++) {
#pragma HLS PIPELINE II = 1
        convp_acc[i / (K + 1)][i % (K + 1)] = 0;
    }
    conv_params_dataflow(h, gy, clips, T, grid, aw, kt, kh, kw);
CONVP_STORE_W:
    for (unsigned i = 0; i < aw * K; i++) {
#pragma HLS PIPELINE II = 1
        dcw[i] = convp_acc[i / K][i % K];
    }
CONVP_STORE_B:
    for (unsigned a = 0; a < aw; a++) {
#pragma HLS PIPELINE II = 1
        dcb[a] = convp_acc[a][K];
    }
}

// ============================================================================
// 8c. fc1_params: dw1t[c, a] = sum_r xq[f, 1 + p, c] gh[r, a]; db1[a] = sum gh
//     (the same blocked scheme as fc2_params, lanes along a; row W: the bias)
// ============================================================================
static void load_fc1_rows(const act_t *xq, const grad_t *gh, hls::stream<act_t> &xs, hls::stream<grad_t> &hs,
                          unsigned rows, unsigned P, unsigned W, unsigned A) {
LOAD_FC1P_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const uint64_t base = patch_row(r, P, W);
    LOAD_FC1P_X:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            xs.write(xq[base + c]);
        }
    LOAD_FC1P_GH:
        for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
            hs.write(gh[uint64_t(r) * A + a]);
        }
    }
}

static void fc1_params_dataflow(const act_t *xq, const grad_t *gh, unsigned rows, unsigned P, unsigned W,
                                unsigned A) {
#pragma HLS DATAFLOW
    hls::stream<act_t> xs("xs");
    hls::stream<grad_t> hs("hs");
#pragma HLS STREAM variable = xs depth = 1024
#pragma HLS STREAM variable = hs depth = 512
    load_fc1_rows(xq, gh, xs, hs, rows, P, W, A);
    params_stage<ADAPTER_MAX_W, ADAPTER_MAX_A>(xs, hs, fc1p_x, fc1p_gh, fc1p_acc, rows, W, A);
}

extern "C" void adapter_bwd_fc1_params(const act_t *xq, const grad_t *gh, acc_t *dw1t, acc_t *db1, unsigned frames,
                                       unsigned patches, unsigned width, unsigned aw) {
#pragma HLS INTERFACE m_axi port = xq offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = gh offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = dw1t offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = db1 offset = slave bundle = gmem2
#pragma HLS INTERFACE s_axilite port = frames
#pragma HLS INTERFACE s_axilite port = patches
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_PARTITION variable = fc1p_gh cyclic factor = 16 dim = 2
#pragma HLS ARRAY_PARTITION variable = fc1p_acc cyclic factor = 16 dim = 2
#pragma HLS BIND_STORAGE variable = fc1p_acc type = ram_2p impl = uram
    if (!adapter_bwd_fc1_params_supported(frames, patches, width, aw)) return;
FC1P_CLEAR:
    for (unsigned i = 0; i < (width + 1) * aw; i++) {
#pragma HLS PIPELINE II = 1
        fc1p_acc[i / aw][i % aw] = 0;
    }
    fc1_params_dataflow(xq, gh, frames * patches, patches, width, aw);
FC1P_STORE_W:
    for (unsigned i = 0; i < width * aw; i++) {
#pragma HLS PIPELINE II = 1
        dw1t[i] = fc1p_acc[i / aw][i % aw];
    }
FC1P_STORE_B:
    for (unsigned a = 0; a < aw; a++) {
#pragma HLS PIPELINE II = 1
        db1[a] = fc1p_acc[width][a];
    }
}
