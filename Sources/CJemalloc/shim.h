#ifndef SNNMEM_CJEMALLOC_SHIM_H
#define SNNMEM_CJEMALLOC_SHIM_H

#include <stddef.h>
#include <jemalloc/jemalloc.h>

// Swift does not import function-like macros, so the flag builders jemalloc defines as macros
// are exposed here as functions with the same meaning.

static inline int snnmem_mallocx_lg_align(unsigned lg_align) {
    return MALLOCX_LG_ALIGN(lg_align);
}

static inline int snnmem_mallocx_tcache_none(void) {
    return MALLOCX_TCACHE_NONE;
}

#endif
