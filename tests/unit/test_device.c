/* test_device.c: device listing and selection by index, name substring and
 * STACL_DEVICE, with PoCL exposing two identical CPU devices
 * (POCL_DEVICES="pthread pthread", set before OpenCL starts) so that the
 * ambiguous-name path is exercised. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

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

static void test_ctx_on_second_device(void **state) {
    (void)state;
    stacl_ctx *ctx = NULL;
    assert_int_equal(stacl_ctx_create(&ctx, "1"), STACL_OK);
    assert_int_equal(stacl_ctx_device(ctx)->index, 1);
    stacl_ctx_free(ctx);
    stacl_ctx_free(NULL); /* a no-op */
}

int main(void) {
    setenv("POCL_DEVICES", "pthread pthread", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),        cmocka_unit_test(test_select_index),
        cmocka_unit_test(test_select_name), cmocka_unit_test(test_select_env),
        cmocka_unit_test(test_ctx_on_second_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
