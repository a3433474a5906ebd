// Fork-join over persistent helper threads (see snn_lanes.h for why). One job at a time: the
// caller publishes the body and context, bumps a generation counter, runs lane 0, and waits for
// every helper to count down. Helpers spin on the generation for a while after each job, then
// park on a condition variable; the caller signals only when some helper is parked.
//
// Parking without a lost wake-up: a helper announces itself in `parked` and re-reads the
// generation under the mutex before waiting; the caller bumps the generation before reading
// `parked`. Both sides use sequentially consistent atomics, so at least one of them sees the
// other's write: either the helper sees the new generation and does not wait, or the caller sees
// the parked helper and broadcasts under the mutex.
#include "snn_lanes.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

// How long a helper spins for the next job before it parks: longer than the serial gaps between
// a training step's kernels (microseconds), far shorter than a pause between steps or commands.
static const long spin_ns = 200000;

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_ulong generation;
    atomic_long parked;
    atomic_long remaining;
    atomic_bool busy;
    long helpers;
    long lanes;
    snn_lane_body body;
    void *context;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_mutex_t start_mutex = PTHREAD_MUTEX_INITIALIZER;

// The generation each helper was started at: its first job is the next one. (Read by the helper
// itself, it could already be that next job's, and the helper would wait for one more.)
static unsigned long start_generation[snn_lanes_max];

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void *helper_main(void *argument) {
    const long lane = (long)argument;
    unsigned long seen = start_generation[lane];
    for (;;) {
        unsigned long generation = atomic_load(&pool.generation);
        if (generation == seen) {
            const long deadline = now_ns() + spin_ns;
            for (long spins = 0; (generation = atomic_load(&pool.generation)) == seen; spins++) {
                cpu_relax();
                if ((spins & 255) == 255) {
                    if (now_ns() > deadline) break;
                    // Should the caller share this core, let it run.
                    sched_yield();
                }
            }
        }
        if (generation == seen) {
            pthread_mutex_lock(&pool.mutex);
            atomic_fetch_add(&pool.parked, 1);
            while ((generation = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mutex);
            atomic_fetch_sub(&pool.parked, 1);
            pthread_mutex_unlock(&pool.mutex);
        }
        seen = generation;
        if (lane < pool.lanes) pool.body(pool.context, lane);
        atomic_fetch_sub(&pool.remaining, 1);
    }
    return NULL;
}

// Starts helpers until there are `count` (lanes 1 ... count). Returns false if a thread could not
// be started; the caller then runs the lanes itself.
static bool ensure_helpers(long count) {
    if (pool.helpers >= count) return true;
    pthread_mutex_lock(&start_mutex);
    while (pool.helpers < count) {
        pthread_t thread;
        start_generation[pool.helpers + 1] = atomic_load(&pool.generation);
        if (pthread_create(&thread, NULL, helper_main, (void *)(pool.helpers + 1)) != 0) break;
        pthread_detach(thread);
        pool.helpers++;
    }
    const bool started = pool.helpers >= count;
    pthread_mutex_unlock(&start_mutex);
    return started;
}

void snn_lanes_run(long lanes, snn_lane_body body, void *context) {
    if (lanes > snn_lanes_max) lanes = snn_lanes_max;
    bool expected = false;
    if (lanes <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, true) || !ensure_helpers(lanes - 1)) {
        // Nested or concurrent (or no threads): one lane after another, here.
        for (long lane = 0; lane < lanes; lane++) body(context, lane);
        if (expected == false && lanes > 1) atomic_store(&pool.busy, false);
        return;
    }
    pool.lanes = lanes;
    pool.body = body;
    pool.context = context;
    atomic_store(&pool.remaining, pool.helpers);
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.parked) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    body(context, 0);
    for (long spins = 0; atomic_load(&pool.remaining) > 0; spins++) {
        cpu_relax();
        // A helper that was descheduled needs this core more than the spin does.
        if ((spins & 63) == 63) sched_yield();
    }
    atomic_store(&pool.busy, false);
}

long snn_lanes_helpers(void) {
    pthread_mutex_lock(&start_mutex);
    const long count = pool.helpers;
    pthread_mutex_unlock(&start_mutex);
    return count;
}
