/* device.c: OpenCL platform/device discovery, device selection by index or
 * name, and the per-device context (context, in-order profiling queue,
 * built kernels). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "ops.h"
#include "tune.h"

#define CL_PLATFORM_NOT_FOUND_KHR_CODE (-1001)

const char *stacl_cl_error_name(cl_int err) {
    switch (err) {
#define NAME(x) case x: return #x;
    NAME(CL_SUCCESS) NAME(CL_DEVICE_NOT_FOUND) NAME(CL_DEVICE_NOT_AVAILABLE)
    NAME(CL_COMPILER_NOT_AVAILABLE) NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    NAME(CL_OUT_OF_RESOURCES) NAME(CL_OUT_OF_HOST_MEMORY) NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
    NAME(CL_BUILD_PROGRAM_FAILURE) NAME(CL_INVALID_VALUE) NAME(CL_INVALID_DEVICE)
    NAME(CL_INVALID_CONTEXT) NAME(CL_INVALID_COMMAND_QUEUE) NAME(CL_INVALID_MEM_OBJECT)
    NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS) NAME(CL_INVALID_PROGRAM)
    NAME(CL_INVALID_PROGRAM_EXECUTABLE) NAME(CL_INVALID_KERNEL_NAME) NAME(CL_INVALID_KERNEL)
    NAME(CL_INVALID_ARG_INDEX) NAME(CL_INVALID_ARG_VALUE) NAME(CL_INVALID_ARG_SIZE)
    NAME(CL_INVALID_KERNEL_ARGS) NAME(CL_INVALID_WORK_DIMENSION) NAME(CL_INVALID_WORK_GROUP_SIZE)
    NAME(CL_INVALID_WORK_ITEM_SIZE) NAME(CL_INVALID_GLOBAL_OFFSET) NAME(CL_INVALID_EVENT_WAIT_LIST)
    NAME(CL_INVALID_EVENT) NAME(CL_INVALID_OPERATION) NAME(CL_INVALID_BUFFER_SIZE)
    NAME(CL_INVALID_GLOBAL_WORK_SIZE) NAME(CL_INVALID_PLATFORM)
#undef NAME
    case CL_PLATFORM_NOT_FOUND_KHR_CODE: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

stacl_status stacl_cl_fail(const stacl_ctx *ctx, cl_int err, const char *what) {
    stacl_status st = (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES ||
                       err == CL_OUT_OF_HOST_MEMORY || err == CL_INVALID_BUFFER_SIZE)
                          ? STACL_ERR_OUT_OF_MEMORY
                          : STACL_ERR_OPENCL;
    return stacl_fail(st, "%s failed on device '%s': %s (%d)", what,
                      ctx ? ctx->info.name : "?", stacl_cl_error_name(err), (int)err);
}

static stacl_status no_platform_error(cl_int err) {
    return stacl_fail(STACL_ERR_NO_DEVICE,
                      "no OpenCL platform found (%s): install an OpenCL driver, e.g. Debian's "
                      "'pocl-opencl-icd' for CPUs (or your GPU vendor's ICD) together with the "
                      "ICD loader 'ocl-icd-libopencl1'",
                      stacl_cl_error_name(err));
}

/* Platforms and, per platform, their devices, in the order the ICD loader
 * reports them; the global index walks them in that order. */
typedef struct device_table {
    int count;
    cl_platform_id *platforms; /* per device */
    cl_device_id *devices;
} device_table;

static void device_table_free(device_table *t) {
    free(t->platforms);
    free(t->devices);
    t->platforms = NULL;
    t->devices = NULL;
    t->count = 0;
}

static stacl_status device_table_load(device_table *t) {
    stacl_status st = STACL_OK;
    cl_platform_id *platforms = NULL;
    cl_uint n_platforms = 0;
    memset(t, 0, sizeof *t);
    cl_int err = clGetPlatformIDs(0, NULL, &n_platforms);
    if (err != CL_SUCCESS || n_platforms == 0) return no_platform_error(err);
    platforms = calloc(n_platforms, sizeof *platforms);
    if (!platforms) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory listing platforms");
    err = clGetPlatformIDs(n_platforms, platforms, NULL);
    if (err != CL_SUCCESS) FAIL(STACL_ERR_NO_DEVICE, "clGetPlatformIDs: %s", stacl_cl_error_name(err));
    for (cl_uint p = 0; p < n_platforms; p++) {
        cl_uint n = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n) != CL_SUCCESS || n == 0) continue;
        cl_platform_id *np = realloc(t->platforms, (t->count + n) * sizeof *np);
        if (np) t->platforms = np;
        cl_device_id *nd = realloc(t->devices, (t->count + n) * sizeof *nd);
        if (nd) t->devices = nd;
        if (!np || !nd) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory listing devices");
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, n, t->devices + t->count, NULL) != CL_SUCCESS)
            continue;
        for (cl_uint i = 0; i < n; i++) t->platforms[t->count + i] = platforms[p];
        t->count += (int)n;
    }
    if (t->count == 0)
        FAIL(STACL_ERR_NO_DEVICE, "OpenCL platforms found (%u) but no devices: check the driver "
             "installation (for CPUs: Debian's 'pocl-opencl-icd')", n_platforms);
