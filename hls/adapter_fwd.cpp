// adapter_fwd.cpp: the fixed-point ST-Adapter forward as one Vitis HLS
// kernel (see adapter_fwd.h and docs/fpga.md):
//
//   load_weights (once per call, into on-chip buffers), then a DATAFLOW region
//   load_x -> fc1 -> dwconv3d -> fc2 -> residual_store
//   over hls::streams, one int16 (or one int64 pre-residual sum) per beat.
//
// Arithmetic (identical to kernels/adapter_fixed.cl): int16 x int16 products
// summed exactly in 64 bits from the bias, narrowed by an arithmetic shift
// rounded half to even and saturated to int16; fc2's rounded sum is added to
// the residual and saturated once.
#include "adapter_fwd.h"

#include "hls_compat.h"

// floor(v / 2^s) rounded half to even, 0 <= s <= 62; the floor without
// shifting a negative value (for v < 0, ~v = -v - 1 >= 0).
static acc_t shift_rne(acc_t v, unsigned s) {
#pragma HLS INLINE
    if (s == 0) return v;
    acc_t q = v >= 0 ? acc_t(v >> s) : acc_t(~(acc_t(~v) >> s));
    const acc_t one = 1;
    const acc_t r = v - q * acc_t(one << s);
    const acc_t mid = acc_t(one << (s - 1));
    if (r > mid || (r == mid && (q & 1) != 0)) q = q + 1;
    return q;
}

static act_t sat16(acc_t v) {
#pragma HLS INLINE
    return act_t(v > 32767 ? acc_t(32767) : v < -32768 ? acc_t(-32768) : v);
}

// On-chip parameters. fc1's weight is split over ADAPTER_PA banks along the
// output channel (one read port per lane each cycle), fc2's over ADAPTER_PC.
static wgt_t w1_buf[ADAPTER_MAX_W][ADAPTER_MAX_A];
static bias_t b1_buf[ADAPTER_MAX_A];
static wgt_t cw_buf[ADAPTER_MAX_A][ADAPTER_MAX_K];
static bias_t cb_buf[ADAPTER_MAX_A];
static wgt_t w2_buf[ADAPTER_MAX_A][ADAPTER_MAX_W];
static bias_t b2_buf[ADAPTER_MAX_W];
// One clip of fc1's output: the conv's window spans whole frames (URAM).
static act_t h_buf[ADAPTER_MAX_T * ADAPTER_MAX_P * ADAPTER_MAX_A];

int adapter_fwd_supported(unsigned clips, unsigned T, unsigned grid, unsigned width, unsigned aw, unsigned kt,
                          unsigned kh, unsigned kw, unsigned frac_x, unsigned frac_w1, unsigned frac_h,
                          unsigned frac_wc, unsigned frac_y, unsigned frac_w2) {
    if (clips < 1 || T < 1 || T > ADAPTER_MAX_T || grid < 1 || grid * grid > ADAPTER_MAX_P) return 0;
    if (width < 1 || width > ADAPTER_MAX_W || aw < 1 || aw > ADAPTER_MAX_A) return 0;
    if (kt % 2 == 0 || kh % 2 == 0 || kw % 2 == 0 || kt * kh * kw > ADAPTER_MAX_K) return 0;
    if (frac_x > 15 || frac_w1 > 15 || frac_h > 15 || frac_wc > 15 || frac_y > 15 || frac_w2 > 15) return 0;
    if (frac_h > frac_x + frac_w1 || frac_y > frac_h + frac_wc || frac_x > frac_y + frac_w2) return 0;
    return 1;
}

static void load_weights(const wgt_t *w1t, const bias_t *b1, const wgt_t *cw, const bias_t *cb, const wgt_t *w2t,
                         const bias_t *b2, unsigned W, unsigned A, unsigned K) {
LOAD_W1:
    for (unsigned i = 0; i < W * A; i++) {
#pragma HLS PIPELINE II = 1
        w1_buf[i / A][i % A] = w1t[i];
    }
LOAD_W2:
    for (unsigned i = 0; i < A * W; i++) {
#pragma HLS PIPELINE II = 1
        w2_buf[i / W][i % W] = w2t[i];
    }
LOAD_CW:
    for (unsigned i = 0; i < A * K; i++) {
#pragma HLS PIPELINE II = 1
        cw_buf[i / K][i % K] = cw[i];
    }
LOAD_B1:
    for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
        b1_buf[a] = b1[a];
        cb_buf[a] = cb[a];
    }
LOAD_B2:
    for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
        b2_buf[c] = b2[c];
    }
}

// The patch rows of x, token after token, channel after channel.
static void load_x(const act_t *x_in, hls::stream<act_t> &xs, unsigned rows, unsigned P, unsigned W) {
LOAD_X_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const unsigned long base = ((unsigned long)(r / P) * (P + 1) + 1 + r % P) * W;
    LOAD_X_COLS:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            xs.write(x_in[base + c]);
        }
    }
}

