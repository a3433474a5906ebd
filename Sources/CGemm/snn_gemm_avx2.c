// The AVX2 + FMA SGEMM (see snn_gemm_avx2.h): op(B) packed in KC x NC blocks of NR-wide panels,
// op(A) in MC x KC blocks of MR-tall panels, an MR x NR micro-kernel accumulating one C tile in
// ymm registers over a KC-long slice. The packing layout and the kernel are written for any tile of
// MR <= 8 rows and NR = 8, 16 or 24 columns; the tile compiled in was chosen by measurement
// (scripts/benchmarks/gemm-avx2-tiles.sh; README, "Speed").
//
// Why 6 x 16: x86-64 has 16 ymm registers. 6 rows of two 8-float vectors are 12 accumulators, plus
// two B vectors and one broadcast A value: 15 registers, and 12 independent FMAs per K step, enough
// to cover the FMA latency on two pipes (4 x 24 needs all 16 and spills: half the speed; 8 x 8
// loads a broadcast per FMA: 15% slower). 16 columns also fill VGG's 4x4 feature maps exactly.
//
// Sizes: a B panel (KC x NR floats, 16 KiB) stays in L1 while the kernel walks the A block
// (MC x KC, 144 KiB) held in L2; NC bounds the B block (1 MiB). B is packed 8 panels at a time,
// just before their first use.
//
// Every function carries the AVX2 target attribute instead of the target being compiled with
// -mavx2: the engine calls snn_sgemm_avx2 only after snn_sgemm_avx2_supported() said yes. This file
// keeps its own per-thread buffers rather than sharing snn_gemm.c's: a process runs one level, so a
// thread maps only one set, and the two files change independently.
#include "snn_gemm_avx2.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <pthread.h>
#include "snn_thread_buffers.h"
#include <stdatomic.h>
#include <stdint.h>

#ifndef SNN_AVX2_MR  // tile and blocking, overridable only to measure others (scripts/benchmarks/gemm-avx2-tiles.sh)
#define SNN_AVX2_MR 6
#endif
#ifndef SNN_AVX2_NR
#define SNN_AVX2_NR 16
#endif
#ifndef SNN_AVX2_KC
#define SNN_AVX2_KC 256
#endif
#ifndef SNN_AVX2_MC
#define SNN_AVX2_MC 144
#endif

enum { MR = SNN_AVX2_MR, NR = SNN_AVX2_NR, NV = NR / 8, KC = SNN_AVX2_KC, MC = SNN_AVX2_MC, NC = 1024 / NR * NR };
_Static_assert(MR >= 1 && MR <= 8 && NR % 8 == 0 && NR >= 8 && NR <= 24, "tile out of range");
_Static_assert(MC % MR == 0 && NC % NR == 0, "blocks hold whole tiles");

// The A panels' packing stores whole 8-float vectors for MR-float rows: a vector's tail lands in the
// next row (rewritten after) or, for the block's last row, in this slack.
enum { A_FLOATS = MC * KC + 8, B_FLOATS = KC * NC };

#ifndef SNN_AVX2_B_GROUP
#define SNN_AVX2_B_GROUP 8
#endif
enum { B_GROUP = SNN_AVX2_B_GROUP };  // B panels packed together

#define SNN_AVX2 __attribute__((target("avx2,fma")))

