// See snn_sparse_conv.h. As in snn_kernels.c, each kernel is written once as an always-inline body
// and compiled into one function per instruction set (a target attribute), chosen at run time.
// The bodies use 16-float vector types: one zmm at AVX-512, two ymm at AVX2, four xmm at the
// baseline; a chunk of `nv` of them (a compile-time constant after inlining) is one output pixel's
// (or weight row's) accumulators, kept in registers over the pixel's nonzero inputs.
#include "snn_sparse_conv.h"
#include "snn_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define BODY static inline __attribute__((always_inline))
#define UNROLL _Pragma("clang loop unroll(full)")

typedef float vf16 __attribute__((vector_size(64), aligned(4)));

// Macros, not functions: a function passing a 64-byte vector changes the ABI on the AVX2 and baseline targets.
#define LOAD16(p) (*(const vf16 *)(p))
#define STORE16(p, v) (*(vf16 *)(p) = (v))

static inline long out_height(const snn_sparse_conv_shape *s) { return s->height + 2 * s->padding - s->kernel + 1; }
static inline long out_width(const snn_sparse_conv_shape *s) { return s->width + 2 * s->padding - s->kernel + 1; }
static inline size_t align64(size_t bytes) { return (bytes + 63) / 64 * 64; }

bool snn_sparse_conv_supports(const snn_sparse_conv_shape *s) {
    return s->in_channels > 0 && s->out_channels > 0 && s->out_channels % 16 == 0 && s->kernel > 0 && s->padding >= 0
        && s->padding < s->kernel && out_height(s) > 0 && out_width(s) > 0 && s->height < 32768 && s->width < 32768
        && s->in_channels * s->kernel * s->kernel * s->out_channels < INT32_MAX;
}

// ---- The work area of one sample ----
// Forward: per input pixel p, its nonzero inputs (the panel offset c k k Cout of their channel and
// their value) in slots begin[p] ..< begin[p] + count[p] of a region with one spare slot per pixel
// (the branch-free fill writes every input to its pixel's next slot and advances only past nonzeros).
// Weight gradient: the output gradient [Hout Wout, Cout], then per channel c its nonzero inputs'
// pixels (y << 16 | x) and values in slots begin[c] ..< begin[c + 1], one spare slot at the end.
typedef struct {
    int32_t *begin, *count, *offset;
    float *value;
} pixel_index;

typedef struct {
    float *d_output_t;
    int32_t *begin, *pixel;
    float *value;
} channel_index;

static pixel_index pixel_index_at(const snn_sparse_conv_shape *s, void *work) {
    const size_t pixels = (size_t)(s->height * s->width), slots = (size_t)(s->in_channels + 1) * pixels;
    char *p = work;
    pixel_index x;
    x.begin = (int32_t *)p; p += align64(pixels * sizeof(int32_t));
    x.count = (int32_t *)p; p += align64(pixels * sizeof(int32_t));
    x.offset = (int32_t *)p; p += align64(slots * sizeof(int32_t));
    x.value = (float *)p;
    return x;
}

static size_t pixel_index_bytes(const snn_sparse_conv_shape *s) {
    const size_t pixels = (size_t)(s->height * s->width), slots = (size_t)(s->in_channels + 1) * pixels;
    return 2 * align64(pixels * sizeof(int32_t)) + align64(slots * sizeof(int32_t)) + align64(slots * sizeof(float));
}

static channel_index channel_index_at(const snn_sparse_conv_shape *s, const void *work) {
    const size_t outputs = (size_t)(out_height(s) * out_width(s) * s->out_channels);
    const size_t slots = (size_t)(s->in_channels * s->height * s->width) + 1;
    char *p = (char *)work;
    channel_index x;
    x.d_output_t = (float *)p; p += align64(outputs * sizeof(float));
    x.begin = (int32_t *)p; p += align64((size_t)(s->in_channels + 1) * sizeof(int32_t));
    x.pixel = (int32_t *)p; p += align64(slots * sizeof(int32_t));
    x.value = (float *)p;
    return x;
}

