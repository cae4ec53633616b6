/* atomic_file.h: writing a file so that readers see either the old contents
 * or the complete new ones, never a partial file. The data goes to a
 * temporary file next to the target, which is synced, closed and renamed
 * over it; on any failure the temporary file is removed. Used by the .npy,
 * safetensors and config.json writers and the kernel binary cache.
 *
 *     stacl_atomic_file af = {0};      (before any jump to cleanup)
 *     ...
 *     TRY(stacl_atomic_open(&af, path, 0));
 *     TRY(stacl_atomic_write(&af, data, n));
 *     TRY(stacl_atomic_commit(&af));
 *   cleanup:
 *     stacl_atomic_abort(&af);   (a no-op after a successful commit)
 *
 * Failures record a message naming the target path (see status.h), unless
 * the file was opened with STACL_ATOMIC_QUIET. */
#ifndef STACL_ATOMIC_FILE_H
#define STACL_ATOMIC_FILE_H

#include <stddef.h>

#include "stacl.h"

enum {
    /* Temporary name "<path>.<pid>.tmp" instead of "<path>.tmp", for files
     * that several processes may write at once (the kernel cache). */
    STACL_ATOMIC_PER_PROCESS = 1u << 0,
    /* Record no error message: for best-effort writes whose failure the
     * caller ignores, so that the last error stays what it was. */
    STACL_ATOMIC_QUIET = 1u << 1,
};

typedef struct stacl_atomic_file {
    int fd;           /* the temporary file, open for writing; -1 if none */
    char *tmp_path;   /* malloc'd; NULL once committed or aborted */
    const char *path; /* the target (borrowed: must outlive the struct's use) */
    unsigned flags;
} stacl_atomic_file;

/* Creates (or truncates) the temporary file for `path`, mode 0644. On
 * failure nothing is left to clean up, though stacl_atomic_abort is safe.
 * Errors: OUT_OF_MEMORY, IO ("<path>: cannot create temporary file ..."). */
stacl_status stacl_atomic_open(stacl_atomic_file *f, const char *path, unsigned flags);

/* Appends n bytes (short writes and EINTR are retried). Errors: IO
 * ("<path>: cannot write: ..."); the file stays open for stacl_atomic_abort. */
stacl_status stacl_atomic_write(stacl_atomic_file *f, const void *data, size_t n);

/* fsync, close and rename into place. On failure the temporary file is
 * removed. Either way the struct is finished: stacl_atomic_abort is then a
 * no-op. Errors: IO ("<path>: cannot sync: ...", "<path>: cannot write:
 * ..." when close fails, "<path>: cannot rename <tmp> into place: ..."). */
stacl_status stacl_atomic_commit(stacl_atomic_file *f);

/* Closes and removes the temporary file unless committed. Safe after a
 * failed open, after commit, and on a zeroed struct. */
void stacl_atomic_abort(stacl_atomic_file *f);

/* write(2) until all n bytes are written, retrying EINTR; 0 on success,
 * -1 with errno set on failure. For callers that word their own message. */
int stacl_write_all(int fd, const void *buf, size_t n);

#endif
