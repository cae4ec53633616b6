// tb_adapter_bwd.cpp: C-simulation testbench of the backward top functions
// (adapter_bwd.h). Exit status 0 only if everything below holds.
//
// Self-checks (no files needed):
//   - Philox4x32-10 against Random123's known-answer vectors (tests/kat_vectors
//     of DEShawResearch/random123, the three `philox4x32 10` lines, and the 52
//     `philox4x32 10` lines of tests/old_kat_vectors), and the keying of the
//     draw (seed, step, tensor, index) -> (r1 << 32) | r0;
//   - stochastic rounding edge cases (draw 0 rounds up whenever there is a
//     remainder, an all-ones draw never does, multiples never move, negative
//     values floor, shift 0 is the identity, shift 62);
//   - the exponent and the gradient quantization on special floats (zeros,
//     subnormals, ties, NaN, infinities, values past the clamp) against
//     frexpf / nearbyint in double;
//   - three random cases run through every top function and compared with a
//     plain scalar reference written here (scatter form for the convs): widths
//     and adapter widths that are not multiples of the 16 lanes, more rows
//     than one ADAPTER_BWD_ROW_BLOCK, two clips, kernels 3x3x3, 5x1x3, 1x1x1,
//     saturated activations, int16-extreme weights, gradients that saturate gu
//     and ones that clamp frac_gu at 48.
// Golden files (tests/data/fixed_bwd/*.bin, written by tests/unit/
// test_fixed_backward.c from the plain-C reference that the OpenCL kernels
// also match): every top function on the file's inputs, every output compared
// BIT FOR BIT (int64 sums, int16 gradients, float g_out by its bits) and the
// host's scalars (e_g, frac_gu, b_gy, s_gy, b_gh, s_gh) reproduced from the
// slots; outputs live between canary guards that must come back unchanged
// (and the class-token rows of a separate g_out keep their canary); fc1_input
// also in place; the weight-gradient tops run twice (overwrite, not
// accumulate). Every comparison is checked to catch a one-bit difference.
// Finally every top function with an unsupported argument must write nothing.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "adapter_bwd.h"

namespace {

int g_failures = 0;

void fail(const char *fmt, const char *what) {
    std::fprintf(stderr, fmt, what);
    g_failures++;
}

// ---------------------------------------------------------------------------
// Case data (the golden file's contents)
// ---------------------------------------------------------------------------
struct Case {
    std::string name;
    uint32_t clips = 0, T = 0, grid = 0, W = 0, A = 0, kt = 0, kh = 0, kw = 0;
    uint32_t fx = 0, fw1 = 0, fh = 0, fwc = 0, fy = 0, fw2 = 0, t_gu = 0, t_gy = 0, t_gh = 0;
    int32_t e_g = 0, frac_gu = 0;
    uint64_t seed = 0, step = 0;
    uint32_t b_gy = 0, s_gy = 0, b_gh = 0, s_gh = 0;
    std::vector<float> g_in, g_out;
    std::vector<int16_t> xq, h, y, w1t, cw, w2t, gu, gy, gh;
    std::vector<int64_t> gy_acc, gh_acc, gx_acc, dw2, db2, dcw, dcb, dw1t, db1;

    size_t F() const { return size_t(clips) * T; }
    size_t P() const { return size_t(grid) * grid; }
    size_t K() const { return size_t(kt) * kh * kw; }
    size_t NX() const { return F() * (P() + 1) * W; }
    size_t NH() const { return F() * P() * A; }
    size_t NU() const { return F() * P() * W; }
    int frac_gy() const { return frac_gu + int(fw2) - int(s_gy); }
    int frac_gh() const { return frac_gy() + int(fwc) - int(s_gh); }
    void size_inputs() {
        g_in.assign(NX(), 0.0f);
        xq.assign(NX(), 0);
        h.assign(NH(), 0);
        y.assign(NH(), 0);
        w1t.assign(size_t(W) * A, 0);
        cw.assign(size_t(A) * K(), 0);
        w2t.assign(size_t(A) * W, 0);
    }
    void size_outputs() {
        gu.assign(NU(), 0);
        gy_acc.assign(NH(), 0);
        gy.assign(NH(), 0);
        gh_acc.assign(NH(), 0);
        gh.assign(NH(), 0);
        gx_acc.assign(NU(), 0);
        g_out.assign(NX(), 0.0f);
        dw2.assign(size_t(A) * W, 0);
        db2.assign(W, 0);
        dcw.assign(size_t(A) * K(), 0);
        dcb.assign(A, 0);
        dw1t.assign(size_t(W) * A, 0);
        db1.assign(A, 0);
    }
};

template <typename T> bool read_array(FILE *f, std::vector<T> &v) {
    return std::fread(v.data(), sizeof(T), v.size(), f) == v.size();
}

bool read_golden(const char *path, Case &c) {
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::perror(path);
        return false;
    }
    c.name = path;
    char magic[8];
    uint32_t hdr[20], bs[4];
    uint64_t ss[2];
    bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "STACLFB1", 8) == 0 &&
              std::fread(hdr, 4, 20, f) == 20 && std::fread(ss, 8, 2, f) == 2 && std::fread(bs, 4, 4, f) == 4;
    for (int i = 0; i < 8 && ok; i++) ok = hdr[i] >= 1 && hdr[i] <= 4096;
    if (ok) {
        c.clips = hdr[0], c.T = hdr[1], c.grid = hdr[2], c.W = hdr[3], c.A = hdr[4], c.kt = hdr[5], c.kh = hdr[6],
        c.kw = hdr[7];
        c.fx = hdr[8], c.fw1 = hdr[9], c.fh = hdr[10], c.fwc = hdr[11], c.fy = hdr[12], c.fw2 = hdr[13];
        c.t_gu = hdr[14], c.t_gy = hdr[15], c.t_gh = hdr[16];
        c.e_g = int32_t(hdr[17]), c.frac_gu = int32_t(hdr[18]);
        c.seed = ss[0], c.step = ss[1];
        c.b_gy = bs[0], c.s_gy = bs[1], c.b_gh = bs[2], c.s_gh = bs[3];
        c.size_inputs();
        c.size_outputs();
        ok = hdr[19] == 0 && read_array(f, c.g_in) && read_array(f, c.xq) && read_array(f, c.h) &&
             read_array(f, c.y) && read_array(f, c.w1t) && read_array(f, c.cw) && read_array(f, c.w2t) &&
             read_array(f, c.gu) && read_array(f, c.gy_acc) && read_array(f, c.gy) && read_array(f, c.gh_acc) &&
             read_array(f, c.gh) && read_array(f, c.gx_acc) && read_array(f, c.g_out) && read_array(f, c.dw2) &&
             read_array(f, c.db2) && read_array(f, c.dcw) && read_array(f, c.dcb) && read_array(f, c.dw1t) &&
             read_array(f, c.db1) && std::fgetc(f) == EOF;
    }
    std::fclose(f);
    if (!ok) std::fprintf(stderr, "%s: not a valid STACLFB1 golden file\n", path);
    return ok;
}

