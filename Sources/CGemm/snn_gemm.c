// A packed, blocked single-precision GEMM with an AVX-512 micro-kernel (the Goto/BLIS structure):
// op(B) is packed in KC x NC blocks of NR-wide panels, op(A) in MC x KC blocks of MR-tall panels,
// and an MR x NR micro-kernel accumulates one C tile in registers over a KC-long slice.
//
// Sizes, for a core with 48 KiB L1d and 1 MiB L2: a B panel (KC x NR floats, 32 KiB) stays in L1
// while the micro-kernel walks the MC / MR panels of the A block (MC x KC, 128 KiB) held in L2.
// MR x NR = 8 x 32 keeps 16 accumulators (two zmm per row), enough independent FMAs to cover
// their latency on two FMA pipes. 8 and 32 divide CIFARNet's channel counts and feature-map sizes,
// so its conv GEMMs run no partial tiles; elsewhere partial tiles are packed with zeros and
// stored under masks.
//
// Every function carries the AVX-512 target attribute instead of the whole target being compiled
// with -mavx512f: the engine calls snn_sgemm only after snn_sgemm_supported() said yes, and the
// rest of the binary runs on any x86-64.
#include "snn_gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <pthread.h>
#include "snn_thread_buffers.h"
#include <stdatomic.h>
#include <stdint.h>

enum { MR = 8, NR = 32, KC = 256, MC = 128, NC = 1024 };

#define SNN_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))

bool snn_sgemm_supported(void) {
    __builtin_cpu_init();
    // The compiler runtime's check includes the OS's XCR0 bits: zmm state is saved on switches.
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
}

// One thread's packing buffers (snn_thread_buffers.h: mapped on its first call, outside jemalloc,
// unmapped when it exits). Page-aligned, so every B panel (a multiple of NR floats = 128 bytes) is
// 64-byte aligned for aligned zmm loads.
static snn_thread_buffers packing = { .bytes = (size_t)(MC * KC + KC * NC) * sizeof(float), .key_once = PTHREAD_ONCE_INIT };

size_t snn_sgemm_packing_bytes(void) { return packing.bytes; }

static void release_packing(void *mapping) { snn_thread_buffers_release(&packing, mapping); }

static void make_packing_key(void) { pthread_key_create(&packing.key, release_packing); }

static float *packing_buffers(void) { return snn_thread_buffers_get(&packing, make_packing_key); }

long snn_sgemm_live_packing_buffers(void) { return atomic_load(&packing.live); }

static inline ptrdiff_t min_ptrdiff(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

// Element (i, p) of op(A) and (p, j) of op(B), for the unblocked fallback.
static inline float element_a(bool t, const float *a, ptrdiff_t lda, ptrdiff_t i, ptrdiff_t p) {
    return t ? a[p * lda + i] : a[i * lda + p];
}
static inline float element_b(bool t, const float *b, ptrdiff_t ldb, ptrdiff_t p, ptrdiff_t j) {
    return t ? b[j * ldb + p] : b[p * ldb + j];
}

// The 16-bit masks of the first `count` (0...32) lanes of a 32-float row, as two zmm halves.
static inline __mmask16 low_mask(ptrdiff_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}
static inline __mmask16 high_mask(ptrdiff_t count) {
    return count >= 32 ? (__mmask16)0xFFFF : count > 16 ? (__mmask16)((1u << (count - 16)) - 1) : 0;
}

// Rows r[0..7] (8 floats each) to columns: out[q] = (r[0][q], ..., r[7][q]).
SNN_AVX512 static inline void transpose8x8(__m256 r[8]) {
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

// Rows r[0..15] (16 floats each) to columns: out[q] = (r[0][q], ..., r[15][q]). Unpacks pair rows
// within 128-bit lanes, 64-bit shuffles make 4-row groups, two lane shuffles gather the groups.
SNN_AVX512 static inline void transpose16x16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u[4g + c]: rows 4g..4g+3, column c + 4L in 128-bit lane L.
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 even0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), even1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 odd0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD), odd1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(even0, even1, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(even0, even1, 0xDD);
        r[c + 4] = _mm512_shuffle_f32x4(odd0, odd1, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(odd0, odd1, 0xDD);
    }
}

