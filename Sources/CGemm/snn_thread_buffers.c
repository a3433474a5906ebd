#include "snn_thread_buffers.h"

#include <sys/mman.h>

float *snn_thread_buffers_get(snn_thread_buffers *buffers, void (*make_key)(void)) {
    pthread_once(&buffers->key_once, make_key);
    float *mapping = pthread_getspecific(buffers->key);
    if (mapping) return mapping;
    void *mapped = mmap(NULL, buffers->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped == MAP_FAILED) return NULL;
    atomic_fetch_add(&buffers->live, 1);
    pthread_setspecific(buffers->key, mapped);
    return mapped;
}

void snn_thread_buffers_release(snn_thread_buffers *buffers, void *mapping) {
    munmap(mapping, buffers->bytes);
    atomic_fetch_sub(&buffers->live, 1);
}
