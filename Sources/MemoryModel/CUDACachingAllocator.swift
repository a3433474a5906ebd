/// A replay model of PyTorch's CUDA caching allocator (`DeviceCachingAllocator` in
/// `c10/cuda/CUDACachingAllocator.cpp`) for one device and one stream, in its default
/// configuration. The planner predicts the bytes tensors need; this predicts what
/// `torch.cuda.max_memory_allocated` and `max_memory_reserved` would say for the same sequence
/// of allocations and frees, since the gap between the two (cached, fragmented segments) is what
/// makes a run that "fits" on paper go out of memory.
///
/// The rules, with the PyTorch names they come from (read in the source, not copied):
/// - Rounding (`round_size`, `kMinBlockSize`): a request of n > 0 bytes becomes a block of n
///   rounded up to 512 B (`roundup_power2_divisions` is off by default). A request of 0 bytes gets
///   no block at all (`NativeCachingAllocator::allocate` does not call `malloc` for size 0).
/// - Pools (`get_pool`, `kSmallSize`): rounded sizes up to and including 1 MiB go to the small pool,
///   larger ones to the large pool. A free block serves only requests of its own pool.
/// - Reuse first (`malloc`): a cached free block is looked for (`get_free_block`) before any new
///   segment is asked for (`alloc_block`, one `cudaMalloc`).
/// - Best fit (`get_free_block`, `BlockComparatorSize`): the free blocks of a pool are ordered by
///   (stream, size, address); the first at or after the request's size is taken, so the smallest
///   block that fits, the lowest address among equals.
/// - Oversize blocks (`get_free_block`, `should_split`, `max_split_size`): with a max split size set,
///   a block of at least that size is not given to a smaller request, is given to a request of at
///   least that size only when it is less than 20 MiB larger (`kLargeBuffer`; in newer versions
///   `max_non_split_rounding_size`, whose default is `kLargeBuffer`), and is never split. The
///   default is unlimited (`std::numeric_limits<size_t>::max()`), which turns all three off.
/// - New segments (`get_allocation_size`): 2 MiB (`kSmallBuffer`) for the small pool; 20 MiB
///   (`kLargeBuffer`) for large requests under 10 MiB (`kMinLargeAlloc`, strictly under: a request
///   of exactly 10 MiB gets 10 MiB); larger ones rounded up to 2 MiB (`kRoundLarge`).
/// - Splitting (`should_split`, `alloc_found_block`): a small-pool block is split when the rest is
///   at least 512 B; a large-pool block only when the rest is more than 1 MiB (`kSmallSize`), so a
///   rest of exactly 1 MiB stays inside the block handed out. With expandable segments every block
///   is split when the rest is at least 512 B, in both pools.
/// - Freeing (`free_block`, `try_merge_blocks`): a freed block merges with its free neighbours in
///   the same segment, before and after. Segments are never given back: `cudaFree` happens only in
///   `release_cached_blocks` / `release_available_cached_blocks` (`empty_cache`, or the retry after a
///   failed `cudaMalloc`), which this model never reaches, since it has no device capacity.
/// - Expandable segments (`expandable_segments:True`; `find_expandable_block`,
///   `try_allocate_expandable_block`, `map_block`, `ExpandableSegment`): one segment per pool whose
///   address space is reserved once and backed by physical pages on demand, 2 MiB pages for the
///   small pool and 20 MiB pages for the large pool. When no free block fits, pages are mapped at
///   the end of the segment for the request itself (`p.size()`, not `get_allocation_size`), merging
///   with a free block at the end if there is one. Best fit treats that last free block as
///   unbounded (its size plus the unmapped space after it), so any other fitting block is taken
///   before it. Pages are unmapped only by `empty_cache` / an out-of-memory retry, so reserved
///   never shrinks here.
/// - Counters (`alloc_found_block`, `free`, `alloc_block`, `map_block`): allocated bytes are the sizes
///   of the blocks in use, a block not split counting whole, rest included (`stats.allocated_bytes`,
///   `memory_allocated`); reserved bytes are the sizes of the segments, or the mapped pages of
///   expandable ones (`stats.reserved_bytes`, `memory_reserved`); peaks are the highest of each.
///
/// Approximated or left out: one stream (no `record_stream` events delaying reuse), no CUDA graph
/// pools, no garbage-collection threshold or memory fraction, no device capacity (hence no
/// out-of-memory retries that release cached segments), no `roundup_power2_divisions`. Addresses
/// are this model's own: segments laid out in creation order, so among free blocks of equal size
/// the older segment wins, as it usually does when `cudaMalloc` hands out rising addresses.
public struct CUDACachingAllocator: Sendable {
    public enum Pool: String, Codable, Sendable, CaseIterable {
        /// Blocks of at most 1 MiB (`small_blocks`).
        case small
        /// Blocks of more than 1 MiB (`large_blocks`).
        case large
    }

