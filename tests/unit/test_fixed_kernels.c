/* test_fixed_kernels.c: the fixed-point ST-Adapter forward
 * (kernels/adapter_fixed.cl via host/ops_fixed.h) against the plain-C
 * reference (reference_fixed.c), BIT-EXACT:
 *   - the scalar helpers (shift with round-half-to-even, saturation, float
 *     quantization) on hand-computed edge values;
 *   - each kernel on hand-built inputs whose exact results are written
 *     below: .5 ties of both signs, values that overflow int16 after the
 *     shift (must clamp to 32767 / -32768), sums beyond 32 bits, shift 0;
 *   - odd shapes (T = 1 and 3, grids 1, 2, 3 and 14, kernels 3x1x1, 3x3x3,
 *     5x1x3, widths that are multiples of nothing), several formats, moderate
 *     and saturating magnitudes, at non-zero offsets in buffers whose other
 *     elements hold a canary that must come back unchanged (the class-token
 *     rows of x included);
 *   - the golden files tests/data/fixed/NAME.bin that the HLS testbench reads
 *     (hls/tb_adapter_fwd.cpp): the reference must reproduce them byte for
 *     byte and the OpenCL kernels must match them. STACL_FIXED_GOLDEN_OUT=DIR
 *     writes them instead (then commit DIR's files to tests/data/fixed).
 * Every case that runs the NDRange kernels also runs the single-work-item
 * kernel for older OpenCL FPGA SDKs (hls/adapter_fwd_swi.cl, built here from
 * source, reqd_work_group_size(1,1,1)) and holds it to the same bits.
 * And the error of the fixed-point adapter (q8.8 activations, q4.12
 * weights) against the float adapter computed in double
 * (ref_adapter_forward_d), with the bound documented in docs/fpga.md. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_test_util.h"
#include "fixed_point.h"
#include "ops_fixed.h"
#include "reference_fixed.h"
#include "reference_ops.h"
#include "test_util.h"

/* ---- device buffers of int16 / int32 with a canary ---- */

#define CANARY16 0x7e5a
#define CANARY32 0x7e5a7e5a

typedef struct qbuf {
    cl_mem mem;
    size_t n, esz;
    unsigned char *host, *sent;
} qbuf;

static qbuf qbuf_new(size_t n, size_t esz) {
    qbuf b = {NULL, n, esz, malloc(n * esz + 1), malloc(n * esz + 1)};
    assert_non_null(b.host);
    assert_non_null(b.sent);
    for (size_t i = 0; i < n; i++) {
        if (esz == 2) ((int16_t *)b.host)[i] = (int16_t)CANARY16;
        else ((int32_t *)b.host)[i] = (int32_t)CANARY32;
    }
    cl_int err;
    b.mem = clCreateBuffer(g_ctx->context, CL_MEM_READ_WRITE, n * esz, NULL, &err);
    CL_CHECK(err);
    return b;
}

static void qbuf_upload(qbuf *b) {
    memcpy(b->sent, b->host, b->n * b->esz);
    CL_CHECK(clEnqueueWriteBuffer(g_ctx->queue, b->mem, CL_TRUE, 0, b->n * b->esz, b->host, 0, NULL, NULL));
}

static void qbuf_download(qbuf *b) {
    CL_CHECK(clEnqueueReadBuffer(g_ctx->queue, b->mem, CL_TRUE, 0, b->n * b->esz, b->host, 0, NULL, NULL));
}

static void qbuf_free(qbuf *b) {
    if (b->mem) clReleaseMemObject(b->mem);
    free(b->host);
    free(b->sent);
}

/* Fails unless every element of b outside [off, off + n) (and inside it,
 * with skip_every, the first `row` elements of every skip_every-th row: the
 * class tokens) is bit for bit what was uploaded. */
static void expect_untouched(const char *what, const qbuf *b, size_t off, size_t n, size_t row, size_t skip_every) {
    unsigned char *mask = calloc(b->n, 1);
    assert_non_null(mask);
    memset(mask + off, 1, n);
    if (skip_every)
        for (size_t r = 0; r < n / row; r += skip_every) memset(mask + off + r * row, 0, row);
    size_t changed = 0, first = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!mask[i] && memcmp(b->host + i * b->esz, b->sent + i * b->esz, b->esz) != 0) {
            if (!changed) first = i;
            changed++;
        }
    free(mask);
    if (changed) {
        print_error("%s: %zu elements that must not change did, first at %zu\n", what, changed, first);
        fail();
    }
}

static void expect_equal16(const char *what, const int16_t *got, const int16_t *ref, size_t n) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != ref[i]) {
            if (!bad) first = i;
            bad++;
        }
    if (bad) {
        print_error("%s: %zu of %zu differ; first [%zu] got %d expected %d\n", what, bad, n, first, got[first],
                    ref[first]);
        fail();
    }
}

static size_t n_x(const fx_shape *s) { return s->clips * s->T * (s->grid * s->grid + 1) * s->width; }
static size_t n_h(const fx_shape *s) { return s->clips * s->T * s->grid * s->grid * s->aw; }
static size_t n_k(const fx_shape *s) { return s->kt * s->kh * s->kw; }

/* Runs the three OpenCL kernels on c's inputs (each in a buffer at an odd
 * offset among canaries), device h -> conv -> fc2, and downloads h, y and
 * the updated x into h, y, out; checks that nothing else changed. */
