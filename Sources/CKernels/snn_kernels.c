// See snn_kernels.h. Each kernel's loop is written once, as an always-inline body; the variants are
// thin functions with a target attribute into which the body is inlined and vectorized for that
// instruction set. The dispatch table is chosen on first use.
#include "snn_kernels.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

// Bit-identical variants (and agreement with the Swift kernels): no a * b + c fused into one rounding.
#pragma clang fp contract(off)

#define BODY static inline __attribute__((always_inline))
// The loops read each element before they write it, at the same index only: no dependence across
// iterations even where the header allows two buffers to be one.
#define VECTORIZE _Pragma("clang loop vectorize(assume_safety) interleave(enable)")

BODY void neuron_forward_body(long n, float decay, float gain, float offset, float threshold, float v_reset, bool hard_reset,
                              const float *x, const float *v, float *h, float *spike, float *v_next) {
    if (hard_reset) {
        VECTORIZE for (long i = 0; i < n; i++) {
            const float hi = decay * v[i] + gain * x[i] + offset;
            const bool fired = hi >= threshold;
            h[i] = hi;
            spike[i] = fired ? 1.0f : 0.0f;
            v_next[i] = fired ? v_reset : hi;
        }
    } else {
        VECTORIZE for (long i = 0; i < n; i++) {
            const float hi = decay * v[i] + gain * x[i] + offset;
            const float s = hi >= threshold ? 1.0f : 0.0f;
            h[i] = hi;
            spike[i] = s;
            v_next[i] = hi - s * threshold;
        }
    }
}

BODY void neuron_backward_atan_body(long n, float u_scale, float half_alpha, float threshold, float v_reset, bool hard_reset,
                                    float reset_slope, float decay, float gain, const float *h, const float *d_spike,
                                    const float *d_v_next, float *d_input, float *d_v_previous) {
    if (d_v_next && d_v_previous) {
        VECTORIZE for (long i = 0; i < n; i++) {
            const float hi = h[i], x = hi - threshold, u = u_scale * x;
            const float sg = half_alpha / (1.0f + u * u);
            const float s = x >= 0.0f ? 1.0f : 0.0f;
            const float dvdh = hard_reset ? (1.0f - s) + reset_slope * (v_reset - hi) * sg : 1.0f - reset_slope * threshold * sg;
            const float dh = d_spike[i] * sg + d_v_next[i] * dvdh;
            d_v_previous[i] = dh * decay;
            d_input[i] = dh * gain;
        }
    } else if (d_v_next) {
        VECTORIZE for (long i = 0; i < n; i++) {
            const float hi = h[i], x = hi - threshold, u = u_scale * x;
            const float sg = half_alpha / (1.0f + u * u);
            const float s = x >= 0.0f ? 1.0f : 0.0f;
            const float dvdh = hard_reset ? (1.0f - s) + reset_slope * (v_reset - hi) * sg : 1.0f - reset_slope * threshold * sg;
            d_input[i] = (d_spike[i] * sg + d_v_next[i] * dvdh) * gain;
        }
    } else {
        VECTORIZE for (long i = 0; i < n; i++) {
            const float u = u_scale * (h[i] - threshold);
            const float dh = d_spike[i] * (half_alpha / (1.0f + u * u));
            if (d_v_previous) d_v_previous[i] = dh * decay;
            d_input[i] = dh * gain;
        }
    }
}

// Reductions: 16 partial sums (lane j takes elements j, j + 16, ...), added in index order at the end,
// then the tail. The same order in every variant.
BODY float combine(const float acc[16]) {
    float sum = 0.0f;
    for (int j = 0; j < 16; j++) sum += acc[j];
    return sum;
}

BODY float sum_body(const float *p, long n) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += p[i + j];
    float sum = combine(acc);
    for (; i < n; i++) sum += p[i];
    return sum;
}

BODY float squared_deviations_body(const float *p, long n, float center) {
    float acc[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            const float d = p[i + j] - center;
            acc[j] += d * d;
        }
    float sum = combine(acc);
    for (; i < n; i++) {
        const float d = p[i] - center;
        sum += d * d;
    }
    return sum;
}

BODY void gradient_sums_body(const float *dy, const float *x, long n, float center, float *sum_dy, float *sum_dy_centered) {
    float a[16] = {0}, b[16] = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            const float g = dy[i + j];
            a[j] += g;
            b[j] += g * (x[i + j] - center);
        }
    float sa = combine(a), sb = combine(b);
    for (; i < n; i++) {
        sa += dy[i];
        sb += dy[i] * (x[i] - center);
    }
    *sum_dy = sa;
    *sum_dy_centered = sb;
}

