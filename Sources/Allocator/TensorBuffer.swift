import MemoryModel

/// One live tensor buffer: the memory and what it was allocated as. Freeing it twice is
/// detected by `id` (ids are never reused), so a stale copy of a handle is harmless.
public struct TensorBuffer: Hashable {
    public let id: Int
    public let pointer: UnsafeMutableRawPointer
    public let requestedBytes: Int
    /// What the allocator really handed out (jemalloc's size class: `nallocx`).
    public let allocatedBytes: Int
    public let role: TensorRole
    public let layerPath: String
    public let name: String
    public let timestep: Int?
    /// Where the recorder keeps the live record; a slot is reused after a free, the id is not.
    let slot: Int

    init(id: Int, pointer: UnsafeMutableRawPointer, requestedBytes: Int, allocatedBytes: Int, role: TensorRole,
         layerPath: String, name: String, timestep: Int?, slot: Int) {
        self.id = id
        self.pointer = pointer
        self.requestedBytes = requestedBytes
        self.allocatedBytes = allocatedBytes
        self.role = role
        self.layerPath = layerPath
        self.name = name
        self.timestep = timestep
        self.slot = slot
    }
}
