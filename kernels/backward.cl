/* backward.cl: what training needs of the frozen backbone's own kernels:
 * the forward variant that keeps the MLP's pre-activation, and the input
 * gradients of the activation, layer norm, softmax and attention head
 * layouts (no weight gradients: the backbone is frozen). Row reductions use
 * one work-group per row with reduce.cl's fixed tree (local size chosen by
 * the host, ctx->reduce_wg); the rest one work-item per output element.
 * Every output element is written by one work-item: no atomics, the same
 * bits on every run. */

/* stacl_bias_act's values (ops.h). */
#define ACT_BIAS_ONLY 0u
#define ACT_QUICK_GELU 1u
#define ACT_GELU 2u

/* u = y + bias (kept for act_backward), y = act(u) in place. The
 * activations are written exactly as activation.cl's, so y has the same bits
 * as stacl_op_bias_act would give. y, u: [rows, cols]; bias: [cols]. */
__kernel void bias_act_keep(__global float *y, uint y_off, __global float *u, uint u_off,
                            __global const float *bias, uint bias_off, uint rows, uint cols, uint act) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)rows * cols) return;
    const float v = y[y_off + i] + bias[bias_off + i % cols];
    float out = v;
    if (act == ACT_QUICK_GELU) out = v / (1.0f + exp(-1.702f * v));
    else if (act == ACT_GELU) out = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
    u[u_off + i] = v;
    y[y_off + i] = out;
}

/* dg[i] *= act'(u[i]) in place.
 * QuickGELU f = v s, s = sigmoid(1.702 v): f' = s + 1.702 v s (1 - s)
 * (s saturates to exactly 0 or 1 for large |v|, where f' -> 0 or 1, no NaN).
 * GELU f = v Phi(v): f' = Phi(v) + v phi(v), phi the normal density. */
__kernel void act_backward(__global const float *u, uint u_off, __global float *dg, uint dg_off, uint n,
                           uint act) {
    const size_t i = get_global_id(0);
    if (i >= n) return;
    const float v = u[u_off + i];
    float d = 1.0f;
    if (act == ACT_QUICK_GELU) {
        const float s = 1.0f / (1.0f + exp(-1.702f * v));
        d = s + 1.702f * v * s * (1.0f - s);
    } else if (act == ACT_GELU) {
        d = 0.5f * (1.0f + erf(v * 0.70710678118654752f)) + v * 0.39894228040143268f * exp(-0.5f * v * v);
    }
    dg[dg_off + i] *= d;
}

/* LayerNorm backward, one work-group per row, ADDING into dx:
 *   dx += rstd * (g - mean(g) - xhat * mean(g xhat)),  g = dy gamma,
 * with mean and rstd recomputed from x by the forward's own two passes (so
 * xhat is the forward's), then one pass for both sums of g. Rows of x, dy,
 * dx are x_stride, dy_stride, dx_stride apart. */
__kernel void layernorm_backward_rows(__global const float *x, uint x_off, uint x_stride,
                                      __global const float *gamma, uint gamma_off,
                                      __global const float *dy, uint dy_off, uint dy_stride,
                                      __global float *dx, uint dx_off, uint dx_stride,
                                      uint cols, float eps, __local float *scratch) {
    const uint row = get_group_id(0);
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    __global const float *xr = x + x_off + (size_t)row * x_stride;
    __global const float *dyr = dy + dy_off + (size_t)row * dy_stride;
    __global float *dxr = dx + dx_off + (size_t)row * dx_stride;
    __global const float *gm = gamma + gamma_off;

    float partial = 0.0f;
    for (uint c = lid; c < cols; c += n) partial += xr[c];
    const float mean = workgroup_sum(scratch, partial) / (float)cols;
    partial = 0.0f;
    for (uint c = lid; c < cols; c += n) {
        const float d = xr[c] - mean;
        partial += d * d;
    }
    const float inv_std = rsqrt(workgroup_sum(scratch, partial) / (float)cols + eps);

    float pg = 0.0f, pgx = 0.0f;
    for (uint c = lid; c < cols; c += n) {
        const float g = dyr[c] * gm[c];
        pg += g;
        pgx += g * ((xr[c] - mean) * inv_std);
    }
    const float mg = workgroup_sum(scratch, pg) / (float)cols;
    const float mgx = workgroup_sum(scratch, pgx) / (float)cols;
    for (uint c = lid; c < cols; c += n) {
        const float g = dyr[c] * gm[c];
        const float xhat = (xr[c] - mean) * inv_std;
        dxr[c] += inv_std * (g - mg - xhat * mgx);
    }
}

/* Softmax backward in place, one work-group per row:
 *   dp = p (dp - sum_j p_j dp_j).
 * Masked entries (p = 0, the causal mask) come out 0 (given a finite dp). */
__kernel void softmax_backward_rows(__global const float *p, uint p_off, __global float *dp, uint dp_off,
                                    uint cols, __local float *scratch) {
    const uint row = get_group_id(0);
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    __global const float *pr = p + p_off + (size_t)row * cols;
    __global float *dr = dp + dp_off + (size_t)row * cols;
    float partial = 0.0f;
    for (uint c = lid; c < cols; c += n) partial += pr[c] * dr[c];
    const float s = workgroup_sum(scratch, partial);
    for (uint c = lid; c < cols; c += n) dr[c] = pr[c] * (dr[c] - s);
}

/* y [frames, tokens, heads * head_dim] -> o [frames, heads, tokens, head_dim]
 * (merge_heads undone), one work-item per element of o. */
__kernel void split_merged(__global const float *y, uint y_off, __global float *o, uint o_off, uint frames,
                           uint tokens, uint heads, uint head_dim) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)frames * heads * tokens * head_dim) return;
    const uint d = i % head_dim;
    const uint t = (i / head_dim) % tokens;
    const uint h = (i / ((size_t)head_dim * tokens)) % heads;
    const uint f = i / ((size_t)head_dim * tokens * heads);
    o[o_off + i] = y[y_off + (((size_t)f * tokens + t) * heads + h) * head_dim + d];
}

/* dq, dk, dv [frames, heads, tokens, head_dim] (offsets in g) -> dqkv
 * [frames, tokens, 3, heads, head_dim], dq times q_scale: the adjoint of
 * split_heads. One work-item per element of dqkv (contiguous writes). */
__kernel void join_heads(__global const float *g, uint dq_off, uint dk_off, uint dv_off, __global float *dqkv,
                         uint dqkv_off, uint frames, uint tokens, uint heads, uint head_dim, float q_scale) {
    const size_t i = get_global_id(0);
    const size_t width = (size_t)heads * head_dim;
    if (i >= (size_t)frames * tokens * 3 * width) return;
    const uint d = i % head_dim;
    const uint h = (i / head_dim) % heads;
    const uint which = (i / width) % 3;
    const size_t ft = i / (3 * width);
    const uint t = ft % tokens;
    const size_t f = ft / tokens;
    const size_t src = ((f * heads + h) * tokens + t) * head_dim + d;
    dqkv[dqkv_off + i] = which == 0 ? g[dq_off + src] * q_scale : which == 1 ? g[dk_off + src] : g[dv_off + src];
}