bool snn_sgemm_avx2_supported(void) {
    __builtin_cpu_init();
    // The compiler runtime's check includes the OS's XCR0 bits: ymm state is saved on switches.
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int snn_sgemm_avx2_tile_rows(void) { return MR; }
int snn_sgemm_avx2_tile_columns(void) { return NR; }

// One thread's packing buffers (snn_thread_buffers.h: mapped on its first call, outside jemalloc,
// unmapped when it exits). Page-aligned; A_FLOATS is a multiple of 8, so B panels are 32-byte aligned.
static snn_thread_buffers packing = { .bytes = (size_t)(A_FLOATS + B_FLOATS) * sizeof(float), .key_once = PTHREAD_ONCE_INIT };

size_t snn_sgemm_avx2_packing_bytes(void) { return packing.bytes; }

static void release_packing(void *mapping) { snn_thread_buffers_release(&packing, mapping); }

static void make_packing_key(void) { pthread_key_create(&packing.key, release_packing); }

static float *packing_buffers(void) { return snn_thread_buffers_get(&packing, make_packing_key); }

long snn_sgemm_avx2_live_packing_buffers(void) { return atomic_load(&packing.live); }

static inline ptrdiff_t min_ptrdiff(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

// All-ones in the first `count` (clamped to 0...8) 32-bit lanes: AVX2's masked loads and stores
// touch no memory in the other lanes.
SNN_AVX2 static inline __m256i lane_mask(ptrdiff_t count) {
    const int n = count < 0 ? 0 : count > 8 ? 8 : (int)count;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Rows r[0..7] (8 floats each) to columns: out[q] = (r[0][q], ..., r[7][q]).
SNN_AVX2 static inline void transpose8x8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x20);
        r[q + 4] = _mm256_permute2f128_ps(s[q], s[q + 4], 0x31);
    }
}

// Packs op(A)[i0 ..< i0+mc, p0 ..< p0+kc] into MR-row panels: dst[panel][p * MR + i], rows past mc
// zero-filled. Each step stores 8 floats of which the first MR belong to it, in increasing p, so
// the excess is overwritten by the next step (or lands in the slack after the block).
SNN_AVX2 static void pack_a(bool transpose, const float *a, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t p0,
                            ptrdiff_t mc, ptrdiff_t kc, float *dst) {
    for (ptrdiff_t ir = 0; ir < mc; ir += MR, dst += MR * kc) {
        const ptrdiff_t rows = min_ptrdiff(MR, mc - ir);
        if (transpose) {
            // op(A)(i, p) = a[p * lda + i]: each step's MR values lie side by side.
            const float *src = a + p0 * lda + i0 + ir;
            const __m256i mask = lane_mask(rows);
            for (ptrdiff_t p = 0; p < kc; p++) _mm256_storeu_ps(dst + p * MR, _mm256_maskload_ps(src + p * lda, mask));
        } else {
            // op(A)(i, p) = a[i * lda + p]: rows run along p; 8 x 8 blocks are transposed in registers.
            const float *src = a + (i0 + ir) * lda + p0;
            ptrdiff_t p = 0;
            for (; p + 8 <= kc; p += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(src + i * lda + p) : _mm256_setzero_ps();
                transpose8x8(r);
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (p + q) * MR, r[q]);
            }
            for (; p < kc; p++)
                for (int i = 0; i < MR; i++) dst[p * MR + i] = i < rows ? src[i * lda + p] : 0.0f;
        }
    }
}

// Packs op(B)[p0 ..< p0+kc, j0 ..< j0+nc] into NR-column panels: dst[panel][p * NR + j], columns
// past nc zero-filled.
SNN_AVX2 static void pack_b(bool transpose, const float *b, ptrdiff_t ldb, ptrdiff_t p0, ptrdiff_t j0,
                            ptrdiff_t kc, ptrdiff_t nc, float *dst) {
    if (!transpose) {
        // op(B)(p, j) = b[p * ldb + j]: row by row across all the panels, so that the reads run along
        // b's rows. Panel by panel, each row's NR floats came from a new page (a 4 KiB ldb on
        // CIFARNet's 32x32 maps), and the kernel ran 10-15% behind OpenBLAS there.
        const ptrdiff_t panels = (nc + NR - 1) / NR;
        for (ptrdiff_t p = 0; p < kc; p++) {
            const float *src = b + (p0 + p) * ldb + j0;
            for (ptrdiff_t panel = 0; panel < panels; panel++) {
                const ptrdiff_t jr = panel * NR, cols = min_ptrdiff(NR, nc - jr);
                float *out = dst + panel * NR * kc + p * NR;
                if (cols == NR) {
                    for (int v = 0; v < NV; v++) _mm256_store_ps(out + 8 * v, _mm256_loadu_ps(src + jr + 8 * v));
                } else {
                    for (int v = 0; v < NV; v++) _mm256_store_ps(out + 8 * v, _mm256_maskload_ps(src + jr + 8 * v, lane_mask(cols - 8 * v)));
                }
            }
        }
        return;
    }
    for (ptrdiff_t jr = 0; jr < nc; jr += NR, dst += NR * kc) {
        const ptrdiff_t cols = min_ptrdiff(NR, nc - jr);
        // op(B)(p, j) = b[j * ldb + p]: the panel's columns are rows of b; 8 x 8 blocks are
        // transposed in registers, columns past nc read as zeros.
        const float *src = b + (j0 + jr) * ldb + p0;
        ptrdiff_t p = 0;
        for (; p + 8 <= kc; p += 8) {
            for (int v = 0; v < NV; v++) {
                __m256 r[8];
                for (int q = 0; q < 8; q++) {
                    const ptrdiff_t j = 8 * v + q;
                    r[q] = j < cols ? _mm256_loadu_ps(src + j * ldb + p) : _mm256_setzero_ps();
                }
                transpose8x8(r);
                for (int q = 0; q < 8; q++) _mm256_store_ps(dst + (p + q) * NR + 8 * v, r[q]);
            }
        }
        for (; p < kc; p++)
            for (int j = 0; j < NR; j++) dst[p * NR + j] = j < cols ? src[j * ldb + p] : 0.0f;
    }
}

