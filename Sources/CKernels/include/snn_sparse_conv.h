#ifndef SNNMEM_SPARSE_CONV_H
#define SNNMEM_SPARSE_CONV_H

// Convolution products that skip the zeros of their input: the forward product and the weight
// gradient of a stride-1, ungrouped convolution whose input is mostly zeros (a spiking neuron's
// 0/1 output, or such spikes average-pooled).
//
// Why: the dense im2col GEMM does Cout x (Cin k k) multiply-adds per output pixel whatever the
// input holds. Here each nonzero input x[c, y, x] costs k x k weight rows of Cout multiply-adds
// (forward: out[:, n] += x * W[:, c, ki, kj] for the k x k outputs n whose window holds it; weight
// gradient: dW[:, c, ki, kj] += x * dY[:, n]), so the work follows the firing rate. The multiply
// is by the input's value, so any input gives the dense product's result up to the order of the
// additions (for 0/1 spikes every product is exact); the caller chooses this path only where its
// count of nonzeros makes it cheaper.
//
// Compiled for AVX-512, for AVX2 + FMA and for the baseline, chosen at run time at the level the
// elementwise kernels run at (snn_kernels_current_level, so SNNMEM_ISA lowers both). Each output
// pixel's Cout sums are held in registers in chunks (256 floats at AVX-512, 64 at AVX2, 32 at the
// baseline) over the pixel's nonzero inputs.
//
// Layouts (row-major, float32): input [Cin, H, W]; weight [Cout, Cin, k, k], i.e. [Cout, K] with
// K = Cin k k and column k = (c k + ki) k + kj as im2col's rows; the transposed panels [K, Cout];
// output and output gradient [Cout, Hout, Wout].

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    long in_channels, height, width;  // the input sample
    long out_channels;                // a multiple of 16
    long kernel, padding;             // stride 1, one group
} snn_sparse_conv_shape;

/// Whether these kernels take the shape: stride 1 and one group are the caller's to check; here
/// Cout a multiple of 16 and a kernel no larger than the padded input.
bool snn_sparse_conv_supports(const snn_sparse_conv_shape *shape);

/// Bytes of a sample's work area (`work` below): the index of its nonzero inputs (per pixel for
/// forward, per channel for the weight gradient) and, for the weight gradient, its output
/// gradient transposed to [Hout Wout, Cout].
size_t snn_sparse_conv_work_bytes(const snn_sparse_conv_shape *shape);

/// The calling thread's scratch, at least `bytes`, 64-byte aligned: mapped outside the process
/// allocator (jemalloc) as the GEMMs' packing buffers are, grown by remapping (its contents are
/// then lost), unmapped when the thread exits. NULL when the mapping fails. The lanes' work areas
/// (and the transposed weight panel of a call outside a training step) are carved from the
/// convolution caller's scratch; a step's panels are the engine's tracked tensors.
void *snn_sparse_conv_scratch(size_t bytes);
/// Bytes of the calling thread's scratch now, and threads whose scratch is mapped (for tests).
size_t snn_sparse_conv_scratch_bytes(void);
long snn_sparse_conv_live_scratch(void);

/// Nonzero elements of x[0 ..< n].
long snn_count_nonzero(const float *x, long n);

/// t[c * ldt + r] = a[r * lda + c] for r < rows, c < columns: with rows = Cout, columns = K, lda = K
/// and ldt = Cout, the [K, Cout] panel of a [Cout, K] weight (a block of its rows with a + r0 * lda, t + r0).
void snn_transpose(const float *a, long rows, long columns, long lda, float *t, long ldt);
/// weight[co][k] += panel[k][co]: a [K, Cout] gradient panel added into the [Cout, K] gradient,
/// for the panel rows first ..< first + count.
void snn_add_transposed(const float *panel, long rows, long columns, long first, long count, float *weight);

/// out = W * im2col(input) for one sample, from its nonzero inputs, W given as the [K, Cout] panel:
/// overwrites output [Cout, Hout, Wout]. Returns the nonzero count, or -1 (output untouched) when
/// it exceeds `max_nonzeros` (the caller then runs the dense product).
long snn_sparse_conv_forward(const snn_sparse_conv_shape *shape, const float *input, const float *weight_panel,
                             float *output, long max_nonzeros, void *work);

/// Prepares a sample for `snn_sparse_conv_weight_gradient`: indexes its nonzero inputs per channel
/// and transposes its output gradient, in `work`. Returns the nonzero count, or -1 (nothing
/// prepared) when it exceeds `max_nonzeros`.
long snn_sparse_conv_prepare_weight_gradient(const snn_sparse_conv_shape *shape, const float *input,
                                             const float *d_output, long max_nonzeros, void *work);

/// dPanel[k][:] += sum over samples and output pixels n of im2col(input)[k][n] * dY[:, n], for the
/// rows k in first ..< first + count of the [K, Cout] gradient panel, from `samples` prepared work
/// areas `work_stride` bytes apart. Each row is updated once for all the samples.
void snn_sparse_conv_weight_gradient(const snn_sparse_conv_shape *shape, const void *work, size_t work_stride, long samples,
                                     long first, long count, float *d_panel);

#ifdef __cplusplus
}
#endif

#endif
