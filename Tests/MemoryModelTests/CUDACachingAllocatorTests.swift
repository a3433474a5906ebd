import MemoryModel
import XCTest

/// One test per rule of `CUDACachingAllocator` (see the list at the top of its file); every byte
/// count is derived by hand in the comments.
final class CUDACachingAllocatorTests: XCTestCase {
    let KiB = 1 << 10
    let MiB = 1 << 20
    typealias Allocator = CUDACachingAllocator

    // MARK: - Rules

    func testRequestsRoundUpTo512Bytes() {
        XCTAssertEqual(Allocator.roundedSize(1), 512)
        XCTAssertEqual(Allocator.roundedSize(512), 512)
        XCTAssertEqual(Allocator.roundedSize(513), 1024)
        for bytes in [1, 100, 511, 512, 513, 1000, 4097, 1 << 20, (1 << 20) + 1] {
            XCTAssertEqual(Allocator.roundedSize(bytes), AllocatorRounding.cuda.roundedBytes(bytes), "\(bytes)")
        }
        var allocator = Allocator()
        let block = allocator.allocate(1000)!
        XCTAssertEqual(allocator.blockBytes(block), 1024)
        XCTAssertEqual(allocator.allocatedBytes, 1024)
        XCTAssertEqual(allocator.requestedBytes, 1000)
        XCTAssertEqual(allocator.reservedBytes, 2 * MiB)  // one small segment
    }

    func testZeroByteRequestsGetNoBlock() {
        var allocator = Allocator()
        XCTAssertNil(allocator.allocate(0))
        XCTAssertEqual(allocator.allocatedBytes, 0)
        XCTAssertEqual(allocator.reservedBytes, 0)
        XCTAssertEqual(allocator.segmentCount, 0)
        XCTAssertEqual(allocator.allocatedBlockCount, 0)
    }

