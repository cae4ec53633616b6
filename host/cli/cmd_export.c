/* cmd_export.c: `stacl export --fixed-point`: converts a float ST-Adapter
 * checkpoint into an integer one (docs/file-formats.md, "Fixed-point
 * adapter checkpoints"), rounding half to even. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "status.h"

static void usage(void) {
    printf("usage: stacl export --fixed-point q8.8|q4.12|int8[/qI.F] --model DIR --adapter IN.safetensors\n"
           "                    --out OUT.safetensors [--device D]\n\n"
           "Converts a float adapter checkpoint (from 'stacl train' or models/convert_st_adapter.py) to fixed\n"
           "point: fc1, conv and fc2 of every adapter become integer tensors (qI.F: int16 with F fractional\n"
           "bits; int8: 8-bit with a power-of-two scale per output channel; biases int32 at their\n"
           "accumulator's scale), each with a '<name>_frac' tensor giving its fractional bits; the head stays\n"
           "F32. Values round half to even and saturate. The output loads with --adapter wherever a float\n"
           "checkpoint does and then runs the adapters in integer kernels (activations q8.8, or qI.F after a\n"
           "slash: int8/q5.11). --model gives\n"
           "the backbone the adapter belongs to (its shapes are checked).\n");
}

int cmd_export(int argc, char **argv) {
    static const cli_opt opts[] = {{"--fixed-point", 1}, {"--model", 1}, {"--adapter", 1},
                                   {"--out", 1},         {"--device", 1}, {"--help", 0}};
    cli_args a = {argc, argv, 1, "export", 0};
    const char *format = NULL, *model_path = NULL, *in = NULL, *out = NULL, *device = NULL, *value;
    int k;
    while ((k = cli_next(&a, opts, 6, &value)) >= 0) {
        switch (k) {
        case 0: format = value; break;
        case 1: model_path = value; break;
        case 2: in = value; break;
        case 3: out = value; break;
        case 4: device = value; break;
        case 5: usage(); return 0;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!format || !model_path || !in || !out)
        return cli_usage_error("export", "--fixed-point, --model, --adapter and --out are required (see --help)");
    if (stacl_adapter_fixed_format_check(format) != STACL_OK)
        return cli_usage_error("export", "--fixed-point: %s", stacl_last_error());
    if (!cli_check_writable("export", out)) return CLI_EXIT_FAILURE;
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_adapter *ad = NULL;
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st == STACL_OK) st = stacl_model_load(&model, ctx, model_path);
    if (st == STACL_OK) st = stacl_adapter_load(&ad, model, in);
    if (st == STACL_OK && stacl_adapter_fixed_point(ad))
        st = stacl_fail(STACL_ERR_INVALID_ARG, "%s is already a fixed-point (%s) checkpoint", in,
                        stacl_adapter_fixed_point(ad));
    if (st == STACL_OK) st = stacl_adapter_set_fixed_point(ad, format);
    if (st == STACL_OK) st = stacl_adapter_save(ad, out);
    int rc = 0;
    if (st != STACL_OK) {
        rc = cli_fail("export", st);
    } else {
        stacl_adapter_info info;
        stacl_adapter_get_info(ad, &info);
        fprintf(stderr, "wrote %s: %d pre-attention + %d pre-MLP adapters in fixed point %s%s, %s head\n", out,
                info.n_pre_attn, info.n_pre_mlp, format, strchr(format, '/') ? "" : " (activations q8.8)",
                info.classes ? "float" : "no");
    }
    stacl_adapter_free(ad);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    return rc;
}
