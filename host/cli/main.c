/* main.c: the stacl command-line tool: dispatches to one command per file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl.h>
#include <clblast_c.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"devices", cmd_devices, "list OpenCL platforms and devices"},
    {"forward", cmd_forward, "run the CLIP vision tower (or, with --adapter, an ST-Adapter classifier) on frames"},
    {"gen-model", cmd_gen_model, "write a random CLIP model in the OpenAI or Hugging Face layout"},
    {"frames", cmd_frames, "decode a video and write one preprocessed clip (.npy for forward)"},
    {"tokenize", cmd_tokenize, "CLIP BPE token ids of texts (77 per text, as clip.tokenize)"},
    {"encode-text", cmd_encode_text, "run the CLIP text tower on texts (.npy out)"},
    {"zeroshot", cmd_zeroshot, "CLIP zero-shot classification of videos (top classes with probabilities)"},
    {"eval", cmd_eval, "accuracy over a dataset list (--adapter: ST-Adapter classifier, --zeroshot: CLIP zero-shot; multi-view)"},
    {"classify", cmd_classify, "classify videos with a trained ST-Adapter checkpoint (top classes with probabilities)"},
    {"make-dataset", cmd_make_dataset, "write a synthetic temporal-action video dataset (train/val lists)"},
    {"train", cmd_train, "train ST-Adapter adapters and a classifier head on a frozen CLIP (AdamW, checkpoints, resume)"},
    {"export", cmd_export, "convert a float adapter checkpoint to fixed point (integer safetensors)"},
    {"train-demo", cmd_train_demo, "the training demo: ST-Adapter vs a frame-averaging baseline on time-reversed pairs"},
    {"check-dataset", cmd_check_dataset, "decode a dataset list as evaluation would; report what would be skipped"},
    {"demo", cmd_demo, "forward pass of an embedded default model on a synthetic clip, with timing"},
    {"tune", cmd_tune, "search CLBlast GEMM parameters for a device (verified) and cache them"},
    {"build-binary", cmd_build_binary, "build stacl's kernels for a device and write the program binary (--adapter-binary)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void print_help(void) {
    printf("stacl %s: OpenCL runtime for CLIP video models with spatio-temporal adapters\n\n"
           "usage: stacl COMMAND [options]   (stacl COMMAND --help for its options)\n\ncommands:\n",
           stacl_version());
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-14s %s\n", commands[i].name, commands[i].summary);
    printf("\noptions:\n  --help     this text\n  --version  version, git revision, OpenCL and CLBlast\n\n"
           "environment:\n  STACL_DEVICE     device index or name substring (see 'stacl devices')\n"
           "  STACL_CACHE_DIR  kernel binary cache folder (default ~/.cache/stacl; empty: off)\n");
}

static void print_version(void) {
    printf("stacl %s (git %s)\n", stacl_version(), stacl_git_revision());
    printf("OpenCL headers: %d.%d target\n", CL_TARGET_OPENCL_VERSION / 100, (CL_TARGET_OPENCL_VERSION / 10) % 10);
    printf("CLBlast: %d.%d.%d (headers)\n", CLBLAST_VERSION_MAJOR, CLBLAST_VERSION_MINOR, CLBLAST_VERSION_PATCH);
    stacl_device_info *devs = NULL;
    int n = 0;
    if (stacl_list_devices(&devs, &n) == STACL_OK) {
        for (int i = 0; i < n; i++)
            printf("OpenCL device %d: %s | %s | %s | driver %s\n", i, devs[i].platform, devs[i].name,
                   devs[i].device_version, devs[i].driver_version);
        free(devs);
    } else {
        printf("OpenCL devices: none (%s)\n", stacl_last_error());
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_help();
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (strcmp(name, "help") == 0 && argc > 2) {
            char help[] = "--help";
            char *args[] = {argv[2], help, NULL};
            for (int i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], commands[i].name) == 0) return commands[i].run(2, args);
        }
        print_help();
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        print_version();
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "stacl: error: unknown command '%s' (see 'stacl --help')\n", name);
    return CLI_EXIT_USAGE;
}
