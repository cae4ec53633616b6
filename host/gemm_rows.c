/* gemm_rows.c: stacl's own GEMM engine (kernels/gemm_rows.cl), the default
 * on CPU devices, where CLBlast's GPU-shaped kernels reach a fraction of the
 * machine (docs/performance.md). gemm.c routes stacl_gemm, stacl_gemm_batched
 * and stacl_linear here when ctx->gemm_rows is set.
 *
 * Frozen Linear weights are packed once, at model load, into 32-column
 * panels (a second copy: the originals stay for the backward and for
 * CLBlast); stacl_linear finds the packed copy by (buffer, offset) in the
 * context's table. A weight without one takes the dot-product kernel. */
#include <stdlib.h>
#include <string.h>

#include "launch.h"
#include "ops_backward.h"

#define GEMM_MR 8  /* rows per work-item, as in gemm_rows.cl */
#define GEMM_NR 32 /* panel width */
#define GEMM_DM 4  /* gemm_rows_nt's block */
#define GEMM_DN 4

typedef struct stacl_packed_weight {
    cl_mem src;
    size_t src_off, out, in;
    cl_mem packed;
    size_t packed_off;
} stacl_packed_weight;

static size_t div_up(size_t a, size_t b) { return (a + b - 1) / b; }

/* Work-group size of the GEMM kernels: small groups, so that the driver can
 * hand them out dynamically (on a CPU device a few large groups leave a
 * core idle when the split is uneven or another process holds a core:
 * measured on the 2-core VM, 16 items per group gave the forward's GEMMs
 * 1.1-1.3x the driver's own choice), never more than the kernels allow. */
#define GEMM_GROUP 16

static size_t group_limit(stacl_ctx *ctx, stacl_kernel_id k) {
    size_t n = 0;
    if (clGetKernelWorkGroupInfo(ctx->kernels[k], ctx->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof n, &n, NULL) !=
            CL_SUCCESS ||
        n == 0)
        n = 1;
    return n;
}

stacl_status stacl_gemm_engine_setup(stacl_ctx *ctx) {
    const char *env = getenv("STACL_GEMM");
    int own = ctx->info.is_cpu;
    if (env && *env) {
        if (!strcmp(env, "stacl")) own = 1;
        else if (!strcmp(env, "clblast")) own = 0;
        else return stacl_fail(STACL_ERR_INVALID_ARG, "STACL_GEMM='%s': expected 'stacl' or 'clblast'", env);
    }
    /* A program loaded from a device binary may lack these kernels. */
    ctx->gemm_rows = own && ctx->kernels[K_GEMM_ROWS] && ctx->kernels[K_GEMM_ROWS_NT] &&
                     ctx->kernels[K_GEMM_PACK_PANELS];
    if (ctx->gemm_rows) {
        size_t g = GEMM_GROUP, lim = group_limit(ctx, K_GEMM_ROWS), lim_nt = group_limit(ctx, K_GEMM_ROWS_NT);
        while (g > 1 && (g > lim || g > lim_nt)) g /= 2;
        ctx->gemm_group = g;
    }
    return STACL_OK;
}

const char *stacl_gemm_engine_name(const stacl_ctx *ctx) {
    return ctx->gemm_rows ? "stacl (kernels/gemm_rows.cl)" : "CLBlast";
}

void stacl_gemm_engine_release(stacl_ctx *ctx) {
    free(ctx->packed);
    ctx->packed = NULL;
    ctx->n_packed = ctx->cap_packed = 0;
}

/* A batch-stride pair (outer, inner) as a kernel argument (uint2). */
static void arg_batch(arg_list *l, const stacl_gemm_operand *o) {
    cl_uint2 v = {{(cl_uint)o->stride, (cl_uint)o->inner_stride}};
    if (l->err == CL_SUCCESS) l->err = clSetKernelArg(l->kernel, l->next, sizeof v, &v);
    l->next++;
}

/* One operand: `batch` matrices of [rows, cols] (as stored) with leading
 * dimension ld, batch b = outer * inner + i at off + outer stride + i
 * inner_stride. Refuses what BLAS refuses (ld < cols) and what would read or
 * write past the buffer, naming both: the kernels do no bounds checks of
 * their own. */
