/* cl_test_util.h: helpers shared by the OpenCL unit tests (test_kernels.c,
 * test_gemm.c): the test context, CL_CHECK / ST_CHECK, and device buffers
 * with a host image whose unused elements hold a NaN canary. Include after
 * <cmocka.h> (the macros call print_error and fail). */
#ifndef STACL_CL_TEST_UTIL_H
#define STACL_CL_TEST_UTIL_H

#include <stddef.h>

#include "runtime.h"

/* The context of the test group: made by cl_test_ctx_create, freed by
 * cl_test_group_teardown. */
extern stacl_ctx *g_ctx;

/* Creates g_ctx on the default device (stdout line-buffered, so that error
 * lines stay next to the cases); 0 on success, else -1 after printing the
 * error to stderr. For a group setup. */
int cl_test_ctx_create(void);
/* CMocka group teardown: frees g_ctx. */
int cl_test_group_teardown(void **state);

/* Fails the test unless an OpenCL call returns CL_SUCCESS. */
#define CL_CHECK(call)                                                                     \
    do {                                                                                   \
        cl_int e_ = (call);                                                                \
        if (e_ != CL_SUCCESS) {                                                            \
            print_error("%s failed: %s (%d)\n", #call, stacl_cl_error_name(e_), (int)e_); \
            fail();                                                                        \
        }                                                                                  \
    } while (0)

/* Fails the test unless a stacl call returns STACL_OK. */
#define ST_CHECK(call)                                                                      \
    do {                                                                                    \
        stacl_status s_ = (call);                                                           \
        if (s_ != STACL_OK) {                                                               \
            print_error("%s -> %s: %s\n", #call, stacl_status_str(s_), stacl_last_error()); \
            fail();                                                                         \
        }                                                                                   \
    } while (0)

/* n floats (at least one allocated); fails the test when out of memory. */
float *xmalloc_f(size_t n);

#define CANARY_BITS 0x7fc0c0deu /* a quiet NaN with a recognisable payload */
float canary(void);

/* A device buffer of n floats and its host image: `host` is what was last
 * uploaded or downloaded, `sent` the last upload. */
typedef struct dbuf {
    cl_mem mem;
    size_t n;
    float *host, *sent;
} dbuf;

/* Creates a buffer whose host image is all canary (not yet uploaded). */
dbuf dbuf_new(size_t n);
void dbuf_upload(dbuf *b);   /* host -> device (blocking); remembers it in `sent` */
void dbuf_download(dbuf *b); /* device -> host (blocking) */
void dbuf_free(dbuf *b);
/* Counts the elements with mask[i] == 0 whose host image differs (bit for
 * bit) from the last upload; *first: the first of them. mask: b->n bytes. */
size_t dbuf_count_changed(const dbuf *b, const unsigned char *mask, size_t *first);

#endif