// ---------------------------------------------------------------------------
// Kernel-typed buffers with canary guards
// ---------------------------------------------------------------------------
const size_t kGuard = 4;
const int16_t kCanary16 = 0x7e5a;
const int64_t kCanary64 = int64_t(0x5a5a5a5a5a5a5a5aull);
const uint32_t kCanaryF = 0x7fc0beefu; // a NaN no kernel writes

uint32_t fbits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
float bitsf(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// Element values as int64 (kernel types may be ap_int).
template <typename K> int64_t ival(const K &v) { return int64_t(v); }

template <typename K> struct Guarded {
    std::vector<K> v;
    explicit Guarded(size_t n, K canary) : v(n + 2 * kGuard, canary) {}
    K *p() { return v.data() + kGuard; }
    size_t n() const { return v.size() - 2 * kGuard; }
    const K &operator[](size_t i) const { return v[kGuard + i]; }
};

template <typename K, typename S> std::vector<K> to_kernel(const std::vector<S> &s) {
    std::vector<K> r(s.size());
    for (size_t i = 0; i < s.size(); i++) r[i] = K(s[i]);
    return r;
}

// The guards of b kept canary; counts a failure otherwise.
template <typename K> bool guards_ok(const char *what, const Guarded<K> &b, int64_t canary) {
    for (size_t i = 0; i < kGuard; i++)
        if (ival(b.v[i]) != canary || ival(b.v[b.v.size() - 1 - i]) != canary) {
            fail("  %s: a canary guard around the output was overwritten\n", what);
            return false;
        }
    return true;
}

// Mismatches between got[i] and want[i] (as int64), printing the first when
// what is given.
template <typename K, typename V> size_t count_diff(const char *what, const Guarded<K> &got, const std::vector<V> &want) {
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); i++)
        if (ival(got[i]) != int64_t(want[i])) {
            if (!bad && what)
                std::fprintf(stderr, "  %s: first mismatch at %zu: got %lld want %lld\n", what, i,
                             (long long)ival(got[i]), (long long)want[i]);
            bad++;
        }
    return bad;
}

// Bit-exact comparison of an integer output with its expected values, plus a
// check that the comparison catches a one-bit difference (bit 0 of the middle
// element flipped in a copy of want). Counts failures.
template <typename K, typename V>
bool expect_equal(const char *what, const Guarded<K> &got, const std::vector<V> &want, int64_t canary) {
    bool ok = guards_ok(what, got, canary);
    if (got.n() != want.size()) {
        fail("  %s: size mismatch\n", what);
        return false;
    }
    if (count_diff(what, got, want) != 0) {
        fail("  %s: MISMATCH\n", what);
        return false;
    }
    if (!ok) return false;
    std::vector<V> flipped = want;
    flipped[want.size() / 2] = V(flipped[want.size() / 2] ^ V(1));
    if (count_diff(nullptr, got, flipped) != 1) {
        fail("  %s: a one-bit difference went unnoticed\n", what);
        ok = false;
    }
    return ok;
}

// Float outputs [F, 1 + P, W] by their bits: patch rows equal want, class
// rows equal class_bits when given (a separate output keeps its canary there).
size_t count_diff_f(const char *what, const float *got, const std::vector<float> &want, size_t L, size_t W,
                    const uint32_t *class_bits) {
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); i++) {
        const bool cls = (i / W) % L == 0;
        const uint32_t w = cls && class_bits ? *class_bits : fbits(want[i]);
        if (fbits(got[i]) != w) {
            if (!bad && what)
                std::fprintf(stderr, "  %s: first mismatch at %zu (token row %zu, channel %zu): got %08x want %08x\n",
                             what, i, i / W, i % W, fbits(got[i]), w);
            bad++;
        }
    }
    return bad;
}

bool expect_equal_f(const char *what, Guarded<float> &got, const std::vector<float> &want, size_t L, size_t W,
                    const uint32_t *class_bits) {
    bool ok = true;
    for (size_t i = 0; i < kGuard; i++)
        if (fbits(got.v[i]) != kCanaryF || fbits(got.v[got.v.size() - 1 - i]) != kCanaryF) ok = false;
    if (!ok) fail("  %s: a canary guard around the output was overwritten\n", what);
    if (count_diff_f(what, got.p(), want, L, W, class_bits) != 0) {
        fail("  %s: MISMATCH\n", what);
        return false;
    }
    std::vector<float> flipped = want;
    const size_t at = W * (L / 2 + 1) - 1; // a patch-row element (row L/2 of frame 0 when L > 1)
    flipped[at] = bitsf(fbits(flipped[at]) ^ 1u);
    if (count_diff_f(nullptr, got.p(), flipped, L, W, class_bits) != 1) {
        fail("  %s: a one-bit difference went unnoticed\n", what);
        ok = false;
    }
    return ok;
}

