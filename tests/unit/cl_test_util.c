/* cl_test_util.c: see cl_test_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_test_util.h"

stacl_ctx *g_ctx;

int cl_test_ctx_create(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the error lines next to the cases */
    stacl_status st = stacl_ctx_create(&g_ctx, NULL);
    if (st != STACL_OK) {
        fprintf(stderr, "stacl_ctx_create: %s: %s\n", stacl_status_str(st), stacl_last_error());
        return -1;
    }
    return 0;
}

int cl_test_group_teardown(void **state) {
    (void)state;
    stacl_ctx_free(g_ctx);
    g_ctx = NULL;
    return 0;
}

float *xmalloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(p);
    return p;
}

float canary(void) {
    float f;
    uint32_t bits = CANARY_BITS;
    memcpy(&f, &bits, sizeof f);
    return f;
}

dbuf dbuf_new(size_t n) {
    dbuf b = {NULL, n, xmalloc_f(n), xmalloc_f(n)};
    const float c = canary();
    for (size_t i = 0; i < n; i++) b.host[i] = c;
    cl_int err;
    b.mem = clCreateBuffer(g_ctx->context, CL_MEM_READ_WRITE, n * sizeof(float), NULL, &err);
    CL_CHECK(err);
    return b;
}

void dbuf_upload(dbuf *b) {
    memcpy(b->sent, b->host, b->n * sizeof(float));
    CL_CHECK(clEnqueueWriteBuffer(g_ctx->queue, b->mem, CL_TRUE, 0, b->n * sizeof(float), b->host, 0, NULL, NULL));
}

void dbuf_download(dbuf *b) {
    CL_CHECK(clEnqueueReadBuffer(g_ctx->queue, b->mem, CL_TRUE, 0, b->n * sizeof(float), b->host, 0, NULL, NULL));
}

void dbuf_free(dbuf *b) {
    if (b->mem) clReleaseMemObject(b->mem);
    free(b->host);
    free(b->sent);
    b->mem = NULL;
    b->host = b->sent = NULL;
}

size_t dbuf_count_changed(const dbuf *b, const unsigned char *mask, size_t *first) {
    size_t changed = 0;
    *first = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!mask[i] && memcmp(&b->host[i], &b->sent[i], sizeof(float)) != 0) {
            if (!changed) *first = i;
            changed++;
        }
    return changed;
}
