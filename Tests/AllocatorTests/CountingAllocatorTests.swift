import Allocator
import MemoryModel
import XCTest

/// Scripted lifetimes through the deterministic double: every byte count is exact.
final class CountingAllocatorTests: XCTestCase {
    func testLiveAndPeakBytesByRoleForAScriptedStep() throws {
        let allocator = CountingAllocator(rounding: .exact)
        let weights = try allocator.allocate(bytes: 1000, role: .parameter, layerPath: "conv1", name: "weight",
                                             timestep: nil, phase: .setup)
        let spikes0 = try allocator.allocate(bytes: 300, role: .activation, layerPath: "conv1", name: "spikes",
                                             timestep: 0, phase: .forward(timestep: 0))
        let scratch = try allocator.allocate(bytes: 500, role: .workspace, layerPath: "conv1", name: "im2col",
                                             timestep: 0, phase: .forward(timestep: 0))
        try allocator.free(scratch)
        let spikes1 = try allocator.allocate(bytes: 300, role: .activation, layerPath: "conv1", name: "spikes",
                                             timestep: 1, phase: .forward(timestep: 1))
        let membrane = try allocator.allocate(bytes: 200, role: .neuronState, layerPath: "conv1", name: "v",
                                              timestep: 1, phase: .forward(timestep: 1))
        let counters = allocator.recorder.requested
        XCTAssertEqual(counters.liveBytes, 1800)
        // 1000 + 300 + 500 = 1800 first, then 1000 + 300 + 300 + 200 = 1800 again: first reach counts.
        XCTAssertEqual(counters.peakBytes, 1800)
        XCTAssertEqual(counters.bytesByRoleAtPeak[.workspace], 500)
        XCTAssertEqual(counters.bytesByRoleAtPeak[.activation], 300)
        XCTAssertEqual(counters.liveBytesByRole[.activation], 600)
        XCTAssertEqual(counters.liveBytesByRole[.neuronState], 200)
        XCTAssertEqual(counters.liveBytesByRole[.workspace], 0)
        XCTAssertEqual(counters.peakBytesByRole[.workspace], 500)
        XCTAssertEqual(counters.peakBytesByRole[.activation], 600)

        let grad = try allocator.allocate(bytes: 1000, role: .gradient, layerPath: "conv1", name: "dWeight",
                                          timestep: nil, phase: .backward(timestep: 1))
        XCTAssertEqual(allocator.recorder.requested.peakBytes, 2800)
        for buffer in [spikes1, membrane, spikes0, grad] { try allocator.free(buffer) }
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 1000)
        XCTAssertEqual(allocator.recorder.requested.liveBytesByRole.total, 1000)
        XCTAssertEqual(allocator.recorder.liveTensorCount, 1)
        XCTAssertTrue(allocator.recorder.endStep().isClean)
        try allocator.free(weights)
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 0)
    }

    func testAllocatedBytesFollowTheRounding() throws {
        let allocator = CountingAllocator(rounding: .jemalloc)
        var buffers: [TensorBuffer] = []
        for bytes in [1, 100, 129, 5000, 1_048_577] {
            buffers.append(try allocator.allocate(bytes: bytes, role: .activation, layerPath: "fc", name: "x",
                                                  timestep: nil, phase: .setup))
        }
        XCTAssertEqual(buffers.map(\.allocatedBytes), [64, 128, 192, 5120, 1_310_720])
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, 64 + 128 + 192 + 5120 + 1_310_720)
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 1 + 100 + 129 + 5000 + 1_048_577)
        for buffer in buffers { try allocator.free(buffer) }
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, 0)
    }

    func testDoubleFreeIsReportedWithLayerAndRoleAndIgnored() throws {
        let allocator = CountingAllocator()
        let buffer = try allocator.allocate(bytes: 4096, role: .activation, layerPath: "block2/lif", name: "spikes",
                                            timestep: 3, phase: .forward(timestep: 3))
        let other = try allocator.allocate(bytes: 64, role: .workspace, layerPath: "block2/conv", name: "tmp",
                                           timestep: nil, phase: .forward(timestep: 3))
        try allocator.beginPhase(.backward(timestep: 3))
        try allocator.free(buffer)
        XCTAssertThrowsError(try allocator.free(buffer)) { error in
            guard case AllocatorError.doubleFree(let problem) = error else {
                return XCTFail("expected a double free, got \(error)")
            }
            XCTAssertEqual(problem.kind, .doubleFree)
            XCTAssertEqual(problem.layerPath, "block2/lif")
            XCTAssertEqual(problem.role, .activation)
            XCTAssertEqual(problem.tensorID, buffer.id)
            XCTAssertEqual(problem.phase, .backward(timestep: 3))
            XCTAssertTrue("\(error)".contains("block2/lif:spikes@t3"), "\(error)")
            XCTAssertTrue("\(error)".contains("activations"), "\(error)")
        }
        // The second free changed nothing: the other buffer is still the only live one.
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 64)
        XCTAssertEqual(allocator.recorder.events.filter { $0.kind == .free }.count, 1)
        try allocator.free(other)
        let report = allocator.recorder.endStep()
        XCTAssertEqual(report.doubleFrees.map(\.layerPath), ["block2/lif"])
        XCTAssertEqual(report.leaks, [])
    }

    func testStaleHandleAfterSlotReuseIsADoubleFree() throws {
        let allocator = CountingAllocator()
        let first = try allocator.allocate(bytes: 128, role: .activation, layerPath: "a", timestep: nil)
        try allocator.free(first)
        // Reuses the slot of `first`; freeing `first` again must not free this one.
        let second = try allocator.allocate(bytes: 256, role: .gradient, layerPath: "b", timestep: nil)
        XCTAssertThrowsError(try allocator.free(first))
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 256)
        try allocator.free(second)
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 0)
    }

    func testLeakAtEndOfStepIsReportedWithLayerAndRole() throws {
        let allocator = CountingAllocator()
        let weights = try allocator.allocate(bytes: 4000, role: .parameter, layerPath: "fc1", name: "weight",
                                             timestep: nil, phase: .setup)
        let spikes = try allocator.allocate(bytes: 800, role: .activation, layerPath: "fc1/lif", name: "spikes",
                                            timestep: 2, phase: .forward(timestep: 2))
        let kept = try allocator.allocate(bytes: 16, role: .neuronState, layerPath: "fc1/lif", name: "v",
                                          timestep: 2, phase: .forward(timestep: 2))
        try allocator.free(kept)
        let report = allocator.recorder.endStep()
        XCTAssertEqual(report.trainingStep, 0)
        XCTAssertEqual(report.leaks.count, 1)
        let leak = try XCTUnwrap(report.leaks.first)
        XCTAssertEqual(leak.tensorID, spikes.id)
        XCTAssertEqual(leak.layerPath, "fc1/lif")
        XCTAssertEqual(leak.role, .activation)
        XCTAssertEqual(leak.phase, .forward(timestep: 2))
        XCTAssertTrue(leak.description.contains("fc1/lif:spikes@t2"), leak.description)
        XCTAssertTrue(leak.description.contains("end of step 0"), leak.description)
        XCTAssertEqual(report.peakRequestedBytes, 4816)
        XCTAssertEqual(allocator.recorder.problems, [leak])

        try allocator.free(spikes)
        let next = allocator.recorder.endStep()
        XCTAssertEqual(next.trainingStep, 1)
        XCTAssertTrue(next.isClean, "\(next.problems)")
        XCTAssertEqual(next.peakRequestedBytes, 4800)
        try allocator.free(weights)
    }

    func testPeakSweepOverExportedEventsMatchesTheRunningPeak() throws {
        let allocator = CountingAllocator(rounding: .jemalloc)
        // A pseudo-random but fixed sequence: allocations of assorted sizes and roles, frees in
        // shuffled order, so peaks happen mid-sequence and not only at the end.
        var generator = SplitMix(seed: 42)
        var live: [TensorBuffer] = []
        let roles = TensorRole.allCases
        for step in 0..<2000 {
            // Grows towards about 40 live tensors, then shrinks: peaks fall inside the sequence.
            let allocatePercent: UInt64 = live.count < 40 ? 70 : 30
            if live.isEmpty || generator.next() % 100 < allocatePercent {
                let bytes = Int(generator.next() % 300_000) + 1
                let role = roles[Int(generator.next() % UInt64(roles.count))]
                live.append(try allocator.allocate(bytes: bytes, role: role, layerPath: "layer\(step % 7)",
                                                   name: "t\(step)", timestep: step % 4,
                                                   phase: .forward(timestep: step % 4)))
            } else {
                try allocator.free(live.remove(at: Int(generator.next() % UInt64(live.count))))
            }
        }
        let recorder = allocator.recorder
        for measuring in [MeasuredBytes.allocated, .requested] {
            let counters = measuring == .allocated ? recorder.allocated : recorder.requested
            let sweep = PeakSweep().run(recorder.lifetimeEvents(measuring: measuring),
                                        allowLive: Set(live.map(\.id)))
            XCTAssertEqual(sweep.peakBytes, counters.peakBytes, "\(measuring)")
            XCTAssertEqual(sweep.bytesByRoleAtPeak, counters.bytesByRoleAtPeak, "\(measuring)")
            XCTAssertEqual(sweep.peakBytesByRole, counters.peakBytesByRole, "\(measuring)")
            XCTAssertEqual(sweep.finalLiveBytes, counters.liveBytes, "\(measuring)")
            XCTAssertEqual(sweep.problems, [])
        }
        // The planner's rounding applied to requested bytes gives the allocated peak too.
        let rounded = PeakSweep(rounding: .jemalloc).run(recorder.lifetimeEvents(measuring: .requested),
                                                         allowLive: Set(live.map(\.id)))
        XCTAssertEqual(rounded.peakBytes, recorder.allocated.peakBytes)
        XCTAssertGreaterThan(recorder.allocated.peakBytes, recorder.allocated.liveBytes)
        for buffer in live { try allocator.free(buffer) }
    }

    func testTracesAreDeterministic() throws {
        func run() throws -> [TraceEvent] {
            let allocator = CountingAllocator()
            let a = try allocator.allocate(bytes: 10, role: .input, layerPath: "data", timestep: nil)
            let b = try allocator.allocate(bytes: 20, role: .activation, layerPath: "fc", timestep: 0)
            try allocator.free(a)
            try allocator.free(b)
            return allocator.recorder.events
        }
        let first = try run()
        XCTAssertEqual(first, try run())
        XCTAssertEqual(first.map(\.timeNs), [1, 2, 3, 4])
        XCTAssertEqual(first.map(\.eventIndex), [0, 1, 2, 3])
    }

    func testLifetimesPairAllocationsWithFrees() throws {
        let allocator = CountingAllocator()
        let a = try allocator.allocate(bytes: 10, role: .activation, layerPath: "fc", name: "x", timestep: 0,
                                       phase: .forward(timestep: 0))
        let b = try allocator.allocate(bytes: 20, role: .activation, layerPath: "fc", name: "y", timestep: 0,
                                       phase: .forward(timestep: 0))
        try allocator.beginPhase(.backward(timestep: 0))
        try allocator.free(a)
        let lifetimes = allocator.recorder.events.lifetimes()
        XCTAssertEqual(lifetimes.map(\.tensorID), [a.id, b.id])
        XCTAssertEqual(lifetimes[0].freePhase, .backward(timestep: 0))
        XCTAssertEqual(lifetimes[0].durationNs, 2)
        XCTAssertNil(lifetimes[1].freeTimeNs)
        try allocator.free(b)
    }
}