static size_t channel_index_bytes(const snn_sparse_conv_shape *s) {
    const size_t outputs = (size_t)(out_height(s) * out_width(s) * s->out_channels);
    const size_t slots = (size_t)(s->in_channels * s->height * s->width) + 1;
    return align64(outputs * sizeof(float)) + align64((size_t)(s->in_channels + 1) * sizeof(int32_t))
        + align64(slots * sizeof(int32_t)) + align64(slots * sizeof(float));
}

size_t snn_sparse_conv_work_bytes(const snn_sparse_conv_shape *s) {
    const size_t a = pixel_index_bytes(s), b = channel_index_bytes(s);
    return a > b ? a : b;
}

// ---- Bodies ----

BODY long count_nonzero_body(const float *x, long n) {
    long total = 0;
    for (long i = 0; i < n; i++) total += x[i] != 0.0f;
    return total;
}

// Counts each pixel's nonzero inputs; the total.
BODY long count_pixels_body(const float *input, long channels, long pixels, int32_t *count) {
    memset(count, 0, (size_t)pixels * sizeof(int32_t));
    for (long c = 0; c < channels; c++) {
        const float *plane = input + c * pixels;
        for (long p = 0; p < pixels; p++) count[p] += plane[p] != 0.0f;
    }
    long total = 0;
    for (long p = 0; p < pixels; p++) total += count[p];
    return total;
}

BODY void fill_pixels_body(const snn_sparse_conv_shape *s, const float *input, pixel_index x) {
    const long pixels = s->height * s->width, row = s->kernel * s->kernel * s->out_channels;
    int32_t next = 0;
    for (long p = 0; p < pixels; p++) {
        x.begin[p] = next;
        next += x.count[p] + 1;
    }
    // count[] is rebuilt as each pixel's fill position, relative to begin.
    memset(x.count, 0, (size_t)pixels * sizeof(int32_t));
    for (long c = 0; c < s->in_channels; c++) {
        const float *plane = input + c * pixels;
        const int32_t offset = (int32_t)(c * row);
        for (long p = 0; p < pixels; p++) {
            const float v = plane[p];
            const int32_t slot = x.begin[p] + x.count[p];
            x.offset[slot] = offset;
            x.value[slot] = v;
            x.count[p] += v != 0.0f;
        }
    }
}

// Output channels c0 ..< c0 + 16 nv of every output pixel, 16 pixels at a time through a tile that
// is then written out channel by channel ([Cout, Hout Wout] is the output's layout).
BODY void forward_chunk_body(const snn_sparse_conv_shape *s, pixel_index x, const float *panel, float *output, long c0,
                             const int nv) {
    enum { TILE = 16 };
    const long cout = s->out_channels, k = s->kernel, pad = s->padding, h = s->height, w = s->width;
    const long ow_count = out_width(s), nout = out_height(s) * ow_count;
    float tile[TILE][256] __attribute__((aligned(64)));
    for (long n0 = 0; n0 < nout; n0 += TILE) {
        const long pixels = nout - n0 < TILE ? nout - n0 : TILE;
        for (long i = 0; i < pixels; i++) {
            const long n = n0 + i, oh = n / ow_count, ow = n % ow_count;
            vf16 acc[16];
            UNROLL for (int j = 0; j < nv; j++) acc[j] = (vf16){0};
            for (long ki = 0; ki < k; ki++) {
                const long y = oh - pad + ki;
                if (y < 0 || y >= h) continue;
                for (long kj = 0; kj < k; kj++) {
                    const long xx = ow - pad + kj;
                    if (xx < 0 || xx >= w) continue;
                    const long p = y * w + xx;
                    const float *base = panel + (ki * k + kj) * cout + c0;
                    const int32_t first = x.begin[p], last = first + x.count[p];
                    for (int32_t e = first; e < last; e++) {
                        const float *row = base + x.offset[e];
                        const float v = x.value[e];
                        UNROLL for (int j = 0; j < nv; j++) acc[j] += v * LOAD16(row + 16 * j);
                    }
                }
            }
            UNROLL for (int j = 0; j < nv; j++) STORE16(&tile[i][16 * j], acc[j]);
        }
        for (long j = 0; j < 16 * nv; j++) {
            float *dst = output + (c0 + j) * nout + n0;
            for (long i = 0; i < pixels; i++) dst[i] = tile[i][j];
        }
    }
}

