import CLanes
import COpenBLAS
import Engine
import Foundation
import Synchronization
import XCTest

/// The kernel lanes' fork-join (`KernelLanes.run` over `snn_lanes_run`): every lane runs once per
/// call, on another thread than the caller's, and a call made from inside a lane runs its lanes in
/// turn instead of waiting on itself.
final class LanePoolTests: XCTestCase {
    /// What the lanes saw: per lane, how often it ran and on which thread. Each lane writes only its
    /// own slots, through raw buffers (no shared array storage mutated from two threads).
    final class Record: @unchecked Sendable {
        let runsBuffer = UnsafeMutableBufferPointer<Int>.allocate(capacity: Int(snn_lanes_max))
        let threadsBuffer = UnsafeMutableBufferPointer<pthread_t>.allocate(capacity: Int(snn_lanes_max))
        var nested: [[Int]] = []
        init() {
            runsBuffer.initialize(repeating: 0)
            threadsBuffer.initialize(repeating: pthread_self())
        }
        deinit {
            runsBuffer.deallocate()
            threadsBuffer.deallocate()
        }
        var runs: [Int] { Array(runsBuffer) }
    }

    static func run(_ lanes: Int, _ body: (Int) -> Void) {
        KernelLanes.run(lanes, body)
    }

    func testEveryLaneRunsOncePerCallAndHelpersTakePart() {
        for lanes in [2, 3] {
            let record = Record()
            var callsWithHelpers = 0
            for _ in 0..<10_000 {
                Self.run(lanes) { lane in
                    record.runsBuffer[lane] += 1
                    record.threadsBuffer[lane] = pthread_self()
                    // A few microseconds of work, as a small region has: an empty lane is claimed by
                    // the caller before a helper sees the region.
                    let until = DispatchTime.now().uptimeNanoseconds + 5_000
                    while DispatchTime.now().uptimeNanoseconds < until {}
                }
                if (0..<lanes).contains(where: { pthread_equal(record.threadsBuffer[$0], pthread_self()) == 0 }) {
                    callsWithHelpers += 1
                }
            }
            XCTAssertEqual(Array(record.runs.prefix(lanes)), [Int](repeating: 10_000, count: lanes), "\(lanes) lanes")
            XCTAssertTrue(record.runs.dropFirst(lanes).allSatisfy { $0 == 0 }, "no lane past the count ran")
            // Which thread runs a lane is not fixed, but a pool whose helpers never ran a lane would
            // be serial: on an idle or a loaded machine helpers take part in some of 10,000 calls.
            XCTAssertGreaterThan(callsWithHelpers, 0, "\(lanes) lanes: a helper ran a lane in some call")
        }
        XCTAssertGreaterThanOrEqual(snn_lanes_helpers(), 2)
    }

    func testACallFromInsideALaneRunsItsLanesInTurn() {
        let record = Record()
        let lock = NSLock()
        Self.run(2) { outer in
            var seen: [Int] = []
            Self.run(2) { inner in seen.append(inner) }
            lock.lock()
            record.nested.append(seen)
            lock.unlock()
            _ = outer
        }
        XCTAssertEqual(record.nested, [[0, 1], [0, 1]], "both outer lanes ran both inner lanes, in order")
    }

    /// Lanes that take turns with sleeps between calls: the helpers park after their spin and are
    /// woken again (the path a pause between training steps takes).
    func testHelpersWakeAfterParking() {
        let record = Record()
        for _ in 0..<5 {
            usleep(2_000)
            Self.run(2) { lane in record.runsBuffer[lane] += 1 }
        }
        XCTAssertEqual(Array(record.runs.prefix(2)), [5, 5])
    }