cleanup:
    free(platforms);
    if (st != STACL_OK) device_table_free(t);
    return st;
}

/* Copies a device string, truncated to cap (drivers' version strings can be
 * long, e.g. PoCL lists its build options). */
static void get_string(cl_device_id d, cl_device_info what, char *dst, size_t cap) {
    size_t len = 0;
    char *full = NULL;
    dst[0] = '\0';
    if (clGetDeviceInfo(d, what, 0, NULL, &len) != CL_SUCCESS || len == 0 || !(full = calloc(len + 1, 1))) return;
    if (clGetDeviceInfo(d, what, len, full, NULL) == CL_SUCCESS) snprintf(dst, cap, "%s", full);
    free(full);
}

static void fill_info(cl_platform_id platform, cl_device_id d, int index, stacl_device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = index;
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof info->platform, info->platform, NULL);
    info->platform[sizeof info->platform - 1] = '\0';
    get_string(d, CL_DEVICE_NAME, info->name, sizeof info->name);
    get_string(d, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    get_string(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    get_string(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    get_string(d, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version, sizeof info->opencl_c_version);
    cl_device_type type = 0;
    cl_uint cu = 0;
    cl_ulong gmem = 0, maxalloc = 0, lmem = 0;
    size_t wg = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gmem, &gmem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxalloc, &maxalloc, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lmem, &lmem, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    info->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
    info->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    info->is_accelerator = (type & CL_DEVICE_TYPE_ACCELERATOR) != 0;
    info->compute_units = cu;
    info->global_mem_bytes = gmem;
    info->max_alloc_bytes = maxalloc;
    info->local_mem_bytes = lmem;
    info->max_work_group_size = wg;
    /* The extension string can be long (GPUs list dozens): size it first. */
    size_t ext_len = 0;
    char *exts = NULL;
    if (clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, 0, NULL, &ext_len) == CL_SUCCESS && ext_len > 0 &&
        (exts = calloc(ext_len + 1, 1)) != NULL &&
        clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, ext_len, exts, NULL) == CL_SUCCESS) {
        info->has_fp16 = strstr(exts, "cl_khr_fp16") != NULL;
        info->has_fp64 = strstr(exts, "cl_khr_fp64") != NULL;
    }
    free(exts);
}

stacl_status stacl_list_devices(stacl_device_info **out, int *count) {
    stacl_status st = STACL_OK;
    device_table t;
    *out = NULL;
    *count = 0;
    TRY(device_table_load(&t));
    stacl_device_info *infos = calloc((size_t)t.count, sizeof *infos);
    if (!infos) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory listing devices");
    for (int i = 0; i < t.count; i++) fill_info(t.platforms[i], t.devices[i], i, &infos[i]);
    *out = infos;
    *count = t.count;
cleanup:
    device_table_free(&t);
    return st;
}

