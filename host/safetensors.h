/* safetensors.h: reading and writing the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data).
 * The reader validates everything before any tensor is used: header length,
 * JSON, dtype names, shapes vs byte sizes, offsets inside the data section,
 * no overlaps. Data is mapped read-only. */
#ifndef STACL_SAFETENSORS_H
#define STACL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "stacl.h"

#define STACL_ST_MAX_DIMS 8

typedef enum stacl_dtype {
    STACL_DT_F32, STACL_DT_F16, STACL_DT_BF16, STACL_DT_F64,
    STACL_DT_I64, STACL_DT_I32, STACL_DT_I16, STACL_DT_I8, STACL_DT_U8
} stacl_dtype;

const char *stacl_dtype_name(stacl_dtype dt); /* "F32", ... as in the format */
size_t stacl_dtype_size(stacl_dtype dt);
int stacl_dtype_is_float(stacl_dtype dt);

typedef struct stacl_st_tensor {
    const char *name;
    stacl_dtype dtype;
    int ndim;                         /* 0 for a scalar */
    int64_t shape[STACL_ST_MAX_DIMS];
    uint64_t numel;                   /* product of shape (1 for a scalar) */
    uint64_t begin, end;              /* byte offsets in the data section */
} stacl_st_tensor;

typedef struct stacl_st_file stacl_st_file;

/* Errors: STACL_ERR_IO (cannot open/read), STACL_ERR_FORMAT (anything
 * malformed), with the path in the message. */
stacl_status stacl_st_open(stacl_st_file **out, const char *path);
void stacl_st_close(stacl_st_file *file);
const char *stacl_st_path(const stacl_st_file *file);
int stacl_st_count(const stacl_st_file *file);
const stacl_st_tensor *stacl_st_at(const stacl_st_file *file, int i); /* sorted by name */
const stacl_st_tensor *stacl_st_find(const stacl_st_file *file, const char *name); /* NULL if absent */
/* A string value of "__metadata__", or NULL. */
const char *stacl_st_metadata(const stacl_st_file *file, const char *key);
/* Raw bytes of a tensor (little-endian, as stored). */
const void *stacl_st_data(const stacl_st_file *file, const stacl_st_tensor *t);

/* Converts a float tensor (F32/F16/BF16/F64) to f32; dst holds t->numel.
 * Integer tensors give STACL_ERR_SHAPE naming the tensor and dtype. */
stacl_status stacl_st_read_f32(const stacl_st_file *file, const stacl_st_tensor *t, float *dst);
/* Converts an integer tensor (I64/I32/I16/I8/U8) to int64. Float -> error. */
stacl_status stacl_st_read_i64(const stacl_st_file *file, const stacl_st_tensor *t, int64_t *dst);

/* Writing: entries are written in the given order; data is the raw bytes in
 * dtype (numel * dtype size). metadata: n_meta key/value string pairs, may be
 * NULL. The file is written to "<path>.tmp" and renamed, so a failed write
 * never leaves a truncated file at path. */
typedef struct stacl_st_entry {
    const char *name;
    stacl_dtype dtype;
    int ndim;
    int64_t shape[STACL_ST_MAX_DIMS];
    const void *data;
} stacl_st_entry;

stacl_status stacl_st_write(const char *path, const stacl_st_entry *entries, int n,
                            const char *const *meta_keys, const char *const *meta_values,
                            int n_meta);

/* Half-precision conversions (round-to-nearest-even for float -> half). */
float stacl_f16_to_f32(uint16_t h);
float stacl_bf16_to_f32(uint16_t h);
uint16_t stacl_f32_to_f16(float f);

#endif