static void run_opencl(const fx_case *c, int16_t *h, int16_t *y, int16_t *out) {
    const fx_shape *s = &c->s;
    const size_t F = s->clips * s->T, P = s->grid * s->grid, W = s->width, A = s->aw, K = n_k(s);
    const size_t NX = n_x(s), NH = n_h(s);
    /* weights [3 | w1t | cw | w2t | 2], biases [1 | b1 | cb | b2 | 3] */
    const size_t o_w1 = 3, o_cw = o_w1 + W * A, o_w2 = o_cw + A * K, o_b1 = 1, o_cb = o_b1 + A, o_b2 = o_cb + A;
    const size_t x_off = 5, h_off = 7, y_off = 2;
    qbuf wb = qbuf_new(o_w2 + A * W + 2, 2), bb = qbuf_new(o_b2 + W + 3, 4), xb = qbuf_new(x_off + NX + 3, 2),
         hb = qbuf_new(h_off + NH + 4, 2), yb = qbuf_new(y_off + NH + 1, 2);
    int16_t *w = (int16_t *)wb.host;
    int32_t *b = (int32_t *)bb.host;
    memcpy(w + o_w1, c->w1t, W * A * 2);
    memcpy(w + o_cw, c->cw, A * K * 2);
    memcpy(w + o_w2, c->w2t, A * W * 2);
    memcpy(b + o_b1, c->b1, A * 4);
    memcpy(b + o_cb, c->cb, A * 4);
    memcpy(b + o_b2, c->b2, W * 4);
    memcpy((int16_t *)xb.host + x_off, c->x, NX * 2);
    qbuf_upload(&wb);
    qbuf_upload(&bb);
    qbuf_upload(&xb);
    qbuf_upload(&hb);
    qbuf_upload(&yb);
    ST_CHECK(stacl_op_adapter_fc1_q(g_ctx, &c->f, F, P, W, A, xb.mem, x_off, wb.mem, o_w1, bb.mem, o_b1, hb.mem,
                                    h_off));
    ST_CHECK(stacl_op_adapter_dwconv3d_q(g_ctx, &c->f, s->clips, s->T, s->grid, A, s->kt, s->kh, s->kw, hb.mem,
                                         h_off, wb.mem, o_cw, bb.mem, o_cb, yb.mem, y_off));
    ST_CHECK(stacl_op_adapter_fc2_residual_q(g_ctx, &c->f, F, P, W, A, yb.mem, y_off, wb.mem, o_w2, bb.mem, o_b2,
                                             xb.mem, x_off));
    qbuf_download(&wb);
    qbuf_download(&bb);
    qbuf_download(&xb);
    qbuf_download(&hb);
    qbuf_download(&yb);
    memcpy(h, (int16_t *)hb.host + h_off, NH * 2);
    memcpy(y, (int16_t *)yb.host + y_off, NH * 2);
    memcpy(out, (int16_t *)xb.host + x_off, NX * 2);
    expect_untouched("fixed h", &hb, h_off, NH, 0, 0);
    expect_untouched("fixed y", &yb, y_off, NH, 0, 0);
    expect_untouched("fixed x (outside, class rows)", &xb, x_off, NX, W, P + 1);
    expect_untouched("fixed weights", &wb, 0, 0, 0, 0);
    expect_untouched("fixed biases", &bb, 0, 0, 0, 0);
    qbuf_free(&wb); qbuf_free(&bb); qbuf_free(&xb); qbuf_free(&hb); qbuf_free(&yb);
    (void)F;
}

/* ---- the single-work-item kernel, hls/adapter_fwd_swi.cl ---- */

static cl_program g_swi_program;
static cl_kernel g_swi_kernel;

/* Builds hls/adapter_fwd_swi.cl for g_ctx's device (once) and checks its
 * compile-time work-group size. */
static cl_kernel swi_kernel(void) {
    if (g_swi_kernel) return g_swi_kernel;
    const char *path = STACL_HLS_DIR "/adapter_fwd_swi.cl";
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        print_error("cannot open %s\n", path);
        fail();
    }
    static char src[64 * 1024];
    const size_t n = fread(src, 1, sizeof src - 1, fp);
    assert_true(feof(fp)); /* the whole file fit */
    fclose(fp);
    src[n] = '\0';
    const char *srcs[] = {src};
    cl_int err;
    g_swi_program = clCreateProgramWithSource(g_ctx->context, 1, srcs, NULL, &err);
    CL_CHECK(err);
    err = clBuildProgram(g_swi_program, 1, &g_ctx->device, "-cl-std=CL1.2", NULL, NULL);
    if (err != CL_SUCCESS) {
        static char log[16384];
        clGetProgramBuildInfo(g_swi_program, g_ctx->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        print_error("%s: build failed (%d):\n%s\n", path, (int)err, log);
        fail();
    }
    g_swi_kernel = clCreateKernel(g_swi_program, "adapter_fwd_swi", &err);
    CL_CHECK(err);
    size_t wg[3] = {0, 0, 0};
    CL_CHECK(clGetKernelWorkGroupInfo(g_swi_kernel, g_ctx->device, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof wg, wg,
                                      NULL));
    assert_true(wg[0] == 1 && wg[1] == 1 && wg[2] == 1);
    return g_swi_kernel;
}

/* Runs adapter_fwd_swi on c's inputs (x with a canary tail, h and y too) and
 * downloads h, y and the updated x; returns the kernel's status word. When
 * it is not 0 nothing may have been written. */
