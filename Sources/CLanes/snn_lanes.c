// Fork-join over persistent helper threads (see snn_lanes.h for why). One job at a time: the
// caller publishes the body, context and a claim word (next lane, lanes, threads), bumps a
// generation counter, then claims lanes itself until none is left, and waits for the lanes that
// helpers claimed to be done. Helpers spin on the generation for a while after each job, then park
// on a condition variable; the caller signals only when some helper is parked.
//
// Why claims instead of a fixed lane per thread: on a 2-core machine where another process is busy
// on one core, one of the two lane threads shares that core and is off it for a millisecond or more
// at a time, longer than most regions. With a fixed lane per thread a region waited for that
// thread whenever it was off its core, and the caller's wait loop (a sched_yield every 64 spins)
// handed its own core to the other process meanwhile. With claims, a helper that has not reached
// the region by the time the caller is done with its own lane leaves its lane to the caller.
// Measured on the 2-core EPYC (Zen 5), CIFARNet step (T=4, B=16, bptt), 4 interleaved rounds, one
// core busy against quiet: 592 ms against 226 (2.6x) with fixed lanes on the AVX-512 GEMM, 440
// against 231 (1.9x) with claims; on OpenBLAS 805 against 399 (2.0x), 703 against 382 (1.8x).
//
// Why spinning is adaptive, and the caller never yields: a thread that spins on a core another
// process holds burns the share the scheduler would give it when it has work, and a caller that
// yields gives that process a whole slice while its helper finishes. So a helper probes (a
// sched_yield every 20 us, which returns at once when nobody else wants the core) and parks as soon
// as a probe or a gap in its clock shows that someone else ran on its core, and spins for less next
// time; the caller sleeps instead of spinning when it finds itself preempted or its helpers take
// long.
//
// Parking without a lost wake-up: a helper announces itself in `parked` and re-reads the
// generation under the mutex before waiting; the caller bumps the generation before reading
// `parked`. Both sides use sequentially consistent atomics, so at least one of them sees the
// other's write: either the helper sees the new generation and does not wait, or the caller sees
// the parked helper and broadcasts under the mutex. The caller's sleep works the same way with
// `caller_waiting` against `done`.
//
// Reading a job's body and context is safe after claiming one of its lanes: the caller rewrites
// them only for the next job, after every lane of this one (the claimed one too) is done.
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
static const long helper_spin_ns = 200000;
// The least a helper spins after contention shortened its spin: enough to notice that the other
// process has stopped (each wait without contention doubles the spin again).
static const long helper_min_spin_ns = 10000;
// How often a spinning helper probes with sched_yield whether another thread wants its core.
static const long probe_interval_ns = 20000;
// A clock gap this long between two checks of a spin loop (which checks every microsecond or so),
// or inside one sched_yield, means another thread ran on this core meanwhile.
static const long preempted_gap_ns = 15000;
// How long the caller spins for its helpers' lanes before it sleeps: the lanes of a region are
// of equal work, so on a quiet machine they end within tens of microseconds of each other.
static const long caller_spin_ns = 100000;

// Claim word: bits 0-15 the next lane to claim, 16-31 the job's lanes, 32-47 its threads.
static inline unsigned long claim_word(long lanes, long threads) {
    return ((unsigned long)lanes << 16) | ((unsigned long)threads << 32);
}
static inline long claim_next(unsigned long word) { return (long)(word & 0xffff); }
static inline long claim_lanes(unsigned long word) { return (long)((word >> 16) & 0xffff); }
static inline long claim_threads(unsigned long word) { return (long)((word >> 32) & 0xffff); }

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t finished;
    _Alignas(64) atomic_ulong claim;
    _Alignas(64) atomic_long done;
    atomic_int caller_waiting;
    _Alignas(64) atomic_ulong generation;
    atomic_long parked;
    atomic_bool busy;
    atomic_long helper_delay_ns;
    atomic_long helper_parks, caller_sleeps, contended;
    long helpers;
    snn_lane_body body;
    void *context;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER};

static pthread_mutex_t start_mutex = PTHREAD_MUTEX_INITIALIZER;

// The generation each helper was started at: its first job is the next one. (Read by the helper
// itself, it could already be that next job's, and the helper would wait for one more.)
static unsigned long start_generation[snn_lanes_max];

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static void sleep_ns(long nanoseconds) {
    struct timespec t = {nanoseconds / 1000000000L, nanoseconds % 1000000000L};
    while (nanosleep(&t, &t) != 0) {}
}

// Marks one lane done; the last one wakes a sleeping caller.
static void finish_lane(long lanes) {
    if (atomic_fetch_add(&pool.done, 1) + 1 == lanes && atomic_load(&pool.caller_waiting)) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.finished);
        pthread_mutex_unlock(&pool.mutex);
    }
}

// Spins until the generation moves past `seen`, for at most *budget ns; returns the new generation,
// or `seen` when the helper should park. Shortens *budget when another thread took the core.
static unsigned long spin_for_job(unsigned long seen, long *budget) {
    const long start = now_ns();
    long last = start, next_probe = start + probe_interval_ns;
    for (long spins = 1;; spins++) {
        const unsigned long generation = atomic_load(&pool.generation);
        if (generation != seen) {
            *budget = *budget * 2 < helper_spin_ns ? *budget * 2 : helper_spin_ns;
            return generation;
        }
        cpu_relax();
        if ((spins & 15) != 0) continue;
        long now = now_ns();
        bool contended = now - last > preempted_gap_ns;
        if (!contended && now >= next_probe) {
            sched_yield();
            const long after = now_ns();
            contended = after - now > preempted_gap_ns;
            now = after;
            next_probe = now + probe_interval_ns;
        }
        if (contended) {
            atomic_fetch_add(&pool.contended, 1);
            *budget = *budget / 2 > helper_min_spin_ns ? *budget / 2 : helper_min_spin_ns;
            return seen;
        }
        if (now - start > *budget) return seen;
        last = now;
    }
}