BODY void scale_shift_body(long n, const float *x, float scale, float shift, float *y) {
    VECTORIZE for (long i = 0; i < n; i++) y[i] = x[i] * scale + shift;
}

BODY void batch_norm_input_gradient_body(long n, const float *x, const float *dy, float mean, float invstd, float k, float count,
                                         float sum_dy, float sum_dy_xhat, float *dx) {
    VECTORIZE for (long i = 0; i < n; i++) {
        const float xhat = (x[i] - mean) * invstd;
        dx[i] = k * (count * dy[i] - sum_dy - xhat * sum_dy_xhat);
    }
}

BODY void add_to_body(long n, const float *src, float *dst) {
    VECTORIZE for (long i = 0; i < n; i++) dst[i] += src[i];
}

typedef struct {
    void (*neuron_forward)(long, float, float, float, float, float, bool, const float *, const float *, float *, float *, float *);
    void (*neuron_backward_atan)(long, float, float, float, float, bool, float, float, float, const float *, const float *,
                                 const float *, float *, float *);
    float (*sum)(const float *, long);
    float (*squared_deviations)(const float *, long, float);
    void (*gradient_sums)(const float *, const float *, long, float, float *, float *);
    void (*scale_shift)(long, const float *, float, float, float *);
    void (*batch_norm_input_gradient)(long, const float *, const float *, float, float, float, float, float, float, float *);
    void (*add_to)(long, const float *, float *);
} kernel_table;

// One table per instruction set: each entry a function with that target, into which the body is inlined.
#define DEFINE_TABLE(suffix, attribute)                                                                                   \
    attribute static void neuron_forward_##suffix(long n, float decay, float gain, float offset, float threshold,          \
                                                  float v_reset, bool hard, const float *x, const float *v, float *h,     \
                                                  float *spike, float *v_next) {                                          \
        neuron_forward_body(n, decay, gain, offset, threshold, v_reset, hard, x, v, h, spike, v_next);                    \
    }                                                                                                                     \
    attribute static void neuron_backward_atan_##suffix(long n, float u_scale, float half_alpha, float threshold,          \
                                                        float v_reset, bool hard, float reset_slope, float decay,         \
                                                        float gain, const float *h, const float *d_spike,                 \
                                                        const float *d_v_next, float *d_input, float *d_v_previous) {     \
        neuron_backward_atan_body(n, u_scale, half_alpha, threshold, v_reset, hard, reset_slope, decay, gain, h, d_spike,  \
                                  d_v_next, d_input, d_v_previous);                                                       \
    }                                                                                                                     \
    attribute static float sum_##suffix(const float *p, long n) { return sum_body(p, n); }                                \
    attribute static float squared_deviations_##suffix(const float *p, long n, float center) {                            \
        return squared_deviations_body(p, n, center);                                                                     \
    }                                                                                                                     \
    attribute static void gradient_sums_##suffix(const float *dy, const float *x, long n, float center, float *a,          \
                                                 float *b) {                                                              \
        gradient_sums_body(dy, x, n, center, a, b);                                                                       \
    }                                                                                                                     \
    attribute static void scale_shift_##suffix(long n, const float *x, float scale, float shift, float *y) {              \
        scale_shift_body(n, x, scale, shift, y);                                                                          \
    }                                                                                                                     \
    attribute static void batch_norm_input_gradient_##suffix(long n, const float *x, const float *dy, float mean,          \
                                                             float invstd, float k, float count, float sum_dy,            \
                                                             float sum_dy_xhat, float *dx) {                              \
        batch_norm_input_gradient_body(n, x, dy, mean, invstd, k, count, sum_dy, sum_dy_xhat, dx);                        \
    }                                                                                                                     \
    attribute static void add_to_##suffix(long n, const float *src, float *dst) { add_to_body(n, src, dst); }             \
    static const kernel_table table_##suffix = {                                                                          \
        neuron_forward_##suffix, neuron_backward_atan_##suffix, sum_##suffix, squared_deviations_##suffix,                 \
        gradient_sums_##suffix, scale_shift_##suffix, batch_norm_input_gradient_##suffix, add_to_##suffix};

DEFINE_TABLE(baseline, )
#if defined(__x86_64__)
DEFINE_TABLE(avx2, __attribute__((target("avx2,fma"))))
// 512-bit vectors allowed explicitly (clang may otherwise keep to 256 bits).
DEFINE_TABLE(avx512, __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
                 __attribute__((min_vector_width(512))))
