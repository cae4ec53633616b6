/* transformer.c: one pre-LN residual block (multi-head attention, MLP) on
 * the workspace, for both CLIP towers. GEMMs through gemm.c (CLBlast, or
 * stacl's own kernels with the bias and activation fused), the
 * rest through stacl's kernels (ops.c); the text tower's causal mask is
 * applied inside the softmax kernel, so no mask buffer exists. */
#include <math.h>

#include "ops_backward.h"
#include "transformer.h"

/* Attention on stacl's GEMM engine without the per-head copies: q k^T reads
 * q and k of (sequence s, head h) in place in qkv [S, L, 3W] (rows 3W apart,
 * at s L 3W + h D and + W), scaled by 1/sqrt(D) as alpha (split_heads
 * scales q instead: the same product up to rounding); p v reads v at + 2W
 * and writes head h's output straight into columns h D.. of h [S, L, W]. */
static stacl_status attention_from_qkv(stacl_ctx *ctx, const stacl_block_dims *d, const stacl_block_ws *w) {
    stacl_status st = STACL_OK;
    const size_t S = d->seqs, L = d->len, W = d->width, H = d->heads, D = W / H;
    const stacl_gemm_operand q = {w->ws, w->qkv, 3 * W, L * 3 * W, D}, k = {w->ws, w->qkv + W, 3 * W, L * 3 * W, D},
                             v = {w->ws, w->qkv + 2 * W, 3 * W, L * 3 * W, D},
                             scores = {w->ws, w->scores, L, H * L * L, L * L}, out = {w->ws, w->h, W, L * W, D};
    TRY(stacl_gemm_rows(ctx, 0, 1, L, L, D, 1.0f / sqrtf((float)D), &q, &k, 0.0f, &scores, S * H, H));
    TRY(stacl_op_softmax(ctx, S * H * L, L, d->causal ? L : 0, w->ws, w->scores));
    TRY(stacl_gemm_rows(ctx, 0, 0, L, D, L, 1.0f, &scores, &v, 0.0f, &out, S * H, H));
cleanup:
    return st;
}

stacl_status stacl_block_forward(stacl_ctx *ctx, const stacl_block_dims *d, cl_mem pm, const vision_block_offsets *b,
                                 const stacl_block_ws *w) {
    return stacl_block_forward_hooked(ctx, d, pm, b, w, NULL, NULL);
}

stacl_status stacl_block_forward_hooked(stacl_ctx *ctx, const stacl_block_dims *d, cl_mem pm,
                                        const vision_block_offsets *b, const stacl_block_ws *w,
                                        stacl_block_hook hook, void *user) {
    stacl_status st = STACL_OK;
    cl_mem ws = w->ws;
    const size_t F = d->seqs, L = d->len, W = d->width, M = d->mlp, H = d->heads, D = W / H, rows = F * L;

    /* Attention. */
    if (hook) TRY(hook(user, STACL_HOOK_PRE_ATTN));
    TRY(stacl_op_layernorm(ctx, rows, W, d->eps, ws, w->x, W, ws, w->h, W, pm, b->ln1_w, b->ln1_b));
    TRY(stacl_linear_bias(ctx, rows, W, 3 * W, ws, w->h, pm, b->qkv_w, pm, b->qkv_b, STACL_BIAS_ONLY, ws, w->qkv,
                          0)); /* [F*L, 3W] */
    if (ctx->gemm_rows && !w->keep_heads) {
        TRY(attention_from_qkv(ctx, d, w));
    } else {
        TRY(stacl_op_split_heads(ctx, F, L, H, D, 1.0f / sqrtf((float)D), ws, w->qkv, ws, w->q, w->k, w->v));
        /* scores[b] = q[b] k[b]^T for every (sequence, head) b: [L, L]. */
        TRY(stacl_gemm_batched(ctx, 0, 1, L, L, D, 1.0f, ws, w->q, D, L * D, ws, w->k, D, L * D, 0.0f, ws, w->scores,
                               L, L * L, F * H));
        /* Row r of the [F*H*L, L] scores is query position r % L. */
        TRY(stacl_op_softmax(ctx, F * H * L, L, d->causal ? L : 0, ws, w->scores));
        /* attn[b] = scores[b] v[b]: [L, D]. */
        TRY(stacl_gemm_batched(ctx, 0, 0, L, D, L, 1.0f, ws, w->scores, L, L * L, ws, w->v, D, L * D, 0.0f, ws,
                               w->attn, D, L * D, F * H));
        TRY(stacl_op_merge_heads(ctx, F, L, H, D, ws, w->attn, ws, w->h)); /* [F*L, W] */
    }
    TRY(stacl_linear_bias(ctx, rows, W, W, ws, w->h, pm, b->out_w, pm, b->out_b, STACL_BIAS_ONLY, ws, w->x,
                          1)); /* x += h Wo^T + bo */

    /* MLP. */
    if (hook) TRY(hook(user, STACL_HOOK_PRE_MLP));
    TRY(stacl_op_layernorm(ctx, rows, W, d->eps, ws, w->x, W, ws, w->h, W, pm, b->ln2_w, b->ln2_b));
    const stacl_bias_act act = d->act == STACL_ACT_GELU ? STACL_BIAS_GELU : STACL_BIAS_QUICK_GELU;
    if (w->mlp_pre) /* training keeps the pre-activation for the backward */
        TRY(stacl_linear_bias_keep(ctx, rows, W, M, ws, w->h, pm, b->fc1_w, pm, b->fc1_b, act, ws, w->mlp_pre, ws,
                                   w->mlp)); /* [F*L, M] */
    else
        TRY(stacl_linear_bias(ctx, rows, W, M, ws, w->h, pm, b->fc1_w, pm, b->fc1_b, act, ws, w->mlp, 0));
    TRY(stacl_linear_bias(ctx, rows, M, W, ws, w->mlp, pm, b->fc2_w, pm, b->fc2_b, STACL_BIAS_ONLY, ws, w->x,
                          1)); /* x += mlp W2^T + b2 */
cleanup:
    return st;
}