extension CountingAllocatorTests {
    func testDescriptorBytesComeFromShapeAndDType() throws {
        let allocator = CountingAllocator(rounding: .jemalloc)
        let descriptor = TensorDescriptor(layerPath: "block1/conv", name: "membrane", timestep: 4, role: .neuronState,
                                          shape: TensorShape([8, 16, 32, 32]), dtype: .float16)
        let buffer = try allocator.allocate(descriptor, phase: .forward(timestep: 4))
        XCTAssertEqual(buffer.requestedBytes, 8 * 16 * 32 * 32 * 2)
        XCTAssertEqual(buffer.allocatedBytes, AllocatorRounding.jemalloc.roundedBytes(8 * 16 * 32 * 32 * 2))
        XCTAssertEqual(buffer.name, "membrane")
        XCTAssertEqual(buffer.timestep, 4)
        XCTAssertEqual(allocator.recorder.requested.liveBytesByRole[.neuronState], 262_144)
        try allocator.free(buffer)
    }

    func testCountersWithoutEventsStayExact() throws {
        let allocator = CountingAllocator(rounding: .exact)
        allocator.recorder.keepsEvents = false
        let a = try allocator.allocate(bytes: 100, role: .activation, layerPath: "a", timestep: nil)
        let b = try allocator.allocate(bytes: 50, role: .workspace, layerPath: "b", timestep: nil)
        try allocator.free(a)
        try allocator.free(b)
        XCTAssertEqual(allocator.recorder.events, [])
        XCTAssertEqual(allocator.recorder.eventCount, 4)
        XCTAssertEqual(allocator.recorder.requested.peakBytes, 150)
        XCTAssertEqual(allocator.recorder.requested.peakBytesByRole[.workspace], 50)
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 0)
    }

    func testPersistentRolesAreNotLeaks() throws {
        let allocator = CountingAllocator(persistentRoles: [.parameter, .optimizerState, .gradient])
        let grad = try allocator.allocate(bytes: 64, role: .gradient, layerPath: "fc", name: "dWeight", timestep: nil,
                                          phase: .backward(timestep: nil))
        let input = try allocator.allocate(bytes: 64, role: .input, layerPath: "data", name: "images", timestep: nil,
                                           phase: .forward(timestep: 0))
        let report = allocator.recorder.endStep()
        XCTAssertEqual(report.leaks.map(\.role), [.input])
        XCTAssertEqual(report.leaks.map(\.layerPath), ["data"])
        try allocator.free(grad)
        try allocator.free(input)
    }

    /// The engine allocates each weight's gradient buffer once, in the set-up, and keeps it across
    /// steps: that is the model's memory, not a leak. A tensor a step leaves live is reported
    /// once, at the end of that step, not again at every later one.
    func testSetUpTensorsAreNotLeaksAndALeakIsReportedOnce() throws {
        let allocator = CountingAllocator()
        let gradient = try allocator.allocate(bytes: 256, role: .gradient, layerPath: "conv1", name: "weight.grad",
                                              timestep: nil, phase: .setup)
        XCTAssertTrue(allocator.recorder.endStep().isClean)
        let lost = try allocator.allocate(bytes: 32, role: .workspace, layerPath: "conv1", name: "columns",
                                          timestep: 0, phase: .forward(timestep: 0))
        XCTAssertEqual(allocator.recorder.endStep().leaks.map(\.tensorID), [lost.id])
        XCTAssertTrue(allocator.recorder.endStep().isClean, "the same leak reported again")
        XCTAssertEqual(allocator.recorder.problems.count, 1)
        try allocator.free(lost)
        try allocator.free(gradient)
    }
}

/// A small fixed-seed generator so scripted sequences are the same on every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