// C[0 ..< rows, 0 ..< cols] = alpha * (A panel x B panel) + beta * C for the panel's first R rows
// (R >= rows); C is not read when beta == 0. R is a constant in each instantiation: the compiler
// unrolls every loop over the accumulators and keeps them in registers.
SNN_AVX2 static inline __attribute__((always_inline)) void kernel_rows(const int R, ptrdiff_t kc, const float *restrict a,
                                                                       const float *restrict b, float *c, ptrdiff_t ldc,
                                                                       float alpha, float beta, ptrdiff_t rows, ptrdiff_t cols) {
    __m256 acc[MR][NV];
    for (int i = 0; i < R; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (ptrdiff_t p = 0; p < kc; p++) {
        __m256 bv[NV];
        for (int v = 0; v < NV; v++) bv[v] = _mm256_load_ps(b + 8 * v);
        for (int i = 0; i < R; i++) {
            const __m256 ai = _mm256_broadcast_ss(a + i);
            for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += NR;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (rows == R && cols == NR) {
        for (int i = 0; i < R; i++) {
            float *ci = c + i * ldc;
            for (int v = 0; v < NV; v++) {
                __m256 x = _mm256_mul_ps(va, acc[i][v]);
                if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8 * v), x);
                _mm256_storeu_ps(ci + 8 * v, x);
            }
        }
        return;
    }
    // An edge tile: only its rows and columns inside C are read and written.
    __m256i masks[NV];
    for (int v = 0; v < NV; v++) masks[v] = lane_mask(cols - 8 * v);
    for (int i = 0; i < R; i++) {
        if (i >= rows) break;
        float *ci = c + i * ldc;
        for (int v = 0; v < NV; v++) {
            __m256 x = _mm256_mul_ps(va, acc[i][v]);
            if (beta != 0.0f) x = _mm256_fmadd_ps(vb, _mm256_maskload_ps(ci + 8 * v, masks[v]), x);
            _mm256_maskstore_ps(ci + 8 * v, masks[v], x);
        }
    }
}

// A tile of all MR rows, and edge tiles (M not a multiple of MR) of at most MR/3 or 2*MR/3 rows:
// CIFARNet's 128-row forward GEMM ends in a 2-row tile, which a full-height kernel would compute at
// the cost of 6 rows (3% of the product, measured as the gap to OpenBLAS on that shape).
SNN_AVX2 static void kernel_full(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, float alpha, float beta,
                                 ptrdiff_t rows, ptrdiff_t cols) {
    kernel_rows(MR, kc, a, b, c, ldc, alpha, beta, rows, cols);
}
SNN_AVX2 static void kernel_third(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, float alpha, float beta,
                                  ptrdiff_t rows, ptrdiff_t cols) {
    kernel_rows(MR / 3 > 0 ? MR / 3 : 1, kc, a, b, c, ldc, alpha, beta, rows, cols);
}
SNN_AVX2 static void kernel_two_thirds(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, float alpha, float beta,
                                       ptrdiff_t rows, ptrdiff_t cols) {
    kernel_rows(2 * MR / 3 > 0 ? 2 * MR / 3 : 1, kc, a, b, c, ldc, alpha, beta, rows, cols);
}

SNN_AVX2 static inline void kernel(ptrdiff_t kc, const float *a, const float *b, float *c, ptrdiff_t ldc, float alpha, float beta,
                                   ptrdiff_t rows, ptrdiff_t cols) {
    if (rows <= MR / 3) kernel_third(kc, a, b, c, ldc, alpha, beta, rows, cols);
    else if (rows <= 2 * MR / 3) kernel_two_thirds(kc, a, b, c, ldc, alpha, beta, rows, cols);
    else kernel_full(kc, a, b, c, ldc, alpha, beta, rows, cols);
}

// C = beta * C (k == 0 or alpha == 0: no product to add); beta == 0 writes zeros without reading.
static void scale_c(ptrdiff_t m, ptrdiff_t n, float beta, float *c, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

// Unblocked, for when the packing buffers cannot be mapped: slow but correct.
static void reference_sgemm(bool ta, bool tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,
                            ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            float sum = 0.0f;
            for (ptrdiff_t p = 0; p < k; p++) sum += (ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
        }
}

SNN_AVX2 void snn_sgemm_avx2(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                             float alpha, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                             float beta, float *c, ptrdiff_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    float *buffers = packing_buffers();
    if (!buffers) {
        reference_sgemm(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    float *packed_a = buffers, *packed_b = buffers + A_FLOATS;
    // K in equal blocks of at most KC (576 = 2 x 288 rather than 256 + 256 + 64): a short last block
    // would read and write all of C for little arithmetic.
    const ptrdiff_t k_blocks = (k + KC - 1) / KC, k_step = (k + k_blocks - 1) / k_blocks;
    for (ptrdiff_t jc = 0; jc < n; jc += NC) {
        const ptrdiff_t nc = min_ptrdiff(NC, n - jc);
        for (ptrdiff_t pc = 0; pc < k; pc += k_step) {
            const ptrdiff_t kc = min_ptrdiff(k_step, k - pc);
            // The first K block applies the caller's beta; later blocks add to what it wrote.
            const float block_beta = pc == 0 ? beta : 1.0f;
            for (ptrdiff_t ic = 0; ic < m; ic += MC) {
                const ptrdiff_t mc = min_ptrdiff(MC, m - ic);
                pack_a(transpose_a, a, lda, ic, pc, mc, kc, packed_a);
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    const ptrdiff_t cols = min_ptrdiff(NR, nc - jr);
                    // B is packed a group of panels at a time, just before their first use, while they are
                    // still in L1/L2 (the whole block first measured 1-5% slower).
                    if (ic == 0 && jr % (B_GROUP * NR) == 0)
                        pack_b(transpose_b, b, ldb, pc, jc + jr, kc, min_ptrdiff(B_GROUP * NR, nc - jr), packed_b + jr * kc);
                    for (ptrdiff_t ir = 0; ir < mc; ir += MR)
                        kernel(kc, packed_a + ir * kc, packed_b + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc, alpha, block_beta,
                               min_ptrdiff(MR, mc - ir), cols);
                }
            }
        }
    }
}

#else  // Not x86-64 (aarch64): no AVX2; the engine keeps OpenBLAS and never calls snn_sgemm_avx2.

#include <stdlib.h>

bool snn_sgemm_avx2_supported(void) { return false; }
int snn_sgemm_avx2_tile_rows(void) { return 1; }
int snn_sgemm_avx2_tile_columns(void) { return 1; }
size_t snn_sgemm_avx2_packing_bytes(void) { return 0; }
long snn_sgemm_avx2_live_packing_buffers(void) { return 0; }
void snn_sgemm_avx2(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,
                    ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    abort();
}

#endif