// ---------------------------------------------------------------------------
// Running every top function on a case and comparing
// ---------------------------------------------------------------------------
bool check_case(const Case &c) {
    const int before = g_failures;
    const unsigned F = unsigned(c.F()), P = unsigned(c.P()), W = c.W, A = c.A;
    const size_t L = c.P() + 1;
    const std::vector<act_t> xq = to_kernel<act_t>(c.xq), h = to_kernel<act_t>(c.h), y = to_kernel<act_t>(c.y);
    const std::vector<wgt_t> w1t = to_kernel<wgt_t>(c.w1t), cw = to_kernel<wgt_t>(c.cw), w2t = to_kernel<wgt_t>(c.w2t);
    const std::vector<grad_t> gu_in = to_kernel<grad_t>(c.gu), gy_in = to_kernel<grad_t>(c.gy),
                              gh_in = to_kernel<grad_t>(c.gh);
    const std::vector<acc_t> gy_acc_in = to_kernel<acc_t>(c.gy_acc), gh_acc_in = to_kernel<acc_t>(c.gh_acc);
    const bool sup = adapter_bwd_grad_exponent_supported(F, P, W) &&
                     adapter_bwd_quantize_grad_supported(F, P, W, unsigned(c.frac_gu)) &&
                     adapter_bwd_fc2_input_supported(F, P, W, A) && adapter_bwd_narrow_supported(unsigned(c.NH()), c.s_gy) &&
                     adapter_bwd_narrow_supported(unsigned(c.NH()), c.s_gh) &&
                     adapter_bwd_conv_input_supported(c.clips, c.T, c.grid, A, c.kt, c.kh, c.kw) &&
                     adapter_bwd_fc1_input_supported(F, P, W, A, c.frac_gh() + int(c.fw1)) &&
                     adapter_bwd_fc2_params_supported(F, P, W, A) &&
                     adapter_bwd_conv_params_supported(c.clips, c.T, c.grid, A, c.kt, c.kh, c.kw) &&
                     adapter_bwd_fc1_params_supported(F, P, W, A);
    if (!sup) {
        fail("%s: shape, shift or scale not supported by the backward tops\n", c.name.c_str());
        return false;
    }
    // Slots 1..3 (e, b_gy, b_gh) between two canaries: each stage writes only its own.
    Guarded<slot_t> slots(3, slot_t(int32_t(0x5a5a5a5a)));
    slots.p()[0] = slot_t(ADAPTER_BWD_EXP_ZERO);
    slots.p()[1] = slot_t(0);
    slots.p()[2] = slot_t(0);

    // 1. the exponent; the host's frac_gu
    adapter_bwd_grad_exponent(c.g_in.data(), slots.p(), 0, F, P, W);
    if (int(slots[0]) != c.e_g) {
        std::fprintf(stderr, "  grad_exponent: e = %d, want %d\n", int(slots[0]), c.e_g);
        g_failures++;
    }
    const int fg = 14 - int(slots[0]), frac_gu = fg < 0 ? 0 : fg > 48 ? 48 : fg;
    if (frac_gu != c.frac_gu) {
        std::fprintf(stderr, "  frac_gu = %d, want %d\n", frac_gu, c.frac_gu);
        g_failures++;
    }
    // 2. gu
    Guarded<grad_t> gu(c.NU(), grad_t(kCanary16));
    adapter_bwd_quantize_grad(c.g_in.data(), gu.p(), F, P, W, unsigned(c.frac_gu), c.seed, c.step, c.t_gu);
    expect_equal("quantize_grad gu", gu, c.gu, kCanary16);
    // 3. gy_acc, b_gy, s_gy
    Guarded<acc_t> gy_acc(c.NH(), acc_t(kCanary64));
    adapter_bwd_fc2_input(gu_in.data(), w2t.data(), gy_acc.p(), slots.p(), 1, F, P, W, A);
    expect_equal("fc2_input gy_acc", gy_acc, c.gy_acc, kCanary64);
    const int b_gy = int(slots[1]), s_gy = b_gy > 14 ? b_gy - 14 : 0;
    if (uint32_t(b_gy) != c.b_gy || uint32_t(s_gy) != c.s_gy) {
        std::fprintf(stderr, "  fc2_input: b_gy %d s_gy %d, want %u %u\n", b_gy, s_gy, c.b_gy, c.s_gy);
        g_failures++;
    }
    // 4. gy (0 where y saturated)
    Guarded<grad_t> gy(c.NH(), grad_t(kCanary16));
    adapter_bwd_narrow(gy_acc_in.data(), y.data(), gy.p(), unsigned(c.NH()), c.s_gy, c.seed, c.step, c.t_gy, 1);
    expect_equal("narrow gy", gy, c.gy, kCanary16);
    // 5. gh_acc, b_gh, s_gh
    Guarded<acc_t> gh_acc(c.NH(), acc_t(kCanary64));
    adapter_bwd_conv_input(gy_in.data(), cw.data(), gh_acc.p(), slots.p(), 2, c.clips, c.T, c.grid, A, c.kt, c.kh,
                           c.kw);
    expect_equal("conv_input gh_acc", gh_acc, c.gh_acc, kCanary64);
    const int b_gh = int(slots[2]), s_gh = b_gh > 14 ? b_gh - 14 : 0;
    if (uint32_t(b_gh) != c.b_gh || uint32_t(s_gh) != c.s_gh) {
        std::fprintf(stderr, "  conv_input: b_gh %d s_gh %d, want %u %u\n", b_gh, s_gh, c.b_gh, c.s_gh);
        g_failures++;
    }
    guards_ok("slots", slots, int32_t(0x5a5a5a5a));
    // the bit-length slots keep a larger value already there (atomic_max semantics)
    {
        Guarded<acc_t> scratch(c.NH(), acc_t(kCanary64));
        slot_t big[1] = {slot_t(63)};
        adapter_bwd_fc2_input(gu_in.data(), w2t.data(), scratch.p(), big, 0, F, P, W, A);
        adapter_bwd_conv_input(gy_in.data(), cw.data(), scratch.p(), big, 0, c.clips, c.T, c.grid, A, c.kt, c.kh,
                               c.kw);
        if (int(big[0]) != 63) fail("  %s: a bit-length slot lost a larger value\n", "fc2_input/conv_input");
    }
    // 6. gh (0 where h saturated)
    Guarded<grad_t> gh(c.NH(), grad_t(kCanary16));
    adapter_bwd_narrow(gh_acc_in.data(), h.data(), gh.p(), unsigned(c.NH()), c.s_gh, c.seed, c.step, c.t_gh, 1);
    expect_equal("narrow gh", gh, c.gh, kCanary16);
    // 7. g += gx 2^-scale: separate output (class rows keep the canary), then in place
    const int scale = c.frac_gh() + int(c.fw1);
    Guarded<float> g_out(c.NX(), bitsf(kCanaryF));
    Guarded<acc_t> gx_acc(c.NU(), acc_t(kCanary64));
    adapter_bwd_fc1_input(gh_in.data(), w1t.data(), xq.data(), c.g_in.data(), g_out.p(), gx_acc.p(), 1, F, P, W, A,
                          scale);
    expect_equal_f("fc1_input g_out (separate)", g_out, c.g_out, L, W, &kCanaryF);
    expect_equal("fc1_input gx_acc", gx_acc, c.gx_acc, kCanary64);
    Guarded<float> g_io(c.NX(), bitsf(kCanaryF));
    std::memcpy(g_io.p(), c.g_in.data(), c.NX() * sizeof(float));
    Guarded<acc_t> gx_none(c.NU(), acc_t(kCanary64));
    adapter_bwd_fc1_input(gh_in.data(), w1t.data(), xq.data(), g_io.p(), g_io.p(), gx_none.p(), 0, F, P, W, A, scale);
    expect_equal_f("fc1_input g (in place)", g_io, c.g_out, L, W, nullptr);
    expect_equal("fc1_input store_acc=0 writes no sums", gx_none, std::vector<int64_t>(c.NU(), kCanary64), kCanary64);
    // 8. weight gradients, twice each (overwritten, not accumulated)
    Guarded<acc_t> dw2(size_t(A) * W, acc_t(kCanary64)), db2(W, acc_t(kCanary64));
    Guarded<acc_t> dcw(size_t(A) * c.K(), acc_t(kCanary64)), dcb(A, acc_t(kCanary64));
    Guarded<acc_t> dw1t(size_t(W) * A, acc_t(kCanary64)), db1(A, acc_t(kCanary64));
    for (int rep = 0; rep < 2; rep++) {
        adapter_bwd_fc2_params(y.data(), gu_in.data(), dw2.p(), db2.p(), F, P, W, A);
        adapter_bwd_conv_params(h.data(), gy_in.data(), dcw.p(), dcb.p(), c.clips, c.T, c.grid, A, c.kt, c.kh, c.kw);
        adapter_bwd_fc1_params(xq.data(), gh_in.data(), dw1t.p(), db1.p(), F, P, W, A);
    }
    expect_equal("fc2_params dw2", dw2, c.dw2, kCanary64);
    expect_equal("fc2_params db2", db2, c.db2, kCanary64);
    expect_equal("conv_params dcw", dcw, c.dcw, kCanary64);
    expect_equal("conv_params dcb", dcb, c.dcb, kCanary64);
    expect_equal("fc1_params dw1t", dw1t, c.dw1t, kCanary64);
    expect_equal("fc1_params db1", db1, c.db1, kCanary64);

    const bool ok = g_failures == before;
    std::printf("%-58s clips %u T %u grid %u W %u A %u k (%u,%u,%u) e %d frac_gu %d s %u/%u: %s\n", c.name.c_str(),
                c.clips, c.T, c.grid, c.W, c.A, c.kt, c.kh, c.kw, c.e_g, c.frac_gu, c.s_gy, c.s_gh,
                ok ? "bit-exact" : "MISMATCH");
    return ok;
}