    public struct Options: Hashable, Codable, Sendable {
        /// `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True`.
        public var expandableSegments: Bool
        /// `max_split_size_mb` in bytes; nil is PyTorch's default, unlimited. PyTorch requires more
        /// than 20 MiB.
        public var maxSplitSizeBytes: Int?

        public init(expandableSegments: Bool = false, maxSplitSizeBytes: Int? = nil) {
            if let limit = maxSplitSizeBytes {
                precondition(limit > CUDACachingAllocator.largeSegmentBytes, "max_split_size must be more than 20 MiB, as PyTorch requires")
            }
            self.expandableSegments = expandableSegments
            self.maxSplitSizeBytes = maxSplitSizeBytes
        }
    }

    /// A block handed out by `allocate`; valid until it is freed.
    public struct BlockID: Hashable, Sendable {
        fileprivate let slot: Int
    }

    /// One `cudaMalloc` segment, or one expandable segment with the bytes mapped so far.
    public struct Segment: Hashable, Sendable {
        public var pool: Pool
        public var bytes: Int
        public var isExpandable: Bool

        public init(pool: Pool, bytes: Int, isExpandable: Bool) {
            self.pool = pool
            self.bytes = bytes
            self.isExpandable = isExpandable
        }
    }

    // PyTorch's constants, under names with units.
    /// `kMinBlockSize`: every block is a multiple of this.
    public static let minBlockBytes = 512
    /// `kSmallSize`: the largest small-pool block, and the rest a large block must exceed to be split.
    public static let smallSizeBytes = 1 << 20
    /// `kSmallBuffer`: a small-pool segment, and an expandable small-pool page.
    public static let smallSegmentBytes = 2 << 20
    /// `kLargeBuffer`: the segment for a large request under 10 MiB, and an expandable large-pool page.
    public static let largeSegmentBytes = 20 << 20
    /// `kMinLargeAlloc`: large requests from here on get a segment of their own size.
    public static let minLargeAllocBytes = 10 << 20
    /// `kRoundLarge`: such segments are rounded up to this.
    public static let largeRoundingBytes = 2 << 20

    /// `round_size`: the block size for a request of `requestedBytes` > 0.
    public static func roundedSize(_ requestedBytes: Int) -> Int {
        precondition(requestedBytes > 0, "a request of 0 bytes gets no block")
        return (requestedBytes + minBlockBytes - 1) / minBlockBytes * minBlockBytes
    }

    /// `get_pool`: the pool for a rounded size.
    public static func pool(forRoundedSize size: Int) -> Pool {
        size <= smallSizeBytes ? .small : .large
    }

    /// `get_allocation_size`: the `cudaMalloc` size when no cached block fits a rounded size.
    public static func segmentSize(forRoundedSize size: Int) -> Int {
        if size <= smallSizeBytes { return smallSegmentBytes }
        if size < minLargeAllocBytes { return largeSegmentBytes }
        return roundUp(size, to: largeRoundingBytes)
    }

    /// The page size of an expandable segment of `pool` (`find_expandable_block`).
    public static func expandablePageSize(_ pool: Pool) -> Int {
        pool == .small ? smallSegmentBytes : largeSegmentBytes
    }

    public let options: Options
    /// Sizes of the blocks in use (`memory_allocated`).
    public private(set) var allocatedBytes = 0
    /// Sizes of the segments, or mapped pages (`memory_reserved`).
    public private(set) var reservedBytes = 0
    /// Bytes asked for by the blocks in use, before rounding (`stats.requested_bytes`).
    public private(set) var requestedBytes = 0
    /// `max_memory_allocated`.
    public private(set) var peakAllocatedBytes = 0
    /// `max_memory_reserved`.
    public private(set) var peakReservedBytes = 0
    /// Device allocations: one per `cudaMalloc`, and one per page mapping of an expandable segment
    /// (`stats.num_device_alloc`).
    public private(set) var deviceAllocationCount = 0
    /// Blocks in use.
    public private(set) var allocatedBlockCount = 0

