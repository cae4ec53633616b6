// tb_adapter_fwd.cpp: C-simulation testbench of adapter_fwd. Reads the golden
// files that tests/unit/test_fixed_kernels.c writes from the plain-C
// reference and checks against the OpenCL kernels (tests/data/fixed/*.bin,
// format in tests/unit/reference_fixed.h), runs the HLS kernel on their
// inputs and compares the output with the golden output BIT FOR BIT:
//   1. separate x_out buffer pre-filled with a canary: the patch rows must
//      equal the golden output, the class-token rows keep the canary (never
//      written), and one element past the end stays untouched;
//   2. in place (x_in == x_res == x_out), as a host would run it.
// Also checks that a mismatch is detected (a flipped golden bit) and that an
// unsupported shape writes nothing. Exit status 0 only if everything matches.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "adapter_fwd.h"

namespace {

const int16_t kCanary = 0x7e5a;

struct Golden {
    uint32_t hdr[14];
    std::vector<int16_t> x, w1t, cw, w2t, h, y, out;
    std::vector<int32_t> b1, cb, b2;
};

template <typename T> bool read_array(FILE *f, std::vector<T> &v, size_t n) {
    v.resize(n);
    return std::fread(v.data(), sizeof(T), n, f) == n;
}

bool read_golden(const char *path, Golden &g) {
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::perror(path);
        return false;
    }
    char magic[8];
    bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, "STACLFX1", 8) == 0 &&
              std::fread(g.hdr, 4, 14, f) == 14;
    for (int i = 0; i < 8 && ok; i++) ok = g.hdr[i] >= 1 && g.hdr[i] <= 4096;
    if (ok) {
        const size_t F = size_t(g.hdr[0]) * g.hdr[1], P = size_t(g.hdr[2]) * g.hdr[2], W = g.hdr[3], A = g.hdr[4];
        const size_t K = size_t(g.hdr[5]) * g.hdr[6] * g.hdr[7];
        ok = read_array(f, g.x, F * (P + 1) * W) && read_array(f, g.w1t, W * A) && read_array(f, g.b1, A) &&
             read_array(f, g.cw, A * K) && read_array(f, g.cb, A) && read_array(f, g.w2t, A * W) &&
             read_array(f, g.b2, W) && read_array(f, g.h, F * P * A) && read_array(f, g.y, F * P * A) &&
             read_array(f, g.out, F * (P + 1) * W) && std::fgetc(f) == EOF;
    }
    std::fclose(f);
    if (!ok) std::fprintf(stderr, "%s: not a valid STACLFX1 golden file\n", path);
    return ok;
}

template <typename D, typename S> std::vector<D> convert(const std::vector<S> &v) {
    std::vector<D> r(v.size());
    for (size_t i = 0; i < v.size(); i++) r[i] = D(v[i]);
    return r;
}

void run(const Golden &g, const act_t *x_in, const act_t *x_res, act_t *x_out) {
    const std::vector<wgt_t> w1t = convert<wgt_t>(g.w1t), cw = convert<wgt_t>(g.cw), w2t = convert<wgt_t>(g.w2t);
    const std::vector<bias_t> b1 = convert<bias_t>(g.b1), cb = convert<bias_t>(g.cb), b2 = convert<bias_t>(g.b2);
    const uint32_t *h = g.hdr;
    adapter_fwd(x_in, x_res, x_out, w1t.data(), b1.data(), cw.data(), cb.data(), w2t.data(), b2.data(), h[0], h[1],
                h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13]);
}

// Number of elements of got that differ from want (class rows: from
// class_want, when given); prints the first unless what is null.
size_t compare(const char *what, const act_t *got, const std::vector<int16_t> &want, size_t L, size_t W,
               const int16_t *class_want) {
    size_t bad = 0;
    for (size_t i = 0; i < want.size(); i++) {
        const bool cls = (i / W) % L == 0;
        const int16_t w = cls && class_want ? *class_want : want[i];
        if (int16_t(got[i]) != w) {
            if (!bad && what)
                std::fprintf(stderr, "  %s: first mismatch at %zu (token row %zu, channel %zu): got %d want %d\n",
                             what, i, i / W, i % W, int(int16_t(got[i])), int(w));
            bad++;
        }
    }
    return bad;
}

bool check_file(const char *path) {
    Golden g;
    if (!read_golden(path, g)) return false;
    const uint32_t *h = g.hdr;
    if (!adapter_fwd_supported(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
                               h[13])) {
        std::fprintf(stderr, "%s: shape or format not supported by adapter_fwd\n", path);
        return false;
    }
    const size_t L = size_t(h[2]) * h[2] + 1, W = h[3], n = g.x.size();
    const std::vector<act_t> x = convert<act_t>(g.x);
    // 1. separate output buffer full of canaries (+1 past the end)
    std::vector<act_t> out(n + 1, act_t(kCanary));
    run(g, x.data(), x.data(), out.data());
    size_t bad = compare("separate x_out", out.data(), g.out, L, W, &kCanary);
    if (int16_t(out[n]) != kCanary) {
        std::fprintf(stderr, "  separate x_out: element past the end written\n");
        bad++;
    }
    // 2. in place
    std::vector<act_t> xi = x;
    run(g, xi.data(), xi.data(), xi.data());
    bad += compare("in place", xi.data(), g.out, L, W, nullptr);
    // the comparison itself must catch a one-bit difference
    std::vector<int16_t> flipped = g.out;
    flipped[W] = int16_t(flipped[W] ^ 1); // first patch row
    const bool caught = compare(nullptr, xi.data(), flipped, L, W, nullptr) == 1;
    std::printf("%-60s clips %u T %u grid %u W %u A %u k (%u,%u,%u) frac %u/%u/%u/%u/%u/%u: %s\n", path, h[0], h[1],
                h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13],
                bad == 0 && caught ? "bit-exact" : "MISMATCH");
    return bad == 0 && caught;
}

// An unsupported shape (even kernel) must leave the output alone.
bool check_unsupported() {
    std::vector<act_t> x(2 * 3, act_t(1)), out(2 * 3, act_t(kCanary));
    wgt_t w[9] = {};
    bias_t b[9] = {};
    adapter_fwd(x.data(), x.data(), out.data(), w, b, w, b, w, b, 1, 1, 1, 3, 3, 2, 1, 1, 8, 12, 8, 12, 8, 12);
    for (size_t i = 0; i < out.size(); i++)
        if (int16_t(out[i]) != kCanary) {
            std::fprintf(stderr, "unsupported shape: output written\n");
            return false;
        }
    return true;
}

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s GOLDEN.bin...\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (int i = 1; i < argc; i++) failed += !check_file(argv[i]);
    failed += !check_unsupported();
    std::printf("adapter_fwd csim: %d of %d golden files bit-exact%s\n", argc - 1 - (failed > 0 ? failed : 0),
                argc - 1, failed ? ", FAILED" : "");
    return failed ? 1 : 0;
}
