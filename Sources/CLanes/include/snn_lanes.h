#ifndef SNNMEM_LANES_H
#define SNNMEM_LANES_H

// The engine's fork-join for its kernel lanes: a few persistent helper threads that spin briefly
// between parallel regions before they sleep.
//
// Why not libdispatch's concurrentPerform: a CIFARNet training step opens about 400 parallel
// regions of 0.05 to 2 ms each, and waking a parked dispatch worker for each cost 30 to 70 us
// per region on these machines (measured: two lanes of 100 us took 130 to 170 us), a tenth of
// the step. A helper that is still spinning starts within a microsecond.
//
// Under contention (another process busy on one of the cores) a lane is a claim, not a thread:
// the caller and the helpers take lanes from a shared counter, so a helper that is descheduled
// or asleep leaves its lane to the caller instead of holding the whole region up, and no thread
// keeps spinning on a core that another process needs (see snn_lanes.c).

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One lane's work: called with the caller's context and the lane's index.
typedef void (*snn_lane_body)(void *context, long lane);

/// Runs body(context, lane) for lane in 0 ..< lanes, each exactly once, on up to `lanes` threads:
/// the calling thread and helper threads (started on first use, kept for the process's life) claim
/// lanes until none is left, and the call returns when all are done. Which thread runs which lane
/// is not fixed (the caller runs every lane no helper has claimed by the time it gets to it); one
/// thread runs its lanes one after another. A call made while another is running (from a lane, or from a second
/// thread) runs its lanes one after another on its own thread. lanes is at most snn_lanes_max.
void snn_lanes_run(long lanes, snn_lane_body body, void *context);

/// Like snn_lanes_run, for `items` independent pieces of work (at most snn_lanes_max_items) shared
/// by at most `threads` threads (at most snn_lanes_max): more items than threads let a thread that
/// keeps its core take over the share of one that lost it.
void snn_lanes_run_items(long items, long threads, snn_lane_body body, void *context);

/// The most lanes (threads) one call can run in parallel.
enum { snn_lanes_max = 16 };

/// The most items one call of snn_lanes_run_items can share out.
enum { snn_lanes_max_items = 4096 };

/// Helper threads started so far (for tests).
long snn_lanes_helpers(void);

/// For tests: each helper sleeps this long after it sees a new region and before it claims a lane,
/// as a helper that the scheduler took off its core would. 0 (the default) turns it off.
void snn_lanes_set_helper_delay_ns(long nanoseconds);

/// Scratch slots shared by the items of one snn_lanes_run_items call: at most `threads` items run at
/// once, so with that many slots an item always finds one free. `mask` (one bit a slot, zero at
/// first) is the caller's; claims and releases are atomic. Returns the slot claimed (0 ..< slots),
/// or -1 when all are taken (a caller's mistake: more items in flight than slots).
long snn_slot_claim(unsigned long *mask, long slots);
void snn_slot_release(unsigned long *mask, long slot);

/// Counters since the process started (for tests and measurements): waits in which a helper or the
/// caller stopped spinning and slept because it found its core contended or its spin ran out.
typedef struct {
    long helper_parks;   // a helper slept until the next region
    long caller_sleeps;  // the caller slept until its helpers finished
    long contended;      // spins cut short because the thread lost its core while spinning
} snn_lanes_counters;
snn_lanes_counters snn_lanes_read_counters(void);

#ifdef __cplusplus
}
#endif

#endif
