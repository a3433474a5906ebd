// Per-thread packing buffers for the engine's GEMMs (private to CGemm).
//
// A GEMM's packing buffers are mapped on a thread's first call, outside the process allocator
// (jemalloc), as OpenBLAS keeps its own, and unmapped when the thread exits: a caller's threads come
// and go over a long run, and a buffer kept past its thread would leak. Mappings are page-aligned,
// so the GEMMs' packed panels can be loaded with aligned vector loads.
#ifndef SNNMEM_THREAD_BUFFERS_H
#define SNNMEM_THREAD_BUFFERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct snn_thread_buffers {
    size_t bytes;             // one thread's mapping
    pthread_once_t key_once;  // PTHREAD_ONCE_INIT
    pthread_key_t key;        // the thread's mapping; its destructor unmaps it
    atomic_long live;         // threads whose mapping exists now (tests check it falls on exit)
} snn_thread_buffers;

// The calling thread's buffers, mapped on its first call; NULL when the mapping fails.
// `make_key` creates `buffers->key` with a destructor that calls snn_thread_buffers_release:
// pthread_once takes no argument, so each GEMM names its own.
float *snn_thread_buffers_get(snn_thread_buffers *buffers, void (*make_key)(void));

// Unmaps one thread's mapping (the key's destructor, at thread exit).
void snn_thread_buffers_release(snn_thread_buffers *buffers, void *mapping);

#endif
