/* npy.h: NumPy .npy files (format versions 1.0, 2.0 and 3.0 headers), C order,
 * little-endian. stacl reads and writes float32 ('<f4') and int32 ('<i4');
 * anything else (other dtype, big-endian, Fortran order, object arrays) is
 * rejected with a message naming the file and what was found. */
#ifndef STACL_NPY_H
#define STACL_NPY_H

#include <stdint.h>

#include "stacl.h"

#define STACL_NPY_MAX_DIMS 8

typedef struct stacl_npy {
    int ndim;
    int64_t shape[STACL_NPY_MAX_DIMS];
    uint64_t numel;
    float *data; /* malloc'd; owned by the struct */
} stacl_npy;

/* Reads a '<f4' C-order array. Errors: IO, FORMAT (bad magic/header,
 * truncated data), SHAPE (dtype other than <f4, fortran_order True). */
stacl_status stacl_npy_read_f32(const char *path, stacl_npy *out);
void stacl_npy_release(stacl_npy *npy); /* frees data; safe on zeroed struct */

/* Writes atomically (tmp file + rename). Version 1.0 header unless it does
 * not fit (then 2.0). */
stacl_status stacl_npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim);
stacl_status stacl_npy_write_i32(const char *path, const int32_t *data, const int64_t *shape, int ndim);

#endif