static int run_swi_shape(const fx_case *c, const fx_shape *s, int16_t *h, int16_t *y, int16_t *out) {
    const fx_shape *cs = &c->s;
    const size_t NX = n_x(cs), NH = n_h(cs), K = n_k(cs);
    qbuf xb = qbuf_new(NX + 3, 2), w1 = qbuf_new(cs->width * cs->aw, 2), b1 = qbuf_new(cs->aw, 4),
         cwb = qbuf_new(cs->aw * K, 2), cbb = qbuf_new(cs->aw, 4), w2 = qbuf_new(cs->aw * cs->width, 2),
         b2 = qbuf_new(cs->width, 4), hb = qbuf_new(NH + 2, 2), yb = qbuf_new(NH + 2, 2), st = qbuf_new(1, 4);
    memcpy(xb.host, c->x, NX * 2);
    memcpy(w1.host, c->w1t, cs->width * cs->aw * 2);
    memcpy(b1.host, c->b1, cs->aw * 4);
    memcpy(cwb.host, c->cw, cs->aw * K * 2);
    memcpy(cbb.host, c->cb, cs->aw * 4);
    memcpy(w2.host, c->w2t, cs->aw * cs->width * 2);
    memcpy(b2.host, c->b2, cs->width * 4);
    qbuf *all[] = {&xb, &w1, &b1, &cwb, &cbb, &w2, &b2, &hb, &yb, &st};
    for (size_t i = 0; i < 10; i++) qbuf_upload(all[i]);
    cl_kernel k = swi_kernel();
    for (cl_uint i = 0; i < 10; i++) CL_CHECK(clSetKernelArg(k, i, sizeof(cl_mem), &all[i]->mem));
    const cl_uint u[14] = {(cl_uint)s->clips, (cl_uint)s->T, (cl_uint)s->grid, (cl_uint)s->width, (cl_uint)s->aw,
                           (cl_uint)s->kt, (cl_uint)s->kh, (cl_uint)s->kw, (cl_uint)c->f.frac_x,
                           (cl_uint)c->f.frac_w1, (cl_uint)c->f.frac_h, (cl_uint)c->f.frac_wc,
                           (cl_uint)c->f.frac_y, (cl_uint)c->f.frac_w2};
    for (cl_uint i = 0; i < 14; i++) CL_CHECK(clSetKernelArg(k, 10 + i, sizeof(cl_uint), &u[i]));
    const size_t one = 1;
    CL_CHECK(clEnqueueNDRangeKernel(g_ctx->queue, k, 1, NULL, &one, &one, 0, NULL, NULL));
    for (size_t i = 0; i < 10; i++) qbuf_download(all[i]);
    const int status = ((int32_t *)st.host)[0];
    for (size_t i = 1; i < 7; i++) expect_untouched("swi weights/biases", all[i], 0, 0, 0, 0);
    if (status == 0) {
        memcpy(h, hb.host, NH * 2);
        memcpy(y, yb.host, NH * 2);
        memcpy(out, xb.host, NX * 2);
        expect_untouched("swi h (tail)", &hb, 0, NH, 0, 0);
        expect_untouched("swi y (tail)", &yb, 0, NH, 0, 0);
        expect_untouched("swi x (tail, class rows)", &xb, 0, NX, cs->width, cs->grid * cs->grid + 1);
    } else {
        expect_untouched("swi x (unsupported)", &xb, 0, 0, 0, 0);
        expect_untouched("swi h (unsupported)", &hb, 0, 0, 0, 0);
        expect_untouched("swi y (unsupported)", &yb, 0, 0, 0, 0);
    }
    for (size_t i = 0; i < 10; i++) qbuf_free(all[i]);
    return status;
}

/* Runs c through OpenCL and compares every stage with c's h, y, out. */
static void expect_opencl_matches(const char *what, const fx_case *c) {
    const size_t NX = n_x(&c->s), NH = n_h(&c->s);
    int16_t *h = malloc(NH * 2 + 2), *y = malloc(NH * 2 + 2), *out = malloc(NX * 2 + 2);
    assert_non_null(h); assert_non_null(y); assert_non_null(out);
    run_opencl(c, h, y, out);
    char w[160];
    snprintf(w, sizeof w, "%s: adapter_fc1_q", what);
    expect_equal16(w, h, c->h, NH);
    snprintf(w, sizeof w, "%s: adapter_dwconv3d_q", what);
    expect_equal16(w, y, c->y, NH);
    snprintf(w, sizeof w, "%s: adapter_fc2_residual_q", what);
    expect_equal16(w, out, c->out, NX);
    memset(h, 0, NH * 2);
    memset(y, 0, NH * 2);
    memset(out, 0, NX * 2);
    assert_int_equal(run_swi_shape(c, &c->s, h, y, out), 0);
    snprintf(w, sizeof w, "%s: adapter_fwd_swi h", what);
    expect_equal16(w, h, c->h, NH);
    snprintf(w, sizeof w, "%s: adapter_fwd_swi y", what);
    expect_equal16(w, y, c->y, NH);
    snprintf(w, sizeof w, "%s: adapter_fwd_swi x", what);
    expect_equal16(w, out, c->out, NX);
    free(h); free(y); free(out);
}

/* ---- scalar helpers ---- */