// Packs op(A)[i0 ..< i0+mc, p0 ..< p0+kc] into MR-row panels: dst[panel][p * MR + i], rows past
// mc zero-filled.
SNN_AVX512 static void pack_a(bool transpose, const float *a, ptrdiff_t lda, ptrdiff_t i0, ptrdiff_t p0,
                              ptrdiff_t mc, ptrdiff_t kc, float *dst) {
    for (ptrdiff_t ir = 0; ir < mc; ir += MR, dst += MR * kc) {
        const ptrdiff_t rows = min_ptrdiff(MR, mc - ir);
        if (transpose) {
            // op(A)(i, p) = a[p * lda + i]: each step's MR values lie side by side.
            const float *src = a + p0 * lda + i0 + ir;
            const __mmask8 mask = (__mmask8)((1u << rows) - 1);
            for (ptrdiff_t p = 0; p < kc; p++) _mm256_storeu_ps(dst + p * MR, _mm256_maskz_loadu_ps(mask, src + p * lda));
        } else {
            // op(A)(i, p) = a[i * lda + p]: rows run along p; 8 x 8 blocks are transposed in registers,
            // rows past mc read as zeros.
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
SNN_AVX512 static void pack_b(bool transpose, const float *b, ptrdiff_t ldb, ptrdiff_t p0, ptrdiff_t j0,
                              ptrdiff_t kc, ptrdiff_t nc, float *dst) {
    for (ptrdiff_t jr = 0; jr < nc; jr += NR, dst += NR * kc) {
        const ptrdiff_t cols = min_ptrdiff(NR, nc - jr);
        if (!transpose) {
            // op(B)(p, j) = b[p * ldb + j]: a row of the panel is a contiguous (masked) copy.
            const float *src = b + p0 * ldb + j0 + jr;
            const __mmask16 m0 = low_mask(cols), m1 = high_mask(cols);
            for (ptrdiff_t p = 0; p < kc; p++) {
                _mm512_store_ps(dst + p * NR, _mm512_maskz_loadu_ps(m0, src + p * ldb));
                _mm512_store_ps(dst + p * NR + 16, _mm512_maskz_loadu_ps(m1, src + p * ldb + 16));
            }
        } else {
            // op(B)(p, j) = b[j * ldb + p]: the panel's columns are rows of b; 16 x 16 blocks are
            // transposed in registers, columns past nc read as zeros.
            const float *src = b + (j0 + jr) * ldb + p0;
            ptrdiff_t p = 0;
            for (; p + 16 <= kc; p += 16) {
                for (int half = 0; half < 2; half++) {
                    __m512 r[16];
                    for (int q = 0; q < 16; q++) {
                        const ptrdiff_t j = half * 16 + q;
                        r[q] = j < cols ? _mm512_loadu_ps(src + j * ldb + p) : _mm512_setzero_ps();
                    }
                    transpose16x16(r);
                    for (int q = 0; q < 16; q++) _mm512_store_ps(dst + (p + q) * NR + half * 16, r[q]);
                }
            }
            for (; p < kc; p++)
                for (int j = 0; j < NR; j++) dst[p * NR + j] = j < cols ? src[j * ldb + p] : 0.0f;
        }
    }
}

// C[0 ..< rows, 0 ..< cols] = alpha * (A panel x B panel) + beta * C; C is not read when beta == 0.
SNN_AVX512 static void kernel_8x32(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                                   float *c, ptrdiff_t ldc, float alpha, float beta, ptrdiff_t rows, ptrdiff_t cols) {
    __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
    __m512 c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
    // The C tile is read (beta != 0) or written only after the k loop: its lines are requested now,
    // so that a C larger than the caches arrives while the FMAs run. That is a weight gradient
    // accumulated over a short K (vgg11's 512-channel convs: 9.4 MB of dW, K = 64 or 256 per
    // timestep), whose loads otherwise stalled the tile's update (measured: about 17% of the kernel's
    // samples in vgg11's step; 185 -> 260 GFLOP/s on its conv6 weight gradient, one thread).
    // A row's first and last lines (a third, between them when the row is not 64-byte aligned, is
    // left to the hardware's adjacent-line prefetch: a third request per row measured 30% slower on
    // every shape, 2026-12-05).
    for (ptrdiff_t i = 0; i < rows; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + cols - 1), _MM_HINT_T0);
    }
#define SNN_ROW(i)                                                    \
    {                                                                 \
        const __m512 ai = _mm512_set1_ps(a[i]);                       \
        c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a);                   \
        c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b);                   \
    }
    for (ptrdiff_t p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        SNN_ROW(0) SNN_ROW(1) SNN_ROW(2) SNN_ROW(3) SNN_ROW(4) SNN_ROW(5) SNN_ROW(6) SNN_ROW(7)
        a += MR;
        b += NR;
    }
