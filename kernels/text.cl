/* text.cl: the text tower's two gathers: token + positional embeddings for
 * rows of token ids, and one row per text (its <|endoftext|> position) for
 * pooling. Token ids are range-checked on the host before upload. */

/* x[n, t, :] = table[tokens[n * ctx + t], :] + pos[t, :].
 * tokens: [n, ctx] int32; table: [vocab, width]; pos: [ctx, width]. */
__kernel void embed_tokens(__global const int *tokens, uint tokens_off,
                           __global const float *table, uint table_off,
                           __global const float *pos, uint pos_off,
                           __global float *x, uint x_off, uint n, uint ctx, uint width) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n * ctx * width) return;
    const uint c = i % width;
    const size_t row = i / width; /* n * ctx + t */
    const uint t = row % ctx;
    const uint id = (uint)tokens[tokens_off + row];
    x[x_off + i] = table[table_off + (size_t)id * width + c] + pos[pos_off + (size_t)t * width + c];
}

/* y[r, :] = x[rows[r], :] for r < n; rows: int32 row indices into x. */
__kernel void gather_rows(__global const float *x, uint x_off, __global const int *rows, uint rows_off,
                          __global float *y, uint y_off, uint n, uint width) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)n * width) return;
    const uint c = i % width;
    const uint r = i / width;
    y[y_off + i] = x[x_off + (size_t)(uint)rows[rows_off + r] * width + c];
}