// ---------------------------------------------------------------------------
// Plain scalar reference (for the random self-check cases)
// ---------------------------------------------------------------------------
int16_t sat16(int64_t v) { return int16_t(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }
bool sat(int16_t v) { return v == 32767 || v == -32768; }
unsigned bitlen(int64_t v) {
    uint64_t a = v < 0 ? uint64_t(0) - uint64_t(v) : uint64_t(v);
    unsigned b = 0;
    while (a) b++, a >>= 1;
    return b;
}

// The host's sequence on the scalar reference: fills every output and scalar of c.
void reference(Case &c) {
    const size_t F = c.F(), P = c.P(), W = c.W, A = c.A, K = c.K(), G = c.grid, T = c.T;
    const long pt = long(c.kt / 2), ph = long(c.kh / 2), pw = long(c.kw / 2);
    c.size_outputs();
    auto row = [&](size_t f, size_t p) { return (f * (P + 1) + 1 + p) * W; };
    c.e_g = ADAPTER_BWD_EXP_ZERO;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t ch = 0; ch < W; ch++) {
                const float v = c.g_in[row(f, p) + ch];
                if (!std::isfinite(v)) {
                    c.e_g = ADAPTER_BWD_EXP_NONFINITE; // the largest value: stays
                } else if (v != 0.0f) {
                    int e;
                    std::frexp(v, &e);
                    if (e > c.e_g) c.e_g = e;
                }
            }
    const int fg = 14 - c.e_g;
    c.frac_gu = fg < 0 ? 0 : fg > 48 ? 48 : fg;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t ch = 0; ch < W; ch++) {
                const size_t i = (f * P + p) * W + ch;
                double v = std::nearbyint(double(std::ldexp(c.g_in[row(f, p) + ch], c.frac_gu + 16)));
                v = v < -70368744177664.0 ? -70368744177664.0 : v > 70368744177664.0 ? 70368744177664.0 : v;
                c.gu[i] = sat16(adapter_bwd_sr(int64_t(v), 16, adapter_bwd_rand64(c.seed, c.step, c.t_gu, uint32_t(i))));
            }
    unsigned b = 0;
    for (size_t r = 0; r < F * P; r++)
        for (size_t ch = 0; ch < W; ch++)
            for (size_t a = 0; a < A; a++) c.gy_acc[r * A + a] += int64_t(c.gu[r * W + ch]) * c.w2t[a * W + ch];
    for (int64_t v : c.gy_acc) b = bitlen(v) > b ? bitlen(v) : b;
    c.b_gy = b, c.s_gy = b > 14 ? b - 14 : 0;
    for (size_t i = 0; i < c.NH(); i++)
        c.gy[i] = sat(c.y[i]) ? 0
                              : sat16(adapter_bwd_sr(c.gy_acc[i], c.s_gy,
                                                     adapter_bwd_rand64(c.seed, c.step, c.t_gy, uint32_t(i))));
    // transposed conv as a scatter: source (n, t', r', c') through tap k lands on (t' + dt - pt, ...)
    for (size_t n = 0; n < c.clips; n++)
        for (long t = 0; t < long(T); t++)
            for (long r = 0; r < long(G); r++)
                for (long q = 0; q < long(G); q++)
                    for (size_t a = 0; a < A; a++)
                        for (long dt = 0; dt < long(c.kt); dt++)
                            for (long dh = 0; dh < long(c.kh); dh++)
                                for (long dw = 0; dw < long(c.kw); dw++) {
                                    const long tt = t + dt - pt, rr = r + dh - ph, qq = q + dw - pw;
                                    if (tt < 0 || tt >= long(T) || rr < 0 || rr >= long(G) || qq < 0 || qq >= long(G))
                                        continue;
                                    const size_t src = ((n * T + size_t(t)) * P + size_t(r) * G + size_t(q)) * A + a;
                                    const size_t dst = ((n * T + size_t(tt)) * P + size_t(rr) * G + size_t(qq)) * A + a;
                                    const size_t k = (size_t(dt) * c.kh + size_t(dh)) * c.kw + size_t(dw);
                                    c.gh_acc[dst] += int64_t(c.gy[src]) * c.cw[a * K + k];
                                    // the weight gradient pairs the same two positions the other way round
                                    c.dcw[a * K + k] += int64_t(c.gy[src]) * c.h[dst];
                                }
    b = 0;
    for (int64_t v : c.gh_acc) b = bitlen(v) > b ? bitlen(v) : b;
    c.b_gh = b, c.s_gh = b > 14 ? b - 14 : 0;
    for (size_t i = 0; i < c.NH(); i++) {
        c.gh[i] = sat(c.h[i]) ? 0
                              : sat16(adapter_bwd_sr(c.gh_acc[i], c.s_gh,
                                                     adapter_bwd_rand64(c.seed, c.step, c.t_gh, uint32_t(i))));
        c.dcb[i % A] += c.gy[i];
    }
    const int scale = c.frac_gh() + int(c.fw1);
    c.g_out = c.g_in;
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++) {
            const size_t r = f * P + p;
            for (size_t ch = 0; ch < W; ch++) {
                int64_t v = 0;
                for (size_t a = 0; a < A; a++) v += int64_t(c.gh[r * A + a]) * c.w1t[ch * A + a];
                c.gx_acc[r * W + ch] = v;
                if (!sat(c.xq[row(f, p) + ch]))
                    c.g_out[row(f, p) + ch] = c.g_out[row(f, p) + ch] + std::ldexp(float(v), -scale);
                for (size_t a = 0; a < A; a++) c.dw1t[ch * A + a] += int64_t(c.xq[row(f, p) + ch]) * c.gh[r * A + a];
            }
            for (size_t a = 0; a < A; a++) c.db1[a] += c.gh[r * A + a];
            for (size_t ch = 0; ch < W; ch++) {
                c.db2[ch] += c.gu[r * W + ch];
                for (size_t a = 0; a < A; a++) c.dw2[a * W + ch] += int64_t(c.y[r * A + a]) * c.gu[r * W + ch];
            }
        }
}