    /// Segments in the order they were created.
    public var segments: [Segment] {
        segmentStates.map { Segment(pool: $0.pool, bytes: $0.bytes, isExpandable: $0.isExpandable) }
    }

    /// Segments created: `cudaMalloc` calls, or expandable segments (at most one per pool here).
    public var segmentCount: Int { segmentStates.count }

    public init(options: Options = .init()) {
        self.options = options
    }

    /// `malloc`: hands out a block for `requestedBytes`; nil for 0 bytes, which PyTorch serves
    /// with a null pointer and no block.
    public mutating func allocate(_ requestedBytes: Int) -> BlockID? {
        precondition(requestedBytes >= 0, "negative request")
        guard requestedBytes > 0 else { return nil }
        let size = Self.roundedSize(requestedBytes)
        let pool = Self.pool(forRoundedSize: size)
        let slot: Int
        if let cached = takeFreeBlock(size: size, pool: pool) {
            slot = cached
        } else if options.expandableSegments {
            slot = growExpandableSegment(size: size, pool: pool)
        } else {
            slot = newSegment(size: size, pool: pool)
        }
        if Self.shouldSplit(blocks[slot], size: size, options: options) { split(slot, keeping: size) }
        blocks[slot].allocated = true
        blocks[slot].requestedBytes = requestedBytes
        allocatedBytes += blocks[slot].size
        self.requestedBytes += requestedBytes
        allocatedBlockCount += 1
        peakAllocatedBytes = max(peakAllocatedBytes, allocatedBytes)
        return BlockID(slot: slot)
    }

    /// `free` and `free_block`: the block goes back to its pool, merged with free neighbours.
    public mutating func free(_ block: BlockID) {
        let slot = block.slot
        precondition(slot < blocks.count && blocks[slot].allocated, "block freed twice or never handed out")
        allocatedBytes -= blocks[slot].size
        requestedBytes -= blocks[slot].requestedBytes
        allocatedBlockCount -= 1
        blocks[slot].allocated = false
        blocks[slot].requestedBytes = 0
        mergeWithFreeNeighbours(slot)
        insertIntoFreeSet(slot)
    }

    /// The size of a block in use (what it adds to `allocatedBytes`).
    public func blockBytes(_ block: BlockID) -> Int {
        precondition(blocks[block.slot].allocated, "not a block in use")
        return blocks[block.slot].size
    }

    public func pool(of block: BlockID) -> Pool {
        blocks[block.slot].pool
    }

    /// The index in `segments` of the segment a block lies in.
    public func segmentIndex(of block: BlockID) -> Int {
        blocks[block.slot].segment
    }

    /// The sizes of the cached free blocks of a pool, smallest first.
    public func freeBlockSizes(in pool: Pool) -> [Int] {
        (pool == .small ? smallFree : largeFree).entries.map(\.size)
    }

    // MARK: - Storage

    /// A block: a range of one segment, in use or free, linked to its neighbours in the segment.
    private struct Block: Sendable {
        var address: Int
        var size: Int
        var requestedBytes = 0
        var previous: Int  // slot, or -1 at the start of the segment
        var next: Int  // slot, or -1 at the end of the segment
        var segment: Int
        var pool: Pool
        var allocated = false
    }

    private struct SegmentState: Sendable {
        var pool: Pool
        var bytes: Int
        var isExpandable: Bool
        var baseAddress: Int
        /// The block at the end of the mapped range of an expandable segment, -1 while none.
        var lastBlock: Int
    }

    /// Free blocks of one pool, sorted by (size, address) as `BlockComparatorSize` orders them
    /// (one stream, so the stream is left out). A sorted array: free blocks stay few because they
    /// coalesce, so binary search plus a short memmove beats a tree here.
    private struct FreeBlockSet: Sendable {
        struct Entry: Sendable {
            var size: Int
            var address: Int
            var slot: Int
            /// (size, address) < (otherSize, otherAddress), computed without branches.
            func precedes(size otherSize: Int, address otherAddress: Int) -> Bool {
                let smaller = size < otherSize ? 1 : 0
                let equal = size == otherSize ? 1 : 0
                let lower = address < otherAddress ? 1 : 0
                return smaller | (equal & lower) != 0
            }
        }

        var entries: [Entry] = []

