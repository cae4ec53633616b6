/* status.h: internal error recording. A failing function records a message
 * with context and returns its status; callers may prefix more context.
 * TRY() jumps to the function's single `cleanup:` label, where `st` holds
 * the status to return. */
#ifndef STACL_STATUS_H
#define STACL_STATUS_H

#include "stacl.h"

#if defined(__GNUC__)
#define STACL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define STACL_PRINTF(a, b)
#endif

/* Records a message (printf-style) for the calling thread; returns status. */
stacl_status stacl_fail(stacl_status status, const char *fmt, ...) STACL_PRINTF(2, 3);
/* Prepends "prefix: " to the current message; returns status unchanged. */
stacl_status stacl_fail_context(stacl_status status, const char *fmt, ...) STACL_PRINTF(2, 3);
/* Clears the message (at the start of a public call that succeeds). */
void stacl_clear_error(void);

#define TRY(expr)                         \
    do {                                  \
        st = (expr);                      \
        if (st != STACL_OK) goto cleanup; \
    } while (0)

#define FAIL(code, ...)                          \
    do {                                         \
        st = stacl_fail((code), __VA_ARGS__);    \
        goto cleanup;                            \
    } while (0)

#endif
