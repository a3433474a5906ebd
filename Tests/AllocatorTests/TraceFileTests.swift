import Allocator
import Foundation
import MemoryModel
import XCTest

final class TraceFileTests: XCTestCase {
    /// `sha256sum` of an empty file: a well-formed digest for traces not measured on a profile file.
    static let emptyFileSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    private func sampleTrace() throws -> MemoryTrace {
        let allocator = try JemallocAllocator()
        try allocator.beginPhase(.setup)
        let weights = try allocator.allocate(bytes: 5000, role: .parameter, layerPath: "fc", name: "weight",
                                             timestep: nil, phase: .setup)
        try allocator.beginPhase(.forward(timestep: 0))
        let spikes = try allocator.allocate(bytes: 300, role: .activation, layerPath: "fc/lif", name: "spikes",
                                            timestep: 0, phase: .forward(timestep: 0))
        try allocator.beginPhase(.backward(timestep: 0))
        try allocator.free(spikes)
        XCTAssertThrowsError(try allocator.free(spikes))
        try allocator.beginPhase(.optimizerStep)
        try allocator.free(weights)
        allocator.recorder.endStep()
        return allocator.recorder.trace(header: .init(toolVersion: "snnmem test", profile: "tiny-mlp",
                                                      profileSHA256: Self.emptyFileSHA256, strategy: "bptt", batch: 8, timesteps: 1,
                                                      allocatorName: allocator.name))
    }

    func testWrittenTraceReadsBackEqual() throws {
        let trace = try sampleTrace()
        XCTAssertEqual(trace.events.count, 4)
        XCTAssertEqual(trace.samples.count, 4)
        XCTAssertEqual(trace.problems.map(\.kind), [.doubleFree])
        let folder = try TemporaryFolder.make()
        let path = folder.path + "/trace.json"
        try TraceFile.write(trace, to: path)
        XCTAssertEqual(try TraceFile.read(from: path), trace)
        // Overwriting goes through a temporary file too, and leaves nothing else behind.
        try TraceFile.write(trace, to: path)
        XCTAssertEqual(try folder.contents(), ["trace.json"])
    }

    func testWrongFormatVersionIsAClearError() throws {
        var trace = try sampleTrace()
        trace.header.formatVersion = MemoryTrace.currentFormatVersion + 1
        let path = try TemporaryFolder.make().path + "/future.json"
        try TraceFile.write(trace, to: path)
        XCTAssertThrowsError(try TraceFile.read(from: path)) { error in
            XCTAssertEqual(error as? AllocatorError, .traceWrongFormatVersion(
                path: path, foundVersion: MemoryTrace.currentFormatVersion + 1,
                supportedVersion: MemoryTrace.currentFormatVersion))
            XCTAssertTrue("\(error)".contains(path), "\(error)")
            XCTAssertTrue("\(error)".contains("re-record"), "\(error)")
        }
    }

    /// A trace written before the header carried the profile's digest (format 1) cannot be
    /// checked against a profile file: it is refused, with the way out (measure again) named.
    func testFormatOneTraceWithoutProfileDigestIsRefused() throws {
        var trace = try sampleTrace()
        trace.header.formatVersion = 1
        let path = try TemporaryFolder.make().path + "/old.json"
        try TraceFile.write(trace, to: path)
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        var header = try XCTUnwrap(object["header"] as? [String: Any])
        header.removeValue(forKey: "profileSHA256")
        object["header"] = header
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TraceFile.read(from: path)) { error in
            XCTAssertEqual(error as? AllocatorError, .traceWrongFormatVersion(path: path, foundVersion: 1, supportedVersion: 2))
            XCTAssertTrue("\(error)".contains(path) && "\(error)".contains("re-record"), "\(error)")
        }
    }

    func testTruncatedFileIsAClearError() throws {
        let path = try TemporaryFolder.make().path + "/cut.json"
        try TraceFile.write(try sampleTrace(), to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        for length in [0, 10, data.count / 2, data.count - 1] {
            try data.prefix(length).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try TraceFile.read(from: path), "cut at \(length)") { error in
                guard case AllocatorError.traceCorrupt(let errorPath, _) = error else {
                    return XCTFail("expected a corrupt-trace error at \(length), got \(error)")
                }
                XCTAssertEqual(errorPath, path)
                XCTAssertTrue("\(error)".contains("truncated"), "\(error)")
            }
        }
    }

    func testValidJSONThatIsNotATraceIsCorrupt() throws {
        let path = try TemporaryFolder.make().path + "/other.json"
        try Data(#"{"header": {"formatVersion": \#(MemoryTrace.currentFormatVersion)}, "events": [{"tensorID": 1}]}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TraceFile.read(from: path)) { error in
            guard case AllocatorError.traceCorrupt(_, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("header.toolVersion"), detail)
        }
    }

    func testMissingFileIsAClearError() {
        let path = "/nonexistent-snnmem-folder/trace.json"
        XCTAssertThrowsError(try TraceFile.read(from: path)) { error in
            XCTAssertEqual(error as? AllocatorError, .traceFileMissing(path: path))
            XCTAssertTrue("\(error)".contains(path))
        }
    }

    func testWriteIntoMissingFolderFailsWithoutLeavingFiles() throws {
        let path = "/nonexistent-snnmem-folder/trace.json"
        XCTAssertThrowsError(try TraceFile.write(try sampleTrace(), to: path)) { error in
            guard case AllocatorError.traceWriteFailed(let errorPath, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(errorPath, path)
        }
    }
}
