import Allocator
import MemoryModel

/// Reference-counted tensors over a `TensorAllocator`: the engine's side of the planner's
/// `TraceBuilder` bookkeeping. Every buffer is allocated through the allocator with its layer,
/// name, timestep, role and phase, and freed when its last holder releases it.
final class TensorHeap<T: EngineScalar> {
    private struct Slot {
        var buffer: TensorBuffer
        var shape: TensorShape
        var refcount: Int
    }

    let allocator: TensorAllocator
    private var slots: [Int: Slot] = [:]
    private(set) var phase: TrainingPhase = .setup

    init(allocator: TensorAllocator) {
        self.allocator = allocator
    }

    func begin(_ phase: TrainingPhase) throws {
        guard phase != self.phase else { return }
        self.phase = phase
        try allocator.beginPhase(phase)
    }

    /// Allocates `shape` elements of `T` (or of Int32 when `indices`), zero-filled when asked.
    func allocate(_ path: String, _ name: String, timestep: Int?, role: TensorRole, shape: TensorShape,
                  indices: Bool = false, zeroed: Bool = false) throws -> Int {
        let width = indices ? MemoryLayout<Int32>.stride : MemoryLayout<T>.stride
        let bytes = shape.elementCount * width
        let buffer = try allocator.allocate(bytes: bytes, role: role, layerPath: path, name: name, timestep: timestep, phase: phase)
        if zeroed { buffer.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        slots[buffer.id] = Slot(buffer: buffer, shape: shape, refcount: 1)
        return buffer.id
    }

    func retain(_ id: Int) {
        precondition(slots[id] != nil, "retain of a freed tensor")
        slots[id]!.refcount += 1
    }

    func release(_ id: Int) throws {
        guard var slot = slots[id] else { preconditionFailure("release of a freed tensor") }
        slot.refcount -= 1
        if slot.refcount == 0 {
            slots[id] = nil
            try allocator.free(slot.buffer)
        } else {
            slots[id] = slot
        }
    }

    func refcount(_ id: Int) -> Int { slots[id]?.refcount ?? 0 }

    func values(_ id: Int) -> UnsafeMutablePointer<T> {
        slots[id]!.buffer.pointer.assumingMemoryBound(to: T.self)
    }

    func indices(_ id: Int) -> UnsafeMutablePointer<Int32> {
        slots[id]!.buffer.pointer.assumingMemoryBound(to: Int32.self)
    }

    func shape(_ id: Int) -> TensorShape { slots[id]!.shape }

    func buffer(_ id: Int) -> TensorBuffer { slots[id]!.buffer }

    var liveCount: Int { slots.count }

    /// a itself when nothing else holds it, else a copy (a is released): the planner's rule.
    func makeWritable(_ a: Int, name: String? = nil) throws -> Int {
        guard refcount(a) > 1 else { return a }
        let source = buffer(a)
        let copy = try allocate(source.layerPath, name ?? source.name, timestep: source.timestep, role: source.role, shape: shape(a))
        values(copy).update(from: values(a), count: shape(a).elementCount)
        try release(a)
        return copy
    }

    /// a += sign * b in a's storage (or a copy of a); b is released.
    func combine(into a: Int, _ b: Int, sign: T = 1, name: String? = nil) throws -> Int {
        let result = try makeWritable(a, name: name)
        let count = shape(result).elementCount
        precondition(shape(b).elementCount == count, "combine of \(shape(result)) and \(shape(b))")
        axpy(count: count, alpha: sign, x: values(b), y: values(result))
        try release(b)
        return result
    }
}
