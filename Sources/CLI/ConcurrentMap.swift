import Dispatch

extension Array {
    /// `map` with the elements spread over the machine's processors, for independent pieces of
    /// pure work (planning one profile, runtime and strategy). The results keep the elements'
    /// order, and an error is the one the first failing element throws, as a plain `map` would
    /// throw it; every element is still worked on.
    func concurrentMap<Result>(_ transform: (Element) throws -> Result) throws -> [Result] {
        guard count > 1 else { return try map(transform) }
        var outcomes = [Swift.Result<Result, Error>?](repeating: nil, count: count)
        outcomes.withUnsafeMutableBufferPointer { slots in
            // Each iteration writes its own slot only.
            DispatchQueue.concurrentPerform(iterations: count) { index in
                slots[index] = Swift.Result { try transform(self[index]) }
            }
        }
        return try outcomes.map { try $0!.get() }
    }
}

/// Work started on another thread now, its outcome read later (`value()` waits for it).
final class BackgroundWork<Value>: @unchecked Sendable {
    // Written once by the work, read after `group.wait()`: the group orders the two.
    private var outcome: Result<Value, Error>?
    private let group = DispatchGroup()

    init(_ work: @escaping () throws -> Value) {
        DispatchQueue.global().async(group: group) { self.outcome = Result { try work() } }
    }

    func value() throws -> Value {
        group.wait()
        return try outcome!.get()
    }
}
