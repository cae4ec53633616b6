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