        /// The first entry not before (size, address): `std::set::lower_bound`. Halves the range
        /// without branching on the comparison (it is unpredictable), which is most of a replay's time.
        func lowerBound(size: Int, address: Int = Int.min) -> Int {
            entries.withUnsafeBufferPointer { buffer in
                guard !buffer.isEmpty else { return 0 }
                var base = 0
                var length = buffer.count
                while length > 1 {
                    let half = length &>> 1
                    base = buffer[base &+ half].precedes(size: size, address: address) ? base &+ half : base
                    length &-= half
                }
                return buffer[base].precedes(size: size, address: address) ? base &+ 1 : base
            }
        }

        mutating func insert(_ entry: Entry) {
            entries.insert(entry, at: lowerBound(size: entry.size, address: entry.address))
        }

        /// `get_free_block`: removes and returns the slot of the best-fitting block for `size`, or nil.
        /// `lastMappedSlot` is the free block at the end of an expandable segment (-1 if none): it
        /// counts as its size plus the unmapped space after it, so the next larger block, if any,
        /// fits better.
        mutating func takeBestFit(size: Int, lastMappedSlot: Int, maxSplitSizeBytes: Int?) -> Int? {
            var index = lowerBound(size: size)
            guard index < entries.count else { return nil }
            if entries[index].slot == lastMappedSlot && index + 1 < entries.count { index += 1 }
            let candidate = entries[index]
            if let limit = maxSplitSizeBytes {
                // Not an oversize block for a smaller request; for a large one only within 20 MiB.
                if size < limit && candidate.size >= limit { return nil }
                if size >= limit && candidate.size >= size + CUDACachingAllocator.largeSegmentBytes { return nil }
            }
            entries.remove(at: index)
            return candidate.slot
        }

        mutating func remove(size: Int, address: Int) {
            let index = lowerBound(size: size, address: address)
            precondition(index < entries.count && entries[index].address == address, "free block missing from its pool")
            entries.remove(at: index)
        }
    }

    private var blocks: [Block] = []
    private var unusedSlots: [Int] = []
    private var smallFree = FreeBlockSet()
    private var largeFree = FreeBlockSet()
    private var segmentStates: [SegmentState] = []
    /// The expandable segment of each pool, once created.
    private var expandableSmall: Int?
    private var expandableLarge: Int?
    /// This model's address space: segments one after another in creation order.
    private var nextAddress = 0

    /// The address space an expandable segment reserves: PyTorch reserves 1 1/8 of the device's
    /// memory; any size above a device's memory does here, as no device capacity is modelled.
    private static let expandableAddressSpaceBytes = 1 << 46

    private static func roundUp(_ value: Int, to multiple: Int) -> Int {
        (value + multiple - 1) / multiple * multiple
    }

    private mutating func newSlot(_ block: Block) -> Int {
        if let slot = unusedSlots.popLast() {
            blocks[slot] = block
            return slot
        }
        blocks.append(block)
        return blocks.count - 1
    }

    // MARK: - Rules

    /// `get_free_block` in the pool's free set.
    private mutating func takeFreeBlock(size: Int, pool: Pool) -> Int? {
        var lastMapped = -1
        if let segment = pool == .small ? expandableSmall : expandableLarge { lastMapped = segmentStates[segment].lastBlock }
        switch pool {
        case .small: return smallFree.takeBestFit(size: size, lastMappedSlot: lastMapped, maxSplitSizeBytes: options.maxSplitSizeBytes)
        case .large: return largeFree.takeBestFit(size: size, lastMappedSlot: lastMapped, maxSplitSizeBytes: options.maxSplitSizeBytes)
        }
    }

    /// `alloc_block`: one `cudaMalloc` of `get_allocation_size`, one block covering it.
    private mutating func newSegment(size: Int, pool: Pool) -> Int {
        let bytes = Self.segmentSize(forRoundedSize: size)
        let segment = segmentStates.count
        segmentStates.append(SegmentState(pool: pool, bytes: bytes, isExpandable: false, baseAddress: nextAddress, lastBlock: -1))
        let slot = newSlot(Block(address: nextAddress, size: bytes, previous: -1, next: -1, segment: segment, pool: pool))
        nextAddress += bytes
        addReserved(bytes)
        return slot
    }

