/* test_device.c: the runtime around a device: listing and selection by
 * index, name substring and STACL_DEVICE, with PoCL exposing two identical
 * CPU devices (POCL_DEVICES="pthread pthread", set before OpenCL starts) so
 * that the ambiguous-name path is exercised; the on-disk kernel binary cache;
 * build failures carrying the build log; allocations beyond the device's
 * limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random_clip.h"
#include "runtime.h"
#include "stacl.h"
#include "test_util.h"

static void test_list(void **state) {
    (void)state;
    stacl_device_info *devs = NULL;
    int n = 0;
    assert_int_equal(stacl_list_devices(&devs, &n), STACL_OK);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) {
        assert_int_equal(devs[i].index, i);
        assert_true(strlen(devs[i].name) > 0);
        assert_true(devs[i].compute_units > 0);
        assert_true(devs[i].global_mem_bytes > 0);
        assert_true(devs[i].max_work_group_size > 0);
        assert_non_null(strstr(devs[i].opencl_c_version, "OpenCL C"));
    }
    free(devs);
}

static void test_select_index(void **state) {
    (void)state;
    int index = -1;
    assert_int_equal(stacl_select_device("1", &index), STACL_OK);
    assert_int_equal(index, 1);
    assert_int_equal(stacl_select_device("0", &index), STACL_OK);
    assert_int_equal(index, 0);
    assert_int_equal(stacl_select_device("99", &index), STACL_ERR_NO_DEVICE);
    assert_non_null(strstr(stacl_last_error(), "99"));
}

static void test_select_name(void **state) {
    (void)state;
    int index = -1;
    /* Both PoCL devices share a name: a substring of it is ambiguous, and
     * the message lists the matches by index. */
    assert_int_equal(stacl_select_device("pthread", &index), STACL_ERR_NO_DEVICE);
    assert_non_null(strstr(stacl_last_error(), "ambiguous"));
    assert_non_null(strstr(stacl_last_error(), "[0]"));
    assert_non_null(strstr(stacl_last_error(), "[1]"));
    assert_int_equal(stacl_select_device("no-such-device-xyz", &index), STACL_ERR_NO_DEVICE);
    assert_non_null(strstr(stacl_last_error(), "no-such-device-xyz"));
}

static void test_select_env(void **state) {
    (void)state;
    int index = -1;
    setenv("STACL_DEVICE", "1", 1);
    assert_int_equal(stacl_select_device(NULL, &index), STACL_OK);
    assert_int_equal(index, 1);
    /* An explicit selector wins over the environment. */
    assert_int_equal(stacl_select_device("0", &index), STACL_OK);
    assert_int_equal(index, 0);
    setenv("STACL_DEVICE", "bogus-name", 1);
    assert_int_equal(stacl_select_device("", &index), STACL_ERR_NO_DEVICE);
    assert_non_null(strstr(stacl_last_error(), "STACL_DEVICE"));
    unsetenv("STACL_DEVICE");
    /* Default: the first GPU, else the first device (PoCL: CPUs only). */
    assert_int_equal(stacl_select_device(NULL, &index), STACL_OK);
    assert_int_equal(index, 0);
}

/* STACL_GEMM picks the GEMM engine; a value it does not know is an error
 * naming it, not a silent default. */
static void test_gemm_engine_env(void **state) {
    (void)state;
    stacl_ctx *ctx = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, NULL), STACL_OK);
    const int cpu = stacl_ctx_device(ctx)->is_cpu;
    assert_non_null(strstr(stacl_ctx_gemm_engine(ctx), cpu ? "stacl" : "CLBlast"));
    stacl_ctx_free(ctx);
    setenv("STACL_GEMM", "clblast", 1);
    assert_int_equal(stacl_ctx_create(&ctx, NULL), STACL_OK);
    assert_string_equal(stacl_ctx_gemm_engine(ctx), "CLBlast");
    stacl_ctx_free(ctx);
    setenv("STACL_GEMM", "stacl", 1);
    assert_int_equal(stacl_ctx_create(&ctx, NULL), STACL_OK);
    assert_non_null(strstr(stacl_ctx_gemm_engine(ctx), "stacl"));
    stacl_ctx_free(ctx);
    setenv("STACL_GEMM", "blas", 1);
    assert_int_equal(stacl_ctx_create(&ctx, NULL), STACL_ERR_INVALID_ARG);
    assert_null(ctx);
    assert_non_null(strstr(stacl_last_error(), "STACL_GEMM='blas'"));
    unsetenv("STACL_GEMM");
}

