/* reduce.cl: work-group reductions shared by the row kernels. Embedded first,
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

