import Allocator
import Foundation
import MemoryModel
import XCTest

/// Each damage a file can carry that decodes as a trace: refused on read with the field named.
final class TraceValidationTests: XCTestCase {
    /// A recorded two-step trace (weights, two activations, one leak in step 0 freed in step 1),
    /// with jemalloc-like samples that hold at least the live bytes.
    static func soundTrace() throws -> MemoryTrace {
        let allocator = CountingAllocator()
        let recorder = allocator.recorder
        let weights = try allocator.allocate(bytes: 5000, role: .parameter, layerPath: "fc", name: "weight",
                                             timestep: nil, phase: .setup)
        let spikes = try allocator.allocate(bytes: 300, role: .activation, layerPath: "fc/lif", name: "spikes",
                                            timestep: 0, phase: .forward(timestep: 0))
        let state = try allocator.allocate(bytes: 64, role: .neuronState, layerPath: "fc/lif", name: "v",
                                           timestep: 1, phase: .forward(timestep: 1))
        try allocator.free(spikes)
        XCTAssertEqual(recorder.endStep().leaks.count, 1)
        try allocator.free(state)
        recorder.endStep()
        try allocator.free(weights)
        var trace = recorder.trace(header: .init(toolVersion: "test", profile: "tiny", profileSHA256: TraceFileTests.emptyFileSHA256,
                                                 strategy: "bptt", batch: 2, timesteps: 2, allocatorName: "jemalloc"))
        let snapshot = JemallocSnapshot(allocatedBytes: 1 << 20, activeBytes: 1 << 21, residentBytes: 1 << 22,
                                        threadAllocatedBytes: 0, threadDeallocatedBytes: 0, threadPeakBytes: 0)
        trace.samples = [
            JemallocSample(phase: .setup, timeNs: 0, eventIndex: 0, trainingStep: 0, snapshot: snapshot),
            JemallocSample(phase: .backward(timestep: 1), timeNs: trace.events[2].timeNs, eventIndex: 3,
                           trainingStep: 0, snapshot: snapshot),
        ]
        return trace
    }

    private func assertRefused(_ trace: MemoryTrace, field: String, saying words: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        guard let problem = trace.firstProblem() else {
            return XCTFail("accepted a trace damaged at \(field)", file: file, line: line)
        }
        XCTAssertEqual(problem.field, field, "\(problem)", file: file, line: line)
        XCTAssertTrue(problem.reason.contains(words), "\(problem)", file: file, line: line)
    }

    func testRecordedTraceIsSound() throws {
        XCTAssertNil(try Self.soundTrace().firstProblem())
    }

    func testNegativeAndAbsurdBytesAreRefused() throws {
        var trace = try Self.soundTrace()
        trace.events[1].requestedBytes = -300
        assertRefused(trace, field: "events[1].requestedBytes", saying: "-300")
        trace = try Self.soundTrace()
        trace.events[0].allocatedBytes = Int.max
        assertRefused(trace, field: "events[0].allocatedBytes", saying: "outside")
        trace = try Self.soundTrace()
        trace.events[1].allocatedBytes = 10
        assertRefused(trace, field: "events[1].allocatedBytes", saying: "less than the 300 bytes requested")
    }

    func testFreeBeforeAllocationIsRefused() throws {
        var trace = try Self.soundTrace()
        // The free of the spikes moved before their allocation (indices and times kept in order).
        let free = trace.events.firstIndex { $0.kind == .free && $0.tensorID == 1 }!
        var reordered = trace.events
        let freeEvent = reordered.remove(at: free)
        reordered.insert(freeEvent, at: 1)
        for index in reordered.indices {
            reordered[index].eventIndex = index
            reordered[index].timeNs = UInt64(index)
        }
        trace.events = reordered
        trace.samples = []
        assertRefused(trace, field: "events[1].tensorID", saying: "freed before any allocation")
    }

    func testSecondAllocationAndMismatchedFreeAreRefused() throws {
        var trace = try Self.soundTrace()
        trace.events[2].tensorID = 1
        assertRefused(trace, field: "events[2].tensorID", saying: "allocated a second time")
        trace = try Self.soundTrace()
        let free = trace.events.firstIndex { $0.kind == .free && $0.tensorID == 1 }!
        trace.events[free].requestedBytes = 200
        assertRefused(trace, field: "events[\(free)].requestedBytes", saying: "its allocation 300")
        trace = try Self.soundTrace()
        trace.events[free].role = .workspace
        assertRefused(trace, field: "events[\(free)].role", saying: "its allocation 'activation'")
    }

