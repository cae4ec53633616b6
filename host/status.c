/* status.c: status names and the per-thread message of the last failure. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define STACL_MSG_CAP 4096
static _Thread_local char last_message[STACL_MSG_CAP];

const char *stacl_status_str(stacl_status status) {
    switch (status) {
    case STACL_OK: return "ok";
    case STACL_ERR_INVALID_ARG: return "invalid argument";
    case STACL_ERR_IO: return "i/o error";
    case STACL_ERR_FORMAT: return "malformed file";
    case STACL_ERR_SHAPE: return "wrong shape or dtype";
    case STACL_ERR_MISSING: return "missing tensor or key";
    case STACL_ERR_NO_DEVICE: return "no OpenCL device";
    case STACL_ERR_OPENCL: return "OpenCL error";
    case STACL_ERR_BUILD: return "OpenCL program build failed";
    case STACL_ERR_OUT_OF_MEMORY: return "out of memory";
    case STACL_ERR_BLAS: return "CLBlast error";
    case STACL_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

const char *stacl_last_error(void) { return last_message; }

void stacl_clear_error(void) { last_message[0] = '\0'; }

stacl_status stacl_fail(stacl_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

stacl_status stacl_fail_context(stacl_status status, const char *fmt, ...) {
    char old[STACL_MSG_CAP];
    memcpy(old, last_message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    /* Append ": <old message>", truncating (never overflowing) if long. */
    size_t used = n < 0 ? 0 : (size_t)n < sizeof last_message ? (size_t)n : sizeof last_message - 1;
    size_t room = sizeof last_message - 1 - used;
    size_t old_len = strnlen(old, sizeof old - 1);
    const char sep[] = ": ";
    size_t sep_len = room < 2 ? room : 2;
    memcpy(last_message + used, sep, sep_len);
    used += sep_len;
    room -= sep_len;
    size_t take = old_len < room ? old_len : room;
    memcpy(last_message + used, old, take);
    last_message[used + take] = '\0';
    return status;
}
