#ifndef SNNMEM_KERNELS_H
#define SNNMEM_KERNELS_H

// The engine's elementwise float32 kernels (neurons, batch norm, the reductions behind them),
// compiled three times on x86-64 (AVX-512, AVX2 + FMA, and the baseline SSE2 every x86-64 has) and
// chosen once at run time from what the processor and the OS support; elsewhere (aarch64) once,
// for the baseline, whose vectors (NEON) the compiler uses.
//
// Why C: Swift compiles the engine for the baseline x86-64, so its loops run 4 floats at a time
// even on a processor with 16-float vectors, and Swift has no per-function target attribute.
//
// Every variant computes the same value for every element, bit for bit: the same operations in
// the same order, no contraction into fused multiply-adds, and reductions into 16 running partial
// sums added up in one fixed order. Buffers may alias only where a function says so.

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets the kernels are compiled for, best last.
typedef enum { SNN_KERNELS_BASELINE = 0, SNN_KERNELS_AVX2 = 1, SNN_KERNELS_AVX512 = 2 } snn_kernels_level;

/// The best level this processor and OS support, whatever SNNMEM_ISA says.
snn_kernels_level snn_kernels_processor_level(void);
/// What the environment variable SNNMEM_ISA asks for, read once: -1 when it is unset or empty, -2 when
/// it names none of "avx512", "avx2", "baseline", else that level (which may be above the processor's).
/// It stands for a processor without the levels above it, for measurements and tests of those paths:
/// the engine's GEMM choice reads the same ceiling. The CLI refuses -2 and a level above the
/// processor's; here they leave the processor's level in force.
int snn_kernels_requested_level(void);
/// The best level this process runs at: the processor's, lowered to SNNMEM_ISA's where that names a
/// lower one it supports.
snn_kernels_level snn_kernels_best_level(void);
/// The level the kernels run at now (the best, unless `snn_kernels_set_level` chose another).
snn_kernels_level snn_kernels_current_level(void);
/// Runs the kernels at `level` from now on; false (and nothing changed) when the processor lacks it.
/// For tests and side-by-side measurements; not for use while kernels run on other threads.
bool snn_kernels_set_level(snn_kernels_level level);
/// "avx512", "avx2" or "baseline" (x86-64 SSE2, or the processor's baseline elsewhere).
const char *snn_kernels_level_name(snn_kernels_level level);

/// One LIF/IF timestep: h = decay * v + gain * x + offset; spike = h >= threshold; v' = v_reset where
/// it fired, else h (hard reset), or h - spike * threshold (soft). `v_next` may be `v`.
void snn_neuron_forward(long n, float decay, float gain, float offset, float threshold, float v_reset, bool hard_reset,
                        const float *x, const float *v, float *h, float *spike, float *v_next);

/// One timestep backward with the atan surrogate sg(x) = half_alpha / (1 + (u_scale * x)^2), x = h - threshold:
///   dH = dSpike * sg + dVNext * dv'/dh (dv'/dh = (1 - s) + reset_slope * (v_reset - h) * sg, hard;
///        1 - reset_slope * threshold * sg, soft), or dSpike * sg without dVNext;
///   dVPrevious = dH * decay (when given); dInput = dH * gain.
/// `d_v_previous` may be `d_v_next`; `d_v_next` may be NULL (then dVPrevious may be too).
void snn_neuron_backward_atan(long n, float u_scale, float half_alpha, float threshold, float v_reset, bool hard_reset,
                              float reset_slope, float decay, float gain, const float *h, const float *d_spike,
                              const float *d_v_next, float *d_input, float *d_v_previous);

/// Sum of p[0 ..< n].
float snn_sum(const float *p, long n);
/// Sum of (p[i] - center)^2.
float snn_squared_deviations(const float *p, long n, float center);
/// Sum of dy, and sum of dy * (x - center).
void snn_gradient_sums(const float *dy, const float *x, long n, float center, float *sum_dy, float *sum_dy_centered);
/// y = x * scale + shift (`y` may be `x`).
void snn_scale_shift(long n, const float *x, float scale, float shift, float *y);
/// Batch norm's input gradient: dx = k * (count * dy - sum_dy - ((x - mean) * invstd) * sum_dy_xhat).
void snn_batch_norm_input_gradient(long n, const float *x, const float *dy, float mean, float invstd, float k, float count,
                                   float sum_dy, float sum_dy_xhat, float *dx);
/// dst += src (col2im's contiguous rows). No aliasing.
void snn_add_to(long n, const float *src, float *dst);

#ifdef __cplusplus
}
#endif

#endif