// xorshift64* (deterministic inputs)
struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    int16_t i16(int lo, int hi) { return int16_t(lo + int(next() % uint64_t(hi - lo + 1))); }
    float uni() { return float(double(next() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }
};

Case random_case(const char *name, uint32_t clips, uint32_t T, uint32_t grid, uint32_t W, uint32_t A, uint32_t kt,
                 uint32_t kh, uint32_t kw, const uint32_t fmt[6], int g_exp, bool extremes, uint64_t seed) {
    Case c;
    c.name = name;
    c.clips = clips, c.T = T, c.grid = grid, c.W = W, c.A = A, c.kt = kt, c.kh = kh, c.kw = kw;
    c.fx = fmt[0], c.fw1 = fmt[1], c.fh = fmt[2], c.fwc = fmt[3], c.fy = fmt[4], c.fw2 = fmt[5];
    c.t_gu = 40, c.t_gy = 41, c.t_gh = 42;
    c.seed = seed, c.step = 0x100000000ull * 7 + 12345;
    c.size_inputs();
    Rng rng{seed * 0x9E3779B97F4A7C15ull + 1};
    const size_t L = c.P() + 1;
    for (size_t i = 0; i < c.NX(); i++) {
        if ((i / W) % L == 0) continue; // class rows stay 0
        c.g_in[i] = std::ldexp(rng.uni(), g_exp);
        c.xq[i] = rng.i16(-3000, 3000);
        if (extremes && i % 7 == 3) c.xq[i] = i % 2 ? 32767 : -32768;
    }
    for (size_t i = 0; i < c.NH(); i++) {
        c.h[i] = rng.i16(-2000, 2000);
        c.y[i] = rng.i16(-2000, 2000);
        if (extremes && i % 5 == 1) c.h[i] = i % 2 ? 32767 : -32768;
        if (extremes && i % 6 == 2) c.y[i] = i % 2 ? -32768 : 32767;
    }
    for (auto *w : {&c.w1t, &c.cw, &c.w2t})
        for (auto &v : *w) v = extremes ? (rng.next() % 2 ? int16_t(32767) : int16_t(-32768)) : rng.i16(-4096, 4096);
    reference(c);
    return c;
}

// ---------------------------------------------------------------------------
// Self-checks of the generator, the rounding and the float handling
// ---------------------------------------------------------------------------
// Random123 tests/kat_vectors and tests/old_kat_vectors (the `philox4x32 10`
// lines): counter[4], key[2], expected[4].
const uint32_t kKat[][10] = {
    // tests/kat_vectors
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    // tests/old_kat_vectors
    {0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0xac08141b, 0xdfc5ccbe, 0x79c07a47, 0xa7f66093},
    {0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x833ff8dc, 0x225c963c, 0x232b88b3, 0x0b334b07},
    {0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x00000001, 0x00000000, 0x07071c12, 0x428264b6, 0x3909104b, 0x6da2bda2},
    {0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00000001, 0x00000000, 0x127bee41, 0x1e047488, 0x48842b20, 0x0a393496},
    {0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x04e2eae1, 0x463cc999, 0xe7786310, 0x65b3dc49},
    {0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x34a4d61d, 0x340e4017, 0xf6945830, 0xe9f52b96},
    {0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x00000001, 0x00000000, 0xfb0905e2, 0x78378790, 0xca37926b, 0xcdf58cfa},
    {0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x00000001, 0x00000000, 0xf2e15c7d, 0x3fedcd99, 0x90046f6c, 0x6657f0ca},
    {0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x00000001, 0x00000000, 0xf50c9398, 0xb36cdab2, 0x436bdc89, 0xcc49431b},
    {0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x00000001, 0x00000000, 0xdde26e4e, 0x17666f3b, 0xfc1f5b3a, 0x83ac805d},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0x00000001, 0x00000000, 0x38527b8f, 0xfad9a48c, 0x20e675c0, 0xf2fea26a},
    {0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89, 0x00000001, 0x00000000, 0xfb9877f8, 0x482895e2, 0x60b01453, 0x198ea67b},
    {0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c, 0x00000001, 0x00000000, 0xf7b7fa0a, 0x8d970e2c, 0x205c9c76, 0x83b16ce5},
    {0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0xccf3076a, 0x6306f434, 0xbea71965, 0xd96fe48a},
    {0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x532f1322, 0x36c890fb, 0x6504b937, 0x07bbfef7},
    {0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x00000001, 0x7f6c13ff, 0x114b2447, 0x0550eced, 0xea1fc805},
    {0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x00000001, 0x96b27e8c, 0x28826d0f, 0x66d958ef, 0x081509dc},
    {0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00e94a67, 0x3524f44e, 0x22995230, 0xbb54df1e},
    {0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0xce1afc4e, 0x4fbf97a1, 0x6110bee9, 0xa559be2f},
    {0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x00000001, 0x576241af, 0xd3b45bee, 0x619bd94d, 0x15dd8793},
    {0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x00000001, 0xd9da65af, 0xeced57ba, 0xc34d2661, 0x91fe931f},
    {0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x00000001, 0x36241728, 0x4d42c858, 0xfea737d6, 0x49f40347},
    {0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x00000001, 0x0436a39b, 0x31be9efa, 0x6abd0c76, 0xe7a68f83},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0x00000000, 0x00000001, 0x126514c3, 0xd1898b69, 0xda2707b3, 0x6e6fb436},
    {0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89, 0x00000000, 0x00000001, 0x1c28fa3f, 0x8c5bf977, 0xbb989783, 0x0c1a3737},
    {0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c, 0x00000000, 0x00000001, 0xac87a8c1, 0xf240abdb, 0xadd6c012, 0x68a32a78},
    {0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x473ab778, 0x330bacc0, 0xacd5fc9a, 0x5ede76b3},
    {0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0xcdfbd51c, 0xcaae5f2e, 0x10739cfc, 0x79e95162},
    {0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x00000000, 0xffffffff, 0x6c4b0e80, 0x357e5a94, 0x3255445d, 0x6f433f0b},
    {0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0xffffffff, 0x5c4ecd0c, 0x64c12cf9, 0x8f9fb4c8, 0x40c4a01f},
    {0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x5f9c47aa, 0x19861d86, 0xff2be81d, 0x4c7db17e},
    {0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x715a87cf, 0xf966a7f0, 0x3e6dd95f, 0xe884e2fd},
    {0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0xffffffff, 0x07678411, 0x9e524307, 0xba634e67, 0x94ee8cb7},
    {0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x00000000, 0xffffffff, 0xb6f48e28, 0xf2fa9414, 0x00b64f66, 0x4810cdb4},
    {0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0xffffffff, 0x9f18bb20, 0x62161056, 0x7ea8c028, 0x4c01fc6e},
    {0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x00000000, 0xffffffff, 0x2a460458, 0x0a2709e5, 0x47bc9115, 0x0f96d8af},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0x00000000, 0xffffffff, 0x08f7720c, 0x845ee9e0, 0x502ccd3d, 0xa9a00e27},
    {0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89, 0x00000000, 0xffffffff, 0x9fcce05d, 0x837d3f3c, 0x5cdf3e61, 0xdb2544c0},
    {0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c, 0x00000000, 0xffffffff, 0x72ce44b3, 0xb44f9b78, 0x49af0267, 0x726813ac},
    {0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x80000000, 0xe29b9f84, 0x2903d316, 0x42a1f56f, 0x1ad02eab},
    {0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x94f419f8, 0x1116c316, 0x99f2fa30, 0xbc048ad6},
    {0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x00000000, 0x80000000, 0x488b0258, 0x9eea6420, 0xafe7062e, 0x768f5637},
    {0x00000000, 0x00000000, 0x00000000, 0x00000001, 0x00000000, 0x80000000, 0xdbec6d70, 0x69cea528, 0xf7e22262, 0x2e9f3e8f},
    {0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x905ee550, 0xc7520e9a, 0x9af9d0ad, 0x69b97e98},
    {0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x1b89d963, 0x0defe9af, 0x60c9d3fb, 0x3cfae97d},
    {0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x00000000, 0x80000000, 0x601b5460, 0xfe29678b, 0x54510a02, 0xc72ed094},
    {0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x00000000, 0x80000000, 0xae56ca02, 0x7609ba67, 0x25abd7df, 0x46ce39a3},
    {0x00000000, 0x00000000, 0x00000000, 0xffffffff, 0x00000000, 0x80000000, 0x09812238, 0x47b8470d, 0x3e0d0a26, 0x92d96c9a},
    {0x00000000, 0x00000000, 0x00000000, 0x80000000, 0x00000000, 0x80000000, 0xf7a0b371, 0xe51dc93d, 0x56ce135d, 0x1d4b5580},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0x00000000, 0x80000000, 0x63675d2c, 0x422d7c4d, 0x3145d30d, 0x3bce33a4},
    {0xa4093822, 0x299f31d0, 0x082efa98, 0xec4e6c89, 0x00000000, 0x80000000, 0xaa74e81c, 0xc9ddb97b, 0x2c2cd881, 0x9390c78d},
    {0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c, 0x00000000, 0x80000000, 0x94ca5566, 0x14924b2f, 0x28214292, 0x59faeaee},
};