    func testEventsOutOfOrderAreRefused() throws {
        var trace = try Self.soundTrace()
        trace.events[2].eventIndex = 0
        assertRefused(trace, field: "events[2].eventIndex", saying: "not after")
        trace = try Self.soundTrace()
        trace.events[2].timeNs = 0
        assertRefused(trace, field: "events[2].timeNs", saying: "before the previous")
        trace = try Self.soundTrace()
        trace.events[0].trainingStep = 3
        assertRefused(trace, field: "events[1].trainingStep", saying: "before the previous")
        trace = try Self.soundTrace()
        trace.events[2].timestep = 2
        assertRefused(trace, field: "events[2].timestep", saying: "outside 0..<2")
    }

    func testHeaderOutOfRangeIsRefused() throws {
        var trace = try Self.soundTrace()
        trace.header.batch = 0
        assertRefused(trace, field: "header.batch", saying: "is 0")
        trace = try Self.soundTrace()
        trace.header.timesteps = -4
        assertRefused(trace, field: "header.timesteps", saying: "is -4")
    }

    /// The profile's digest is what `report --profile` compares against: one that no profile
    /// file could have (empty, short, upper case, not hex) is a damaged header.
    func testProfileDigestMustBeASHA256() throws {
        for bad in ["", "abc", String(repeating: "A", count: 64), String(repeating: "g", count: 64),
                    TraceFileTests.emptyFileSHA256 + "0"] {
            var trace = try Self.soundTrace()
            trace.header.profileSHA256 = bad
            assertRefused(trace, field: "header.profileSHA256", saying: "not a SHA-256 digest")
        }
    }

    func testSamplesThatDisagreeWithTheEventsAreRefused() throws {
        var trace = try Self.soundTrace()
        // At the second sample 5000 + 300 + 64 bytes (rounded) are live: jemalloc cannot hold less.
        trace.samples[1].snapshot.allocatedBytes = 1000
        trace.samples[1].snapshot.activeBytes = 4096
        assertRefused(trace, field: "samples[1].snapshot.allocatedBytes", saying: "totals disagree")
        trace = try Self.soundTrace()
        trace.samples[0].snapshot.activeBytes = 10
        assertRefused(trace, field: "samples[0].snapshot.activeBytes", saying: "less than")
        trace = try Self.soundTrace()
        trace.samples[1].snapshot.residentBytes = -1
        assertRefused(trace, field: "samples[1].snapshot.residentBytes", saying: "below 0")
        trace = try Self.soundTrace()
        trace.samples[1].eventIndex = 99
        assertRefused(trace, field: "samples[1].eventIndex", saying: "outside")
        trace = try Self.soundTrace()
        trace.samples.reverse()
        assertRefused(trace, field: "samples[1].eventIndex", saying: "before the previous")
        // A counting allocator's trace is not held against jemalloc's totals.
        trace = try Self.soundTrace()
        trace.header.allocatorName = "counting"
        trace.samples[1].snapshot.allocatedBytes = 0
        trace.samples[1].snapshot.activeBytes = 0
        XCTAssertNil(trace.firstProblem())
    }

    func testRecordedProblemsMustMatchTheEvents() throws {
        var trace = try Self.soundTrace()
        XCTAssertEqual(trace.problems.map(\.kind), [.leak])
        trace.problems[0].tensorID = 77
        assertRefused(trace, field: "problems[0].tensorID", saying: "never allocated")
        trace = try Self.soundTrace()
        trace.problems[0].requestedBytes = 1
        assertRefused(trace, field: "problems[0].requestedBytes", saying: "allocated with 64")
        trace = try Self.soundTrace()
        // The v tensor is freed in step 1: a leak reported at the end of step 1 contradicts that.
        trace.problems[0].trainingStep = 1
        assertRefused(trace, field: "problems[0]", saying: "the events free it in step 1")
    }

    func testReadRefusesADamagedFileNamingPathAndField() throws {
        var trace = try Self.soundTrace()
        trace.events[1].requestedBytes = -1
        let path = try TemporaryFolder.make().path + "/damaged.json"
        try TraceFile.write(trace, to: path)
        XCTAssertThrowsError(try TraceFile.read(from: path)) { error in
            guard case AllocatorError.traceInvalid(let errorPath, let problem) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
            XCTAssertEqual(problem.field, "events[1].requestedBytes")
            XCTAssertTrue("\(error)".hasPrefix("\(path): events[1].requestedBytes is -1 bytes"), "\(error)")
            XCTAssertTrue("\(error)".contains("run the measurement again"), "\(error)")
        }
    }
}
