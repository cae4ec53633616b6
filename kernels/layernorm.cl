/* layernorm.cl: LayerNorm over the last dimension, one work-group per row,
 * with reduce.cl's deterministic tree. Two passes (mean, then the centred
 * variance) for accuracy. */

/* y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta
 * x: rows of `cols` values, row r at x_off + r * x_stride (allows reading the
 * class token of every frame straight out of the residual stream).
 * y: row r at y_off + r * y_stride. */
__kernel void layernorm_rows(__global const float *x, uint x_off, uint x_stride,
                             __global float *y, uint y_off, uint y_stride,
                             __global const float *gamma, uint gamma_off,
                             __global const float *beta, uint beta_off,
                             uint cols, float eps, __local float *scratch) {
    const uint row = get_group_id(0);
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    __global const float *xr = x + x_off + (size_t)row * x_stride;
    __global float *yr = y + y_off + (size_t)row * y_stride;

    float partial = 0.0f;
    for (uint c = lid; c < cols; c += n) partial += xr[c];
    const float mean = workgroup_sum(scratch, partial) / (float)cols;

    partial = 0.0f;
    for (uint c = lid; c < cols; c += n) {
        const float d = xr[c] - mean;
        partial += d * d;
    }
    const float var = workgroup_sum(scratch, partial) / (float)cols;
    const float inv_std = rsqrt(var + eps);

    for (uint c = lid; c < cols; c += n)
        yr[c] = (xr[c] - mean) * inv_std * gamma[gamma_off + c] + beta[beta_off + c];
}
