/* gemm_rows.cl: stacl's own GEMM for CPU OpenCL devices (PoCL).
 *
 * C = epilogue(alpha A B + beta C), batched, every operand by strides;
 * beta = 0 does not read C (BLAS semantics: whatever C holds, NaN included,
 * is ignored); the epilogue adds a bias (+ activation) per column.
 * Why not CLBlast here: its kernels are written for GPUs (work-items sharing
 * tiles through local memory and barriers), which PoCL's CPU driver turns
 * into loops over work-items where the register blocking is lost, plus
 * pad/transpose copies around every call (docs/performance.md). Here one
 * work-item is one CPU micro-kernel: GEMM_MR rows of C by a 32-column panel,
 * held in 2 x GEMM_MR float16 accumulators (16 AVX-512 registers) across the
 * whole K loop, one broadcast A value and two 16-wide B loads per k.
 *
 * Element addresses (in floats, all 32-bit like the other kernels):
 *   A(i, k)        = A[a_off + at(a_batch) + i a_row + k a_col]
 *   B(k, n)        = B[b_off + at(b_batch) + (n / 32) b_panel + (n % 32) b_col + k b_row]
 *   C(i, n)        = C[c_off + at(c_batch) + i ldc + n]
 * where batch index bat = outer * batch_inner + inner and at(s) = outer s.x +
 * inner s.y: two levels, so that attention reads q, k, v per (frame, head)
 * straight out of the qkv projection and writes its output in the merged
 * layout (batch_inner = 1, s.y = 0 for plain strided batches).
 * B layouts by stride: packed panels [ceil(N/32)][K][32] (b_panel = 32 K,
 * b_col = 1, b_row = 32: the frozen weights, packed once by gemm_pack_panels,
 * columns past N zero); row-major [K, N] (b_panel = 32, b_col = 1,
 * b_row = ldb); transposed [N, K] (b_panel = 32 ldb, b_col = ldb, b_row = 1).
 * A panel with contiguous columns (b_col == 1) whose 32 columns are all
 * readable (full, or b_padded: packed with zeros) takes two vector loads per
 * k; otherwise each element is gathered, with columns past N clamped to N - 1
 * (read, never stored). Rows past M are clamped the same way. Sum order: k
 * ascending, one fma per k, for every element.
 *
 * One work-item per (batch, panel, row block), row blocks fastest so that
 * consecutive work-items share the B panel in cache. */
#define GEMM_MR 8

inline uint batch_at(uint bat, uint batch_inner, uint2 stride) {
    return bat / batch_inner * stride.x + bat % batch_inner * stride.y;
}
#define GEMM_NR 32

/* One k step of the micro-kernel: `a_at` reads A(i0 + i, k). Unrolled so
 * that the accumulators stay in registers (an indexed loop would put them
 * in memory: 4x slower on PoCL). */
#define GEMM_MAC(a_at, b_lo, b_hi)                                    \
    _Pragma("unroll") for (int i = 0; i < GEMM_MR; i++) {             \
        const float a = (a_at);                                       \
        acc_lo[i] = fma((float16)(a), (b_lo), acc_lo[i]);             \
        acc_hi[i] = fma((float16)(a), (b_hi), acc_hi[i]);             \
    }

/* What gemm_rows does to v = alpha A B + beta C before storing it, by the
 * low two bits of `epilogue`: nothing, or nn.Linear's bias and then, for the
 * MLP's first layer, its activation (the formulas of activation.cl), so
 * that no separate pass re-reads C. With GEMM_EPILOGUE_KEEP the value
 * after the bias, before the activation, is also stored into `pre` (same
 * layout as C, at pre_off): training's backward needs it. */
#define GEMM_EPILOGUE_NONE 0
#define GEMM_EPILOGUE_BIAS 1
#define GEMM_EPILOGUE_BIAS_QUICK_GELU 2
#define GEMM_EPILOGUE_BIAS_GELU 3
#define GEMM_EPILOGUE_KEEP 4

inline float16 gemm_activation(float16 v, uint epilogue) {
    if ((epilogue & 3) == GEMM_EPILOGUE_BIAS_QUICK_GELU) return v / (1.0f + exp(-1.702f * v));
    if ((epilogue & 3) == GEMM_EPILOGUE_BIAS_GELU) return 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
    return v;
}

/* Stores one row of a 32-column panel at dst: both vectors, or only the
 * first n (< 32) values of a partial panel. */
inline void gemm_store_row(__global float *dst, float16 lo, float16 hi, uint n) {
    if (n >= GEMM_NR) {
        vstore16(lo, 0, dst);
        vstore16(hi, 1, dst);
        return;
    }
    float out[GEMM_NR];
    vstore16(lo, 0, out);
    vstore16(hi, 1, out);
    for (uint j = 0; j < n; j++) dst[j] = out[j];
}