static void *helper_main(void *argument) {
    const long helper = (long)argument;  // 1 ... helpers: it joins jobs of more than `helper` threads
    unsigned long seen = start_generation[helper];
    long budget = helper_spin_ns;
    for (;;) {
        unsigned long generation = atomic_load(&pool.generation);
        if (generation == seen) generation = spin_for_job(seen, &budget);
        if (generation == seen) {
            atomic_fetch_add(&pool.helper_parks, 1);
            pthread_mutex_lock(&pool.mutex);
            atomic_fetch_add(&pool.parked, 1);
            while ((generation = atomic_load(&pool.generation)) == seen) pthread_cond_wait(&pool.wake, &pool.mutex);
            atomic_fetch_sub(&pool.parked, 1);
            pthread_mutex_unlock(&pool.mutex);
        }
        seen = generation;
        const long delay = atomic_load(&pool.helper_delay_ns);
        if (delay > 0) sleep_ns(delay);
        // Claim lanes of whatever job is current until none is left (or the job wants fewer threads).
        unsigned long word = atomic_load(&pool.claim);
        for (;;) {
            const long lanes = claim_lanes(word);
            if (claim_next(word) >= lanes || helper >= claim_threads(word)) break;
            if (!atomic_compare_exchange_weak(&pool.claim, &word, word + 1)) continue;
            pool.body(pool.context, claim_next(word));
            finish_lane(lanes);
            word = atomic_load(&pool.claim);
        }
    }
    return NULL;
}

// Starts helpers until there are `count` (helpers 1 ... count). Returns false if a thread could not
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

// Waits until all `lanes` lanes are done: spins while that looks short and the core is ours, then
// sleeps until the helper that finishes the last lane wakes it.
static void wait_for_lanes(long lanes) {
    if (atomic_load(&pool.done) == lanes) return;
    const long start = now_ns();
    long last = start;
    for (long spins = 1; atomic_load(&pool.done) < lanes; spins++) {
        cpu_relax();
        if ((spins & 15) != 0) continue;
        const long now = now_ns();
        const bool contended = now - last > preempted_gap_ns;
        if (contended) atomic_fetch_add(&pool.contended, 1);
        if (contended || now - start > caller_spin_ns) {
            atomic_fetch_add(&pool.caller_sleeps, 1);
            pthread_mutex_lock(&pool.mutex);
            atomic_store(&pool.caller_waiting, 1);
            while (atomic_load(&pool.done) < lanes) pthread_cond_wait(&pool.finished, &pool.mutex);
            atomic_store(&pool.caller_waiting, 0);
            pthread_mutex_unlock(&pool.mutex);
            return;
        }
        last = now;
    }
}

void snn_lanes_run_items(long lanes, long threads, snn_lane_body body, void *context) {
    if (threads > snn_lanes_max) threads = snn_lanes_max;
    // More lanes than the claim word's 16 bits hold (no caller asks for that many): run them here.
    if (lanes > snn_lanes_max_items) threads = 1;
    if (threads > lanes) threads = lanes;
    bool expected = false;
    if (threads <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, true) || !ensure_helpers(threads - 1)) {
        // Nested or concurrent (or no threads): one lane after another, here.
        for (long lane = 0; lane < lanes; lane++) body(context, lane);
        if (expected == false && threads > 1) atomic_store(&pool.busy, false);
        return;
    }
    pool.body = body;
    pool.context = context;
    atomic_store(&pool.done, 0);
    atomic_store(&pool.claim, claim_word(lanes, threads));
    atomic_fetch_add(&pool.generation, 1);
    if (atomic_load(&pool.parked) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    // The caller claims like a helper, so the lanes no helper has reached by then run here. (A
    // helper still in its claim loop from the last job can take lane 0 first: no lane is bound to a
    // thread.)
    for (;;) {
        const long lane = claim_next(atomic_fetch_add(&pool.claim, 1));
        if (lane >= lanes) break;
        body(context, lane);
        atomic_fetch_add(&pool.done, 1);
    }
    wait_for_lanes(lanes);
    atomic_store(&pool.busy, false);
}

void snn_lanes_run(long lanes, snn_lane_body body, void *context) {
    if (lanes > snn_lanes_max) lanes = snn_lanes_max;
    snn_lanes_run_items(lanes, lanes, body, context);
}

long snn_lanes_helpers(void) {
    pthread_mutex_lock(&start_mutex);
    const long count = pool.helpers;
    pthread_mutex_unlock(&start_mutex);
    return count;
}

void snn_lanes_set_helper_delay_ns(long nanoseconds) { atomic_store(&pool.helper_delay_ns, nanoseconds); }

snn_lanes_counters snn_lanes_read_counters(void) {
    return (snn_lanes_counters){atomic_load(&pool.helper_parks), atomic_load(&pool.caller_sleeps),
                                atomic_load(&pool.contended)};
}

long snn_slot_claim(unsigned long *mask, long slots) {
    for (long slot = 0; slot < slots && slot < (long)(8 * sizeof(unsigned long)); slot++) {
        const unsigned long bit = 1UL << slot;
        if (!(__atomic_fetch_or(mask, bit, __ATOMIC_ACQUIRE) & bit)) return slot;
    }
    return -1;
}

void snn_slot_release(unsigned long *mask, long slot) {
    __atomic_fetch_and(mask, ~(1UL << slot), __ATOMIC_RELEASE);
}