static void test_ctx_on_second_device(void **state) {
    (void)state;
    stacl_ctx *ctx = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, "1"), STACL_OK);
    assert_int_equal(stacl_ctx_device(ctx)->index, 1);
    stacl_ctx_free(ctx);
    stacl_ctx_free(NULL); /* a no-op */
}

static int count_files(const char *dir, const char *suffix) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -c '%s$'", dir, suffix);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = -1;
        pclose(p);
    }
    return n;
}

/* The first context builds from source and writes the binary; the second
 * loads it; a corrupt cache file is ignored and rebuilt; an empty
 * STACL_CACHE_DIR turns caching off. */
static void test_binary_cache(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tu_make_temp_dir());
    setenv("STACL_CACHE_DIR", dir, 1);
    stacl_ctx *ctx = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    assert_false(ctx->program_from_cache);
    stacl_ctx_free(ctx);
    assert_int_equal(count_files(dir, ".bin"), 1);
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    assert_true(ctx->program_from_cache);
    stacl_ctx_free(ctx);

    char cmd[700];
    snprintf(cmd, sizeof cmd, "for f in %s/*.bin; do printf 'STACLBIN garbage' > \"$f\"; done", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    assert_false(ctx->program_from_cache);
    stacl_ctx_free(ctx);
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK); /* rewritten above */
    assert_true(ctx->program_from_cache);
    stacl_ctx_free(ctx);

    setenv("STACL_CACHE_DIR", "", 1);
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    assert_false(ctx->program_from_cache);
    stacl_ctx_free(ctx);
    unsetenv("STACL_CACHE_DIR");
    tu_remove_tree(dir);
}

/* A kernel that does not compile: STACL_ERR_BUILD, with the device and the
 * compiler's build log in the message. */
static void test_build_failure_log(void **state) {
    (void)state;
    stacl_ctx *ctx = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    const char *src = "__kernel void broken(__global float *x) { x[0] = undeclared_thing; }\n";
    size_t len = strlen(src);
    cl_program program = NULL;
    assert_int_equal(stacl_program_from_source(ctx, &src, &len, 1, &program), STACL_ERR_BUILD);
    assert_null(program);
    printf("  build error: %.300s\n", stacl_last_error());
    assert_non_null(strstr(stacl_last_error(), "build log"));
    assert_non_null(strstr(stacl_last_error(), "undeclared_thing"));
    assert_non_null(strstr(stacl_last_error(), stacl_ctx_device(ctx)->name));
    stacl_ctx_free(ctx);
}

/* A workspace larger than the device's largest buffer: a clear
 * out-of-memory error before anything is allocated, and nothing leaks. */
static void test_workspace_too_large(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", tu_make_temp_dir());
    stacl_random_clip_spec spec = stacl_random_clip_default_spec();
    spec.width = 64; spec.layers = 1; spec.heads = 1; spec.mlp_width = 128; spec.proj_dim = 16;
    assert_int_equal(stacl_random_clip_write(dir, &spec), STACL_OK);
    stacl_ctx *ctx = NULL;
    stacl_model *model = NULL;
    stacl_state *st = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, "0"), STACL_OK);
    assert_int_equal(stacl_model_load(&model, ctx, dir), STACL_OK);
    assert_int_equal(stacl_state_create(&st, model, 1 << 20), STACL_ERR_OUT_OF_MEMORY);
    assert_null(st);
    printf("  %s\n", stacl_last_error());
    assert_non_null(strstr(stacl_last_error(), "frames"));
    assert_int_equal(stacl_state_create(&st, model, 0), STACL_ERR_INVALID_ARG);
    stacl_model_free(model);
    stacl_ctx_free(ctx);
    tu_remove_tree(dir);
}

int main(void) {
    setenv("POCL_DEVICES", "pthread pthread", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),        cmocka_unit_test(test_select_index),
        cmocka_unit_test(test_select_name), cmocka_unit_test(test_select_env),
        cmocka_unit_test(test_gemm_engine_env),
        cmocka_unit_test(test_ctx_on_second_device),
        cmocka_unit_test(test_binary_cache),
        cmocka_unit_test(test_build_failure_log),
        cmocka_unit_test(test_workspace_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