    /// A helper that reaches each region late (as one that shares its core with another process and
    /// waits for its next time slice): the caller takes its lanes instead of waiting, so 50 regions
    /// take far less than 50 delays, and every lane still runs exactly once. A pool with a lane bound
    /// to each thread waits for the helper every time (at least 50 x 20 ms here).
    func testALateHelperLeavesItsLanesToTheCaller() {
        Self.run(2) { _ in }  // the helpers exist before the delay is set
        let delay = 20_000_000
        snn_lanes_set_helper_delay_ns(delay)
        defer { snn_lanes_set_helper_delay_ns(0) }
        let record = Record()
        let calls = 50
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<calls {
            Self.run(2) { lane in record.runsBuffer[lane] += 1 }
        }
        let items = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
        defer { items.deallocate() }
        items.initialize(repeating: 0)
        for _ in 0..<calls {
            KernelLanes.runItems(64, threads: 2) { item in items[item] += 1 }
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        XCTAssertEqual(Array(record.runs.prefix(2)), [calls, calls], "each lane once per call")
        XCTAssertTrue(items.allSatisfy { $0 == calls }, "each item once per call: \(Array(items))")
        // 2 x 50 calls with a 20 ms late helper: 2,000 ms if every call waited for it.
        XCTAssertLessThan(elapsed, UInt64(calls * delay / 2), "\(Double(elapsed) / 1e6) ms for \(2 * calls) calls")
    }

    /// Items claimed with scratch slots (conv's per-sample im2col): each item runs once, with a slot in
    /// range that no other running item holds at the same time (each item marks its slot busy, spins
    /// a little so that the two threads overlap, and checks nobody else marked it).
    func testItemsWithSlotsNeverShareASlot() {
        let items = 200, slots = KernelLanes.count
        let runs = UnsafeMutableBufferPointer<Int>.allocate(capacity: items), busy = UnsafeMutableBufferPointer<Int>.allocate(capacity: slots)
        defer { runs.deallocate(); busy.deallocate() }
        runs.initialize(repeating: 0)
        busy.initialize(repeating: 0)
        let clashes = Atomic<Int>(0), outOfRange = Atomic<Int>(0)
        KernelLanes.runItemsWithSlots(items, slots: slots) { item, slot in
            guard (0..<slots).contains(slot) else { outOfRange.add(1, ordering: .relaxed); return }
            runs[item] += 1
            if busy[slot] != 0 { clashes.add(1, ordering: .relaxed) }
            busy[slot] = item + 1
            var x = 0.0
            for i in 0..<20_000 { x += Double(i).squareRoot() }
            if busy[slot] != item + 1 || x < 0 { clashes.add(1, ordering: .relaxed) }
            busy[slot] = 0
        }
        XCTAssertTrue(runs.allSatisfy { $0 == 1 }, "each item once")
        XCTAssertEqual(clashes.load(ordering: .relaxed), 0)
        XCTAssertEqual(outOfRange.load(ordering: .relaxed), 0)
    }

    /// The caller waits for a helper whose lane takes 30 ms: it sleeps rather than spin (or yield
    /// in a loop, which costs the same CPU time when nobody else wants the core), so its CPU time
    /// over the wait stays a small part of the wait.
    func testTheCallerSleepsThroughALongWait() {
        let caller = pthread_self()
        let helperStarted = Flag()
        var waitCPU: [Double] = [], helperRan = 0
        for _ in 0..<5 {
            helperStarted.value.store(0, ordering: .sequentiallyConsistent)
            var afterOwnLane = 0.0
            let started = DispatchTime.now().uptimeNanoseconds
            Self.run(2) { _ in
                if pthread_equal(pthread_self(), caller) != 0 {
                    // Give a helper 100 ms to claim the other lane, so that there is a wait to measure.
                    while helperStarted.value.load(ordering: .sequentiallyConsistent) == 0 && DispatchTime.now().uptimeNanoseconds - started < 100_000_000 {}
                    afterOwnLane = threadCPUSeconds()
                } else {
                    helperStarted.value.store(1, ordering: .sequentiallyConsistent)
                    usleep(30_000)
                }
            }
            if helperStarted.value.load(ordering: .sequentiallyConsistent) == 1 {
                helperRan += 1
                waitCPU.append(threadCPUSeconds() - afterOwnLane)
            }
        }
        XCTAssertGreaterThan(helperRan, 0, "a helper claimed a lane in some of the calls")
        XCTAssertTrue(waitCPU.allSatisfy { $0 < 0.010 }, "caller CPU seconds over 30 ms waits: \(waitCPU)")
    }
}

extension LanePoolTests {
    /// A large Float GEMM outside the lanes is split into parts the lanes claim (on OpenBLAS too,
    /// which runs one thread): every part lands where one unsplit cblas_sgemm puts it, for every
    /// transpose and for sides that are not a multiple of the parts.
    func testSplitGEMMOnOpenBLASMatchesOneUnsplitCall() {
        for (m, n, k) in [(300, 70, 200), (45, 1001, 97)] {
            XCTAssertGreaterThanOrEqual(m * n * k, 1 << 21, "large enough to be split")
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    let lda = transposeA ? m : k, ldb = transposeB ? k : n
                    let a = (0..<m * k).map { Float(($0 * 7919) % 113) / 113 - 0.5 }
                    let b = (0..<k * n).map { Float(($0 * 104_729) % 127) / 127 - 0.5 }
                    let start = (0..<m * n).map { Float($0 % 17) / 17 }
                    var split = start, whole = start
                    GEMMBackend.withBackend(.openblas) {
                        Float.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda,
                                   b: b, ldb: ldb, beta: 2, c: &split, ldc: n)
                    }
                    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                                blasint(m), blasint(n), blasint(k), 0.5, a, blasint(lda), b, blasint(ldb), 2, &whole, blasint(n))
                    let worst = zip(split, whole).map { abs($0 - $1) / max(1, abs($1)) }.max()!
                    XCTAssertLessThan(worst, 1e-5, "\(m)x\(n)x\(k) tA \(transposeA) tB \(transposeB)")
                }
            }
        }
    }
}

/// CPU time of the calling thread, in seconds.
private func threadCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// A flag one thread sets and another polls.
private final class Flag: Sendable {
    let value = Atomic<Int>(0)
}
