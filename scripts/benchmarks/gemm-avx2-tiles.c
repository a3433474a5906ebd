// Measures snn_gemm_avx2.c compiled with other tiles and blockings (SNN_AVX2_MR, _NR, _KC, _MC,
// _B_GROUP) against OpenBLAS on the engine's conv GEMM shapes, after checking it against a Double
// reference: how the compiled-in 6x16 tile was chosen. Built and run by gemm-avx2-tiles.sh.
#include "snn_gemm_avx2.h"
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void fill(float *p, long n, unsigned seed) {
    for (long i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = ((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

// Errors beyond (k + 2) ulps of each element's magnitude sum, and writes past column n.
static int check(int ta, int tb, int m, int n, int k, float alpha, float beta) {
    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
    float *a = malloc(sizeof(float) * (ta ? k : m) * lda), *b = malloc(sizeof(float) * (tb ? n : k) * ldb);
    float *c = malloc(sizeof(float) * m * ldc), *c0 = malloc(sizeof(float) * m * ldc);
    fill(a, (long)(ta ? k : m) * lda, 1);
    fill(b, (long)(tb ? n : k) * ldb, 2);
    fill(c0, (long)m * ldc, 3);
    memcpy(c, c0, sizeof(float) * m * ldc);
    snn_sgemm_avx2(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            if (j >= n) {
                bad += c[i * ldc + j] != c0[i * ldc + j];
                continue;
            }
            double sum = 0, magnitude = 0;
            for (int p = 0; p < k; p++) {
                const double x = ta ? a[p * lda + i] : a[i * lda + p], y = tb ? b[j * ldb + p] : b[p * ldb + j];
                sum += x * y;
                magnitude += fabs(x * y);
            }
            const double expected = alpha * sum + (beta == 0 ? 0 : beta * c0[i * ldc + j]);
            bad += fabs(c[i * ldc + j] - expected) > (k + 2) * 1.2e-7 * (fabs(alpha) * magnitude + fabs(beta * c0[i * ldc + j])) + 1e-30;
        }
    free(a), free(b), free(c), free(c0);
    return bad;
}

struct shape { const char *name; int ta, tb, m, n, k; };

int main(int argc, char **argv) {
    const int iterations = argc > 1 ? atoi(argv[1]) : 7;
    const int checks[][3] = {{1, 1, 1}, {7, 5, 3}, {6, 16, 256}, {13, 33, 257}, {64, 1024, 27}, {130, 70, 600}, {17, 1100, 300}, {8, 20, 33}};
    int bad = 0;
    for (unsigned s = 0; s < sizeof checks / sizeof *checks; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                bad += check(ta, tb, checks[s][0], checks[s][1], checks[s][2], 1.5f, 0) + check(ta, tb, checks[s][0], checks[s][1], checks[s][2], 1, 0.5f);
    printf("tile %dx%d: %d wrong elements\n", snn_sgemm_avx2_tile_rows(), snn_sgemm_avx2_tile_columns(), bad);
    if (bad) return 1;
    // CIFARNet's per-sample conv GEMMs (forward, weight gradient, data gradient) and VGG-11's grouped 4x4 and 2x2 forwards.
    const struct shape shapes[] = {
        {"conv1 fwd", 0, 0, 64, 1024, 27},    {"conv2 fwd", 0, 0, 128, 1024, 576}, {"conv2 dW", 0, 1, 128, 576, 1024},
        {"conv2 dX", 1, 0, 576, 1024, 128},   {"conv3 fwd", 0, 0, 256, 256, 1152}, {"conv3 dW", 0, 1, 256, 1152, 256},
        {"conv3 dX", 1, 0, 1152, 256, 256},   {"conv4 fwd", 0, 0, 256, 256, 2304}, {"conv4 dW", 0, 1, 256, 2304, 256},
        {"conv4 dX", 1, 0, 2304, 256, 256},   {"vgg 4x4 fwd", 0, 0, 512, 256, 4608}, {"vgg 2x2 fwd", 0, 0, 512, 64, 4608},
        {"512^3", 0, 0, 512, 512, 512},
    };
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const struct shape x = shapes[s];
        const int lda = x.ta ? x.m : x.k, ldb = x.tb ? x.k : x.n;
        float *a = malloc(4L * x.m * x.k), *b = malloc(4L * x.k * x.n), *c = malloc(4L * x.m * x.n);
        fill(a, (long)x.m * x.k, 1), fill(b, (long)x.k * x.n, 2), fill(c, (long)x.m * x.n, 3);
        double best[2] = {1e9, 1e9};
        for (int r = 0; r <= iterations; r++)
            for (int which = 0; which < 2; which++) {  // interleaved
                const double start = thread_seconds();
                if (which == 0) snn_sgemm_avx2(x.ta, x.tb, x.m, x.n, x.k, 1, a, lda, b, ldb, 0, c, x.n);
                else cblas_sgemm(CblasRowMajor, x.ta ? CblasTrans : CblasNoTrans, x.tb ? CblasTrans : CblasNoTrans, x.m, x.n, x.k, 1, a, lda, b,
                                 ldb, 0, c, x.n);
                const double elapsed = thread_seconds() - start;
                if (elapsed < best[which]) best[which] = elapsed;
            }
        const double flops = 2.0 * x.m * x.n * x.k;
        printf("%-12s %5d %5d %5d  avx2 %6.1f  openblas %6.1f GFLOP/s\n", x.name, x.m, x.n, x.k, flops / best[0] / 1e9, flops / best[1] / 1e9);
        free(a), free(b), free(c);
    }
    return 0;
}
