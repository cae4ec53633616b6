/* elementwise.cl: layout changes around attention. One work-item per
 * element of the output. */

/* qkv: [frames, tokens, 3, heads, head_dim] (the fused projection output)
 * -> q, k, v each [frames, heads, tokens, head_dim] at q_off/k_off/v_off,
 * q multiplied by q_scale (1/sqrt(head_dim)) on the way. */
__kernel void split_heads(__global const float *qkv, uint qkv_off, __global float *out,
                          uint q_off, uint k_off, uint v_off,
                          uint frames, uint tokens, uint heads, uint head_dim, float q_scale) {
    const size_t i = get_global_id(0);
    const size_t per = (size_t)frames * heads * tokens * head_dim;
    if (i >= per) return;
    const uint d = i % head_dim;
    const uint t = (i / head_dim) % tokens;
    const uint h = (i / ((size_t)head_dim * tokens)) % heads;
    const uint f = i / ((size_t)head_dim * tokens * heads);
    const size_t width = (size_t)heads * head_dim;
    const size_t src = qkv_off + ((size_t)f * tokens + t) * 3 * width + (size_t)h * head_dim + d;
    out[q_off + i] = qkv[src] * q_scale;
    out[k_off + i] = qkv[src + width];
    out[v_off + i] = qkv[src + 2 * width];
}

/* o: [frames, heads, tokens, head_dim] -> y: [frames, tokens, heads * head_dim]. */
__kernel void merge_heads(__global const float *o, uint o_off, __global float *y, uint y_off,
                          uint frames, uint tokens, uint heads, uint head_dim) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)frames * tokens * heads * head_dim) return;
    const uint d = i % head_dim;
    const uint h = (i / head_dim) % heads;
    const uint t = (i / ((size_t)head_dim * heads)) % tokens;
    const uint f = i / ((size_t)head_dim * heads * tokens);
    y[y_off + i] = o[o_off + (((size_t)f * heads + h) * tokens + t) * head_dim + d];
}
