/* cmd_gen_model.c: `stacl gen-model`: writes a random CLIP model in the real
 * file layouts (no weights can be downloaded on CI machines). */
#include <string.h>

#include "cli.h"
#include "random_clip.h"

static void usage(void) {
    printf("usage: stacl gen-model --out DIR [--preset vit-b16|small|tiny] [--layout openai|hf]\n"
           "                       [--width N] [--layers N] [--heads N] [--mlp-width N] [--patch N]\n"
           "                       [--image-size N] [--proj-dim N] [--act quick_gelu|gelu] [--f16] [--seed N]\n"
           "                       [--text] [--text-width N] [--text-layers N]\n\n"
           "Writes DIR/model.safetensors (+ DIR/config.json for --layout hf) with random weights.\n\n"
           "  --preset      vit-b16: CLIP ViT-B/16 shapes (768 wide, 12 layers, 224 px, proj 512; default)\n"
           "                small:   192 wide, 4 layers, 3 heads, patch 16, 224 px, proj 128 (the demo's)\n"
           "                tiny:    64 wide, 2 layers, 1 head, patch 8, 32 px, proj 32\n"
           "  --layout      openai: visual.* names, heads = width/64 (default); hf: vision_model.* + config.json\n"
           "  --proj-dim 0  no projection (Hugging Face CLIPVisionModel)\n"
           "  --act         MLP activation (hf layout only; OpenAI CLIP is quick_gelu)\n"
           "  --f16         store weights as F16, as OpenAI's checkpoints do\n"
           "  --seed N      random seed (default 0); same seed, same bytes\n"
           "  --text        also write CLIP's text tower (context 77, vocabulary 49408, heads = width/64):\n"
           "                width 512 and 12 layers for vit-b16, 128 and 2 for small, 64 and 1 for tiny\n"
           "  --text-width N, --text-layers N   its size (width a multiple of 64; implies --text)\n");
}

int cmd_gen_model(int argc, char **argv) {
    static const cli_opt opts[] = {{"--out", 1}, {"--preset", 1}, {"--layout", 1}, {"--width", 1}, {"--layers", 1},
                                   {"--heads", 1}, {"--mlp-width", 1}, {"--patch", 1}, {"--image-size", 1},
                                   {"--proj-dim", 1}, {"--act", 1}, {"--f16", 0}, {"--seed", 1}, {"--help", 0},
                                   {"--text", 0}, {"--text-width", 1}, {"--text-layers", 1}};
    const int n_opts = (int)(sizeof opts / sizeof opts[0]);
    cli_args a = {argc, argv, 1, "gen-model", 0};
    const char *out = NULL, *value;
    stacl_random_clip_spec spec = stacl_random_clip_default_spec();
    /* The preset sets the base; explicit sizes then override it, in any order. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--preset") == 0 && !stacl_random_clip_preset(argv[i + 1], &spec))
            return cli_usage_error("gen-model", "unknown preset '%s' (vit-b16, small, tiny)", argv[i + 1]);
    int k, seed = 0, text = 0, text_layers = 0;
    while ((k = cli_next(&a, opts, n_opts, &value)) >= 0) {
        int ok = 1;
        switch (k) {
        case 0: out = value; break;
        case 1:
            if (!stacl_random_clip_preset(value, &(stacl_random_clip_spec){0}))
                return cli_usage_error("gen-model", "unknown preset '%s' (vit-b16, small, tiny)", value);
            break;
        case 2:
            if (strcmp(value, "openai") == 0) spec.layout = STACL_LAYOUT_OPENAI;
            else if (strcmp(value, "hf") == 0) spec.layout = STACL_LAYOUT_HF;
            else return cli_usage_error("gen-model", "--layout must be openai or hf, got '%s'", value);
            break;
        case 3: ok = cli_int("gen-model", "--width", value, 1, 16384, &spec.width); break;
        case 4: ok = cli_int("gen-model", "--layers", value, 1, 256, &spec.layers); break;
        case 5: ok = cli_int("gen-model", "--heads", value, 1, 1024, &spec.heads); break;
        case 6: ok = cli_int("gen-model", "--mlp-width", value, 1, 65536, &spec.mlp_width); break;
        case 7: ok = cli_int("gen-model", "--patch", value, 1, 1024, &spec.patch); break;
        case 8: ok = cli_int("gen-model", "--image-size", value, 1, 8192, &spec.image_size); break;
        case 9: ok = cli_int("gen-model", "--proj-dim", value, 0, 65536, &spec.proj_dim); break;
        case 10:
            if (strcmp(value, "quick_gelu") == 0) spec.act = STACL_ACT_QUICK_GELU;
            else if (strcmp(value, "gelu") == 0) spec.act = STACL_ACT_GELU;
            else return cli_usage_error("gen-model", "--act must be quick_gelu or gelu, got '%s'", value);
            break;
        case 11: spec.f16 = 1; break;
        case 12: ok = cli_int("gen-model", "--seed", value, 0, 2147483647, &seed); spec.seed = (uint64_t)seed; break;
        case 13: usage(); return 0;
        case 14: text = 1; break;
        case 15: text = 1; ok = cli_int("gen-model", "--text-width", value, 64, 16384, &spec.text_width); break;
        case 16: text = 1; ok = cli_int("gen-model", "--text-layers", value, 1, 256, &text_layers); break;
        }
        if (!ok) return CLI_EXIT_USAGE;
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!out) return cli_usage_error("gen-model", "--out DIR is required");
    if (text) spec.text_layers = text_layers ? text_layers : spec.text_width >= 512 ? 12 : spec.text_width >= 128 ? 2 : 1;
    printf("writing a random %s-layout model to %s: width %d, %d layers, %d heads, MLP %d, patch %d, image %d, "
           "proj %d ...\n", spec.layout == STACL_LAYOUT_HF ? "hf" : "openai", out, spec.width, spec.layers, spec.heads,
           spec.mlp_width, spec.patch, spec.image_size, spec.proj_dim);
    if (spec.text_layers)
        printf("  with a text tower: width %d, %d layers, %d heads, context %d, vocabulary %d\n", spec.text_width,
               spec.text_layers, spec.text_width / 64, spec.text_context, spec.text_vocab);
    fflush(stdout);
    double t0 = cli_now_ms();
    stacl_status st = stacl_random_clip_write(out, &spec);
    if (st != STACL_OK) return cli_fail("gen-model", st);
    printf("done in %.1f s\n", (cli_now_ms() - t0) / 1000.0);
    return 0;
}
