/* hash.c: FNV-1a, used to key the on-disk kernel binary cache. */
#include "runtime.h"

uint64_t stacl_hash64(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