// h[r, a] = sat16(rne(b1[a] + sum_c x[r, c] w1t[c, a], sh)): ADAPTER_PA
// channels per pass over the token, one MAC per lane per cycle.
static void fc1_stage(hls::stream<act_t> &xs, hls::stream<act_t> &hs, unsigned rows, unsigned W, unsigned A,
                      unsigned sh) {
    act_t xrow[ADAPTER_MAX_W];
FC1_ROWS:
    for (unsigned r = 0; r < rows; r++) {
    FC1_READ:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            xrow[c] = xs.read();
        }
    FC1_CHUNKS:
        for (unsigned a0 = 0; a0 < A; a0 += ADAPTER_PA) {
            acc_t acc[ADAPTER_PA];
#pragma HLS ARRAY_PARTITION variable = acc complete
        FC1_INIT:
            for (unsigned j = 0; j < ADAPTER_PA; j++) {
#pragma HLS UNROLL
                acc[j] = a0 + j < A ? acc_t(b1_buf[a0 + j]) : acc_t(0);
            }
        FC1_MAC:
            for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
                const act_t xv = xrow[c];
            FC1_LANES:
                for (unsigned j = 0; j < ADAPTER_PA; j++) {
#pragma HLS UNROLL
                    const prod_t p = xv * w1_buf[c][a0 + j];
                    acc[j] += acc_t(p);
                }
            }
        FC1_WRITE:
            for (unsigned j = 0; j < ADAPTER_PA; j++) {
#pragma HLS PIPELINE II = 1
                if (a0 + j < A) hs.write(sat16(shift_rne(acc[j], sh)));
            }
        }
    }
}

