import Allocator
import MemoryModel
import XCTest

final class BudgetTests: XCTestCase {
    func testOverBudgetThrowsWithContextAndAllocatorStaysUsable() throws {
        let allocator = CountingAllocator(rounding: .jemalloc, budgetBytes: 10_000)
        try checkBudget(allocator)
    }

    func testJemallocOverBudgetThrowsAndAllocatorStaysUsable() throws {
        let allocator = try JemallocAllocator(recorder: AllocationRecorder(budgetBytes: 10_000))
        try checkBudget(allocator)
    }

    private func checkBudget(_ allocator: TensorAllocator, file: StaticString = #filePath, line: UInt = #line) throws {
        let weights = try allocator.allocate(bytes: 6000, role: .parameter, layerPath: "conv1", name: "weight",
                                             timestep: nil, phase: .setup)
        let spikes = try allocator.allocate(bytes: 3000, role: .activation, layerPath: "conv1/lif", name: "spikes",
                                            timestep: 0, phase: .forward(timestep: 0))
        let eventsBefore = allocator.recorder.events.count
        XCTAssertThrowsError(try allocator.allocate(bytes: 1001, role: .activation, layerPath: "conv2/lif",
                                                    name: "spikes", timestep: 1, phase: .forward(timestep: 1)),
                             file: file, line: line) { error in
            guard case AllocatorError.outOfMemory(let report) = error else {
                return XCTFail("expected out of memory, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(report.requestedBytes, 1001, file: file, line: line)
            XCTAssertEqual(report.layerPath, "conv2/lif", file: file, line: line)
            XCTAssertEqual(report.timestep, 1, file: file, line: line)
            XCTAssertEqual(report.limitBytes, 10_000, file: file, line: line)
            XCTAssertEqual(report.liveBytes, 9000, file: file, line: line)
            XCTAssertEqual(report.liveBytesByRole[.parameter], 6000, file: file, line: line)
            XCTAssertEqual(report.liveBytesByRole[.activation], 3000, file: file, line: line)
            let text = "\(error)"
            for part in ["conv2/lif:spikes@t1", "1001 B", "parameters 5.86 KiB", "activations 2.93 KiB", "limit 9.77 KiB"] {
                XCTAssertTrue(text.contains(part), "'\(part)' missing in: \(text)", file: file, line: line)
            }
        }
        // Nothing changed but the refusal in the trace.
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 9000, file: file, line: line)
        XCTAssertEqual(allocator.recorder.events.count, eventsBefore + 1, file: file, line: line)
        XCTAssertEqual(allocator.recorder.events.last?.kind, .outOfMemory, file: file, line: line)
        XCTAssertEqual(allocator.recorder.lifetimeEvents().count, eventsBefore, file: file, line: line)

        // Exactly up to the limit still fits, and so does anything after a free.
        let exact = try allocator.allocate(bytes: 1000, role: .workspace, layerPath: "conv2", name: "tmp",
                                           timestep: 1, phase: .forward(timestep: 1))
        exact.pointer.storeBytes(of: 7, as: UInt8.self)
        try allocator.free(exact)
        try allocator.free(spikes)
        let big = try allocator.allocate(bytes: 4000, role: .activation, layerPath: "conv2/lif", name: "spikes",
                                         timestep: 1, phase: .forward(timestep: 1))
        XCTAssertEqual(allocator.recorder.requested.liveBytes, 10_000, file: file, line: line)
        try allocator.free(big)
        try allocator.free(weights)

        // The trace up to and after the refusal can be written out.
        let trace = allocator.recorder.trace(header: .init(toolVersion: "test", profile: "p",
                                                           profileSHA256: TraceFileTests.emptyFileSHA256, strategy: "s", batch: 1, timesteps: 2, allocatorName: allocator.name))
        let path = try TemporaryFolder.make().path + "/oom.json"
        try TraceFile.write(trace, to: path)
        XCTAssertEqual(try TraceFile.read(from: path).events.filter { $0.kind == .outOfMemory }.count, 1,
                       file: file, line: line)
    }
}
