#ifndef SNNMEM_LANES_H
#define SNNMEM_LANES_H

// The engine's fork-join for its kernel lanes: a few persistent helper threads that spin briefly
// between parallel regions before they sleep.
//
// Why not libdispatch's concurrentPerform: a CIFARNet training step opens about 400 parallel
// regions of 0.05 to 2 ms each, and waking a parked dispatch worker for each cost 30 to 70 us
// per region on these machines (measured: two lanes of 100 us took 130 to 170 us), a tenth of
// the step. A helper that is still spinning starts within a microsecond.

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One lane's work: called with the caller's context and the lane's index.
typedef void (*snn_lane_body)(void *context, long lane);

/// Runs body(context, lane) for lane in 0 ..< lanes: lane 0 on the calling thread, the others on
/// helper threads (started on first use, kept for the process's life), and returns when all are
/// done. A call made while another is running (from a lane, or from a second thread) runs its
/// lanes one after another on its own thread. lanes is at most snn_lanes_max.
void snn_lanes_run(long lanes, snn_lane_body body, void *context);

/// The most lanes one call can run in parallel.
enum { snn_lanes_max = 16 };

/// Helper threads started so far (for tests).
long snn_lanes_helpers(void);

#ifdef __cplusplus
}
#endif

#endif