    func testRequestsUpToOneMiBUseTheSmallPool() {
        XCTAssertEqual(Allocator.pool(forRoundedSize: MiB), .small)
        XCTAssertEqual(Allocator.pool(forRoundedSize: MiB + 512), .large)
        var allocator = Allocator()
        let small = allocator.allocate(MiB)!
        let large = allocator.allocate(MiB + 1)!  // rounds to 1 MiB + 512: large pool
        XCTAssertEqual(allocator.pool(of: small), .small)
        XCTAssertEqual(allocator.pool(of: large), .large)
        XCTAssertEqual(allocator.segments, [.init(pool: .small, bytes: 2 * MiB, isExpandable: false),
                                            .init(pool: .large, bytes: 20 * MiB, isExpandable: false)])
        // A free small block never serves a large request: the second large block comes from the
        // 20 MiB segment's rest (20 MiB - 1 MiB - 512), the free 2 MiB small block stays.
        allocator.free(small)
        _ = allocator.allocate(MiB + 1)!
        XCTAssertEqual(allocator.segmentCount, 2)
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [2 * MiB])
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [20 * MiB - 2 * (MiB + 512)])
    }

    func testSmallRequestsArePackedIntoTwoMiBSegments() {
        XCTAssertEqual(Allocator.segmentSize(forRoundedSize: 512), 2 * MiB)
        XCTAssertEqual(Allocator.segmentSize(forRoundedSize: MiB), 2 * MiB)
        var allocator = Allocator()
        // Four blocks of 512 KiB fill one 2 MiB segment (the fourth fits the last 512 KiB exactly).
        for _ in 0..<4 { _ = allocator.allocate(512 * KiB)! }
        XCTAssertEqual(allocator.segmentCount, 1)
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [])
        // The fifth needs a second segment, 1.5 MiB of which stays free.
        _ = allocator.allocate(512 * KiB)!
        XCTAssertEqual(allocator.segmentCount, 2)
        XCTAssertEqual(allocator.reservedBytes, 4 * MiB)
        XCTAssertEqual(allocator.allocatedBytes, 5 * 512 * KiB)
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [1536 * KiB])
    }

    func testLargeRequestsUnderTenMiBGetTwentyMiBSegments() {
        XCTAssertEqual(Allocator.segmentSize(forRoundedSize: MiB + 512), 20 * MiB)
        XCTAssertEqual(Allocator.segmentSize(forRoundedSize: 10 * MiB - 512), 20 * MiB)
        XCTAssertEqual(Allocator.segmentSize(forRoundedSize: 10 * MiB), 10 * MiB)  // kMinLargeAlloc is exclusive
        var allocator = Allocator()
        // 5 MiB from a 20 MiB segment, 15 MiB left; three more fill it, the last exactly.
        _ = allocator.allocate(5 * MiB)!
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [15 * MiB])
        for _ in 0..<3 { _ = allocator.allocate(5 * MiB)! }
        XCTAssertEqual(allocator.segments, [.init(pool: .large, bytes: 20 * MiB, isExpandable: false)])
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [])
        _ = allocator.allocate(5 * MiB)!
        XCTAssertEqual(allocator.segmentCount, 2)
        XCTAssertEqual(allocator.reservedBytes, 40 * MiB)

        var justUnder = Allocator()
        let block = justUnder.allocate(10 * MiB - 512)!
        XCTAssertEqual(justUnder.reservedBytes, 20 * MiB)
        XCTAssertEqual(justUnder.blockBytes(block), 10 * MiB - 512)  // rest 10 MiB + 512: split off
        var exactlyTen = Allocator()
        _ = exactlyTen.allocate(10 * MiB)!
        XCTAssertEqual(exactlyTen.reservedBytes, 10 * MiB)
    }

    func testLargerRequestsGetSegmentsRoundedUpToTwoMiB() {
        var allocator = Allocator()
        _ = allocator.allocate(100 * MiB)!  // already a multiple of 2 MiB
        XCTAssertEqual(allocator.reservedBytes, 100 * MiB)
        // 10 MiB + 1 rounds to 10 MiB + 512, its segment to 12 MiB; the rest, 2 MiB - 512, is more
        // than 1 MiB and is split off.
        let block = allocator.allocate(10 * MiB + 1)!
        XCTAssertEqual(allocator.segments.map(\.bytes), [100 * MiB, 12 * MiB])
        XCTAssertEqual(allocator.blockBytes(block), 10 * MiB + 512)
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [2 * MiB - 512])
    }

    func testBestFitTakesTheSmallestFreeBlockThatFits() {
        var allocator = Allocator()
        // Three whole segments of 30, 40 and 34 MiB, then all free.
        let blocks = [30, 40, 34].map { allocator.allocate($0 * MiB)! }
        blocks.forEach { allocator.free($0) }
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [30 * MiB, 34 * MiB, 40 * MiB])
        // 32 MiB: not the 30 (too small), not the 40 or the first created: the 34, split 32 + 2.
        let block = allocator.allocate(32 * MiB)!
        XCTAssertEqual(allocator.segmentIndex(of: block), 2)
        XCTAssertEqual(allocator.blockBytes(block), 32 * MiB)
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [2 * MiB, 30 * MiB, 40 * MiB])
        XCTAssertEqual(allocator.segmentCount, 3)
        XCTAssertEqual(allocator.reservedBytes, 104 * MiB)

        // Among equal sizes, the lower address: here the older segment.
        var ties = Allocator()
        let first = ties.allocate(30 * MiB)!
        let second = ties.allocate(30 * MiB)!
        ties.free(second)
        ties.free(first)
        XCTAssertEqual(ties.segmentIndex(of: ties.allocate(30 * MiB)!), 0)
    }

    func testOversizeBlocksFollowMaxSplitSize() {
        // Default (unlimited): a 30 MiB request reuses a free 100 MiB block, split 30 + 70.
        var unlimited = Allocator()
        unlimited.free(unlimited.allocate(100 * MiB)!)
        _ = unlimited.allocate(30 * MiB)!
        XCTAssertEqual(unlimited.segmentCount, 1)
        XCTAssertEqual(unlimited.freeBlockSizes(in: .large), [70 * MiB])

        var limited = Allocator(options: .init(maxSplitSizeBytes: 40 * MiB))
        limited.free(limited.allocate(100 * MiB)!)
        // 30 MiB < 40 MiB: the oversize 100 MiB block is not used; a 30 MiB segment is made.
        _ = limited.allocate(30 * MiB)!
        XCTAssertEqual(limited.segmentCount, 2)
        // 60 MiB >= 40 MiB, but 100 >= 60 + 20: still not used.
        _ = limited.allocate(60 * MiB)!
        XCTAssertEqual(limited.segmentCount, 3)
        // 90 MiB: 100 < 90 + 20, used, and not split (90 >= max split size): all 100 MiB count.
        let block = limited.allocate(90 * MiB)!
        XCTAssertEqual(limited.segmentCount, 3)
        XCTAssertEqual(limited.blockBytes(block), 100 * MiB)
        XCTAssertEqual(limited.allocatedBytes, 190 * MiB)
    }

    func testSmallBlocksSplitWhenTheRestIsAtLeast512Bytes() {
        var allocator = Allocator()
        _ = allocator.allocate(MiB)!  // 2 MiB segment: 1 MiB handed out, 1 MiB free
        let second = allocator.allocate(MiB - 512)!
        // The rest, 512 B, is split off: 2 MiB - 512 allocated, one 512 B block free.
        XCTAssertEqual(allocator.blockBytes(second), MiB - 512)
        XCTAssertEqual(allocator.allocatedBytes, 2 * MiB - 512)
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [512])
        _ = allocator.allocate(300)!  // rounds to 512: the exact fit, no new segment
        XCTAssertEqual(allocator.segmentCount, 1)
        XCTAssertEqual(allocator.allocatedBytes, 2 * MiB)
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [])
    }

    func testLargeBlocksSplitOnlyWhenTheRestExceedsOneMiB() {
        // 11 MiB gets a 12 MiB segment; the rest is exactly 1 MiB: not split, the whole 12 MiB
        // counts as allocated.
        var exact = Allocator()
        let whole = exact.allocate(11 * MiB)!
        XCTAssertEqual(exact.blockBytes(whole), 12 * MiB)
        XCTAssertEqual(exact.allocatedBytes, 12 * MiB)
        XCTAssertEqual(exact.requestedBytes, 11 * MiB)
        XCTAssertEqual(exact.freeBlockSizes(in: .large), [])
        // 11 MiB - 512: the rest is 1 MiB + 512, split off, and then fits 1 MiB + 1 exactly.
        var over = Allocator()
        let split = over.allocate(11 * MiB - 512)!
        XCTAssertEqual(over.blockBytes(split), 11 * MiB - 512)
        XCTAssertEqual(over.freeBlockSizes(in: .large), [MiB + 512])
        _ = over.allocate(MiB + 1)!
        XCTAssertEqual(over.segmentCount, 1)
        XCTAssertEqual(over.allocatedBytes, 12 * MiB)
    }

    func testFreedBlocksMergeWithBothFreeNeighbours() {
        var allocator = Allocator()
        let quarters = (0..<4).map { _ in allocator.allocate(512 * KiB)! }  // one 2 MiB segment, full
        allocator.free(quarters[0])
        allocator.free(quarters[2])
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [512 * KiB, 512 * KiB])
        allocator.free(quarters[1])  // merges with the block before and the block after
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [1536 * KiB])
        allocator.free(quarters[3])
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [2 * MiB])

        // Blocks of different segments never merge, even where this model's addresses touch.
        var two = Allocator()
        let blocks = (0..<4).map { _ in two.allocate(MiB)! }  // two full 2 MiB segments
        blocks.forEach { two.free($0) }
        XCTAssertEqual(two.freeBlockSizes(in: .small), [2 * MiB, 2 * MiB])
    }

    func testSegmentsAreNeverReturned() {
        var allocator = Allocator()
        // 5 MiB -> 20 MiB segment, 600 KiB -> 2 MiB, 50 MiB -> 50 MiB: 72 MiB reserved.
        var blocks = [5 * MiB, 600 * KiB, 50 * MiB].map { allocator.allocate($0)! }
        XCTAssertEqual(allocator.reservedBytes, 72 * MiB)
        blocks.forEach { allocator.free($0) }
        XCTAssertEqual(allocator.allocatedBytes, 0)
        XCTAssertEqual(allocator.reservedBytes, 72 * MiB)
        XCTAssertEqual(allocator.peakAllocatedBytes, 55 * MiB + 600 * KiB)
        XCTAssertEqual(allocator.peakReservedBytes, 72 * MiB)
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [20 * MiB, 50 * MiB])
        XCTAssertEqual(allocator.freeBlockSizes(in: .small), [2 * MiB])
        // The same requests again are served from the cache: no cudaMalloc.
        blocks = [5 * MiB, 600 * KiB, 50 * MiB].map { allocator.allocate($0)! }
        XCTAssertEqual(allocator.reservedBytes, 72 * MiB)
        XCTAssertEqual(allocator.segmentCount, 3)
        XCTAssertEqual(allocator.deviceAllocationCount, 3)
    }

    func testExpandableSegmentsGrowByPages() {
        var expandable = Allocator(options: .init(expandableSegments: true))
        var fixed = Allocator()
        for bytes in [600 * KiB, 5 * MiB, 30 * MiB] {
            _ = expandable.allocate(bytes)!
            _ = fixed.allocate(bytes)!
        }
        // Expandable: 600 KiB maps one 2 MiB page; 5 MiB one 20 MiB page, 15 MiB left free at the
        // end; 30 MiB does not fit that, so 15 MiB more is needed: one more 20 MiB page, merged
        // with the free end (35 MiB), split 30 + 5. 2 + 40 = 42 MiB reserved, 2 segments, 3 mappings.
        XCTAssertEqual(expandable.segments, [.init(pool: .small, bytes: 2 * MiB, isExpandable: true),
                                             .init(pool: .large, bytes: 40 * MiB, isExpandable: true)])
        XCTAssertEqual(expandable.reservedBytes, 42 * MiB)
        XCTAssertEqual(expandable.deviceAllocationCount, 3)
        XCTAssertEqual(expandable.freeBlockSizes(in: .large), [5 * MiB])
        // Fixed segments: 2 + 20 + 30 = 52 MiB in 3 segments.
        XCTAssertEqual(fixed.reservedBytes, 52 * MiB)
        XCTAssertEqual(fixed.segmentCount, 3)
    }

    func testExpandableSegmentsSplitEveryRestOf512BytesOrMore() {
        // 19.5 MiB: the rest of a 20 MiB page, 512 KiB, is split off with expandable segments;
        // in a fixed 20 MiB segment it is not (not more than 1 MiB), so all 20 MiB count.
        var expandable = Allocator(options: .init(expandableSegments: true))
        var fixed = Allocator()
        let a = expandable.allocate(19 * MiB + 512 * KiB)!
        let b = fixed.allocate(19 * MiB + 512 * KiB)!
        XCTAssertEqual(expandable.blockBytes(a), 19 * MiB + 512 * KiB)
        XCTAssertEqual(expandable.freeBlockSizes(in: .large), [512 * KiB])
        XCTAssertEqual(fixed.blockBytes(b), 20 * MiB)
    }

    func testExpandableBestFitPassesOverTheFreeEnd() {
        var allocator = Allocator(options: .init(expandableSegments: true))
        let a = allocator.allocate(20 * MiB)!  // one page, exactly
        let b = allocator.allocate(4 * MiB)!  // a second page: 4 MiB, 16 MiB free at the end
        let c = allocator.allocate(10 * MiB)!  // only the end fits: 10 MiB, 6 MiB free at the end
        allocator.free(a)
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [6 * MiB, 20 * MiB])
        // 5 MiB: the 6 MiB end would be the tighter fit by size, but it counts as unbounded, so
        // the 20 MiB block is taken and split 5 + 15.
        let d = allocator.allocate(5 * MiB)!
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [6 * MiB, 15 * MiB])
        XCTAssertEqual(allocator.reservedBytes, 40 * MiB)
        // Free everything: one block again over both pages, and nothing unmapped.
        [b, c, d].forEach { allocator.free($0) }
        XCTAssertEqual(allocator.freeBlockSizes(in: .large), [40 * MiB])
        XCTAssertEqual(allocator.reservedBytes, 40 * MiB)
        XCTAssertEqual(allocator.peakReservedBytes, 40 * MiB)
    }

    // MARK: - Replay

    func event(_ kind: LifetimeEvent.Kind, _ id: Int, _ bytes: Int) -> LifetimeEvent {
        LifetimeEvent(kind: kind, tensorID: id, bytes: bytes, role: .activation, phase: .forward(timestep: 0))
    }

    func testReplayReportsPeaksAndTheirMoments() {
        let events = [
            event(.allocate, 0, 5 * MiB),  // 0: 20 MiB segment; allocated 5 MiB, reserved 20 MiB
            event(.allocate, 1, 0),  // 1: no block
            event(.allocate, 2, 100_000),  // 2: 100352 B in a 2 MiB small segment; reserved 22 MiB
            event(.allocate, 3, 12 * MiB),  // 3: from the 15 MiB rest, split 12 + 3; allocated 17 MiB + 100352
            event(.free, 0, 5 * MiB),  // 4: free large blocks 5 and 3 MiB, not adjacent
            event(.allocate, 4, 16 * MiB),  // 5: nothing fits: 16 MiB segment; 28 MiB + 100352, reserved 38 MiB
            event(.free, 1, 0),  // 6: nothing
            event(.free, 3, 12 * MiB),  // 7: merges with both neighbours: 20 MiB free
            event(.allocate, 5, 18 * MiB),  // 8: from the 20 MiB, split 18 + 2; 34 MiB + 100352: the peak
            event(.free, 4, 16 * MiB),
            event(.free, 5, 18 * MiB),
            event(.free, 2, 100_000),
        ]
        let result = CUDAAllocatorReplay().run(events)
        XCTAssertEqual(result.peakAllocatedBytes, 34 * MiB + 100_352)
        XCTAssertEqual(result.peakAllocatedEventIndex, 8)
        XCTAssertEqual(result.peakReservedBytes, 38 * MiB)
        XCTAssertEqual(result.peakReservedEventIndex, 5)
        XCTAssertEqual(result.segmentCount, 3)
        XCTAssertEqual(result.deviceAllocationCount, 3)
        XCTAssertEqual(result.finalAllocatedBytes, 0)
        XCTAssertEqual(result.finalReservedBytes, 38 * MiB)
        XCTAssertEqual(result.reservedOverAllocated, Double(38 * MiB) / Double(34 * MiB + 100_352), accuracy: 1e-12)
        XCTAssertEqual(result.problems, [])
        // Every block here was split to its rounded size, so the allocated peak is the 512-byte
        // rounded tensor peak, at the same moment.
        let sweep = PeakSweep(rounding: .cuda).run(events)
        XCTAssertEqual(sweep.peakBytes, result.peakAllocatedBytes)
        XCTAssertEqual(sweep.peakEventIndex, result.peakAllocatedEventIndex)
    }

    func testReplayStartsFromLiveTensorsAndSkipsMalformedEvents() {
        let start = [event(.allocate, 0, 5 * MiB)]  // a 20 MiB segment before the trace; 5 MiB allocated
        let events = [
            event(.free, 0, 5 * MiB),
            event(.allocate, 1, 3 * MiB),  // from the cached 20 MiB: no new peak of either
            event(.free, 9, MiB),
            event(.allocate, 1, 3 * MiB),
            event(.free, 1, 3 * MiB),
        ]
        let result = CUDAAllocatorReplay().run(events, liveAtStart: start)
        XCTAssertEqual(result.peakAllocatedBytes, 5 * MiB)
        XCTAssertNil(result.peakAllocatedEventIndex)
        XCTAssertEqual(result.peakReservedBytes, 20 * MiB)
        XCTAssertNil(result.peakReservedEventIndex)
        XCTAssertEqual(result.segmentCount, 1)
        XCTAssertEqual(result.finalAllocatedBytes, 0)
        XCTAssertEqual(result.problems.map(\.kind), [.freeOfUnknown, .doubleAllocate])
        XCTAssertEqual(result.problems.map(\.eventIndex), [2, 3])

        let empty = CUDAAllocatorReplay().run([])
        XCTAssertEqual(empty.peakAllocatedBytes, 0)
        XCTAssertNil(empty.peakReservedEventIndex)
        XCTAssertEqual(empty.reservedOverAllocated, 0)
    }

    // MARK: - Consistency and speed

    /// A deterministic trace of `count` events: tensors of 1 B to 64 MiB (most under 1 MiB, as
    /// activations of small layers are), freed in random order, up to `maxLive` live at once, all
    /// freed at the end.
    func randomTrace(count: Int, maxLive: Int, seed: UInt64) -> [LifetimeEvent] {
        var state = seed
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: state >> 33)
        }
        var events: [LifetimeEvent] = []
        events.reserveCapacity(count)
        var live: [Int] = []
        var nextID = 0
        while events.count + live.count < count {
            if live.isEmpty || (live.count < maxLive && next() % 2 == 0) {
                let bytes: Int
                switch next() % 10 {
                case 0..<6: bytes = 1 + next() % MiB
                case 6..<9: bytes = MiB + next() % (9 * MiB)
                default: bytes = 10 * MiB + next() % (54 * MiB)
                }
                events.append(event(.allocate, nextID, bytes))
                live.append(nextID)
                nextID += 1
            } else {
                let index = next() % live.count
                events.append(event(.free, live[index], 0))
                live.swapAt(index, live.count - 1)
                live.removeLast()
            }
        }
        for id in live.reversed() { events.append(event(.free, id, 0)) }
        return events
    }

    func testEveryReservedByteIsInABlockAndFreedSegmentsMergeWhole() {
        for expandable in [false, true] {
            var allocator = Allocator(options: .init(expandableSegments: expandable))
            var blocks: [Int: Allocator.BlockID] = [:]
            for (index, event) in randomTrace(count: 20_000, maxLive: 300, seed: 7).enumerated() {
                switch event.kind {
                case .allocate: blocks[event.tensorID] = allocator.allocate(event.bytes)
                case .free: allocator.free(blocks.removeValue(forKey: event.tensorID)!)
                }
                if index % 97 == 0 {
                    let freeBytes = Allocator.Pool.allCases.map { allocator.freeBlockSizes(in: $0).reduce(0, +) }.reduce(0, +)
                    XCTAssertEqual(freeBytes + allocator.allocatedBytes, allocator.reservedBytes, "event \(index), expandable \(expandable)")
                }
            }
            // All freed: every segment is one free block of its own size again.
            XCTAssertEqual(allocator.allocatedBytes, 0)
            let freeSizes = Allocator.Pool.allCases.flatMap { allocator.freeBlockSizes(in: $0) }.sorted()
            XCTAssertEqual(freeSizes, allocator.segments.map(\.bytes).sorted(), "expandable \(expandable)")
            XCTAssertGreaterThanOrEqual(allocator.peakReservedBytes, allocator.peakAllocatedBytes)
        }
    }

    func testReplayOf100kEventsIsFast() {
        let events = randomTrace(count: 100_000, maxLive: 2_000, seed: 42)
        XCTAssertEqual(events.count, 100_000)
        let replay = CUDAAllocatorReplay()
        _ = replay.run(Array(events.prefix(1000)))  // warm up
        // The best of three runs: a loaded machine (parallel builds) slows single runs, not all three.
        let clock = ContinuousClock()
        var result: CUDAAllocatorReplay.Result?
        var milliseconds = Double.infinity
        for _ in 0..<3 {
            let elapsed = clock.measure { result = replay.run(events) }
            milliseconds = min(milliseconds, Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)
        }
        #if DEBUG
        let limit = 1_000.0  // unoptimized builds: only a guard against a quadratic blow-up
        #else
        let limit = 50.0
        #endif
        XCTAssertLessThan(milliseconds, limit, "100k events replayed in \(milliseconds) ms")
        print("CUDAAllocatorReplay: 100k events in \(ByteCount.formatFixed(milliseconds, digits: 2)) ms, \(result!.segmentCount) segments")
        // The allocator can only add to the rounded tensor bytes, and holds at least what it hands out.
        let sweep = PeakSweep(rounding: .cuda).run(events)
        XCTAssertGreaterThanOrEqual(result!.peakAllocatedBytes, sweep.peakBytes)
        XCTAssertGreaterThanOrEqual(result!.peakReservedBytes, result!.peakAllocatedBytes)
        XCTAssertEqual(result!.finalAllocatedBytes, 0)
        XCTAssertEqual(result!.problems, [])
    }
}
