import CJemalloc

/// A mallctl name translated once to its numeric form: reading by MIB skips the name lookup and
/// passes no Swift string to C, which would allocate in debug builds and disturb the counters.
struct MallctlMIB {
    let name: String
    private let components: [Int]

    init(_ name: String) throws {
        var components = [Int](repeating: 0, count: 8)
        var count = components.count
        let code = mallctlnametomib(name, &components, &count)
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: name, code: code) }
        self.name = name
        self.components = Array(components[..<count])
    }

    /// Reads a value of type T (the exact type the manual gives for the name).
    func read<T: BitwiseCopyable>(_ initial: T) throws -> T {
        var value = initial
        var size = MemoryLayout<T>.size
        let code = components.withUnsafeBufferPointer { mib in
            mallctlbymib(mib.baseAddress, mib.count, &value, &size, nil, 0)
        }
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: name, code: code) }
        return value
    }

    /// Writes `value` and returns the previous one.
    func write<T: BitwiseCopyable>(_ value: T) throws -> T {
        var newValue = value
        var oldValue = value
        var size = MemoryLayout<T>.size
        let code = components.withUnsafeBufferPointer { mib in
            mallctlbymib(mib.baseAddress, mib.count, &oldValue, &size, &newValue, MemoryLayout<T>.size)
        }
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: name, code: code) }
        return oldValue
    }

    /// Runs a control that takes and returns nothing (`thread.peak.reset`, `thread.tcache.flush`).
    func trigger() throws {
        let code = components.withUnsafeBufferPointer { mib in
            mallctlbymib(mib.baseAddress, mib.count, nil, nil, nil, 0)
        }
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: name, code: code) }
    }
}
