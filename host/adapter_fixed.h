/* adapter_fixed.h: an adapter whose fc1, depthwise conv and fc2 are held
 * and run in fixed point (docs/fpga.md, "Fixed-point training"): the
 * integer weights, their formats, the conversion from and to float, the
 * integer checkpoint format, and the forward of one site through the
 * integer kernels with the float residual stream around them.
 *
 * Formats (stacl_adapter_set_fixed_point):
 *   "q4.12", "q8.8", ... 16-bit weights with that many fractional bits;
 *   "int8"  8-bit weights, a power-of-two scale per output channel;
 * optionally followed by "/qI.F" for the activations (the adapter's input
 * x, h = fc1(x), y = conv(h)), q8.8 by default;
 * biases are int32 at their accumulator's scale. The head (fc) stays float.
 *
 * The float parameter buffer of the adapter keeps mirroring the integer
 * weights' values (dequantized) unless a trainer holds an fp32 master copy
 * there; the integer buffers are what the kernels use. */
#ifndef STACL_ADAPTER_FIXED_H
#define STACL_ADAPTER_FIXED_H

#include "adapter.h"
#include "fixed_point.h"

#define STACL_FX_ACT_FRAC 8 /* q8.8 activations unless the format says */

typedef enum { STACL_FX_Q16 = 1, STACL_FX_INT8 = 2 } stacl_fx_kind;

typedef struct adapter_fixed {
    stacl_fx_kind kind;
    char name[16];       /* "q4.12", "int8" */
    int frac_w;          /* Q16: the weights' fractional bits */
    int frac_act;        /* activations x, h, y (default STACL_FX_ACT_FRAC) */
    /* Per weight tensor and output channel (INT8), at the tensor's offset
     * + channel; per tensor (Q16, INT8 biases and the common int16 grid
     * of INT8 weights) at the tensor's offset. Indexed like params. */
    int8_t *frac;        /* [total] */
    int16_t *qw;         /* [total] int16 weights as the kernels read them */
    int32_t *qb;         /* [total] int32 biases (bias offsets only) */
    int8_t *w8;          /* [total] INT8: the stored 8-bit values */
    cl_mem dqw, dqb;     /* device copies of qw, qb */
} adapter_fixed;

/* The int16-kernel format of one site (activations q8.8, its weights' frac). */
stacl_fx_format stacl_fx_site_format(const stacl_adapter *ad, const adapter_site *s);

/* Parses "WEIGHTS[/ACTIVATIONS]": WEIGHTS "q4.12" / "q8.8" / ... (integer
 * bits + fractional bits = 16) or "int8", ACTIVATIONS "qI.F" (I + F = 16,
 * default q8.8), into kind, frac_w, frac_act; STACL_ERR_INVALID_ARG
 * otherwise. */
stacl_status stacl_fx_parse(const char *name, stacl_fx_kind *kind, int *frac_w, int *frac_act);

/* Quantizes the float parameters of every adapter site (not the head) into
 * ad->fx (allocated on first use), choosing INT8 channel scales from the
 * values. Round half to even, or stochastic (sr != NULL: seeded by
 * sr->seed, sr->step, tensor index, element index). With mirror != NULL
 * the dequantized values are written there (it may be `params`). Uploads
 * the integer buffers. */
struct stacl_fx_sr;
stacl_status stacl_fx_quantize_params(stacl_adapter *ad, const float *params, const struct stacl_fx_sr *sr,
                                      float *mirror);

/* Runs one site in fixed point on the residual stream x [F, 1 + P, W]
 * (float) of ws: xq (int16 [F, 1 + P, W], at float offset xq, i.e. short
 * offset 2 xq) = quantize(x); h, y (int16 [F, P, A] at float offsets h, y);
 * x += dequantize(fc2 update). */
stacl_status stacl_fx_run_site(const stacl_adapter *ad, const adapter_site *s, cl_mem ws, size_t x, size_t h,
                               size_t y, size_t xq, size_t clips, size_t T);

/* Integer checkpoints: every adapter tensor as I16/I8 (weights) or I32
 * (biases) with a companion "<name>_frac" I8 tensor (per output channel for
 * INT8 weights, one value otherwise), the head as F32; metadata
 * "stacl_fixed_point" = the format name. */
int stacl_fx_is_checkpoint(const struct stacl_st_file *f);
stacl_status stacl_fx_read_checkpoint(stacl_adapter *ad, const struct stacl_st_file *f, float *host);
stacl_status stacl_fx_write_checkpoint(const stacl_adapter *ad, const float *head_params, const char *path);

void stacl_fx_free(adapter_fixed *fx);

#endif
