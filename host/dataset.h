/* dataset.h: video dataset lists. Two formats, detected per file:
 *  - CSV `path,label` (an optional `path,label` header; RFC 4180 quotes
 *    for paths with commas), the label an integer or a class name resolved
 *    through a class-names file;
 *  - space-separated `path label` (Kinetics/SSv2-style repos; also
 *    `path num_frames label`: the label is the last field).
 * Relative paths are relative to the list's folder. Class-names files are
 * `id,name` CSV (with or without an `id,name` header, as ViFi-CLIP's label
 * files) or one name per line (id = line order).
 * A malformed entry (no label, unknown class name, label out of range) is
 * not fatal: it is skipped, counted and kept as a message naming the list
 * file and line, so a run reports it instead of crashing or relabeling. */
#ifndef STACL_DATASET_H
#define STACL_DATASET_H

#include "stacl.h"

typedef struct stacl_dataset stacl_dataset;

/* class_names may be NULL (then every label must be an integer). Errors: IO
 * (list or class file unreadable), FORMAT (no usable entry at all, or a bad
 * class-names file). */
stacl_status stacl_dataset_load(stacl_dataset **out, const char *list_path, const char *class_names);
void stacl_dataset_free(stacl_dataset *ds);

int stacl_dataset_size(const stacl_dataset *ds);
const char *stacl_dataset_path(const stacl_dataset *ds, int i); /* resolved */
int stacl_dataset_label(const stacl_dataset *ds, int i);
int stacl_dataset_line(const stacl_dataset *ds, int i); /* 1-based line in the list */
const char *stacl_dataset_list_path(const stacl_dataset *ds);
/* Classes: from the class-names file, else the largest label + 1. */
int stacl_dataset_num_classes(const stacl_dataset *ds);
const char *stacl_dataset_class_name(const stacl_dataset *ds, int label); /* NULL without names */
/* Entries skipped while reading the list, as "list:LINE: reason". */
int stacl_dataset_num_rejected(const stacl_dataset *ds);
const char *stacl_dataset_rejected(const stacl_dataset *ds, int k);

#endif
