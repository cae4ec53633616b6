/* patch.cl: patch embedding around one GEMM. The conv with stride = kernel
 * = patch becomes im2col followed by cols x W^T; the tokens are then the
 * class embedding followed by the patches, plus positional embeddings. */

/* img: [frames, 3, size, size] -> cols: [frames * grid * grid, 3 * patch * patch]
 * with column index (c * patch + ky) * patch + kx, the order of the conv
 * weight [width, 3, patch, patch] flattened; patches in row-major grid order. */
__kernel void im2col_patches(__global const float *img, uint img_off, __global float *cols, uint cols_off,
                             uint frames, uint size, uint patch) {
    const size_t i = get_global_id(0);
    const uint grid = size / patch;
    const uint k = 3 * patch * patch;
    if (i >= (size_t)frames * grid * grid * k) return;
    const uint col = i % k;
    const size_t row = i / k;
    const uint kx = col % patch, ky = (col / patch) % patch, c = col / (patch * patch);
    const uint p = row % (grid * grid);
    const uint f = row / (grid * grid);
    const uint y = (p / grid) * patch + ky, x = (p % grid) * patch + kx;
    cols[cols_off + i] = img[img_off + (((size_t)f * 3 + c) * size + y) * size + x];
}

/* x[f, 0, :] = cls + pos[0]; x[f, 1 + p, :] = patches[f * P + p, :] + pos[1 + p].
 * patches: [frames * P, width]; cls: [width]; pos: [P + 1, width];
 * x: [frames, P + 1, width]. */
__kernel void assemble_tokens(__global const float *patches, uint patches_off,
                              __global const float *cls, uint cls_off,
                              __global const float *pos, uint pos_off,
                              __global float *x, uint x_off, uint frames, uint n_patches, uint width) {
    const size_t i = get_global_id(0);
    const uint tokens = n_patches + 1;
    if (i >= (size_t)frames * tokens * width) return;
    const uint c = i % width;
    const uint t = (i / width) % tokens;
    const uint f = i / ((size_t)width * tokens);
    const float v = t == 0 ? cls[cls_off + c] : patches[patches_off + ((size_t)f * n_patches + t - 1) * width + c];
    x[x_off + i] = v + pos[pos_off + (size_t)t * width + c];
}
