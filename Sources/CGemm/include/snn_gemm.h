#ifndef SNNMEM_GEMM_H
#define SNNMEM_GEMM_H

// snnmem's single-precision GEMM for processors with AVX-512: the convolutions' hot loop.
//
// Why it exists: the Debian OpenBLAS (0.3.21) is pinned to its Haswell (AVX2) kernels by
// OPENBLAS_CORETYPE on the machines this project runs on, because its own AVX-512 kernels
// miscompute or crash there. On a processor that executes 512-bit FMAs at full width that halves
// the arithmetic rate, while PyTorch's oneDNN convolutions use AVX-512. This GEMM uses AVX-512
// when the processor and the operating system support it; otherwise the engine keeps OpenBLAS.

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether snn_sgemm can run here: AVX-512 F on the processor, with the OS saving zmm state.
bool snn_sgemm_supported(void);

/// Row-major C = alpha * op(A) * op(B) + beta * C, with op(A) m x k, op(B) k x n and C m x n,
/// as cblas_sgemm(CblasRowMajor, ...). With beta == 0, C is written without being read (it may
/// hold anything, NaN included). Single-threaded: callers run one call per thread. Packing
/// buffers are per thread, mapped once outside the process allocator (as a BLAS's own buffers)
/// and unmapped when the thread exits. Call only when snn_sgemm_supported() is true.
void snn_sgemm(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
               float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
               float beta, float *c, ptrdiff_t ldc);

/// Bytes of one thread's packing buffers (for reports and tests).
size_t snn_sgemm_packing_bytes(void);

/// Threads whose packing buffers are mapped now: each thread maps its own on its first call and
/// unmaps them when it exits.
long snn_sgemm_live_packing_buffers(void);

#ifdef __cplusplus
}
#endif

#endif