static void test_scalar_helpers(void **state) {
    (void)state;
    /* shift 1: v / 2, ties to even */
    static const int64_t v1[][2] = {{0, 0},  {1, 0},   {2, 1},   {3, 2},   {5, 2},  {7, 4},
                                    {-1, 0}, {-2, -1}, {-3, -2}, {-5, -2}, {-7, -4}, {-4, -2}};
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) assert_int_equal(stacl_fx_shift_rne(v1[i][0], 1), v1[i][1]);
    /* shift 12 (q8.8 x q4.12 -> q8.8): 2048 = 0.5 */
    static const int64_t v12[][2] = {{2048, 0},    {6144, 2},    {10240, 2},  {2049, 1},   {2047, 0},
                                     {-2048, 0},   {-6144, -2},  {-10240, -2}, {-2049, -1}, {-2047, 0},
                                     {4095, 1},    {-4095, -1},  {-4096, -1}, {-4097, -1}, {-6143, -1}};
    for (size_t i = 0; i < sizeof v12 / sizeof v12[0]; i++)
        assert_int_equal(stacl_fx_shift_rne(v12[i][0], 12), v12[i][1]);
    assert_int_equal(stacl_fx_shift_rne(-7, 0), -7);
    assert_int_equal(stacl_fx_shift_rne(((int64_t)1 << 62) + ((int64_t)1 << 29), 30), ((int64_t)1 << 32));
    assert_int_equal(stacl_fx_shift_rne(-((int64_t)3 << 29), 30), -2); /* -1.5 -> -2 */
    assert_int_equal(stacl_fx_sat16(32768), 32767);
    assert_int_equal(stacl_fx_sat16(-32769), -32768);
    assert_int_equal(stacl_fx_sat16(-32768), -32768);
    assert_int_equal(stacl_fx_sat16((int64_t)1 << 40), 32767);
    assert_int_equal(stacl_fx_sat16(-((int64_t)1 << 40)), -32768);
    /* quantize to q8.8: ties to even both signs, saturation, NaN, inf */
    assert_int_equal(stacl_fx_quantize(0.5f / 256, 8), 0);
    assert_int_equal(stacl_fx_quantize(1.5f / 256, 8), 2);
    assert_int_equal(stacl_fx_quantize(2.5f / 256, 8), 2);
    assert_int_equal(stacl_fx_quantize(-0.5f / 256, 8), 0);
    assert_int_equal(stacl_fx_quantize(-1.5f / 256, 8), -2);
    assert_int_equal(stacl_fx_quantize(-2.5f / 256, 8), -2);
    assert_int_equal(stacl_fx_quantize(0.50001f / 256, 8), 1);
    assert_int_equal(stacl_fx_quantize(-0.50001f / 256, 8), -1);
    assert_int_equal(stacl_fx_quantize(1.0f, 8), 256);
    assert_int_equal(stacl_fx_quantize(-128.0f, 8), -32768);
    assert_int_equal(stacl_fx_quantize(-32769.0f / 256, 8), -32768);
    assert_int_equal(stacl_fx_quantize(32767.5f / 256, 8), 32767); /* tie -> 32768 -> saturated */
    assert_int_equal(stacl_fx_quantize(200.0f, 8), 32767);
    assert_int_equal(stacl_fx_quantize(1e30f, 15), 32767);
    assert_int_equal(stacl_fx_quantize(INFINITY, 8), 32767);
    assert_int_equal(stacl_fx_quantize(-INFINITY, 8), -32768);
    assert_int_equal(stacl_fx_quantize(NAN, 8), 0);
    assert_int_equal(stacl_fx_quantize(0.75f, 12), 3072);
    assert_int_equal(stacl_fx_quantize32(0.5f, 20), 1 << 19);
    assert_int_equal(stacl_fx_quantize32(-1e20f, 20), INT32_MIN);
    assert_true(stacl_fx_dequantize(-384, 8) == -1.5f);
    /* format checks */
    stacl_fx_format f = STACL_FX_FORMAT_DEFAULT;
    assert_int_equal(stacl_fx_format_check(&f), STACL_OK);
    f.frac_h = 16;
    assert_int_equal(stacl_fx_format_check(&f), STACL_ERR_INVALID_ARG);
    f = (stacl_fx_format){0, 0, 1, 0, 0, 0}; /* fc1 would shift left */
    assert_int_equal(stacl_fx_format_check(&f), STACL_ERR_INVALID_ARG);
}

/* ---- hand-built edge cases, exact results written out ---- */

static fx_case new_case(fx_shape s, stacl_fx_format f) {
    fx_case c = {.s = s, .f = f};
    assert_int_equal(fx_case_alloc(&c), 0);
    return c;
}

/* Biases alone (zero weights) hit each tie and saturation of every stage;
 * shift 12 everywhere (q8.8 activations, q4.12 weights). */
static void test_edge_bias_rounding(void **state) {
    (void)state;
    /* acc (bias) -> narrowed value, shift 12 */
    static const int32_t bias[] = {2048,   6144,   10240,  -2048,  -6144,  -10240, 2049, -2049,
                                   2047,   -2047,  4096 * 32767 + 2048,  -4096 * 32768 - 2048,
                                   -4096 * 32768 - 2049, 4096 * 32767 + 2047, INT32_MAX, INT32_MIN};
    static const int16_t want[] = {0,  2,  2,  0,  -2, -2, 1,  -1,
                                   0,  0,  32767, -32768, -32768, 32767, 32767, -32768};
    /* fc2's rounded sum before the residual add is not saturated: x + delta saturates once */
    static const int32_t delta[] = {0, 2, 2, 0, -2, -2, 1, -1, 0, 0, 32768, -32768, -32769, 32767, 524288, -524288};
    enum { A = sizeof bias / sizeof bias[0] };
    fx_case c = new_case((fx_shape){1, 3, 2, A, A, 3, 3, 3}, STACL_FX_FORMAT_DEFAULT);
    const size_t F = 3, P = 4, L = 5, W = A;
    /* x: -1000..1000, and +-32000 in the first token row (saturates the add) */
    for (size_t i = 0; i < F * L * W; i++) c.x[i] = (int16_t)((int)((i * 37) % 2001) - 1000); /* weights are 0 */
    for (size_t a = 0; a < (size_t)A; a++) c.x[W + a] = (int16_t)(a % 2 ? -32000 : 32000);
    memcpy(c.b1, bias, sizeof bias);
    memcpy(c.cb, bias, sizeof bias);
    /* fc2: bias -> delta as above; x + delta saturates at the residual add */
    memcpy(c.b2, bias, sizeof bias);
    fx_case_run_reference(&c);
    for (size_t f = 0; f < F; f++)
        for (size_t p = 0; p < P; p++)
            for (size_t a = 0; a < (size_t)A; a++) {
                assert_int_equal(c.h[(f * P + p) * A + a], want[a]);
                assert_int_equal(c.y[(f * P + p) * A + a], want[a]);
                const int64_t sum = (int64_t)c.x[(f * L + 1 + p) * W + a] + delta[a];
                assert_int_equal(c.out[(f * L + 1 + p) * W + a], sum > 32767 ? 32767 : sum < -32768 ? -32768 : sum);
            }
    expect_opencl_matches("edge: bias ties and saturation", &c);
    fx_case_free(&c);
}

