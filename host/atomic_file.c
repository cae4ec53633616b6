/* atomic_file.c: tmp file + fsync + rename writing, see atomic_file.h. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

/* Records the message unless the file is quiet; returns code either way. */
static stacl_status atomic_fail(const stacl_atomic_file *f, stacl_status code, const char *fmt, ...)
    STACL_PRINTF(3, 4);
static stacl_status atomic_fail(const stacl_atomic_file *f, stacl_status code, const char *fmt, ...) {
    if (f->flags & STACL_ATOMIC_QUIET) return code;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return stacl_fail(code, "%s", msg);
}

int stacl_write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

stacl_status stacl_atomic_open(stacl_atomic_file *f, const char *path, unsigned flags) {
    f->fd = -1;
    f->tmp_path = NULL;
    f->path = path;
    f->flags = flags;
    char pid[32] = "";
    if (flags & STACL_ATOMIC_PER_PROCESS) snprintf(pid, sizeof pid, ".%ld", (long)getpid());
    size_t n = strlen(path) + strlen(pid) + 5;
    char *tmp = malloc(n);
    if (!tmp) return atomic_fail(f, STACL_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    snprintf(tmp, n, "%s%s.tmp", path, pid);
    f->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        stacl_status st =
            atomic_fail(f, STACL_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    f->tmp_path = tmp;
    return STACL_OK;
}

stacl_status stacl_atomic_write(stacl_atomic_file *f, const void *data, size_t n) {
    if (stacl_write_all(f->fd, data, n) != 0)
        return atomic_fail(f, STACL_ERR_IO, "%s: cannot write: %s", f->path, strerror(errno));
    return STACL_OK;
}

stacl_status stacl_atomic_commit(stacl_atomic_file *f) {
    stacl_status st = STACL_OK;
    if (fsync(f->fd) != 0) {
        st = atomic_fail(f, STACL_ERR_IO, "%s: cannot sync: %s", f->path, strerror(errno));
    } else {
        int rc = close(f->fd);
        f->fd = -1;
        if (rc != 0) st = atomic_fail(f, STACL_ERR_IO, "%s: cannot write: %s", f->path, strerror(errno));
        else if (rename(f->tmp_path, f->path) != 0)
            st = atomic_fail(f, STACL_ERR_IO, "%s: cannot rename %s into place: %s", f->path, f->tmp_path,
                             strerror(errno));
    }
    if (st != STACL_OK) {
        stacl_atomic_abort(f);
        return st;
    }
    free(f->tmp_path);
    f->tmp_path = NULL;
    return STACL_OK;
}

void stacl_atomic_abort(stacl_atomic_file *f) {
    if (!f->tmp_path) return;
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    unlink(f->tmp_path);
    free(f->tmp_path);
    f->tmp_path = NULL;
}