static stacl_status check_operand(stacl_ctx *ctx, const char *op, const char *name, const stacl_gemm_operand *o,
                                  size_t batch, size_t inner, size_t rows, size_t cols) {
    if (rows == 0 || cols == 0) return STACL_OK; /* k = 0: nothing of A or B is read */
    if (o->ld < cols)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: matrix %s: leading dimension %zu is below its %zu columns", op,
                          name, o->ld, cols);
    const size_t end = o->off + (batch / inner - 1) * o->stride + (inner - 1) * o->inner_stride + (rows - 1) * o->ld +
                       cols;
    stacl_status st = check_u32(op, end);
    if (st == STACL_OK) st = check_u32(op, o->stride);
    if (st == STACL_OK) st = check_u32(op, o->inner_stride);
    if (st != STACL_OK) return st;
    size_t bytes = 0;
    cl_int err = clGetMemObjectInfo(o->mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    if (err != CL_SUCCESS) return stacl_fail_context(stacl_cl_fail(ctx, err, "clGetMemObjectInfo"), "%s: %s", op, name);
    if (end > bytes / sizeof(float))
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: matrix %s (%zu x [%zu x %zu], leading dimension %zu, offset "
                          "%zu) needs %zu floats; its buffer holds %zu on device '%s'", op, name, batch, rows, cols,
                          o->ld, o->off, end, bytes / sizeof(float), ctx->info.name);
    return STACL_OK;
}

/* B of the panel kernel: B(k, n) at off + (n / 32) panel + (n % 32) col +
 * k row (+ the batch strides); padded: columns past n up to the panel's end
 * are readable zeros (packed weights). */
typedef struct panel_b {
    cl_mem mem;
    size_t off, panel, col, row, stride, inner_stride;
    int padded;
} panel_b;

/* What gemm_rows does before storing (gemm_rows.cl): code 0 nothing, else
 * 1 + stacl_bias_act with the bias, + 4 to keep the pre-activation in pre. */
typedef struct epilogue {
    cl_mem bias, pre;
    size_t bias_off, pre_off;
    size_t code;
} epilogue;

/* One launch of gemm_rows; the operands are checked by the caller. */
static stacl_status launch_panel(stacl_ctx *ctx, const char *op, int trans_a, size_t m, size_t n, size_t k,
                                 float alpha, const stacl_gemm_operand *a, const panel_b *b, float beta,
                                 const stacl_gemm_operand *c, size_t batch, size_t batch_inner, const epilogue *e) {
    const size_t items = div_up(m, GEMM_MR) * div_up(n, GEMM_NR) * batch;
    stacl_status st = check_u32(op, items);
    if (st != STACL_OK) return st;
    const stacl_gemm_operand b_batch = {b->mem, b->off, 0, b->stride, b->inner_stride};
    arg_list l = args_for(ctx, K_GEMM_ROWS);
    arg_mem(&l, a->mem); arg_u32(&l, a->off); arg_u32(&l, trans_a ? 1 : a->ld); arg_u32(&l, trans_a ? a->ld : 1);
    arg_batch(&l, a);
    arg_mem(&l, b->mem); arg_u32(&l, b->off); arg_u32(&l, b->panel); arg_u32(&l, b->col); arg_u32(&l, b->row);
    arg_batch(&l, &b_batch); arg_u32(&l, b->padded != 0);
    arg_mem(&l, c->mem); arg_u32(&l, c->off); arg_u32(&l, c->ld); arg_batch(&l, c);
    arg_u32(&l, m); arg_u32(&l, n); arg_u32(&l, k); arg_u32(&l, batch); arg_u32(&l, batch_inner);
    arg_f32(&l, alpha); arg_f32(&l, beta);
    /* Without an epilogue neither buffer is read: C stands in. */
    arg_mem(&l, e->bias ? e->bias : c->mem); arg_u32(&l, e->bias_off); arg_u32(&l, e->code);
    arg_mem(&l, e->pre ? e->pre : c->mem); arg_u32(&l, e->pre_off);
    return launch(ctx, op, &l, div_up(items, ctx->gemm_group) * ctx->gemm_group, ctx->gemm_group);
}

