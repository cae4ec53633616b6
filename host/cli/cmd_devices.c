/* cmd_devices.c: `stacl devices [--json]`: every OpenCL device with the
 * global index that --device and STACL_DEVICE take. */
#include <stdlib.h>

#include "cli.h"

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static const char *type_name(const stacl_device_info *d) {
    return d->is_gpu ? "gpu" : d->is_cpu ? "cpu" : d->is_accelerator ? "accelerator" : "other";
}

int cmd_devices(int argc, char **argv) {
    static const cli_opt opts[] = {{"--json", 0}, {"--help", 0}};
    cli_args a = {argc, argv, 1, "devices", 0};
    int json = 0, k;
    const char *value;
    while ((k = cli_next(&a, opts, 2, &value)) >= 0) {
        if (k == 0) json = 1;
        if (k == 1) {
            printf("usage: stacl devices [--json]\n\n"
                   "Lists every OpenCL platform and device with the global index that --device and\n"
                   "STACL_DEVICE accept (an index, or a name substring that matches one device).\n"
                   "The default device is the first GPU, else the first device.\n\n"
                   "  --json   one JSON array of objects instead of a table\n");
            return 0;
        }
    }
    if (k == -2) return CLI_EXIT_USAGE;
    stacl_device_info *devs = NULL;
    int n = 0, def = 0;
    stacl_status st = stacl_list_devices(&devs, &n);
    if (st != STACL_OK) return cli_fail("devices", st);
    for (int i = 0; i < n; i++)
        if (devs[i].is_gpu) { def = i; break; }
    if (json) {
        printf("[");
        for (int i = 0; i < n; i++) {
            const stacl_device_info *d = &devs[i];
            printf("%s\n  {\"index\": %d, \"default\": %s, \"platform\": ", i ? "," : "", d->index, i == def ? "true" : "false");
            print_json_string(d->platform);
            printf(", \"name\": ");
            print_json_string(d->name);
            printf(", \"vendor\": ");
            print_json_string(d->vendor);
            printf(", \"type\": \"%s\", \"compute_units\": %u, \"global_mem_bytes\": %llu, \"max_alloc_bytes\": %llu, "
                   "\"local_mem_bytes\": %llu, \"max_work_group_size\": %zu, \"opencl_version\": ",
                   type_name(d), d->compute_units, (unsigned long long)d->global_mem_bytes,
                   (unsigned long long)d->max_alloc_bytes, (unsigned long long)d->local_mem_bytes, d->max_work_group_size);
            print_json_string(d->device_version);
            printf(", \"opencl_c_version\": ");
            print_json_string(d->opencl_c_version);
            printf(", \"driver_version\": ");
            print_json_string(d->driver_version);
            printf(", \"fp16\": %s, \"fp64\": %s}", d->has_fp16 ? "true" : "false", d->has_fp64 ? "true" : "false");
        }
        printf("\n]\n");
    } else {
        for (int i = 0; i < n; i++) {
            const stacl_device_info *d = &devs[i];
            printf("[%d]%s %s | %s (%s)\n", i, i == def ? "*" : " ", d->name, d->platform, type_name(d));
            printf("     %u compute units, %.0f MiB global memory (max buffer %.0f MiB), %.0f KiB local, "
                   "work-group <= %zu\n", d->compute_units, d->global_mem_bytes / 1048576.0,
                   d->max_alloc_bytes / 1048576.0, d->local_mem_bytes / 1024.0, d->max_work_group_size);
            printf("     %s, %s, driver %s, fp16 %s, fp64 %s\n", d->device_version, d->opencl_c_version,
                   d->driver_version, d->has_fp16 ? "yes" : "no", d->has_fp64 ? "yes" : "no");
        }
        printf("(* default device; choose with --device INDEX|NAME or STACL_DEVICE)\n");
    }
    free(devs);
    return 0;
}
