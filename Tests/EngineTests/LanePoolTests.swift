import CLanes
import Engine
import Foundation
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

    func testEveryLaneRunsOncePerCallOnItsOwnThread() {
        for lanes in [2, 3] {
            let record = Record()
            for _ in 0..<10_000 {
                Self.run(lanes) { lane in
                    record.runsBuffer[lane] += 1
                    record.threadsBuffer[lane] = pthread_self()
                }
            }
            XCTAssertEqual(Array(record.runs.prefix(lanes)), [Int](repeating: 10_000, count: lanes), "\(lanes) lanes")
            XCTAssertTrue(record.runs.dropFirst(lanes).allSatisfy { $0 == 0 }, "no lane past the count ran")
            XCTAssertNotEqual(pthread_equal(record.threadsBuffer[0], pthread_self()), 0, "lane 0 runs on the caller")
            for lane in 1..<lanes {
                XCTAssertEqual(pthread_equal(record.threadsBuffer[lane], pthread_self()), 0, "lane \(lane) runs on a helper")
            }
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
}
