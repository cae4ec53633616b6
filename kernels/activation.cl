/* activation.cl: bias add fused with the MLP activation. y: [rows, cols] at
 * y_off, updated in place; bias: [cols]. One work-item per element. */

__kernel void bias_add(__global float *y, uint y_off, __global const float *bias, uint bias_off,
                       uint rows, uint cols) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)rows * cols) return;
    y[y_off + i] += bias[bias_off + i % cols];
}

/* OpenAI CLIP's activation: x * sigmoid(1.702 x). */
__kernel void bias_quick_gelu(__global float *y, uint y_off, __global const float *bias, uint bias_off,
                              uint rows, uint cols) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)rows * cols) return;
    const float v = y[y_off + i] + bias[bias_off + i % cols];
    y[y_off + i] = v / (1.0f + exp(-1.702f * v));
}

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), for Hugging Face configs with
 * hidden_act "gelu". */
__kernel void bias_gelu(__global float *y, uint y_off, __global const float *bias, uint bias_off,
                        uint rows, uint cols) {
    const size_t i = get_global_id(0);
    if (i >= (size_t)rows * cols) return;
    const float v = y[y_off + i] + bias[bias_off + i % cols];
    y[y_off + i] = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
}