/* Products: int16 extremes summed beyond 32 bits; frac_x = frac_w1 = 15,
 * frac_h = 0 (shift 30) so that 5 * 2^30 (+ 2^29 ties) stays in range;
 * and the default format where the same sums saturate. */
static void test_edge_products(void **state) {
    (void)state;
    enum { W = 5, A = 6 };
    const fx_shape s = {1, 1, 1, W, A, 1, 1, 1};
    fx_case c = new_case(s, (stacl_fx_format){15, 15, 0, 0, 0, 15});
    /* one token row: x = -32768 everywhere (class row: 123) */
    for (size_t i = 0; i < W; i++) c.x[i] = 123, c.x[W + i] = -32768;
    /* channel a: every weight -32768 (products +2^30) or 32767 (products -2^30 + 2^15) */
    static const int32_t b1[A] = {0, 1 << 29, 1 << 29, -(1 << 29), 0, -(1 << 29)};
    static const int16_t sign[A] = {-1, -1, -1, -1, 1, 1}; /* w = sign * 32768 clamped */
    static const int16_t want_h[A] = {5, 6, 6, 4, -5, -5};
    for (size_t a = 0; a < A; a++)
        for (size_t k = 0; k < W; k++) c.w1t[k * A + a] = sign[a] < 0 ? -32768 : 32767;
    /* a = 0: 5 * 2^30 / 2^30 = 5; a = 1, 2: 5.5 -> 6 (tie to even); a = 3: 4.5 -> 4;
     * a = 4: 5 * -32768 * 32767 / 2^30 = -4.99985 -> -5; a = 5: -5.49985 -> -5 (not a tie) */
    memcpy(c.b1, b1, sizeof b1);
    fx_case_run_reference(&c);
    for (size_t a = 0; a < A; a++) assert_int_equal(c.h[a], want_h[a]);
    /* conv: kernel 1x1x1, shift 0 (frac_h 0 + frac_wc 0 - frac_y 0): y = h * cw + cb exactly, saturated */
    static const int16_t cwv[A] = {32767, -32768, 2, 3, 1, -1};
    static const int32_t cbv[A] = {0, 0, 7, -20, 0, 5};
    memcpy(c.cw, cwv, sizeof cwv);
    memcpy(c.cb, cbv, sizeof cbv);
    /* fc2: shift 0 + 15 - 15 = 0 -> x + sum y w2t + b2 */
    for (size_t a = 0; a < A; a++)
        for (size_t k = 0; k < W; k++) c.w2t[a * W + k] = (int16_t)(a == k ? 1 : 0);
    static const int32_t b2[W] = {0, 0, 0, 0, 40000};
    memcpy(c.b2, b2, sizeof b2);
    fx_case_run_reference(&c);
    static const int16_t want_y[A] = {32767, -32768, 19, -8, -5, 10};
    for (size_t a = 0; a < A; a++) assert_int_equal(c.y[a], want_y[a]);
    /* out = -32768 + y[k] (+ 40000 for k = 4) */
    static const int16_t want_out[W] = {-1, -32768, -32749, -32768, 7227};
    for (size_t k = 0; k < W; k++) assert_int_equal(c.out[W + k], want_out[k]);
    for (size_t k = 0; k < W; k++) assert_int_equal(c.out[k], 123);
    expect_opencl_matches("edge: products beyond 32 bits, shift 30 and 0", &c);

    /* The same inputs in the default format: everything saturates. */
    c.f = STACL_FX_FORMAT_DEFAULT;
    memset(c.b1, 0, A * 4);
    fx_case_run_reference(&c);
    for (size_t a = 0; a < A; a++) assert_int_equal(c.h[a], sign[a] < 0 ? 32767 : -32768);
    expect_opencl_matches("edge: saturating products", &c);
    fx_case_free(&c);
}

/* ---- random cases ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}
/* uniform in [-m, m] (m <= 32768: -32768 included, 32768 clamped to 32767) */
static int32_t rng_int(uint64_t *s, int32_t m) {
    int64_t v = (int64_t)(rng_next(s) % (uint64_t)(2 * (int64_t)m + 1)) - m;
    return (int32_t)v;
}
static int16_t rng_i16(uint64_t *s, int32_t m) {
    int32_t v = rng_int(s, m);
    return (int16_t)(v > 32767 ? 32767 : v);
}

/* Magnitudes of a random case: x, weights, biases (hot: saturating). */
typedef struct fx_mag { int32_t x, w, b; } fx_mag;

