/* reduce.cl: reductions shared by the row kernels (across a work-group, and
 * across the lanes of one vector). Embedded first,
 * since all kernel files are compiled as one program. The local size is a
 * power of two chosen by the host from what the device reports; the tree
 * order is fixed, so a given local size always gives the same bits. */

/* Sum of `value` over the work-group. */
float workgroup_sum(__local float *scratch, float value) {
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s /= 2) {
        if (lid < s) scratch[lid] += scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE); /* scratch is reused by the next call */
    return total;
}

/* Max of `value` over the work-group. */
float workgroup_max(__local float *scratch, float value) {
    const uint lid = get_local_id(0);
    const uint n = get_local_size(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = n / 2; s > 0; s /= 2) {
        if (lid < s) scratch[lid] = fmax(scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float m = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return m;
}


/* Max and sum across the 16 lanes of a vector, by a fixed tree: lanes 0-7
 * with 8-15, then 0-3 with 4-7, then 0-1 with 2-3, then 0 with 1. */
inline float lanes_max(float16 v) {
    const float8 a = fmax(v.lo, v.hi);
    const float4 b = fmax(a.lo, a.hi);
    const float2 c = fmax(b.lo, b.hi);
    return fmax(c.x, c.y);
}
inline float lanes_sum(float16 v) {
    const float8 a = v.lo + v.hi;
    const float4 b = a.lo + a.hi;
    const float2 c = b.lo + b.hi;
    return c.x + c.y;
}