// t[c * ldt + r] = a[r * lda + c] for r < rows, c < columns, in 16 x 16 blocks.
BODY void transpose_body(const float *a, long rows, long columns, long lda, float *t, long ldt) {
    enum { B = 16 };
    for (long r0 = 0; r0 < rows; r0 += B) {
        const long r1 = r0 + B < rows ? r0 + B : rows;
        for (long c0 = 0; c0 < columns; c0 += B) {
            const long c1 = c0 + B < columns ? c0 + B : columns;
            for (long r = r0; r < r1; r++)
                for (long c = c0; c < c1; c++) t[c * ldt + r] = a[r * lda + c];
        }
    }
}

// weight[co][k] += panel[k][co] for k in first ..< first + count (panel [rows = K, columns = Cout]).
BODY void add_transposed_body(const float *panel, long rows, long columns, long first, long count, float *weight) {
    enum { B = 16 };
    const long last = first + count;
    for (long k0 = first; k0 < last; k0 += B) {
        const long k1 = k0 + B < last ? k0 + B : last;
        for (long c0 = 0; c0 < columns; c0 += B) {
            const long c1 = c0 + B < columns ? c0 + B : columns;
            for (long co = c0; co < c1; co++)
                for (long k = k0; k < k1; k++) weight[co * rows + k] += panel[k * columns + co];
        }
    }
}

BODY void fill_channels_body(const snn_sparse_conv_shape *s, const float *input, channel_index x) {
    const long h = s->height, w = s->width;
    int32_t next = 0;
    for (long c = 0; c < s->in_channels; c++) {
        x.begin[c] = next;
        const float *plane = input + c * h * w;
        for (long y = 0; y < h; y++) {
            for (long xx = 0; xx < w; xx++) {
                const float v = plane[y * w + xx];
                x.pixel[next] = (int32_t)(y << 16 | xx);
                x.value[next] = v;
                next += v != 0.0f;
            }
        }
    }
    x.begin[s->in_channels] = next;
}

// Rows first ..< first + count of the [K, Cout] gradient panel, channels c0 ..< c0 + 16 nv, from
// `samples` prepared work areas: each row's sums over every sample are held in registers and added
// into the panel once (a row per sample would sweep the panel, weight-sized, once per sample).
BODY void weight_gradient_chunk_body(const snn_sparse_conv_shape *s, const channel_index *x, long samples, long first,
                                     long count, float *d_panel, long c0, const int nv) {
    const long cout = s->out_channels, k = s->kernel, kk = k * k, pad = s->padding;
    const unsigned long oh_count = (unsigned long)out_height(s), ow_count = (unsigned long)out_width(s);
    for (long r = first; r < first + count; r++) {
        const long c = r / kk, ki = r % kk / k, kj = r % k;
        vf16 acc[16];
        UNROLL for (int j = 0; j < nv; j++) acc[j] = (vf16){0};
        bool any = false;
        for (long i = 0; i < samples; i++) {
            const int32_t e0 = x[i].begin[c], e1 = x[i].begin[c + 1];
            any |= e0 != e1;
            for (int32_t e = e0; e < e1; e++) {
                const long y = x[i].pixel[e] >> 16, xx = x[i].pixel[e] & 0xffff;
                const unsigned long oh = (unsigned long)(y + pad - ki), ow = (unsigned long)(xx + pad - kj);
                if (oh >= oh_count || ow >= ow_count) continue;
                const float *row = x[i].d_output_t + (long)(oh * ow_count + ow) * cout + c0;
                const float v = x[i].value[e];
                UNROLL for (int j = 0; j < nv; j++) acc[j] += v * LOAD16(row + 16 * j);
            }
        }
        if (!any) continue;
        float *dst = d_panel + r * cout + c0;
        UNROLL for (int j = 0; j < nv; j++) STORE16(dst + 16 * j, LOAD16(dst + 16 * j) + acc[j]);
    }
}

