/* softmax.cl: numerically stable softmax over rows, in place, one work-group
 * per row (power-of-two local size chosen by the host). With causal_len > 0
 * the row r is the query at position r % causal_len and only keys 0..that
 * position take part (CLIP's text tower): the mask lives here, so no mask
 * buffer is ever materialised. */

/* x: [rows, cols] at x_off. */
__kernel void softmax_rows(__global float *x, uint x_off, uint cols, uint causal_len,
                           __local float *scratch) {
    const uint row = get_group_id(0);
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    __global float *xr = x + x_off + (size_t)row * cols;
    const uint valid = causal_len > 0 ? min(cols, row % causal_len + 1) : cols;

    float m = -INFINITY;
    for (uint c = lid; c < valid; c += n) m = fmax(m, xr[c]);
    m = workgroup_max(scratch, m);

    float partial = 0.0f;
    for (uint c = lid; c < valid; c += n) {
        const float e = exp(xr[c] - m);
        xr[c] = e;
        partial += e;
    }
    const float inv_sum = 1.0f / workgroup_sum(scratch, partial);
    for (uint c = lid; c < cols; c += n) xr[c] = c < valid ? xr[c] * inv_sum : 0.0f;
}

/* The same softmax with one work-item per row, 16 columns at a time: for CPU
 * devices, where a work-group per row costs a barrier per reduction (PoCL
 * runs a work-group's items as loops split at every barrier) and the
 * vector lanes are better spent along the row. rows: [rows, cols] at x_off.
 * Same masking; sums in 16 lanes, then across them (lanes_sum, reduce.cl). */
__kernel void softmax_rows_wide(__global float *x, uint x_off, uint rows, uint cols, uint causal_len) {
    const uint row = get_global_id(0);
    if (row >= rows) return;
    __global float *xr = x + x_off + (size_t)row * cols;
    const uint valid = causal_len > 0 ? min(cols, row % causal_len + 1) : cols;
    const uint full = valid / 16 * 16;

    float16 m16 = (float16)(-INFINITY);
    for (uint c = 0; c < full; c += 16) m16 = fmax(m16, vload16(0, xr + c));
    float m = lanes_max(m16);
    for (uint c = full; c < valid; c++) m = fmax(m, xr[c]);

    float16 s16 = (float16)(0.0f);
    for (uint c = 0; c < full; c += 16) {
        const float16 e = exp(vload16(0, xr + c) - m);
        vstore16(e, 0, xr + c);
        s16 += e;
    }
    float s = lanes_sum(s16);
    for (uint c = full; c < valid; c++) {
        const float e = exp(xr[c] - m);
        xr[c] = e;
        s += e;
    }
    const float inv_sum = 1.0f / s;
    for (uint c = 0; c < full; c += 16) vstore16(vload16(0, xr + c) * inv_sum, 0, xr + c);
    for (uint c = full; c < cols; c++) xr[c] = c < valid ? xr[c] * inv_sum : 0.0f;
}