void check_philox() {
    const size_t n = sizeof kKat / sizeof kKat[0];
    size_t bad = 0;
    for (size_t v = 0; v < n; v++) {
        uint32_t out[4];
        adapter_bwd_philox4x32_10(&kKat[v][0], &kKat[v][4], out);
        if (std::memcmp(out, &kKat[v][6], sizeof out) != 0) {
            std::fprintf(stderr, "  philox KAT %zu: got %08x %08x %08x %08x\n", v, out[0], out[1], out[2], out[3]);
            bad++;
        }
    }
    // keying: counter (index, tensor, step lo, step hi), key (seed lo, seed hi), draw (r1 << 32) | r0
    const uint64_t seed = 0xa4093822299f31d0ull, step = 0x0370734413198a2eull;
    uint32_t out[4];
    const uint32_t ctr[4] = {0x243f6a88u, 0x85a308d3u, uint32_t(step), uint32_t(step >> 32)};
    const uint32_t key[2] = {uint32_t(seed), uint32_t(seed >> 32)};
    adapter_bwd_philox4x32_10(ctr, key, out);
    if (adapter_bwd_rand64(seed, step, 0x85a308d3u, 0x243f6a88u) != ((uint64_t(out[1]) << 32) | out[0])) bad++;
    // the all-zero vector through the draw: words 0 and 1 of KAT 0
    if (adapter_bwd_rand64(0, 0, 0, 0) != 0xe169c58d6627e8d5ull) bad++;
    // distinct tensors / steps / seeds give distinct draws
    if (adapter_bwd_rand64(1, 2, 3, 4) == adapter_bwd_rand64(1, 2, 4, 4) ||
        adapter_bwd_rand64(1, 2, 3, 4) == adapter_bwd_rand64(1, 3, 3, 4) ||
        adapter_bwd_rand64(1, 2, 3, 4) == adapter_bwd_rand64(2, 2, 3, 4))
        bad++;
    if (bad) fail("  %s: FAILED\n", "Philox4x32-10 known-answer vectors / keying");
    std::printf("Philox4x32-10: %zu Random123 known-answer vectors and the keying: %s\n", n, bad ? "FAILED" : "ok");
}

void check_sr() {
    struct T {
        int64_t v;
        unsigned s;
        uint64_t u;
        int64_t want;
    } const tests[] = {
        {7, 0, 123, 7},            {-7, 0, 0, -7},
        {7, 1, 0, 4},              {7, 1, ~0ull, 3},            // 3.5: up with draw 0, never with all ones
        {-5, 2, 0, -1},            {-5, 2, ~0ull, -2},          // -1.25: floor -2, +1 when t < 3
        {-5, 2, 0xbfffffffffffffffull, -1}, {-5, 2, 0xc000000000000000ull, -2}, // t = 2 < 3 up; t = 3 not
        {8, 2, 0, 2},              {-8, 2, 0, -2},              // multiples never move
        {int64_t(1) << 40, 16, 0, int64_t(1) << 24},
        {(int64_t(1) << 62) + 1, 62, 0, 2}, {-(int64_t(1) << 62), 62, 0, -1},
        {(int64_t(1) << 62) + 1, 62, ~0ull, 1},
        {70368744177664LL, 16, 0x1234, 1073741824LL},                 // 2^46 -> 2^30 (then sat16)
    };
    int bad = 0;
    for (const T &t : tests) {
        const int64_t got = adapter_bwd_sr(t.v, t.s, t.u);
        if (got != t.want) {
            std::fprintf(stderr, "  sr(%lld, %u, %016llx) = %lld, want %lld\n", (long long)t.v, t.s,
                         (unsigned long long)t.u, (long long)got, (long long)t.want);
            bad++;
        }
    }
    // only floor or floor + 1, and the mean of sr(v, s) over many draws near v / 2^s
    double sum = 0;
    for (uint32_t i = 0; i < 20000; i++) {
        const int64_t q = adapter_bwd_sr(-13, 3, adapter_bwd_rand64(9, 9, 9, i)); // -1.625: -2 or -1
        if (q != -2 && q != -1) bad++;
        sum += double(q);
    }
    const double mean = sum / 20000, se = std::sqrt(0.625 * 0.375 / 20000);
    if (std::fabs(mean + 1.625) > 5 * se) {
        std::fprintf(stderr, "  sr mean %.5f, want -1.625 +- %.5f\n", mean, 5 * se);
        bad++;
    }
    if (bad) fail("  %s: FAILED\n", "stochastic rounding");
    std::printf("stochastic rounding: edge cases and mean over 20000 draws: %s\n", bad ? "FAILED" : "ok");
}