__kernel void gemm_rows(__global const float *A, uint a_off, uint a_row, uint a_col, uint2 a_batch,
                        __global const float *B, uint b_off, uint b_panel, uint b_col, uint b_row, uint2 b_batch,
                        uint b_padded, __global float *C, uint c_off, uint ldc, uint2 c_batch, uint M, uint N, uint K,
                        uint batch, uint batch_inner, float alpha, float beta, __global const float *bias, uint bias_off,
                        uint epilogue, __global float *pre, uint pre_off) {
    const uint row_blocks = (M + GEMM_MR - 1) / GEMM_MR, panels = (N + GEMM_NR - 1) / GEMM_NR;
    const uint gid = get_global_id(0);
    if (gid >= row_blocks * panels * batch) return;
    const uint rb = gid % row_blocks, p = gid / row_blocks % panels, bat = gid / row_blocks / panels;
    const uint i0 = rb * GEMM_MR, n0 = p * GEMM_NR;

    __global const float *a_rows[GEMM_MR]; /* rows past M clamped to M - 1 */
    _Pragma("unroll") for (int i = 0; i < GEMM_MR; i++)
        a_rows[i] = A + a_off + batch_at(bat, batch_inner, a_batch) + min(i0 + i, M - 1) * a_row;
    __global const float *b_panel_at = B + b_off + batch_at(bat, batch_inner, b_batch) + p * b_panel;

    float16 acc_lo[GEMM_MR], acc_hi[GEMM_MR];
    _Pragma("unroll") for (int i = 0; i < GEMM_MR; i++) {
        acc_lo[i] = (float16)(0.0f);
        acc_hi[i] = (float16)(0.0f);
    }
    const int full_panel = n0 + GEMM_NR <= N;
    if (b_col == 1 && (full_panel || b_padded)) {
        __global const float *bk = b_panel_at;
        if (a_col == 1) { /* the forward's case: A rows contiguous */
            for (uint k = 0; k < K; k++, bk += b_row) {
                const float16 b_lo = vload16(0, bk), b_hi = vload16(1, bk);
                GEMM_MAC(a_rows[i][k], b_lo, b_hi)
            }
        } else {
            for (uint k = 0; k < K; k++, bk += b_row) {
                const float16 b_lo = vload16(0, bk), b_hi = vload16(1, bk);
                GEMM_MAC(a_rows[i][(size_t)k * a_col], b_lo, b_hi)
            }
        }
    } else {
        __global const float *b_cols[GEMM_NR];
        for (int j = 0; j < GEMM_NR; j++) /* the panel's own column index, clamped to N - 1 */
            b_cols[j] = b_panel_at + (min(n0 + j, N - 1) - n0) * b_col;
        for (uint k = 0; k < K; k++) {
            float b[GEMM_NR];
            for (int j = 0; j < GEMM_NR; j++) b[j] = b_cols[j][(size_t)k * b_row];
            const float16 b_lo = vload16(0, b), b_hi = vload16(1, b);
            GEMM_MAC(a_rows[i][(size_t)k * a_col], b_lo, b_hi)
        }
    }

    float bias_lanes[GEMM_NR]; /* this panel's bias (columns past N: 0) */
    for (int j = 0; j < GEMM_NR; j++)
        bias_lanes[j] = (epilogue & 3) != GEMM_EPILOGUE_NONE && n0 + j < N ? bias[bias_off + n0 + j] : 0.0f;
    const float16 bias_lo = vload16(0, bias_lanes), bias_hi = vload16(1, bias_lanes);

    const uint c_at = batch_at(bat, batch_inner, c_batch), c_base = c_off + c_at;
    _Pragma("unroll") for (int i = 0; i < GEMM_MR; i++) {
        if (i0 + i >= M) continue;
        __global float *c = C + c_base + (i0 + i) * ldc + n0;
        float16 lo = alpha * acc_lo[i], hi = alpha * acc_hi[i];
        if (beta != 0.0f) {
            if (full_panel) {
                lo += beta * vload16(0, c);
                hi += beta * vload16(1, c);
            } else {
                float old[GEMM_NR];
                for (uint j = 0; j < GEMM_NR; j++) old[j] = n0 + j < N ? c[j] : 0.0f;
                lo += beta * vload16(0, old);
                hi += beta * vload16(1, old);
            }
        }
        if ((epilogue & 3) != GEMM_EPILOGUE_NONE) {
            lo += bias_lo;
            hi += bias_hi;
        }
        if (epilogue & GEMM_EPILOGUE_KEEP) gemm_store_row(pre + pre_off + c_at + (i0 + i) * ldc + n0, lo, hi, N - n0);
        gemm_store_row(c, gemm_activation(lo, epilogue), gemm_activation(hi, epilogue), N - n0);
    }
}