// Splits Cout into chunks of at most `max_nv` vectors (powers of two) and runs `body` on each with
// a constant chunk size, so that its accumulators are registers.
#define FOR_CHUNKS(cout, max_nv, CALL)                                                                                   \
    for (long c0 = 0; c0 < (cout);) {                                                                                    \
        long left = ((cout) - c0) / 16;                                                                                  \
        if (left >= 16 && (max_nv) >= 16) { CALL(16); c0 += 256; }                                                       \
        else if (left >= 8 && (max_nv) >= 8) { CALL(8); c0 += 128; }                                                     \
        else if (left >= 4 && (max_nv) >= 4) { CALL(4); c0 += 64; }                                                      \
        else if (left >= 2) { CALL(2); c0 += 32; }                                                                       \
        else { CALL(1); c0 += 16; }                                                                                      \
    }

typedef struct {
    long (*count_nonzero)(const float *, long);
    long (*count_pixels)(const float *, long, long, int32_t *);
    void (*fill_pixels)(const snn_sparse_conv_shape *, const float *, pixel_index);
    void (*forward)(const snn_sparse_conv_shape *, pixel_index, const float *, float *);
    void (*transpose)(const float *, long, long, long, float *, long);
    void (*add_transposed)(const float *, long, long, long, long, float *);
    void (*fill_channels)(const snn_sparse_conv_shape *, const float *, channel_index);
    void (*weight_gradient)(const snn_sparse_conv_shape *, const channel_index *, long, long, long, float *);
} sparse_table;

// max_nv: the accumulators a level's registers hold (16 zmm; 4 x 2 ymm of 16; 2 x 4 xmm of 16).
#define DEFINE_TABLE(suffix, attribute, max_nv)                                                                          \
    attribute static long count_nonzero_##suffix(const float *x, long n) { return count_nonzero_body(x, n); }            \
    attribute static long count_pixels_##suffix(const float *in, long c, long p, int32_t *count) {                       \
        return count_pixels_body(in, c, p, count);                                                                       \
    }                                                                                                                    \
    attribute static void fill_pixels_##suffix(const snn_sparse_conv_shape *s, const float *in, pixel_index x) {         \
        fill_pixels_body(s, in, x);                                                                                      \
    }                                                                                                                    \
    attribute static void forward_##suffix(const snn_sparse_conv_shape *s, pixel_index x, const float *panel,            \
                                           float *output) {                                                              \
        FOR_CHUNKS(s->out_channels, max_nv, FORWARD_CALL)                                                                \
    }                                                                                                                    \
    attribute static void transpose_##suffix(const float *a, long rows, long columns, long lda, float *t, long ldt) {    \
        transpose_body(a, rows, columns, lda, t, ldt);                                                                   \
    }                                                                                                                    \
    attribute static void add_transposed_##suffix(const float *panel, long rows, long columns, long first, long count,   \
                                                  float *weight) {                                                       \
        add_transposed_body(panel, rows, columns, first, count, weight);                                                 \
    }                                                                                                                    \
    attribute static void fill_channels_##suffix(const snn_sparse_conv_shape *s, const float *in, channel_index x) {     \
        fill_channels_body(s, in, x);                                                                                    \
    }                                                                                                                    \
    attribute static void weight_gradient_##suffix(const snn_sparse_conv_shape *s, const channel_index *x, long samples, \
                                                   long first, long count, float *d_panel) {                             \
        FOR_CHUNKS(s->out_channels, max_nv, GRADIENT_CALL)                                                               \
    }                                                                                                                    \
    static const sparse_table table_##suffix = {count_nonzero_##suffix, count_pixels_##suffix, fill_pixels_##suffix,      \
                                                forward_##suffix,       transpose_##suffix,    add_transposed_##suffix,   \
                                                fill_channels_##suffix, weight_gradient_##suffix};

#define FORWARD_CALL(nv) forward_chunk_body(s, x, panel, output, c0, nv)
#define GRADIENT_CALL(nv) weight_gradient_chunk_body(s, x, samples, first, count, d_panel, c0, nv)

DEFINE_TABLE(baseline, , 2)
#if defined(__x86_64__)
DEFINE_TABLE(avx2, __attribute__((target("avx2,fma"))), 4)
DEFINE_TABLE(avx512, __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) __attribute__((min_vector_width(512))), 16)
#endif