#endif

static const kernel_table *table_for(snn_kernels_level level) {
#if defined(__x86_64__)
    if (level == SNN_KERNELS_AVX512) return &table_avx512;
    if (level == SNN_KERNELS_AVX2) return &table_avx2;
#endif
    return &table_baseline;
}

snn_kernels_level snn_kernels_processor_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // The compiler runtime's checks include the OS's XCR0 bits (ymm/zmm state saved on switches).
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw"))
        return SNN_KERNELS_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SNN_KERNELS_AVX2;
#endif
    return SNN_KERNELS_BASELINE;
}

// SNNMEM_ISA, parsed on first use (-3: not yet read).
static _Atomic int requested_level = -3;

int snn_kernels_requested_level(void) {
    int level = atomic_load_explicit(&requested_level, memory_order_relaxed);
    if (level == -3) {
        const char *name = getenv("SNNMEM_ISA");
        if (!name || !*name) level = -1;
        else if (strcmp(name, "avx512") == 0) level = SNN_KERNELS_AVX512;
        else if (strcmp(name, "avx2") == 0) level = SNN_KERNELS_AVX2;
        else if (strcmp(name, "baseline") == 0) level = SNN_KERNELS_BASELINE;
        else level = -2;
        atomic_store_explicit(&requested_level, level, memory_order_relaxed);
    }
    return level;
}

snn_kernels_level snn_kernels_best_level(void) {
    const snn_kernels_level processor = snn_kernels_processor_level();
    const int requested = snn_kernels_requested_level();
    return requested >= 0 && requested < (int)processor ? (snn_kernels_level)requested : processor;
}

// -1 until first use; then the level whose table runs.
static _Atomic int current_level = -1;

snn_kernels_level snn_kernels_current_level(void) {
    int level = atomic_load_explicit(&current_level, memory_order_relaxed);
    if (level < 0) {
        level = (int)snn_kernels_best_level();
        atomic_store_explicit(&current_level, level, memory_order_relaxed);
    }
    return (snn_kernels_level)level;
}

bool snn_kernels_set_level(snn_kernels_level level) {
    if (level < SNN_KERNELS_BASELINE || level > snn_kernels_best_level()) return false;
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
    return true;
}

const char *snn_kernels_level_name(snn_kernels_level level) {
    switch (level) {
    case SNN_KERNELS_AVX512: return "avx512";
    case SNN_KERNELS_AVX2: return "avx2";
    default: return "baseline";
    }
}

static inline const kernel_table *table(void) { return table_for(snn_kernels_current_level()); }

void snn_neuron_forward(long n, float decay, float gain, float offset, float threshold, float v_reset, bool hard_reset,
                        const float *x, const float *v, float *h, float *spike, float *v_next) {
    table()->neuron_forward(n, decay, gain, offset, threshold, v_reset, hard_reset, x, v, h, spike, v_next);
}

void snn_neuron_backward_atan(long n, float u_scale, float half_alpha, float threshold, float v_reset, bool hard_reset,
                              float reset_slope, float decay, float gain, const float *h, const float *d_spike,
                              const float *d_v_next, float *d_input, float *d_v_previous) {
    table()->neuron_backward_atan(n, u_scale, half_alpha, threshold, v_reset, hard_reset, reset_slope, decay, gain, h, d_spike,
                                  d_v_next, d_input, d_v_previous);
}

float snn_sum(const float *p, long n) { return table()->sum(p, n); }
float snn_squared_deviations(const float *p, long n, float center) { return table()->squared_deviations(p, n, center); }
void snn_gradient_sums(const float *dy, const float *x, long n, float center, float *sum_dy, float *sum_dy_centered) {
    table()->gradient_sums(dy, x, n, center, sum_dy, sum_dy_centered);
}
void snn_scale_shift(long n, const float *x, float scale, float shift, float *y) { table()->scale_shift(n, x, scale, shift, y); }
void snn_batch_norm_input_gradient(long n, const float *x, const float *dy, float mean, float invstd, float k, float count,
                                   float sum_dy, float sum_dy_xhat, float *dx) {
    table()->batch_norm_input_gradient(n, x, dy, mean, invstd, k, count, sum_dy, sum_dy_xhat, dx);
}
void snn_add_to(long n, const float *src, float *dst) { table()->add_to(n, src, dst); }
