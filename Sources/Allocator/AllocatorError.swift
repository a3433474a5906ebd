import MemoryModel

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything the allocator, its jemalloc reader and the trace files can fail with. Each case
/// carries what a person needs to find the cause: the tensor, the file, the mallctl name.
public enum AllocatorError: Error, CustomStringConvertible, Equatable {
    /// The memory budget would be exceeded; nothing was allocated and the allocator is still usable.
    case outOfMemory(OutOfMemory)
    /// The system allocator itself returned no memory.
    case systemOutOfMemory(requestedBytes: Int, layerPath: String, role: TensorRole)
    /// A buffer was freed that is not live (freed before, or from another allocator). Ignored.
    case doubleFree(AllocationProblem)
    /// A `mallctl` call failed; `code` is the errno value it returned.
    case mallctlFailed(name: String, code: Int32)
    case traceFileMissing(path: String)
    case traceWrongFormatVersion(path: String, foundVersion: Int, supportedVersion: Int)
    case traceCorrupt(path: String, detail: String)
    /// The file decodes, but a field holds what no recording writes (see `MemoryTrace.firstProblem`).
    case traceInvalid(path: String, problem: TraceFieldProblem)
    case traceWriteFailed(path: String, detail: String)

    public var description: String {
        switch self {
        case .outOfMemory(let report):
            return "out of memory budget: " + report.description
        case .systemOutOfMemory(let bytes, let layerPath, let role):
            return "the system allocator returned no memory for \(ByteCount.format(bytes)) (\(role.label)) in \(layerPath)"
        case .doubleFree(let problem):
            return problem.description
        case .mallctlFailed(let name, let code):
            return "jemalloc mallctl(\"\(name)\") failed with errno \(code) (\(Self.errnoText(code))); "
                + "check that jemalloc 5.3 built with --enable-stats is the process allocator"
        case .traceFileMissing(let path):
            return "\(path): no such memory trace; check the path, or run the measurement again to write it"
        case .traceWrongFormatVersion(let path, let found, let supported):
            return "\(path): memory trace format version \(found), but this snnmem reads version \(supported); "
                + "re-record the trace with this snnmem, or read it with the snnmem that wrote it"
        case .traceCorrupt(let path, let detail):
            return "\(path): not a complete memory trace (\(detail)); the file may be truncated or damaged, "
                + "run the measurement again to write it"
        case .traceInvalid(let path, let problem):
            return "\(path): \(problem.field) \(problem.reason); the trace is damaged or was edited, "
                + "run the measurement again to write it"
        case .traceWriteFailed(let path, let detail):
            return "\(path): could not write the memory trace (\(detail)); check the folder exists and is writable"
        }
    }

    static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "unknown error" }
        return String(cString: text)
    }
}