// The exponent and quantize_grad on special values, against frexpf and
// nearbyint in double (one frame of one patch of 32 values).
void check_float_handling() {
    const float specials[] = {0.0f,
                              -0.0f,
                              std::ldexp(1.0f, -149), // smallest subnormal
                              -std::ldexp(3.0f, -140),
                              std::ldexp(1.0f, -126),
                              0.5f,
                              -0.75f,
                              1.0f,
                              std::ldexp(1.0f, -17),  // 2^-17 * 2^16 = 0.5: ties to even (0)
                              std::ldexp(3.0f, -17),  // 1.5 -> 2
                              std::ldexp(5.0f, -17),  // 2.5 -> 2
                              -std::ldexp(5.0f, -17), // -2.5 -> -2
                              -std::ldexp(7.0f, -17), // -3.5 -> -4
                              std::ldexp(1.0f, 30),   // 2^46: the clamp exactly
                              std::ldexp(1.5f, 30),   // past the clamp
                              -3e38f,                 // overflows the float product at frac 48
                              123.456f,
                              -0.0001234f,
                              std::ldexp(16777215.0f, -41) /* 24 significant bits */,
                              std::ldexp(1.0f, -50),
                              65535.0f,
                              -1e-30f};
    const size_t n = sizeof specials / sizeof specials[0];
    int bad = 0;
    std::vector<float> g(2 * n, 0.0f); // one frame, one patch: row 0 class (n values), row 1 the patch
    for (size_t i = 0; i < n; i++) g[n + i] = specials[i];
    // exponent: max frexp exponent; then with a NaN or an infinity 1000; all zeros leave the slot at -1000
    int want_e = ADAPTER_BWD_EXP_ZERO;
    for (size_t i = 0; i < n; i++)
        if (specials[i] != 0.0f) {
            int e;
            std::frexp(specials[i], &e);
            want_e = e > want_e ? e : want_e;
        }
    slot_t slot[1] = {slot_t(ADAPTER_BWD_EXP_ZERO)};
    adapter_bwd_grad_exponent(g.data(), slot, 0, 1, 1, unsigned(n));
    if (int(slot[0]) != want_e) bad++;
    // each value's own exponent
    for (size_t i = 0; i < n; i++) {
        float one[2] = {1e30f, specials[i]}; // the class row (a huge value) is never read
        slot[0] = slot_t(ADAPTER_BWD_EXP_ZERO);
        adapter_bwd_grad_exponent(one, slot, 0, 1, 1, 1);
        int e = ADAPTER_BWD_EXP_ZERO;
        if (specials[i] != 0.0f) std::frexp(specials[i], &e);
        if (int(slot[0]) != e) {
            std::fprintf(stderr, "  exponent of %a: %d, want %d\n", double(specials[i]), int(slot[0]), e);
            bad++;
        }
    }
    for (float nf : {std::nanf(""), INFINITY, -INFINITY}) {
        std::vector<float> gn = g;
        gn[n + 5] = nf;
        slot[0] = slot_t(ADAPTER_BWD_EXP_ZERO);
        adapter_bwd_grad_exponent(gn.data(), slot, 0, 1, 1, unsigned(n));
        if (int(slot[0]) != ADAPTER_BWD_EXP_NONFINITE) bad++;
    }
    std::vector<float> zeros(2 * n, 0.0f);
    for (size_t i = 0; i < n; i++) zeros[i] = 5.0f; // class row ignored
    slot[0] = slot_t(ADAPTER_BWD_EXP_ZERO);
    adapter_bwd_grad_exponent(zeros.data(), slot, 0, 1, 1, unsigned(n));
    if (int(slot[0]) != ADAPTER_BWD_EXP_ZERO) bad++;
    for (int pre : {7, 200}) { // the slot keeps a larger value already there (atomic_max semantics)
        slot[0] = slot_t(pre);
        adapter_bwd_grad_exponent(g.data(), slot, 0, 1, 1, unsigned(n));
        if (int(slot[0]) != (want_e > pre ? want_e : pre)) bad++;
    }
    // quantize_grad at every frac 0..48 against nearbyint(double(ldexpf)) clamped, then sr and sat16
    std::vector<grad_t> gu(n);
    for (unsigned frac = 0; frac <= 48; frac++) {
        adapter_bwd_quantize_grad(g.data(), gu.data(), 1, 1, unsigned(n), frac, 77, 88, 99);
        for (size_t i = 0; i < n; i++) {
            double v = std::nearbyint(double(std::ldexp(specials[i], int(frac) + 16)));
            v = v < -70368744177664.0 ? -70368744177664.0 : v > 70368744177664.0 ? 70368744177664.0 : v;
            const int16_t want = sat16(adapter_bwd_sr(int64_t(v), 16, adapter_bwd_rand64(77, 88, 99, uint32_t(i))));
            if (int16_t(gu[i]) != want) {
                std::fprintf(stderr, "  quantize_grad(%a, frac %u): %d, want %d\n", double(specials[i]), frac,
                             int(int16_t(gu[i])), int(want));
                bad++;
            }
        }
    }
    // the rounding before the draw on its own (the draw hides a difference of
    // one in 65535 of 65536 cases): specials and 2^20 random bit patterns at
    // every k, against nearbyint in double of the float product, clamped
    Rng rng{12345};
    for (uint32_t i = 0; i < (1u << 20) + n; i++) {
        const float v = i < n ? specials[i] : bitsf(uint32_t(rng.next() >> 32));
        if (std::isnan(v)) continue;
        const unsigned k = i < n ? 0 : unsigned(rng.next() % 65);
        for (unsigned kk = k; kk <= (i < n ? 64u : k); kk++) {
            double want = std::nearbyint(double(std::ldexp(v, int(kk))));
            want = want < -70368744177664.0 ? -70368744177664.0 : want > 70368744177664.0 ? 70368744177664.0 : want;
            if (adapter_bwd_grad_to_fixed(v, kk) != int64_t(want)) {
                if (bad < 5)
                    std::fprintf(stderr, "  grad_to_fixed(%a, %u) = %lld, want %.0f\n", double(v), kk,
                                 (long long)adapter_bwd_grad_to_fixed(v, kk), want);
                bad++;
            }
        }
    }
    if (adapter_bwd_grad_to_fixed(std::nanf(""), 20) != 0) bad++;
    if (bad) fail("  %s: FAILED\n", "exponent / gradient quantization on special values");
    std::printf("exponent and gradient quantization: %zu special values at frac 0..48 (through the top), "
                "rint(g 2^k) on 2^20 random floats: %s\n", n, bad ? "FAILED" : "ok");
}