stacl_status stacl_gemm_rows(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             const stacl_gemm_operand *a, const stacl_gemm_operand *b, float beta,
                             const stacl_gemm_operand *c, size_t batch, size_t batch_inner) {
    stacl_status st = STACL_OK;
    const char *op = batch > 1 ? "gemm_batched" : "gemm";
    if (m == 0 || n == 0 || batch == 0) return STACL_OK;
    if (batch_inner == 0 || batch % batch_inner)
        return stacl_fail(STACL_ERR_INVALID_ARG, "%s: batch %zu is not a multiple of its inner count %zu", op, batch,
                          batch_inner);
    TRY(check_operand(ctx, op, "A", a, batch, batch_inner, trans_a ? k : m, trans_a ? m : k));
    TRY(check_operand(ctx, op, "B", b, batch, batch_inner, trans_b ? n : k, trans_b ? k : n));
    TRY(check_operand(ctx, op, "C", c, batch, batch_inner, m, n));
    if (!trans_a && trans_b) { /* a [m, k], b [n, k]: dot products along k */
        const size_t items = div_up(m, GEMM_DM) * div_up(n, GEMM_DN) * batch;
        TRY(check_u32(op, items));
        arg_list l = args_for(ctx, K_GEMM_ROWS_NT);
        arg_mem(&l, a->mem); arg_u32(&l, a->off); arg_u32(&l, a->ld); arg_batch(&l, a);
        arg_mem(&l, b->mem); arg_u32(&l, b->off); arg_u32(&l, b->ld); arg_batch(&l, b);
        arg_mem(&l, c->mem); arg_u32(&l, c->off); arg_u32(&l, c->ld); arg_batch(&l, c);
        arg_u32(&l, m); arg_u32(&l, n); arg_u32(&l, k); arg_u32(&l, batch); arg_u32(&l, batch_inner);
        arg_f32(&l, alpha); arg_f32(&l, beta);
        st = launch(ctx, op, &l, div_up(items, ctx->gemm_group) * ctx->gemm_group, ctx->gemm_group);
    } else {
        /* B(k, n) for the panel kernel: row-major [k, n] is read as
         * 32-wide vectors; [n, k] (with a transposed a) is gathered. */
        const size_t b_col = trans_b ? b->ld : 1;
        const panel_b pb = {b->mem, b->off, GEMM_NR * b_col, b_col, trans_b ? 1 : b->ld, b->stride, b->inner_stride, 0};
        const epilogue none = {NULL, NULL, 0, 0, 0};
        st = launch_panel(ctx, op, trans_a, m, n, k, alpha, a, &pb, beta, c, batch, batch_inner, &none);
    }
cleanup:
    return st;
}

stacl_status stacl_gemm_rows_call(stacl_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                                  cl_mem a, size_t a_off, size_t lda, size_t a_stride, cl_mem b, size_t b_off,
                                  size_t ldb, size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                  size_t c_stride, size_t batch) {
    const stacl_gemm_operand oa = {a, a_off, lda, a_stride, 0}, ob = {b, b_off, ldb, b_stride, 0},
                             oc = {c, c_off, ldc, c_stride, 0};
    return stacl_gemm_rows(ctx, trans_a, trans_b, m, n, k, alpha, &oa, &ob, beta, &oc, batch, 1);
}

size_t stacl_gemm_packed_floats(size_t out, size_t in) { return div_up(out, GEMM_NR) * GEMM_NR * in; }

static const stacl_packed_weight *find_packed(const stacl_ctx *ctx, cl_mem w, size_t w_off, size_t out, size_t in) {
    for (size_t i = 0; i < ctx->n_packed; i++) {
        const stacl_packed_weight *p = &ctx->packed[i];
        if (p->src == w && p->src_off == w_off && p->out == out && p->in == in) return p;
    }
    return NULL;
}