// Depthwise conv3d per clip: the clip's h is buffered whole, then every
// output sums its in-range taps (zero padding k / 2), one tap per cycle.
static void conv_stage(hls::stream<act_t> &hs, hls::stream<act_t> &ys, unsigned clips, unsigned T, unsigned G,
                       unsigned A, unsigned kt, unsigned kh, unsigned kw, unsigned sh) {
    const unsigned P = G * G, n = T * P * A, K = kt * kh * kw;
    const int pt = int(kt / 2), ph = int(kh / 2), pw = int(kw / 2);
CONV_CLIPS:
    for (unsigned clip = 0; clip < clips; clip++) {
    CONV_FILL:
        for (unsigned i = 0; i < n; i++) {
#pragma HLS PIPELINE II = 1
            h_buf[i] = hs.read();
        }
    CONV_POS:
        for (unsigned pos = 0; pos < T * P; pos++) {
            const int t = int(pos / P), r = int((pos % P) / G), c = int(pos % G);
        CONV_CH:
            for (unsigned a = 0; a < A; a++) {
                acc_t acc = cb_buf[a];
                int dt = 0, dh = 0, dw = 0;
            CONV_TAPS:
                for (unsigned k = 0; k < K; k++) {
#pragma HLS PIPELINE II = 1
                    const int tt = t + dt - pt, rr = r + dh - ph, cc = c + dw - pw;
                    if (tt >= 0 && tt < int(T) && rr >= 0 && rr < int(G) && cc >= 0 && cc < int(G)) {
                        const prod_t p = h_buf[(unsigned(tt) * P + unsigned(rr) * G + unsigned(cc)) * A + a] *
                                         cw_buf[a][k];
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
                ys.write(sat16(shift_rne(acc, sh)));
            }
        }
    }
}

// d[r, c] = rne(b2[c] + sum_a y[r, a] w2t[a, c], sh), not yet saturated:
// the residual add saturates once. ADAPTER_PC outputs per pass.
static void fc2_stage(hls::stream<act_t> &ys, hls::stream<acc_t> &ds, unsigned rows, unsigned W, unsigned A,
                      unsigned sh) {
    act_t yrow[ADAPTER_MAX_A];
FC2_ROWS:
    for (unsigned r = 0; r < rows; r++) {
    FC2_READ:
        for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
            yrow[a] = ys.read();
        }
    FC2_CHUNKS:
        for (unsigned c0 = 0; c0 < W; c0 += ADAPTER_PC) {
            acc_t acc[ADAPTER_PC];
#pragma HLS ARRAY_PARTITION variable = acc complete
        FC2_INIT:
            for (unsigned j = 0; j < ADAPTER_PC; j++) {
#pragma HLS UNROLL
                acc[j] = c0 + j < W ? acc_t(b2_buf[c0 + j]) : acc_t(0);
            }
        FC2_MAC:
            for (unsigned a = 0; a < A; a++) {
#pragma HLS PIPELINE II = 1
                const act_t yv = yrow[a];
            FC2_LANES:
                for (unsigned j = 0; j < ADAPTER_PC; j++) {
#pragma HLS UNROLL
                    const prod_t p = yv * w2_buf[a][c0 + j];
                    acc[j] += acc_t(p);
                }
            }
        FC2_WRITE:
            for (unsigned j = 0; j < ADAPTER_PC; j++) {
#pragma HLS PIPELINE II = 1
                if (c0 + j < W) ds.write(shift_rne(acc[j], sh));
            }
        }
    }
}

static void residual_store(const act_t *x_res, act_t *x_out, hls::stream<acc_t> &ds, unsigned rows, unsigned P,
                           unsigned W) {
STORE_ROWS:
    for (unsigned r = 0; r < rows; r++) {
        const unsigned long base = ((unsigned long)(r / P) * (P + 1) + 1 + r % P) * W;
    STORE_COLS:
        for (unsigned c = 0; c < W; c++) {
#pragma HLS PIPELINE II = 1
            x_out[base + c] = sat16(acc_t(x_res[base + c]) + ds.read());
        }
    }
}

static void adapter_dataflow(const act_t *x_in, const act_t *x_res, act_t *x_out, unsigned clips, unsigned T,
                             unsigned G, unsigned W, unsigned A, unsigned kt, unsigned kh, unsigned kw, unsigned sh1,
                             unsigned sh2, unsigned sh3) {
#pragma HLS DATAFLOW
    hls::stream<act_t> xs("xs"), hs("hs"), ys("ys");
    hls::stream<acc_t> ds("ds");
#pragma HLS STREAM variable = xs depth = 64
#pragma HLS STREAM variable = hs depth = 64
#pragma HLS STREAM variable = ys depth = 64
#pragma HLS STREAM variable = ds depth = 64
    const unsigned P = G * G, rows = clips * T * P;
    load_x(x_in, xs, rows, P, W);
    fc1_stage(xs, hs, rows, W, A, sh1);
    conv_stage(hs, ys, clips, T, G, A, kt, kh, kw, sh2);
    fc2_stage(ys, ds, rows, W, A, sh3);
    residual_store(x_res, x_out, ds, rows, P, W);
}

extern "C" void adapter_fwd(const act_t *x_in, const act_t *x_res, act_t *x_out, const wgt_t *w1t, const bias_t *b1,
                            const wgt_t *cw, const bias_t *cb, const wgt_t *w2t, const bias_t *b2, unsigned clips,
                            unsigned T, unsigned grid, unsigned width, unsigned aw, unsigned kt, unsigned kh,
                            unsigned kw, unsigned frac_x, unsigned frac_w1, unsigned frac_h, unsigned frac_wc,
                            unsigned frac_y, unsigned frac_w2) {
#pragma HLS INTERFACE m_axi port = x_in offset = slave bundle = gmem0
#pragma HLS INTERFACE m_axi port = x_res offset = slave bundle = gmem1
#pragma HLS INTERFACE m_axi port = x_out offset = slave bundle = gmem2
#pragma HLS INTERFACE m_axi port = w1t offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = b1 offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = cw offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = cb offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = w2t offset = slave bundle = gmem3
#pragma HLS INTERFACE m_axi port = b2 offset = slave bundle = gmem3
#pragma HLS INTERFACE s_axilite port = clips
#pragma HLS INTERFACE s_axilite port = T
#pragma HLS INTERFACE s_axilite port = grid
#pragma HLS INTERFACE s_axilite port = width
#pragma HLS INTERFACE s_axilite port = aw
#pragma HLS INTERFACE s_axilite port = kt
#pragma HLS INTERFACE s_axilite port = kh
#pragma HLS INTERFACE s_axilite port = kw
#pragma HLS INTERFACE s_axilite port = frac_x
#pragma HLS INTERFACE s_axilite port = frac_w1
#pragma HLS INTERFACE s_axilite port = frac_h
#pragma HLS INTERFACE s_axilite port = frac_wc
#pragma HLS INTERFACE s_axilite port = frac_y
#pragma HLS INTERFACE s_axilite port = frac_w2
#pragma HLS INTERFACE s_axilite port = return
#pragma HLS ARRAY_PARTITION variable = w1_buf cyclic factor = 16 dim = 2
#pragma HLS ARRAY_PARTITION variable = w2_buf cyclic factor = 16 dim = 2
#pragma HLS BIND_STORAGE variable = h_buf type = ram_2p impl = uram
    if (!adapter_fwd_supported(clips, T, grid, width, aw, kt, kh, kw, frac_x, frac_w1, frac_h, frac_wc, frac_y,
                               frac_w2))
        return;
    load_weights(w1t, b1, cw, cb, w2t, b2, width, aw, kt * kh * kw);
    adapter_dataflow(x_in, x_res, x_out, clips, T, grid, width, aw, kt, kh, kw, frac_x + frac_w1 - frac_h,
                     frac_h + frac_wc - frac_y, frac_y + frac_w2 - frac_x);
}
