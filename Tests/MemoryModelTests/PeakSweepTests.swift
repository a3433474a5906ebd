import MemoryModel
import XCTest

final class PeakSweepTests: XCTestCase {
    func event(_ kind: LifetimeEvent.Kind, _ id: Int, _ bytes: Int, _ role: TensorRole, _ phase: TrainingPhase = .forward(timestep: 0)) -> LifetimeEvent {
        LifetimeEvent(kind: kind, tensorID: id, bytes: bytes, role: role, phase: phase)
    }

    func testPeakMomentAndRolesAtThePeak() {
        let events = [
            event(.allocate, 0, 100, .parameter, .setup),
            event(.allocate, 1, 50, .activation),
            event(.allocate, 2, 30, .workspace),
            event(.free, 2, 30, .workspace),
            event(.allocate, 3, 70, .neuronState, .backward(timestep: 0)),  // 220: the peak
            event(.free, 1, 50, .activation, .backward(timestep: 0)),
            event(.allocate, 4, 60, .workspace, .backward(timestep: 0)),     // 230? no: 100 + 70 + 60 = 230
            event(.free, 3, 70, .neuronState, .backward(timestep: 0)),
            event(.free, 4, 60, .workspace, .optimizerStep),
        ]
        let result = PeakSweep().run(events, allowLive: [0])
        XCTAssertEqual(result.peakBytes, 230)
        XCTAssertEqual(result.peakEventIndex, 6)
        XCTAssertEqual(result.peakPhase, .backward(timestep: 0))
        XCTAssertEqual(result.bytesByRoleAtPeak[.parameter], 100)
        XCTAssertEqual(result.bytesByRoleAtPeak[.neuronState], 70)
        XCTAssertEqual(result.bytesByRoleAtPeak[.workspace], 60)
        XCTAssertEqual(result.bytesByRoleAtPeak[.activation], 0)
        XCTAssertEqual(result.bytesByRoleAtPeak.total, 230)
        XCTAssertEqual(result.peakBytesByRole[.activation], 50)
        XCTAssertEqual(result.peakTransientBytes, 130)
        XCTAssertEqual(result.finalLiveBytes, 100)
        XCTAssertTrue(result.problems.isEmpty)
        XCTAssertEqual(PeakSweep().liveTensors(events, after: 6), [0, 3, 4])
        XCTAssertEqual(PeakSweep().liveBytesSeries(events), [100, 150, 180, 150, 220, 170, 230, 160, 100])
    }

    func testTiesKeepTheFirstMoment() {
        let events = [event(.allocate, 0, 10, .activation), event(.free, 0, 10, .activation), event(.allocate, 1, 10, .activation),
                      event(.free, 1, 10, .activation)]
        XCTAssertEqual(PeakSweep().run(events).peakEventIndex, 0)
    }

    func testProblemsAreReportedNotCrashed() {
        let events = [event(.allocate, 0, 10, .activation), event(.allocate, 0, 10, .activation), event(.free, 5, 10, .workspace),
                      event(.allocate, 1, 20, .gradient)]
        let result = PeakSweep().run(events)
        XCTAssertEqual(result.problems.map(\.kind), [.doubleAllocate, .freeOfUnknown, .leak, .leak])
        XCTAssertEqual(result.problems.last?.tensorID, 1)
        XCTAssertEqual(result.peakBytes, 30)
    }

    func testRoundingIsAppliedPerTensor() {
        let events = [event(.allocate, 0, 100, .activation), event(.allocate, 1, 513, .activation)]
        XCTAssertEqual(PeakSweep(rounding: .exact).run(events).peakBytes, 613)
        XCTAssertEqual(PeakSweep(rounding: .cuda).run(events).peakBytes, 512 + 1024)
        XCTAssertEqual(PeakSweep(rounding: .jemalloc).run(events).peakBytes, 128 + 640)
    }

    /// Planned ids (0, 1, 2, ...) are swept through arrays, others through a dictionary: the same
    /// trace with its ids spread far apart must give the same answer, problems included.
    func testDenseAndSparseIdsSweepAlike() {
        var generator = SystemRandomNumberGenerator()
        let roles = TensorRole.allCases
        for _ in 0..<20 {
            var events: [LifetimeEvent] = []
            var live: [Int] = []
            var next = 0
            for _ in 0..<400 {
                if live.isEmpty || Int.random(in: 0..<3, using: &generator) > 0 {
                    events.append(event(.allocate, next, Int.random(in: 0...5000, using: &generator), roles.randomElement(using: &generator)!))
                    live.append(next)
                    next += 1
                } else {
                    let id = live.remove(at: Int.random(in: 0..<live.count, using: &generator))
                    events.append(event(.free, id, 0, .activation))
                }
            }
            // A double allocation, a free of an unknown tensor, and leaks (what is still live).
            events.append(event(.allocate, live.last!, 10, .workspace))
            events.append(event(.free, next + 5, 10, .workspace))
            let spread = { (id: Int) in id * 1_000_003 + 7 }
            let sparse = events.map { event($0.kind, spread($0.tensorID), $0.bytes, $0.role, $0.phase) }
            let allowed = Set(live.prefix(3))  // parameters, say; the other live tensors leak
            let dense = PeakSweep(rounding: .cuda).run(events, allowLive: allowed)
            var fromSparse = PeakSweep(rounding: .cuda).run(sparse, allowLive: Set(allowed.map(spread)))
            fromSparse.problems = fromSparse.problems.map { problem in
                var problem = problem
                problem.tensorID = (problem.tensorID - 7) / 1_000_003
                return problem
            }
            XCTAssertEqual(dense, fromSparse)
            XCTAssertEqual(dense.problems.first?.kind, .doubleAllocate)
        }
    }
}