#undef SNN_ROW
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const __mmask16 m0 = low_mask(cols), m1 = high_mask(cols);
#define SNN_STORE(i)                                                                        \
    if (i < rows) {                                                                         \
        float *ci = c + i * ldc;                                                            \
        __m512 x = _mm512_mul_ps(va, c##i##a), y = _mm512_mul_ps(va, c##i##b);              \
        if (beta != 0.0f) {                                                                 \
            x = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, ci), x);                      \
            y = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, ci + 16), y);                 \
        }                                                                                   \
        _mm512_mask_storeu_ps(ci, m0, x);                                                   \
        _mm512_mask_storeu_ps(ci + 16, m1, y);                                              \
    }
    SNN_STORE(0) SNN_STORE(1) SNN_STORE(2) SNN_STORE(3) SNN_STORE(4) SNN_STORE(5) SNN_STORE(6) SNN_STORE(7)
#undef SNN_STORE
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
            for (ptrdiff_t p = 0; p < k; p++) sum += element_a(ta, a, lda, i, p) * element_b(tb, b, ldb, p, j);
            c[i * ldc + j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
        }
}

SNN_AVX512 void snn_sgemm(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
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
    float *packed_a = buffers, *packed_b = buffers + MC * KC;
    for (ptrdiff_t jc = 0; jc < n; jc += NC) {
        const ptrdiff_t nc = min_ptrdiff(NC, n - jc);
        for (ptrdiff_t pc = 0; pc < k; pc += KC) {
            const ptrdiff_t kc = min_ptrdiff(KC, k - pc);
            // The first K block applies the caller's beta; later blocks add to what it wrote.
            const float block_beta = pc == 0 ? beta : 1.0f;
            pack_b(transpose_b, b, ldb, pc, jc, kc, nc, packed_b);
            for (ptrdiff_t ic = 0; ic < m; ic += MC) {
                const ptrdiff_t mc = min_ptrdiff(MC, m - ic);
                pack_a(transpose_a, a, lda, ic, pc, mc, kc, packed_a);
                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    const ptrdiff_t cols = min_ptrdiff(NR, nc - jr);
                    for (ptrdiff_t ir = 0; ir < mc; ir += MR) {
                        kernel_8x32(kc, packed_a + ir * kc, packed_b + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                                    alpha, block_beta, min_ptrdiff(MR, mc - ir), cols);
                    }
                }
            }
        }
    }
}

#else  // Not x86-64: no AVX-512; the engine keeps OpenBLAS and never calls snn_sgemm.

#include <stdlib.h>

bool snn_sgemm_supported(void) { return false; }
size_t snn_sgemm_packing_bytes(void) { return 0; }
long snn_sgemm_live_packing_buffers(void) { return 0; }
void snn_sgemm(bool transpose_a, bool transpose_b, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha, const float *a,
               ptrdiff_t lda, const float *b, ptrdiff_t ldb, float beta, float *c, ptrdiff_t ldc) {
    abort();
}

#endif