// ---------------------------------------------------------------------------
// Unsupported arguments: nothing written
// ---------------------------------------------------------------------------
void check_unsupported() {
    int bad = 0;
    std::vector<float> g(64, 1.0f), gout(64, bitsf(kCanaryF));
    std::vector<act_t> a(64, act_t(1));
    std::vector<wgt_t> w(64, wgt_t(1));
    std::vector<grad_t> gr(64, grad_t(1)), out16(64, grad_t(kCanary16));
    std::vector<acc_t> acc(64, acc_t(1)), o1(64, acc_t(kCanary64)), o2(64, acc_t(kCanary64));
    slot_t slots[2] = {slot_t(-5), slot_t(-5)};
    auto untouched = [&]() {
        bool ok = int(slots[0]) == -5 && int(slots[1]) == -5;
        for (size_t i = 0; i < 64; i++)
            ok = ok && int16_t(out16[i]) == kCanary16 && ival(o1[i]) == kCanary64 && ival(o2[i]) == kCanary64 &&
                 fbits(gout[i]) == kCanaryF;
        return ok;
    };
    const unsigned MW = ADAPTER_MAX_W, MA = ADAPTER_MAX_A, MP = ADAPTER_MAX_P, MT = ADAPTER_MAX_T;
    struct {
        const char *what;
        bool supported;
    } const refused[] = {
        {"grad_exponent width > max", adapter_bwd_grad_exponent_supported(1, 1, MW + 1) != 0},
        {"grad_exponent 0 frames", adapter_bwd_grad_exponent_supported(0, 1, 4) != 0},
        {"quantize_grad frac 49", adapter_bwd_quantize_grad_supported(1, 1, 4, 49) != 0},
        {"fc2_input aw > max", adapter_bwd_fc2_input_supported(1, 1, 4, MA + 1) != 0},
        {"fc2_input indices past 32 bits", adapter_bwd_fc2_input_supported(1u << 22, MP, MW, 4) != 0},
        {"narrow shift 63", adapter_bwd_narrow_supported(4, 63) != 0},
        {"conv_input even kt", adapter_bwd_conv_input_supported(1, 3, 2, 4, 2, 1, 1) != 0},
        {"conv_input 28 taps", adapter_bwd_conv_input_supported(1, 3, 2, 4, 7, 1, 5) != 0},
        {"fc1_input scale 127", adapter_bwd_fc1_input_supported(1, 1, 4, 4, 127) != 0},
        {"fc1_input scale -128", adapter_bwd_fc1_input_supported(1, 1, 4, 4, -128) != 0},
        {"fc2_params patches > max", adapter_bwd_fc2_params_supported(1, MP + 1, 4, 4) != 0},
        {"conv_params T > max", adapter_bwd_conv_params_supported(1, MT + 1, 2, 4, 3, 1, 1) != 0},
        {"conv_params grid 17", adapter_bwd_conv_params_supported(1, 1, 17, 4, 1, 1, 1) != 0},
        {"fc1_params width 0", adapter_bwd_fc1_params_supported(1, 1, 0, 4) != 0},
    };
    for (const auto &r : refused)
        if (r.supported) {
            std::fprintf(stderr, "  unsupported: %s accepted\n", r.what);
            bad++;
        }
    adapter_bwd_grad_exponent(g.data(), slots, 0, 1, 1, MW + 1);
    adapter_bwd_quantize_grad(g.data(), out16.data(), 1, 1, 4, 49, 1, 1, 1);
    adapter_bwd_fc2_input(gr.data(), w.data(), o1.data(), slots, 1, 1, 1, 4, MA + 1);
    adapter_bwd_narrow(acc.data(), a.data(), out16.data(), 4, 63, 1, 1, 1, 1);
    adapter_bwd_conv_input(gr.data(), w.data(), o1.data(), slots, 1, 1, 3, 2, 4, 2, 1, 1);
    adapter_bwd_fc1_input(gr.data(), w.data(), a.data(), g.data(), gout.data(), o1.data(), 1, 1, 1, 4, 4, 127);
    adapter_bwd_fc2_params(a.data(), gr.data(), o1.data(), o2.data(), 1, MP + 1, 4, 4);
    adapter_bwd_conv_params(a.data(), gr.data(), o1.data(), o2.data(), 1, MT + 1, 2, 4, 3, 1, 1);
    adapter_bwd_fc1_params(a.data(), gr.data(), o1.data(), o2.data(), 1, 1, 0, 4);
    if (!untouched()) {
        std::fprintf(stderr, "  unsupported: an output was written\n");
        bad++;
    }
    if (bad) fail("  %s: FAILED\n", "unsupported arguments");
    std::printf("unsupported shapes, shifts and scales: refused, nothing written: %s\n", bad ? "FAILED" : "ok");
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s GOLDEN.bin... (tests/data/fixed_bwd/*.bin)\n", argv[0]);
        return 2;
    }
    check_philox();
    check_sr();
    check_float_handling();
    const uint32_t q8[6] = {8, 12, 8, 12, 8, 12}, f2[6] = {10, 14, 7, 9, 12, 3};
    int self_ok = 0, self_n = 0;
    // more rows than a row block, W and A not multiples of the lanes, two clips
    self_n++, self_ok += check_case(random_case("self-check: random 2x3x5x5 W37 A21 k333", 2, 3, 5, 37, 21, 3, 3, 3,
                                                q8, -10, false, 1));
    // lane multiples, saturated activations, int16-extreme weights, gu saturating (frac_gu = 0)
    self_n++, self_ok += check_case(random_case("self-check: extremes 1x4x3x3 W16 A32 k513", 1, 4, 3, 16, 32, 5, 1, 3,
                                                f2, 20, true, 2));
    // the smallest shape, gradients far below 2^-34 (frac_gu clamps at 48)
    self_n++, self_ok += check_case(random_case("self-check: 1x1x1x1 W1 A1 k111 tiny", 1, 1, 1, 1, 1, 1, 1, 1, q8, -60,
                                                false, 3));
    int golden_ok = 0;
    for (int i = 1; i < argc; i++) {
        Case c;
        if (!read_golden(argv[i], c)) {
            g_failures++;
            continue;
        }
        golden_ok += check_case(c);
    }
    check_unsupported();
    std::printf("adapter_bwd csim: %d of %d golden files bit-exact, %d of %d self-check cases%s\n", golden_ok, argc - 1,
                self_ok, self_n, g_failures ? ", FAILED" : "");
    return g_failures ? 1 : 0;
}
