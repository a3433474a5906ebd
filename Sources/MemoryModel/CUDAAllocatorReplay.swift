/// Replays a lifetime trace through `CUDACachingAllocator`: what PyTorch's allocator would report
/// for it (`max_memory_allocated`, `max_memory_reserved`) and when, beside the tensor bytes that
/// `PeakSweep` finds. Each `.allocate` takes a block for its tensor, each `.free` gives back the
/// block of the same tensorID, in trace order.
public struct CUDAAllocatorReplay: Sendable {
    public struct Result: Sendable, Codable, Equatable {
        /// Highest `memory_allocated` (block sizes in use, a block not split counting whole).
        public var peakAllocatedBytes: Int
        /// Index of the event at which it was first reached; nil when no event of the trace
        /// reached it (an empty trace, or the peak was already held by `liveAtStart`).
        public var peakAllocatedEventIndex: Int?
        /// Highest `memory_reserved` (segments, or mapped pages of expandable segments).
        public var peakReservedBytes: Int
        /// Index of the event at which it was first reached, as for allocated.
        public var peakReservedEventIndex: Int?
        /// Segments created (`cudaMalloc` calls, or expandable segments), `liveAtStart` included.
        public var segmentCount: Int
        /// `cudaMalloc` calls plus page mappings of expandable segments (`num_device_alloc`).
        public var deviceAllocationCount: Int
        public var finalAllocatedBytes: Int
        public var finalReservedBytes: Int
        /// Peak reserved over peak allocated: how much more the device must hold than the
        /// allocator hands out (1 is no overhead); 0 for a trace that allocates nothing.
        public var reservedOverAllocated: Double
        /// Events skipped as malformed: a tensor allocated while live, a free of a tensor not live.
        /// (Tensors still live at the end are not problems here: `PeakSweep` reports leaks.)
        public var problems: [PeakSweep.Problem]
    }

    public var options: CUDACachingAllocator.Options

    public init(options: CUDACachingAllocator.Options = .init()) { self.options = options }

    /// Replays `events` in order. `liveAtStart` are allocations made before the trace (tensors a
    /// previous step left live), applied in order; their events are not counted in event indices.
    public func run(_ events: [LifetimeEvent], liveAtStart: [LifetimeEvent] = []) -> Result {
        var allocator = CUDACachingAllocator(options: options)
        var live = LiveBlocks(denseIDs: events.count + liveAtStart.count)
        for event in liveAtStart where event.kind == .allocate && !live.isLive(event.tensorID) {
            live.insert(event.tensorID, allocator.allocate(event.bytes))
        }
        var peakAllocatedIndex: Int?
        var peakReservedIndex: Int?
        var problems: [PeakSweep.Problem] = []

        for (index, event) in events.enumerated() {
            switch event.kind {
            case .allocate:
                if live.isLive(event.tensorID) {
                    problems.append(.init(kind: .doubleAllocate, tensorID: event.tensorID, eventIndex: index))
                    continue
                }
                let allocatedPeakBefore = allocator.peakAllocatedBytes
                let reservedPeakBefore = allocator.peakReservedBytes
                live.insert(event.tensorID, allocator.allocate(event.bytes))
                // Ties keep the first moment, as in PeakSweep; a zero-byte allocation moves nothing.
                if allocator.peakAllocatedBytes > allocatedPeakBefore { peakAllocatedIndex = index }
                if allocator.peakReservedBytes > reservedPeakBefore { peakReservedIndex = index }
            case .free:
                switch live.remove(event.tensorID) {
                case .notLive: problems.append(.init(kind: .freeOfUnknown, tensorID: event.tensorID, eventIndex: index))
                case .noBlock: break
                case .block(let block): allocator.free(block)
                }
            }
        }
        let ratio = allocator.peakAllocatedBytes == 0 ? 0 : Double(allocator.peakReservedBytes) / Double(allocator.peakAllocatedBytes)
        return Result(
            peakAllocatedBytes: allocator.peakAllocatedBytes, peakAllocatedEventIndex: peakAllocatedIndex,
            peakReservedBytes: allocator.peakReservedBytes, peakReservedEventIndex: peakReservedIndex,
            segmentCount: allocator.segmentCount, deviceAllocationCount: allocator.deviceAllocationCount,
            finalAllocatedBytes: allocator.allocatedBytes, finalReservedBytes: allocator.reservedBytes,
            reservedOverAllocated: ratio, problems: problems)
    }

    /// tensorID -> its block. Planned traces number tensors 0, 1, 2, ... so those live in an array
    /// (a dictionary lookup per event was a fifth of a replay); other IDs in a dictionary.
    private struct LiveBlocks {
        enum Entry { case notLive, noBlock, block(CUDACachingAllocator.BlockID) }

        private var dense: [Entry]
        private var sparse: [Int: Entry] = [:]

        init(denseIDs: Int) { dense = Array(repeating: .notLive, count: denseIDs) }

        func isLive(_ id: Int) -> Bool {
            if id >= 0 && id < dense.count {
                if case .notLive = dense[id] { return false }
                return true
            }
            return sparse[id] != nil
        }

        /// A block, or nil for a zero-byte tensor: live, but holding no block.
        mutating func insert(_ id: Int, _ block: CUDACachingAllocator.BlockID?) {
            let entry: Entry = block.map { .block($0) } ?? .noBlock
            if id >= 0 && id < dense.count { dense[id] = entry } else { sparse[id] = entry }
        }

        mutating func remove(_ id: Int) -> Entry {
            if id >= 0 && id < dense.count {
                let entry = dense[id]
                dense[id] = .notLive
                return entry
            }
            return sparse.removeValue(forKey: id) ?? .notLive
        }
    }
}