stacl_status stacl_device_handles(int index, cl_platform_id *platform, cl_device_id *device,
                                  stacl_device_info *info) {
    stacl_status st = STACL_OK;
    device_table t;
    TRY(device_table_load(&t));
    if (index < 0 || index >= t.count)
        FAIL(STACL_ERR_NO_DEVICE, "device index %d out of range: %d device(s) found (see 'stacl devices')",
             index, t.count);
    *platform = t.platforms[index];
    *device = t.devices[index];
    fill_info(*platform, *device, index, info);
cleanup:
    device_table_free(&t);
    return st;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

static int contains_case_insensitive(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

stacl_status stacl_select_device(const char *selector, int *index) {
    stacl_status st = STACL_OK;
    stacl_device_info *infos = NULL;
    int count = 0;
    const char *source = "--device";
    if (!selector || !*selector) {
        selector = getenv("STACL_DEVICE");
        source = "STACL_DEVICE";
    }
    TRY(stacl_list_devices(&infos, &count));
    if (!selector || !*selector) {
        *index = 0;
        for (int i = 0; i < count; i++)
            if (infos[i].is_gpu) { *index = i; break; }
        goto cleanup;
    }
    if (all_digits(selector)) {
        long v = strtol(selector, NULL, 10);
        if (v >= count)
            FAIL(STACL_ERR_NO_DEVICE, "%s=%s: no device with that index (%d device(s); see 'stacl devices')",
                 source, selector, count);
        *index = (int)v;
        goto cleanup;
    }
    int found = -1, matches = 0;
    char list[2048] = "";
    for (int i = 0; i < count; i++) {
        if (contains_case_insensitive(infos[i].name, selector) ||
            contains_case_insensitive(infos[i].platform, selector)) {
            if (found < 0) found = i;
            matches++;
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s[%d] %s (%s)", matches > 1 ? "; " : "", i,
                     infos[i].name, infos[i].platform);
        }
    }
    if (matches == 0)
        FAIL(STACL_ERR_NO_DEVICE, "%s='%s' matches no device (see 'stacl devices')", source, selector);
    if (matches > 1)
        FAIL(STACL_ERR_NO_DEVICE, "%s='%s' is ambiguous, it matches %d devices: %s; give an index instead",
             source, selector, matches, list);
    *index = found;
cleanup:
    free(infos);
    return st;
}

static stacl_status ctx_open(stacl_ctx **out, const char *device_selector, const char *binary_path) {
    stacl_status st = STACL_OK;
    stacl_ctx *ctx = NULL;
    int index = 0;
    cl_int err;
    *out = NULL;
    TRY(stacl_select_device(device_selector, &index));
    ctx = calloc(1, sizeof *ctx);
    if (!ctx) FAIL(STACL_ERR_OUT_OF_MEMORY, "out of host memory");
    TRY(stacl_device_handles(index, &ctx->platform, &ctx->device, &ctx->info));
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform, 0};
    ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &err);
    if (err != CL_SUCCESS) { st = stacl_cl_fail(ctx, err, "clCreateContext"); goto cleanup; }
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, CL_QUEUE_PROFILING_ENABLE, &err);
    if (err != CL_SUCCESS) { st = stacl_cl_fail(ctx, err, "clCreateCommandQueue"); goto cleanup; }
    TRY(binary_path ? stacl_program_load_binary(ctx, binary_path) : stacl_program_build(ctx));
    TRY(stacl_gemm_engine_setup(ctx));
    TRY(stacl_tune_setup(ctx));
    *out = ctx;
    ctx = NULL;
cleanup:
    stacl_ctx_free(ctx);
    return st;
}

stacl_status stacl_ctx_create(stacl_ctx **out, const char *device_selector) {
    return ctx_open(out, device_selector, NULL);
}

stacl_status stacl_ctx_create_from_binary(stacl_ctx **out, const char *device_selector, const char *binary_path) {
    if (!out || !binary_path) {
        if (out) *out = NULL;
        return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_ctx_create_from_binary: NULL argument");
    }
    return ctx_open(out, device_selector, binary_path);
}

stacl_status stacl_ctx_save_binary(const stacl_ctx *ctx, const char *path) {
    if (!ctx || !path) return stacl_fail(STACL_ERR_INVALID_ARG, "stacl_ctx_save_binary: NULL argument");
    return stacl_program_save_binary(ctx, path);
}

void stacl_ctx_free(stacl_ctx *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    stacl_profile_release(ctx);
    stacl_program_release(ctx);
    stacl_tune_release(ctx);
    stacl_gemm_engine_release(ctx);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    free(ctx);
}

stacl_status stacl_device_buffer(stacl_ctx *ctx, size_t bytes, cl_mem_flags flags, const void *host, const char *what,
                                 const char *hint, cl_mem *out) {
    const double mib = bytes / 1048576.0;
    *out = NULL;
    if (bytes > ctx->info.max_alloc_bytes)
        return stacl_fail(STACL_ERR_OUT_OF_MEMORY, "%s needs %.1f MiB in one buffer, device '%s' allows %.1f MiB%s%s",
                          what, mib, ctx->info.name, ctx->info.max_alloc_bytes / 1048576.0, hint ? ": " : "",
                          hint ? hint : "");
    cl_int err;
    cl_mem mem = clCreateBuffer(ctx->context, host ? flags | CL_MEM_COPY_HOST_PTR : flags, bytes, (void *)host, &err);
    if (err != CL_SUCCESS) {
        stacl_status st = stacl_cl_fail(ctx, err, "clCreateBuffer");
        return stacl_fail_context(st, "allocating %s (%.1f MiB)", what, mib);
    }
    *out = mem;
    return STACL_OK;
}

const stacl_device_info *stacl_ctx_device(const stacl_ctx *ctx) { return &ctx->info; }

const char *stacl_ctx_gemm_engine(const stacl_ctx *ctx) { return stacl_gemm_engine_name(ctx); }