/* C = alpha A B^T + beta C, A [M, K] and B [N, K] both contiguous along K (the
 * attention scores q k^T, and a Linear layer whose weight is not packed):
 * the dot-product form. One work-item computes a GEMM_DM x GEMM_DN block of
 * C as 16-wide partial dot products (16 float16 accumulators, 8 vector loads
 * per 16 fmas), summed across lanes at the end (lanes_sum, reduce.cl: a
 * fixed tree), then the K % 16 tail in order. Rows and
 * columns past M, N are clamped (read, never stored). Batches as in
 * gemm_rows. Work-items: row blocks fastest, then column blocks, then batch. */
#define GEMM_DM 4
#define GEMM_DN 4

__kernel void gemm_rows_nt(__global const float *A, uint a_off, uint lda, uint2 a_batch, __global const float *B,
                           uint b_off, uint ldb, uint2 b_batch, __global float *C, uint c_off, uint ldc, uint2 c_batch,
                           uint M, uint N, uint K, uint batch, uint batch_inner, float alpha, float beta) {
    const uint row_blocks = (M + GEMM_DM - 1) / GEMM_DM, col_blocks = (N + GEMM_DN - 1) / GEMM_DN;
    const uint gid = get_global_id(0);
    if (gid >= row_blocks * col_blocks * batch) return;
    const uint rb = gid % row_blocks, cb = gid / row_blocks % col_blocks, bat = gid / row_blocks / col_blocks;
    const uint i0 = rb * GEMM_DM, n0 = cb * GEMM_DN;
    __global const float *a_rows[GEMM_DM], *b_rows[GEMM_DN];
    _Pragma("unroll") for (int i = 0; i < GEMM_DM; i++)
        a_rows[i] = A + a_off + batch_at(bat, batch_inner, a_batch) + min(i0 + i, M - 1) * lda;
    _Pragma("unroll") for (int j = 0; j < GEMM_DN; j++)
        b_rows[j] = B + b_off + batch_at(bat, batch_inner, b_batch) + min(n0 + j, N - 1) * ldb;
    float16 acc[GEMM_DM][GEMM_DN];
    _Pragma("unroll") for (int i = 0; i < GEMM_DM; i++)
        _Pragma("unroll") for (int j = 0; j < GEMM_DN; j++) acc[i][j] = (float16)(0.0f);
    uint k = 0;
    for (; k + 16 <= K; k += 16) {
        float16 a[GEMM_DM], b[GEMM_DN];
        _Pragma("unroll") for (int i = 0; i < GEMM_DM; i++) a[i] = vload16(0, a_rows[i] + k);
        _Pragma("unroll") for (int j = 0; j < GEMM_DN; j++) b[j] = vload16(0, b_rows[j] + k);
        _Pragma("unroll") for (int i = 0; i < GEMM_DM; i++)
            _Pragma("unroll") for (int j = 0; j < GEMM_DN; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
    _Pragma("unroll") for (int i = 0; i < GEMM_DM; i++) {
        if (i0 + i >= M) continue;
        _Pragma("unroll") for (int j = 0; j < GEMM_DN; j++) {
            if (n0 + j >= N) continue;
            float s = lanes_sum(acc[i][j]);
            for (uint t = k; t < K; t++) s = fma(a_rows[i][t], b_rows[j][t], s);
            __global float *c = C + c_off + batch_at(bat, batch_inner, c_batch) + (i0 + i) * ldc + n0 + j;
            *c = beta != 0.0f ? alpha * s + beta * *c : alpha * s;
        }
    }
}

/* Packs W [N, K] (row-major, row stride ldw: a Linear layer's weight, out x
 * in) into panels P [ceil(N/32)][K][32] with P(k, n) = W(n, k) and zeros
 * past N, for gemm_rows' vector path. One work-item per element of P. */
__kernel void gemm_pack_panels(__global const float *W, uint w_off, uint ldw, __global float *P, uint p_off, uint N,
                               uint K) {
    const uint panels = (N + GEMM_NR - 1) / GEMM_NR;
    const uint gid = get_global_id(0);
    if (gid >= panels * K * GEMM_NR) return;
    const uint j = gid % GEMM_NR, k = gid / GEMM_NR % K, p = gid / GEMM_NR / K;
    const uint n = p * GEMM_NR + j;
    P[p_off + gid] = n < N ? W[w_off + n * ldw + k] : 0.0f;
}
