/* cl_kernel_profile.c: libstacl-clprof.so, an LD_PRELOAD shim that times
 * every OpenCL kernel launch of a process by name, including the kernels
 * CLBlast launches inside one GEMM call (Xgemm, XgemmDirect*, CopyPadMatrix,
 * TransposeMatrixFast, ...), which stacl's own profile sees only as one
 * "gemm" span. Usage:
 *
 *   LD_PRELOAD=build/bench/libstacl-clprof.so build/bench/stacl-bench-gemm --shapes fc1
 *
 * At exit a process that launched kernels prints, per kernel name, the launches, the summed device time
 * (CL_PROFILING_COMMAND_END - START) and its share, to stderr (or to the
 * file $STACL_CLPROF_OUT). Device times need a queue created with
 * CL_QUEUE_PROFILING_ENABLE (stacl's queues are); launches on other queues
 * are counted with no time. It wraps clEnqueueNDRangeKernel only, and keeps
 * an event per launch until it has summed it (every 4096 launches and at
 * exit), so it adds a little host work per launch: use it to find where
 * device time goes, not to time the whole run. */
#define _GNU_SOURCE
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef cl_int (*enqueue_fn)(cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *,
                             cl_uint, const cl_event *, cl_event *);

#define PENDING_MAX 4096
#define NAMES_MAX 256

static struct {
    char name[128];
    unsigned long launches;
    double ms;
} g_names[NAMES_MAX];
static int g_n_names;
static struct {
    cl_event ev;
    int name;
} g_pending[PENDING_MAX];
static int g_n_pending;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static enqueue_fn g_real;

static int name_index(const char *name) {
    for (int i = 0; i < g_n_names; i++)
        if (strcmp(g_names[i].name, name) == 0) return i;
    if (g_n_names == NAMES_MAX) return NAMES_MAX - 1; /* the last slot collects the rest */
    snprintf(g_names[g_n_names].name, sizeof g_names[0].name, "%s", name);
    return g_n_names++;
}

/* Waits for the pending launches and adds their device times. Lock held. */
static void flush(void) {
    for (int i = 0; i < g_n_pending; i++) {
        cl_ulong t0 = 0, t1 = 0;
        if (clWaitForEvents(1, &g_pending[i].ev) == CL_SUCCESS &&
            clGetEventProfilingInfo(g_pending[i].ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(g_pending[i].ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS &&
            t1 >= t0)
            g_names[g_pending[i].name].ms += (double)(t1 - t0) * 1e-6;
        clReleaseEvent(g_pending[i].ev);
    }
    g_n_pending = 0;
}

static int by_time(const void *a, const void *b) {
    const double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

static void report(void) {
    pthread_mutex_lock(&g_lock);
    flush();
    if (g_n_names == 0) { /* e.g. a shell the program started (LD_PRELOAD is inherited) */
        pthread_mutex_unlock(&g_lock);
        return;
    }
    const char *path = getenv("STACL_CLPROF_OUT");
    FILE *out = path && *path ? fopen(path, "w") : NULL;
    if (!out) out = stderr;
    double total = 0, order[NAMES_MAX][2];
    for (int i = 0; i < g_n_names; i++) total += g_names[i].ms, order[i][0] = g_names[i].ms, order[i][1] = i;
    qsort(order, (size_t)g_n_names, sizeof order[0], by_time);
    fprintf(out, "\nOpenCL kernels by device time (libstacl-clprof, process %ld; %d kernel names):\n", (long)getpid(),
            g_n_names);
    fprintf(out, "  %-40s %10s %12s %7s\n", "kernel", "launches", "ms", "share");
    for (int j = 0; j < g_n_names; j++) {
        const int i = (int)order[j][1];
        fprintf(out, "  %-40s %10lu %12.3f %6.1f%%\n", g_names[i].name, g_names[i].launches, g_names[i].ms,
                total > 0 ? 100.0 * g_names[i].ms / total : 0.0);
    }
    fprintf(out, "  %-40s %10s %12.3f\n", "total", "", total);
    if (out != stderr) fclose(out);
    pthread_mutex_unlock(&g_lock);
}

__attribute__((constructor)) static void init(void) {
    g_real = (enqueue_fn)dlsym(RTLD_NEXT, "clEnqueueNDRangeKernel");
    atexit(report); /* before the libraries' destructors: OpenCL still works */
}

CL_API_ENTRY cl_int CL_API_CALL clEnqueueNDRangeKernel(cl_command_queue queue, cl_kernel kernel, cl_uint dims,
                                                       const size_t *offset, const size_t *global,
                                                       const size_t *local, cl_uint n_wait, const cl_event *wait,
                                                       cl_event *event) {
    if (!g_real) return CL_INVALID_OPERATION;
    cl_event own = NULL;
    cl_int err = g_real(queue, kernel, dims, offset, global, local, n_wait, wait, event ? event : &own);
    if (err != CL_SUCCESS) return err;
    cl_event ev = event ? *event : own;
    if (event) clRetainEvent(ev); /* the caller keeps its reference */
    char name[128] = "?";
    clGetKernelInfo(kernel, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    name[sizeof name - 1] = '\0';
    pthread_mutex_lock(&g_lock);
    const int i = name_index(name);
    g_names[i].launches++;
    if (g_n_pending == PENDING_MAX) flush();
    g_pending[g_n_pending].ev = ev;
    g_pending[g_n_pending].name = i;
    g_n_pending++;
    pthread_mutex_unlock(&g_lock);
    return CL_SUCCESS;
}
