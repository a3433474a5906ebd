import Foundation
import OutputFiles

/// Writing and reading `MemoryTrace` files (JSON). Writes go through `AtomicOutput`: a run
/// interrupted mid-write leaves the old file or the new one, never half of one.
public enum TraceFile {
    public static func write(_ trace: MemoryTrace, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(trace)
        } catch {
            throw AllocatorError.traceWriteFailed(path: path, detail: "encoding failed: \(error)")
        }
        try writeAtomically(data, to: path)
    }

    public static func read(from path: String) throws -> MemoryTrace {
        guard FileManager.default.fileExists(atPath: path) else { throw AllocatorError.traceFileMissing(path: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AllocatorError.traceCorrupt(path: path, detail: "unreadable: \(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        // The version first, on its own: a trace from another version may not decode as this one,
        // and "wrong version" says more than the decoding error would.
        let probe: VersionProbe
        do {
            probe = try decoder.decode(VersionProbe.self, from: data)
        } catch {
            throw AllocatorError.traceCorrupt(path: path, detail: describe(error, size: data.count))
        }
        guard probe.header.formatVersion == MemoryTrace.currentFormatVersion else {
            throw AllocatorError.traceWrongFormatVersion(
                path: path, foundVersion: probe.header.formatVersion, supportedVersion: MemoryTrace.currentFormatVersion)
        }
        let trace: MemoryTrace
        do {
            trace = try decoder.decode(MemoryTrace.self, from: data)
        } catch {
            throw AllocatorError.traceCorrupt(path: path, detail: describe(error, size: data.count))
        }
        if let problem = trace.firstProblem() { throw AllocatorError.traceInvalid(path: path, problem: problem) }
        return trace
    }

    private struct VersionProbe: Decodable {
        struct Header: Decodable { var formatVersion: Int }
        var header: Header
    }

    private static func describe(_ error: Error, size: Int) -> String {
        switch error {
        case DecodingError.dataCorrupted(let context):
            return "invalid JSON after \(size) bytes read: \(context.debugDescription)"
        case DecodingError.keyNotFound(let key, let context):
            return "missing field '\(path(context.codingPath + [key]))'"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "unexpected value at '\(path(context.codingPath))': \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    private static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }

    private static func writeAtomically(_ data: Data, to path: String) throws {
        do { try AtomicOutput.write(data, to: path) } catch let error as AtomicOutput.WriteError {
            throw AllocatorError.traceWriteFailed(path: path, detail: error.reason)
        }
    }
}