static void fill_random(fx_case *c, uint64_t seed, fx_mag m) {
    const fx_shape *s = &c->s;
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n_x(s); i++) c->x[i] = rng_i16(&r, m.x);
    for (size_t i = 0; i < s->width * s->aw; i++) c->w1t[i] = rng_i16(&r, m.w), c->w2t[i] = rng_i16(&r, m.w);
    for (size_t i = 0; i < s->aw * n_k(s); i++) c->cw[i] = rng_i16(&r, m.w);
    for (size_t i = 0; i < s->aw; i++) c->b1[i] = rng_int(&r, m.b), c->cb[i] = rng_int(&r, m.b);
    for (size_t i = 0; i < s->width; i++) c->b2[i] = rng_int(&r, m.b);
}

static size_t count_saturated(const int16_t *v, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += v[i] == 32767 || v[i] == -32768;
    return k;
}

static void test_random_shapes(void **state) {
    (void)state;
    /* clips, T, grid, W, A, kt, kh, kw */
    static const size_t shapes[][8] = {
        {1, 1, 14, 33, 7, 3, 1, 1},  /* 197 tokens, one frame: temporal taps all padding */
        {1, 3, 14, 65, 12, 3, 3, 3}, /* 197 tokens, T = 3 */
        {2, 3, 2, 17, 5, 3, 3, 3},   /* 2x2 grid: most spatial taps in the padding */
        {2, 3, 3, 10, 3, 3, 1, 1},   /* two clips: the conv must not cross clips */
        {3, 1, 2, 5, 1, 3, 3, 3},    /* T = 1, adapter width 1 */
        {1, 5, 2, 9, 4, 5, 1, 3},    /* wider, non-cubic kernel */
        {1, 1, 1, 3, 2, 1, 1, 1},    /* one token: fewer rows than a work-item's block */
        {1, 7, 1, 6, 5, 3, 1, 1},    /* 7 rows: a partial last block */
    };
    static const stacl_fx_format formats[] = {
        {8, 12, 8, 12, 8, 12},  /* the default: q8.8 activations, q4.12 weights */
        {10, 14, 9, 13, 7, 15}, /* shifts 15, 15, 12 */
        {0, 0, 0, 0, 0, 0},     /* shift 0: plain integers */
        {15, 15, 1, 15, 15, 1}, /* shifts 29, 1, 1 */
    };
    static const fx_mag mags[] = {{4096, 2048, 1 << 20}, {32768, 32768, INT32_MAX}};
    size_t sat_hot = 0, outputs_hot = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t mi = 0; mi < 2; mi++) {
            const size_t *v = shapes[si];
            const stacl_fx_format f = formats[(si + mi) % 4];
            fx_case c = new_case((fx_shape){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, f);
            fill_random(&c, 7000 + 10 * si + mi, mags[mi]);
            fx_case_run_reference(&c);
            if (mi == 1) {
                sat_hot += count_saturated(c.h, n_h(&c.s)) + count_saturated(c.y, n_h(&c.s));
                outputs_hot += 2 * n_h(&c.s);
            }
            char what[160];
            snprintf(what, sizeof what, "%zux%zu clips grid %zu W=%zu A=%zu k=(%zu,%zu,%zu) frac %d/%d/%d %s", v[0],
                     v[1], v[2], v[3], v[4], v[5], v[6], v[7], f.frac_x, f.frac_w1, f.frac_h,
                     mi ? "saturating" : "moderate");
            expect_opencl_matches(what, &c);
            printf("    %-80s bit-exact\n", what);
            fx_case_free(&c);
        }
    printf("    saturating cases: %zu of %zu h/y outputs clamped\n", sat_hot, outputs_hot);
    assert_true(sat_hot > outputs_hot / 4);
}

/* ---- golden files shared with the HLS testbench ---- */

typedef struct golden_def {
    const char *name;
    size_t shape[8];
    stacl_fx_format f;
    fx_mag m;
    uint64_t seed;
} golden_def;

static const golden_def goldens[] = {
    {"t3_grid2_k333", {1, 3, 2, 13, 5, 3, 3, 3}, {8, 12, 8, 12, 8, 12}, {4096, 2048, 1 << 20}, 11},
    {"t3_grid3_k311_2clips", {2, 3, 3, 10, 6, 3, 1, 1}, {8, 12, 8, 12, 8, 12}, {6000, 6000, 1 << 22}, 12},
    {"t1_grid14_k333", {1, 1, 14, 9, 3, 3, 3, 3}, {10, 14, 9, 13, 7, 15}, {3000, 4000, 1 << 20}, 13},
    {"t5_grid2_k513_sat", {1, 5, 2, 7, 4, 5, 1, 3}, {8, 12, 8, 12, 8, 12}, {32768, 32768, INT32_MAX}, 14},
};

