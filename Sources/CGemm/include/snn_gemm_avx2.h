#ifndef SNNMEM_GEMM_AVX2_H
#define SNNMEM_GEMM_AVX2_H

// snnmem's single-precision GEMM for x86-64 processors with AVX2 and FMA but no AVX-512: the same
// packed Goto/BLIS structure as snn_sgemm (snn_gemm.h), with a micro-kernel of 256-bit (ymm)
// registers. The engine runs it where snn_sgemm cannot run, on the products whose shapes its tiles
// fit (GEMMBackend.swift); OpenBLAS keeps the rest.

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Whether snn_sgemm_avx2 can run here: AVX2 and FMA on the processor, with the OS saving ymm state.
/// False on every processor that is not x86-64.
bool snn_sgemm_avx2_supported(void);

/// Row-major C = alpha * op(A) * op(B) + beta * C, the contract of snn_sgemm (snn_gemm.h): op(A)
/// m x k, op(B) k x n, C m x n; beta == 0 writes C without reading it; single-threaded; per-thread
/// packing buffers mapped once outside the process allocator and unmapped when the thread exits.
/// Call only when snn_sgemm_avx2_supported() is true.
void snn_sgemm_avx2(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                    float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                    float beta, float *c, ptrdiff_t ldc);

/// The micro-kernel's tile: rows of C (of op(A)) and columns of C (of op(B)) computed per call.
int snn_sgemm_avx2_tile_rows(void);
int snn_sgemm_avx2_tile_columns(void);

/// Bytes of one thread's packing buffers (for reports and tests).
size_t snn_sgemm_avx2_packing_bytes(void);

/// Threads whose AVX2 packing buffers are mapped now.
long snn_sgemm_avx2_live_packing_buffers(void);

#ifdef __cplusplus
}
#endif

#endif
