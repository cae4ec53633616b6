/* cmd_build_binary.c: `stacl build-binary --device D -o FILE`: builds
 * stacl's kernels for one device and writes the program binary (stacl's
 * header + the device binary + a checksum, docs/file-formats.md), for
 * --adapter-binary / stacl_ctx_create_from_binary. */
#include "cli.h"

static void usage(void) {
    printf("usage: stacl build-binary --device D -o FILE [--quiet]\n\n"
           "Builds stacl's OpenCL kernels for device D (from the embedded sources, or the kernel\n"
           "cache) and writes the program binary to FILE (atomically: a failed write leaves no\n"
           "partial file), with a header naming the device and the kernel sources. Load it with\n"
           "--adapter-binary FILE (forward, eval, classify) or stacl_ctx_create_from_binary; it is\n"
           "refused for another device or other kernel sources. An accelerator device\n"
           "(CL_DEVICE_TYPE_ACCELERATOR) cannot build from source: its binary comes from the\n"
           "vendor's offline compiler (a raw binary, loaded as it is); see docs/adapters.md.\n\n"
           "  --device D   OpenCL device index or name substring (default: $STACL_DEVICE, else the\n"
           "               first GPU, else the first device; see 'stacl devices')\n"
           "  -o FILE      the program binary to write (also --out FILE)\n"
           "  --quiet      print nothing on success\n");
}

int cmd_build_binary(int argc, char **argv) {
    static const cli_opt opts[] = {{"--device", 1}, {"-o", 1}, {"--out", 1}, {"--quiet", 0}, {"--help", 0}};
    cli_args a = {argc, argv, 1, "build-binary", 0};
    const char *device = NULL, *out = NULL, *value;
    int quiet = 0, k;
    /* cli_next takes "--" options only: accept "-o" by rewriting it. */
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] == 'o' && argv[i][2] == '\0') argv[i] = "--out";
    while ((k = cli_next(&a, opts, (int)(sizeof opts / sizeof opts[0]), &value)) >= 0) {
        switch (k) {
        case 0: device = value; break;
        case 1:
        case 2: out = value; break;
        case 3: quiet = 1; break;
        case 4: usage(); return 0;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    if (!out) return cli_usage_error("build-binary", "-o FILE is required");
    if (!cli_check_writable("build-binary", out)) return CLI_EXIT_FAILURE;
    stacl_ctx *ctx = NULL;
    stacl_status st = stacl_ctx_create(&ctx, device);
    if (st == STACL_OK) st = stacl_ctx_save_binary(ctx, out);
    if (st != STACL_OK) {
        int rc = cli_fail("build-binary", st);
        stacl_ctx_free(ctx);
        return rc;
    }
    if (!quiet) {
        const stacl_device_info *d = stacl_ctx_device(ctx);
        printf("wrote %s: stacl's kernels for device [%d] %s (%s, driver %s)\n", out, d->index, d->name, d->platform,
               d->driver_version);
    }
    stacl_ctx_free(ctx);
    return 0;
}
