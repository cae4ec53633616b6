/* launch.h: the kernel-launch helpers shared by the launchers of ops.c and
 * ops_backward.c (internal: static inline, no symbols of their own). */
#ifndef STACL_LAUNCH_H
#define STACL_LAUNCH_H

#include "ops.h"

/* Kernels take 32-bit offsets and sizes (cheaper index math on GPUs): refuse
 * anything larger rather than wrap. */
static inline stacl_status check_u32(const char *op, size_t value) {
    if (value > 0xffffffffu)
        return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: index %zu exceeds the 32-bit range of stacl's kernels", op, value);
    return STACL_OK;
}

/* Arguments are set in order; the first error is kept and reported by
 * launch() with the argument's index. */
typedef struct arg_list {
    cl_kernel kernel;
    cl_uint next;
    cl_int err;
} arg_list;

static inline void arg_mem(arg_list *a, cl_mem m) {
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->next, sizeof m, &m);
    a->next++;
}
static inline void arg_u32(arg_list *a, size_t v) {
    cl_uint u = (cl_uint)v;
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->next, sizeof u, &u);
    a->next++;
}
static inline void arg_u64(arg_list *a, uint64_t v) {
    cl_ulong u = (cl_ulong)v;
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->next, sizeof u, &u);
    a->next++;
}
static inline void arg_f32(arg_list *a, float v) {
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->next, sizeof v, &v);
    a->next++;
}
static inline void arg_local(arg_list *a, size_t bytes) {
    if (a->err == CL_SUCCESS) a->err = clSetKernelArg(a->kernel, a->next, bytes, NULL);
    a->next++;
}

static inline arg_list args_for(stacl_ctx *ctx, stacl_kernel_id id) {
    return (arg_list){ctx->kernels[id], 0, CL_SUCCESS};
}

/* 1-D launch of `global` work-items in groups of `local` (0: let the driver
 * choose, for element-wise kernels). */
static inline stacl_status launch(stacl_ctx *ctx, const char *op, arg_list *a, size_t global, size_t local) {
    if (!a->kernel) /* a program binary without this kernel (stacl_program_kernels) */
        return stacl_fail(STACL_ERR_UNSUPPORTED, "%s: the program binary loaded for device '%s' has no kernel for "
                          "this op", op, ctx->info.name);
    if (a->err != CL_SUCCESS) {
        stacl_status st = stacl_cl_fail(ctx, a->err, "clSetKernelArg");
        return stacl_fail_context(st, "%s (argument %u)", op, a->next);
    }
    if (global == 0) return STACL_OK;
    cl_event *ev = stacl_profile_slot(ctx, op);
    cl_int err = clEnqueueNDRangeKernel(ctx->queue, a->kernel, 1, NULL, &global, local ? &local : NULL, 0, NULL, ev);
    if (err != CL_SUCCESS) {
        stacl_profile_drop(ctx, ev);
        stacl_status st = stacl_cl_fail(ctx, err, "clEnqueueNDRangeKernel");
        return stacl_fail_context(st, "%s", op);
    }
    return STACL_OK;
}

#endif