static void test_goldens(void **state) {
    (void)state;
    const char *out_dir = getenv("STACL_FIXED_GOLDEN_OUT");
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) {
        const golden_def *g = &goldens[i];
        const size_t *v = g->shape;
        fx_case c = new_case((fx_shape){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, g->f);
        fill_random(&c, g->seed, g->m);
        fx_case_run_reference(&c);
        char path[1024];
        if (out_dir && *out_dir) {
            snprintf(path, sizeof path, "%s/%s.bin", out_dir, g->name);
            assert_int_equal(fx_case_write(&c, path), 0);
            printf("    wrote %s\n", path);
        } else {
            snprintf(path, sizeof path, "%s/fixed/%s.bin", STACL_TEST_DATA, g->name);
            fx_case file;
            assert_int_equal(fx_case_read(&file, path), 0);
            assert_memory_equal(&file.s, &c.s, sizeof c.s);
            assert_memory_equal(&file.f, &c.f, sizeof c.f);
            const size_t NX = n_x(&c.s), NH = n_h(&c.s);
            expect_equal16("golden x", file.x, c.x, NX);
            expect_equal16("golden w1t", file.w1t, c.w1t, c.s.width * c.s.aw);
            expect_equal16("golden cw", file.cw, c.cw, c.s.aw * n_k(&c.s));
            expect_equal16("golden w2t", file.w2t, c.w2t, c.s.width * c.s.aw);
            assert_memory_equal(file.b1, c.b1, c.s.aw * 4);
            assert_memory_equal(file.cb, c.cb, c.s.aw * 4);
            assert_memory_equal(file.b2, c.b2, c.s.width * 4);
            expect_equal16("golden h (reference reproduces the file)", file.h, c.h, NH);
            expect_equal16("golden y (reference reproduces the file)", file.y, c.y, NH);
            expect_equal16("golden out (reference reproduces the file)", file.out, c.out, NX);
            expect_opencl_matches(g->name, &file);
            printf("    %-40s OpenCL == golden file\n", g->name);
            fx_case_free(&file);
        }
        fx_case_free(&c);
    }
}

/* ---- error against the float adapter ---- */