    /// `try_allocate_expandable_block`: maps pages at the end of the pool's expandable segment until
    /// the free block there holds `size`, and returns that block (taken out of the free set).
    private mutating func growExpandableSegment(size: Int, pool: Pool) -> Int {
        let segment = expandableSegment(pool)
        let page = Self.expandablePageSize(pool)
        let end = segmentStates[segment].baseAddress + segmentStates[segment].bytes
        let last = segmentStates[segment].lastBlock
        if last >= 0 && !blocks[last].allocated {
            // free -> unmapped: map what is missing, merged into the free block (`map_block`,
            // `try_merge_blocks`). It can already be large enough when a max split size refused it.
            removeFromFreeSet(last)
            let missing = size - blocks[last].size
            if missing > 0 {
                let mapped = Self.roundUp(missing, to: page)
                blocks[last].size += mapped
                segmentStates[segment].bytes += mapped
                addReserved(mapped)
            }
            return last
        }
        // allocated (or nothing) -> unmapped: map pages for the request at the end.
        let mapped = Self.roundUp(size, to: page)
        let slot = newSlot(Block(address: end, size: mapped, previous: last, next: -1, segment: segment, pool: pool))
        if last >= 0 { blocks[last].next = slot }
        segmentStates[segment].lastBlock = slot
        segmentStates[segment].bytes += mapped
        addReserved(mapped)
        return slot
    }

    /// `find_expandable_block`: the pool's expandable segment, created empty the first time.
    private mutating func expandableSegment(_ pool: Pool) -> Int {
        if let existing = pool == .small ? expandableSmall : expandableLarge { return existing }
        let segment = segmentStates.count
        segmentStates.append(SegmentState(pool: pool, bytes: 0, isExpandable: true, baseAddress: nextAddress, lastBlock: -1))
        nextAddress += Self.expandableAddressSpaceBytes
        if pool == .small { expandableSmall = segment } else { expandableLarge = segment }
        return segment
    }

    private mutating func addReserved(_ bytes: Int) {
        reservedBytes += bytes
        deviceAllocationCount += 1
        peakReservedBytes = max(peakReservedBytes, reservedBytes)
    }

    /// `should_split`. Static: a method reading `self` would copy the whole allocator each call.
    private static func shouldSplit(_ block: Block, size: Int, options: Options) -> Bool {
        let rest = block.size - size
        if block.pool == .small || options.expandableSegments { return rest >= minBlockBytes }
        if let limit = options.maxSplitSizeBytes, size >= limit { return false }
        return rest > smallSizeBytes
    }

    /// `alloc_found_block` with a split: the first `size` bytes are handed out, the rest stays a
    /// free block right after it.
    private mutating func split(_ slot: Int, keeping size: Int) {
        let block = blocks[slot]
        let rest = newSlot(Block(address: block.address + size, size: block.size - size, previous: slot, next: block.next,
                                 segment: block.segment, pool: block.pool))
        if block.next >= 0 { blocks[block.next].previous = rest }
        blocks[slot].next = rest
        blocks[slot].size = size
        if segmentStates[block.segment].lastBlock == slot { segmentStates[block.segment].lastBlock = rest }
        insertIntoFreeSet(rest)
    }

    /// `try_merge_blocks` with the block before and the block after, when they are free.
    private mutating func mergeWithFreeNeighbours(_ slot: Int) {
        let previous = blocks[slot].previous
        if previous >= 0 && !blocks[previous].allocated {
            removeFromFreeSet(previous)
            blocks[slot].address = blocks[previous].address
            blocks[slot].size += blocks[previous].size
            blocks[slot].previous = blocks[previous].previous
            if blocks[slot].previous >= 0 { blocks[blocks[slot].previous].next = slot }
            unusedSlots.append(previous)
        }
        let next = blocks[slot].next
        if next >= 0 && !blocks[next].allocated {
            removeFromFreeSet(next)
            blocks[slot].size += blocks[next].size
            blocks[slot].next = blocks[next].next
            if blocks[slot].next >= 0 { blocks[blocks[slot].next].previous = slot }
            let segment = blocks[slot].segment
            if segmentStates[segment].lastBlock == next { segmentStates[segment].lastBlock = slot }
            unusedSlots.append(next)
        }
    }

    private mutating func insertIntoFreeSet(_ slot: Int) {
        let entry = FreeBlockSet.Entry(size: blocks[slot].size, address: blocks[slot].address, slot: slot)
        if blocks[slot].pool == .small { smallFree.insert(entry) } else { largeFree.insert(entry) }
    }

    private mutating func removeFromFreeSet(_ slot: Int) {
        if blocks[slot].pool == .small { smallFree.remove(size: blocks[slot].size, address: blocks[slot].address) }
        else { largeFree.remove(size: blocks[slot].size, address: blocks[slot].address) }
    }
}