stacl_status stacl_gemm_pack_linear(stacl_ctx *ctx, cl_mem w, size_t w_off, size_t out, size_t in, cl_mem dst,
                                    size_t dst_off) {
    stacl_status st = STACL_OK;
    const size_t floats = stacl_gemm_packed_floats(out, in);
    TRY(check_u32("gemm_pack_panels", w_off + out * in));
    TRY(check_u32("gemm_pack_panels", dst_off + floats));
    if (!find_packed(ctx, w, w_off, out, in) && ctx->n_packed == ctx->cap_packed) {
        size_t cap = ctx->cap_packed ? 2 * ctx->cap_packed : 64;
        stacl_packed_weight *grown = realloc(ctx->packed, cap * sizeof *grown);
        if (!grown) return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "out of host memory (packed weight table)");
        ctx->packed = grown;
        ctx->cap_packed = cap;
    }
    arg_list l = args_for(ctx, K_GEMM_PACK_PANELS);
    arg_mem(&l, w); arg_u32(&l, w_off); arg_u32(&l, in);
    arg_mem(&l, dst); arg_u32(&l, dst_off); arg_u32(&l, out); arg_u32(&l, in);
    TRY(launch(ctx, "gemm_pack", &l, floats, 0));
    stacl_packed_weight *p = (stacl_packed_weight *)find_packed(ctx, w, w_off, out, in);
    if (!p) p = &ctx->packed[ctx->n_packed++];
    *p = (stacl_packed_weight){w, w_off, out, in, dst, dst_off};
cleanup:
    return st;
}

void stacl_gemm_forget_packed(stacl_ctx *ctx, cl_mem src) {
    size_t kept = 0;
    for (size_t i = 0; i < ctx->n_packed; i++)
        if (ctx->packed[i].src != src) ctx->packed[kept++] = ctx->packed[i];
    ctx->n_packed = kept;
}

stacl_status stacl_gemm_rows_linear(stacl_ctx *ctx, size_t rows, size_t in, size_t out, cl_mem x, size_t x_off,
                                    cl_mem w, size_t w_off, cl_mem bias, size_t bias_off, int act, cl_mem pre,
                                    size_t pre_off, cl_mem y, size_t y_off, int accumulate) {
    stacl_status st = STACL_OK;
    const stacl_packed_weight *p = find_packed(ctx, w, w_off, out, in);
    if (!p) { /* the dot-product kernel on the weight as stored, then the bias pass */
        TRY(stacl_gemm_rows_call(ctx, 0, 1, rows, out, in, 1.0f, x, x_off, in, 0, w, w_off, in, 0,
                                 accumulate ? 1.0f : 0.0f, y, y_off, out, 0, 1));
        if (bias && pre)
            TRY(stacl_op_bias_act_keep(ctx, (stacl_bias_act)act, rows, out, y, y_off, pre, pre_off, bias, bias_off));
        else if (bias)
            TRY(stacl_op_bias_act(ctx, (stacl_bias_act)act, rows, out, y, y_off, bias, bias_off));
        return STACL_OK;
    }
    if (rows == 0 || out == 0) return STACL_OK;
    const stacl_gemm_operand ox = {x, x_off, in, 0, 0}, oy = {y, y_off, out, 0, 0}, ob = {bias, bias_off, out, 0, 0},
                             op = {pre, pre_off, out, 0, 0};
    TRY(check_operand(ctx, "linear", "x", &ox, 1, 1, rows, in));
    TRY(check_operand(ctx, "linear", "y", &oy, 1, 1, rows, out));
    if (bias) TRY(check_operand(ctx, "linear", "bias", &ob, 1, 1, 1, out));
    if (pre) TRY(check_operand(ctx, "linear", "pre-activation", &op, 1, 1, rows, out));
    /* Packed panels [ceil(out/32)][in][32], zero past `out`. */
    const panel_b pb = {p->packed, p->packed_off, GEMM_NR * in, 1, GEMM_NR, 0, 0, 1};
    const epilogue e = {bias, bias && pre ? pre : NULL, bias ? bias_off : 0, bias && pre ? pre_off : 0,
                        (bias ? 1 + (size_t)act : 0) + (bias && pre ? 4 : 0)};
    st = launch_panel(ctx, "gemm", 0, rows, out, in, 1.0f, &ox, &pb, accumulate ? 1.0f : 0.0f, &oy, 1, 1, &e);
cleanup:
    return st;
}