static void test_error_vs_float(void **state) {
    (void)state;
    /* ViT-B width, a 7x7 grid, T = 8, adapter width 64; kernels (3,1,1) and (3,3,3) */
    static const size_t shapes[][8] = {{1, 8, 7, 768, 64, 3, 1, 1}, {1, 8, 7, 768, 64, 3, 3, 3}};
    const stacl_fx_format f = STACL_FX_FORMAT_DEFAULT;
    for (size_t si = 0; si < 2; si++) {
        const size_t *v = shapes[si];
        const ref_adapter_shape rs = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
        fx_case c = new_case((fx_shape){v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, f);
        const size_t F = v[0] * v[1], P = v[2] * v[2], L = P + 1, W = v[3], A = v[4], K = v[5] * v[6] * v[7];
        float *x = xmalloc_f(F * L * W), *w1 = xmalloc_f(A * W), *b1 = xmalloc_f(A), *cw = xmalloc_f(A * K),
              *cb = xmalloc_f(A), *w2 = xmalloc_f(W * A), *b2 = xmalloc_f(W);
        /* x ~ U(-2, 2) (LN-free residual stream of a small scale), fc weights ~ U(+-1/sqrt(fan_in)) * 2 */
        tu_fill_random(x, F * L * W, 9100 + si, 2.0f);
        tu_fill_random(w1, A * W, 9101 + si, 2.0f / sqrtf((float)W));
        tu_fill_random(b1, A, 9102 + si, 0.5f);
        tu_fill_random(cw, A * K, 9103 + si, 1.0f / sqrtf((float)K));
        tu_fill_random(cb, A, 9104 + si, 0.5f);
        tu_fill_random(w2, W * A, 9105 + si, 2.0f / sqrtf((float)A));
        tu_fill_random(b2, W, 9106 + si, 0.5f);
        stacl_fx_quantize_array(x, F * L * W, f.frac_x, c.x);
        for (size_t a = 0; a < A; a++)
            for (size_t k = 0; k < W; k++) {
                c.w1t[k * A + a] = stacl_fx_quantize(w1[a * W + k], f.frac_w1);
                c.w2t[a * W + k] = stacl_fx_quantize(w2[k * A + a], f.frac_w2);
            }
        stacl_fx_quantize_array(cw, A * K, f.frac_wc, c.cw);
        for (size_t a = 0; a < A; a++) {
            c.b1[a] = stacl_fx_quantize32(b1[a], f.frac_x + f.frac_w1);
            c.cb[a] = stacl_fx_quantize32(cb[a], f.frac_h + f.frac_wc);
        }
        for (size_t k = 0; k < W; k++) c.b2[k] = stacl_fx_quantize32(b2[k], f.frac_y + f.frac_w2);
        fx_case_run_reference(&c);
        expect_opencl_matches("error case", &c); /* the kernels' bits are the reference's */
        /* float adapter in double */
        double *xd = malloc(F * L * W * sizeof(double)), *w1d = malloc(A * W * sizeof(double)),
               *b1d = malloc(A * sizeof(double)), *cwd = malloc(A * K * sizeof(double)),
               *cbd = malloc(A * sizeof(double)), *w2d = malloc(W * A * sizeof(double)),
               *b2d = malloc(W * sizeof(double)), *hd = malloc(F * P * A * sizeof(double)),
               *yd = malloc(F * P * A * sizeof(double)), *od = malloc(F * L * W * sizeof(double));
        assert_true(xd && w1d && b1d && cwd && cbd && w2d && b2d && hd && yd && od);
        for (size_t i = 0; i < F * L * W; i++) xd[i] = x[i];
        for (size_t i = 0; i < A * W; i++) w1d[i] = w1[i], w2d[i] = w2[i];
        for (size_t i = 0; i < A * K; i++) cwd[i] = cw[i];
        for (size_t i = 0; i < A; i++) b1d[i] = b1[i], cbd[i] = cb[i];
        for (size_t i = 0; i < W; i++) b2d[i] = b2[i];
        ref_adapter_forward_d(&rs, xd, w1d, b1d, cwd, cbd, w2d, b2d, hd, yd, od);
        double max_e = 0, sum_e = 0, max_eh = 0, sum_eh = 0, max_ey = 0, scale = 0, scale_y = 0;
        size_t n = 0;
        for (size_t fr = 0; fr < F; fr++)
            for (size_t p = 0; p < P; p++)
                for (size_t k = 0; k < W; k++) {
                    const size_t i = (fr * L + 1 + p) * W + k;
                    const double e = fabs(stacl_fx_dequantize(c.out[i], f.frac_x) - od[i]);
                    max_e = fmax(max_e, e);
                    sum_e += e;
                    scale = fmax(scale, fabs(od[i] - xd[i]));
                    n++;
                }
        for (size_t i = 0; i < F * P * A; i++) {
            const double eh = fabs(stacl_fx_dequantize(c.h[i], f.frac_h) - hd[i]);
            max_eh = fmax(max_eh, eh);
            sum_eh += eh;
            max_ey = fmax(max_ey, fabs(stacl_fx_dequantize(c.y[i], f.frac_y) - yd[i]));
            scale_y = fmax(scale_y, fabs(yd[i]));
        }
        printf("    q8.8/q4.12 vs float adapter, W=%zu A=%zu T=%zu grid %zu k=(%zu,%zu,%zu):\n"
               "      out: max|err| %.5f mean|err| %.6f (|adapter delta| up to %.2f)\n"
               "      h: max|err| %.5f mean %.6f; y: max|err| %.5f (|y| up to %.2f); sat h %zu y %zu out %zu\n",
               W, A, v[1], v[2], v[5], v[6], v[7], max_e, sum_e / (double)n, scale, max_eh,
               sum_eh / (double)(F * P * A), max_ey, scale_y, count_saturated(c.h, F * P * A),
               count_saturated(c.y, F * P * A), count_saturated(c.out, F * L * W));
        /* bounds documented in docs/fpga.md */
        assert_true(max_e < 0.03);
        assert_true(sum_e / (double)n < 0.004);
        free(xd); free(w1d); free(b1d); free(cwd); free(cbd); free(w2d); free(b2d); free(hd); free(yd); free(od);
        free(x); free(w1); free(b1); free(cw); free(cb); free(w2); free(b2);
        fx_case_free(&c);
    }
}

/* The launchers refuse a bad format before launching anything. */
/* The single-work-item kernel refuses what it does not support (status 1)
 * and writes nothing. */
static void test_swi_unsupported(void **state) {
    (void)state;
    fx_case c = new_case((fx_shape){1, 3, 2, 9, 4, 3, 1, 1}, STACL_FX_FORMAT_DEFAULT);
    fill_random(&c, 99, (fx_mag){4096, 2048, 1 << 20});
    fx_case_run_reference(&c);
    const size_t NX = n_x(&c.s), NH = n_h(&c.s);
    int16_t *h = malloc(NH * 2), *y = malloc(NH * 2), *out = malloc(NX * 2);
    assert_non_null(h); assert_non_null(y); assert_non_null(out);
    assert_int_equal(run_swi_shape(&c, &c.s, h, y, out), 0); /* the shape itself runs */
    expect_equal16("swi baseline", out, c.out, NX);
    const fx_shape bad[] = {
        {1, 3, 2, 9, 4, 2, 1, 1},    /* even temporal kernel */
        {1, 3, 2, 9, 4, 3, 1, 4},    /* even spatial kernel */
        {1, 3, 2, 2000, 4, 3, 1, 1}, /* width beyond SWI_MAX_W */
        {1, 3, 2, 9, 600, 3, 1, 1},  /* adapter width beyond SWI_MAX_A */
        {1, 3, 2, 0, 4, 3, 1, 1},    /* empty */
        {0, 3, 2, 9, 4, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(run_swi_shape(&c, &bad[i], h, y, out), 1);
    const stacl_fx_format bad_f[] = {
        {8, 12, 8, 12, 8, 12 + 4}, /* frac 16 */
        {8, 2, 12, 12, 8, 12},     /* fc1 shift < 0 */
        {8, 12, 0, 2, 8, 12},      /* conv shift < 0 */
        {15, 12, 8, 12, 8, 4},     /* fc2 shift < 0 */
    };
    const stacl_fx_format good = c.f;
    for (size_t i = 0; i < sizeof bad_f / sizeof bad_f[0]; i++) {
        c.f = bad_f[i];
        assert_int_equal(run_swi_shape(&c, &c.s, h, y, out), 1);
    }
    c.f = good;
    printf("    adapter_fwd_swi: %zu unsupported shapes and %zu formats refused, nothing written\n",
           sizeof bad / sizeof bad[0], sizeof bad_f / sizeof bad_f[0]);
    free(h); free(y); free(out);
    fx_case_free(&c);
}

static void test_bad_format(void **state) {
    (void)state;
    const stacl_fx_format bad = {8, 12, 21, 12, 8, 12};
    cl_int err;
    cl_mem m = clCreateBuffer(g_ctx->context, CL_MEM_READ_WRITE, 64, NULL, &err);
    CL_CHECK(err);
    assert_int_equal(stacl_op_adapter_fc1_q(g_ctx, &bad, 1, 1, 1, 1, m, 0, m, 0, m, 0, m, 0), STACL_ERR_INVALID_ARG);
    assert_non_null(strstr(stacl_last_error(), "frac_h"));
    clReleaseMemObject(m);
}

static int group_setup(void **state) {
    (void)state;
    return cl_test_ctx_create();
}

static int group_teardown(void **state) {
    if (g_swi_kernel) clReleaseKernel(g_swi_kernel);
    if (g_swi_program) clReleaseProgram(g_swi_program);
    return cl_test_group_teardown(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_helpers),     cmocka_unit_test(test_edge_bias_rounding),
        cmocka_unit_test(test_edge_products),      cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_goldens),            cmocka_unit_test(test_error_vs_float),
        cmocka_unit_test(test_swi_unsupported),    cmocka_unit_test(test_bad_format),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