static const sparse_table *table(void) {
#if defined(__x86_64__)
    const snn_kernels_level level = snn_kernels_current_level();
    if (level == SNN_KERNELS_AVX512) return &table_avx512;
    if (level == SNN_KERNELS_AVX2) return &table_avx2;
#endif
    return &table_baseline;
}

// ---- Entry points ----

long snn_count_nonzero(const float *x, long n) { return table()->count_nonzero(x, n); }

void snn_transpose(const float *a, long rows, long columns, long lda, float *t, long ldt) {
    table()->transpose(a, rows, columns, lda, t, ldt);
}

void snn_add_transposed(const float *panel, long rows, long columns, long first, long count, float *weight) {
    table()->add_transposed(panel, rows, columns, first, count, weight);
}

long snn_sparse_conv_forward(const snn_sparse_conv_shape *s, const float *input, const float *weight_panel, float *output,
                             long max_nonzeros, void *work) {
    const sparse_table *t = table();
    pixel_index x = pixel_index_at(s, work);
    const long total = t->count_pixels(input, s->in_channels, s->height * s->width, x.count);
    if (total > max_nonzeros) return -1;
    t->fill_pixels(s, input, x);
    t->forward(s, x, weight_panel, output);
    return total;
}

long snn_sparse_conv_prepare_weight_gradient(const snn_sparse_conv_shape *s, const float *input, const float *d_output,
                                             long max_nonzeros, void *work) {
    const sparse_table *t = table();
    const long total = t->count_nonzero(input, s->in_channels * s->height * s->width);
    if (total > max_nonzeros) return -1;
    channel_index x = channel_index_at(s, work);
    t->fill_channels(s, input, x);
    t->transpose(d_output, s->out_channels, out_height(s) * out_width(s), out_height(s) * out_width(s), x.d_output_t, s->out_channels);
    return total;
}

void snn_sparse_conv_weight_gradient(const snn_sparse_conv_shape *s, const void *work, size_t work_stride, long samples,
                                     long first, long count, float *d_panel) {
    enum { BATCH = 64 };
    channel_index x[BATCH];
    for (long i0 = 0; i0 < samples; i0 += BATCH) {
        const long n = samples - i0 < BATCH ? samples - i0 : BATCH;
        for (long i = 0; i < n; i++) x[i] = channel_index_at(s, (const char *)work + (size_t)(i0 + i) * work_stride);
        table()->weight_gradient(s, x, n, first, count, d_panel);
    }
}

// ---- The per-thread scratch ----

typedef struct {
    void *base;
    size_t bytes;
} scratch_mapping;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static atomic_long live_scratch;

static void release_scratch(void *pointer) {
    scratch_mapping *mapping = pointer;
    munmap(mapping->base, mapping->bytes);
    atomic_fetch_sub(&live_scratch, 1);
}

static void make_scratch_key(void) { pthread_key_create(&scratch_key, release_scratch); }

// The mapping record itself lives in the mapping's first 64 bytes, so nothing outside it is allocated.
void *snn_sparse_conv_scratch(size_t bytes) {
    pthread_once(&scratch_once, make_scratch_key);
    scratch_mapping *mapping = pthread_getspecific(scratch_key);
    const size_t wanted = bytes + 64;
    if (mapping && mapping->bytes >= wanted) return (char *)mapping->base + 64;
    size_t size = mapping ? mapping->bytes : 0;
    if (size < wanted) size = (wanted + 4095) / 4096 * 4096;
    if (mapping) {
        pthread_setspecific(scratch_key, NULL);
        release_scratch(mapping);
    }
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    mapping = base;
    mapping->base = base;
    mapping->bytes = size;
    atomic_fetch_add(&live_scratch, 1);
    pthread_setspecific(scratch_key, mapping);
    return (char *)base + 64;
}

size_t snn_sparse_conv_scratch_bytes(void) {
    pthread_once(&scratch_once, make_scratch_key);
    scratch_mapping *mapping = pthread_getspecific(scratch_key);
    return mapping ? mapping->bytes : 0;
}

long snn_sparse_conv_live_scratch(void) { return atomic_load(&live_scratch); }
