/* train_internal.h: the trainer's state, shared by train.c (forward with
 * saved activations, backward through the frozen backbone, the head and
 * its loss) and train_optim.c (AdamW, gradient clipping, optimizer state
 * files). */
#ifndef STACL_TRAIN_INTERNAL_H
#define STACL_TRAIN_INTERNAL_H

#include "adapter.h"
#include "ops.h"
#include "vit_internal.h"

/* What the backward pass of one block needs from its forward, as workspace
 * offsets: the inputs of both layer norms (mean and variance are
 * recomputed from them), the attention's q (scaled), k, v and
 * probabilities, the MLP's pre-activation, and each adapter's input and
 * bottleneck activations. Frozen weights get no gradient, so no input of a
 * frozen GEMM is kept. */
typedef struct block_tape {
    size_t x_attn;        /* [F, L, W] ln_1 input (after adapter_pre_attn) */
    size_t q, k, v;       /* [F, H, L, D] */
    size_t p;             /* [F*H, L, L] softmax output */
    size_t x2;            /* [F, L, W] residual after attention (adapter_pre_mlp input) */
    size_t x_mlp;         /* [F, L, W] ln_2 input (after adapter_pre_mlp) */
    size_t u;             /* [F, L, M] MLP pre-activation */
    size_t ha, ya, hm, ym;/* [F, P, A] fc1 / conv outputs of the two adapters */
} block_tape;

struct stacl_trainer {
    stacl_adapter *ad;
    stacl_model *model;
    stacl_train_options opt;
    int max_clips, T;
    int first;               /* first block with an adapter (layers: none) */
    workspace_plan plan;     /* the inference regions, reused as backward scratch */
    size_t g;                /* [F, L, W] gradient of the residual stream */
    size_t *block_in;        /* [layers - first] each trained block's input */
    block_tape *tapes;       /* one per trained block, or one (recompute) */
    int n_tapes;
    size_t ws_floats;
    cl_mem ws;
    cl_mem grad;             /* adapter-layout gradients of the adapters (device) */
    /* Host side: master parameters, the head's gradients, AdamW moments. */
    float *params, *grad_host, *m, *v, *scratch;
    double *scratch_d;       /* the head's host scratch */
    unsigned char *decay;    /* per parameter: weight decay applies */
    float *ln_post;          /* [2, W] gamma, beta of the frozen ln_post */
    long long steps;
    struct stacl_st_file *state_file; /* the last loaded state (metadata) */
    /* Fixed-point adapters (train_fixed.c): weight-gradient accumulators
     * (int64), the scale slots (int32), the micro-batch count within the
     * current step (keys stochastic rounding). */
    cl_mem fx_acc, fx_slots;
    unsigned fx_micro;
    stacl_op_time times[STACL_PROFILE_MAX_OPS];
    int n_times;
    double last_ms;
};

/* train_fixed.c: buffers of the fixed-point path (none for a float
 * adapter); the backward pass of one fixed-point site (as train.c's
 * adapter_backward; site_index = 2 * block + (pre-MLP)); the integer
 * weights after an optimizer step (from the fp32 master in t->params, or
 * stochastically rounded into t->params without one). */
stacl_status stacl_trainer_fx_init(stacl_trainer *t);
stacl_status stacl_trainer_fx_site_backward(stacl_trainer *t, const adapter_site *s, int site_index, size_t x_in,
                                            size_t h, size_t y, size_t clips);
stacl_status stacl_trainer_fx_requantize(stacl_trainer *t);

/* train_optim.c: fills t->decay and the host copies at creation. */
stacl_status stacl_trainer_optim_init(stacl_trainer *t);

/* The accumulated gradients, laid out as the adapter's buffer (host). */
stacl_status stacl_trainer_gradients(const stacl_trainer *t, float *out);

/* The factor clip_grad_norm_ scales gradients by (1 when max_norm <= 0). */
float stacl_clip_coef(double norm, float max_norm);
/* One AdamW step (PyTorch's arithmetic) on n parameters: g times coef is
 * the gradient; decay[i] != 0 applies the decoupled weight decay; step is
 * 1 for the first update. */
void stacl_adamw_update(size_t n, float *p, const float *g, float *m, float *v, const unsigned char *decay,
                        long long step, float lr, float coef, const stacl_train_options *o);

#endif
