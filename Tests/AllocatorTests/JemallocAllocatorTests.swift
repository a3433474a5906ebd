import Allocator
import CJemalloc
import MemoryModel
import XCTest

/// The allocator against jemalloc's own counters. Counters are read through the thread pointers
/// and every reading is taken before any assertion, because XCTest allocates while asserting.
final class JemallocAllocatorTests: XCTestCase {
    private let flags = snnmem_mallocx_lg_align(6)

    func testThreadAllocatedGrowsByExactlyNallocxForTrackedBuffers() throws {
        let allocator = try JemallocAllocator(sampling: false)
        allocator.recorder.reserveCapacity(events: 64, liveTensors: 32)
        let counters = try JemallocThreadCounters()
        let sizes = [1, 24, 64, 100, 129, 1000, 4097, 14_337, 20_000, 32_768, 100_000, 1_048_577, 8 << 20]
        var allocatedDeltas = [UInt64](repeating: 0, count: sizes.count)
        var freedDeltas = [UInt64](repeating: 0, count: sizes.count)
        var buffers = [TensorBuffer?](repeating: nil, count: sizes.count)
        // The first use initializes the recorder's globals once; steady state allocates nothing.
        try allocator.free(try allocator.allocate(bytes: 1, role: .input, layerPath: "warm-up", timestep: nil))
        for index in sizes.indices {
            let before = counters.allocatedBytes
            let buffer = try allocator.allocate(bytes: sizes[index], role: .activation, layerPath: "conv1",
                                                name: "x", timestep: nil, phase: .setup)
            let after = counters.allocatedBytes
            // Use the memory, so an optimized build cannot drop the allocation.
            buffer.pointer.storeBytes(of: UInt8(truncatingIfNeeded: index), as: UInt8.self)
            allocatedDeltas[index] = after - before
            buffers[index] = buffer
        }
        var checksum = 0
        for index in sizes.indices {
            let buffer = buffers[index]!
            checksum += Int(buffer.pointer.load(as: UInt8.self))
            let before = counters.deallocatedBytes
            try allocator.free(buffer)
            freedDeltas[index] = counters.deallocatedBytes - before
        }
        XCTAssertEqual(checksum, sizes.indices.reduce(0, +))
        for (index, bytes) in sizes.enumerated() {
            let expected = UInt64(nallocx(bytes, flags))
            XCTAssertEqual(allocatedDeltas[index], expected, "thread.allocated for \(bytes) B")
            XCTAssertEqual(freedDeltas[index], expected, "thread.deallocated for \(bytes) B")
            XCTAssertEqual(UInt64(buffers[index]!.allocatedBytes), expected, "recorded allocated bytes for \(bytes) B")
            XCTAssertEqual(Int(bitPattern: buffers[index]!.pointer) % 64, 0, "alignment of \(bytes) B")
        }
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, 0)
    }

    func testRecorderPeakMatchesJemallocThreadPeak() throws {
        let allocator = try JemallocAllocator(sampling: false)
        allocator.recorder.reserveCapacity(events: 64, liveTensors: 16)
        let stats = try JemallocStats(resetsThreadPeakOnRead: false)
        let mib = 1 << 20
        try stats.resetThreadPeak()
        let a = try allocator.allocate(bytes: 8 * mib, role: .activation, layerPath: "a", timestep: 0)
        let b = try allocator.allocate(bytes: 4 * mib + 1, role: .neuronState, layerPath: "b", timestep: 0)
        a.pointer.storeBytes(of: 1, as: UInt8.self)
        try allocator.free(a)
        let c = try allocator.allocate(bytes: 6 * mib, role: .gradient, layerPath: "c", timestep: 0)
        let d = try allocator.allocate(bytes: 3 * mib + 12_345, role: .workspace, layerPath: "d", timestep: 0)
        b.pointer.storeBytes(of: 2, as: UInt8.self)
        c.pointer.storeBytes(of: 3, as: UInt8.self)
        d.pointer.storeBytes(of: 4, as: UInt8.self)
        for buffer in [d, b, c] { try allocator.free(buffer) }
        let threadPeakBytes = try stats.readThreadPeak()
        let recorderPeakBytes = allocator.recorder.allocated.peakBytes

        let expectedPeak = nallocx(4 * mib + 1, flags) + nallocx(6 * mib, flags) + nallocx(3 * mib + 12_345, flags)
        XCTAssertEqual(recorderPeakBytes, expectedPeak)
        // jemalloc documents the thread peak as approximate, aiming at 100 KB.
        let toleranceBytes = 100 * 1024
        XCTAssertLessThanOrEqual(abs(Int(threadPeakBytes) - recorderPeakBytes), toleranceBytes,
                                 "jemalloc thread peak \(threadPeakBytes), recorder peak \(recorderPeakBytes)")
    }

    func testRoundingFormulaMatchesNallocx() {
        var sizes = Array(1...100_000)
        var size = 100_001
        while size <= 256 << 20 {
            sizes.append(size)
            size += size / 7 + 1
        }
        for lg in 17...28 {
            let power = 1 << lg
            for offset in [-1, 0, 1, power / 8, power / 8 + 1, power / 4 - 1, power / 2 + 3] { sizes.append(power + offset) }
        }
        sizes.append(256 << 20)
        var mismatches: [(size: Int, formula: Int, nallocx: Int)] = []
        for size in sizes {
            let real = nallocx(size, flags)
            let formula = AllocatorRounding.jemalloc.roundedBytes(size)
            if real != formula { mismatches.append((size, formula, real)) }
        }
        XCTAssertTrue(mismatches.isEmpty, "\(mismatches.count) of \(sizes.count) sizes differ, first: \(mismatches.prefix(5))")
        XCTAssertGreaterThan(sizes.count, 100_100)
    }

    func testPhaseBoundariesSampleJemalloc() throws {
        let allocator = try JemallocAllocator()
        let bytes = 8 << 20
        try allocator.beginPhase(.setup)
        let buffer = try allocator.allocate(bytes: bytes, role: .activation, layerPath: "big", timestep: 0)
        buffer.pointer.storeBytes(of: 1, as: UInt8.self)
        try allocator.beginPhase(.forward(timestep: 0))
        try allocator.free(buffer)
        try allocator.beginPhase(.backward(timestep: 0))
        let samples = allocator.recorder.samples
        let expected = nallocx(bytes, flags)

        XCTAssertEqual(samples.map(\.phase), [.setup, .forward(timestep: 0), .backward(timestep: 0)])
        XCTAssertEqual(samples.map(\.eventIndex), [0, 1, 2])
        let (first, second, third) = (samples[0].snapshot, samples[1].snapshot, samples[2].snapshot)
        XCTAssertGreaterThanOrEqual(second.threadAllocatedBytes - first.threadAllocatedBytes, UInt64(expected))
        XCTAssertGreaterThanOrEqual(third.threadDeallocatedBytes - second.threadDeallocatedBytes, UInt64(expected))
        // Large blocks move stats.allocated by exactly their size class; allow for the test process's own noise.
        XCTAssertLessThanOrEqual(abs(second.allocatedBytes - first.allocatedBytes - expected), 512 * 1024)
        XCTAssertGreaterThanOrEqual(second.activeBytes, second.allocatedBytes)
        XCTAssertGreaterThan(second.residentBytes, 0)
        // The peak is reset at every sample, so the sample after setup sees the buffer, the next one not.
        XCTAssertGreaterThanOrEqual(second.threadPeakBytes + 100 * 1024, UInt64(expected))
        XCTAssertLessThan(third.threadPeakBytes, UInt64(expected))
    }

    func testFailedMallctlIsAnErrorWithNameAndErrno() {
        XCTAssertThrowsError(try JemallocStats.readSize("stats.no_such_counter")) { error in
            XCTAssertEqual(error as? AllocatorError, .mallctlFailed(name: "stats.no_such_counter", code: ENOENT))
            XCTAssertTrue("\(error)".contains("stats.no_such_counter"), "\(error)")
        }
        XCTAssertEqual(try JemallocStats.readSize("arenas.page") % 4096, 0)
    }

    func testDoubleFreeThroughJemallocDoesNotReachJemalloc() throws {
        let allocator = try JemallocAllocator(sampling: false)
        let buffer = try allocator.allocate(bytes: 1 << 20, role: .activation, layerPath: "fc/lif", name: "spikes",
                                            timestep: 5, phase: .forward(timestep: 5))
        try allocator.free(buffer)
        // Were this passed to sdallocx, jemalloc would corrupt its state or abort.
        XCTAssertThrowsError(try allocator.free(buffer)) { error in
            guard case AllocatorError.doubleFree(let problem) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(problem.layerPath, "fc/lif")
            XCTAssertEqual(problem.role, .activation)
        }
        let again = try allocator.allocate(bytes: 1 << 20, role: .activation, layerPath: "fc/lif", timestep: 6)
        try allocator.free(again)
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, 0)
    }

    func testRetainFreedPagesSetsDecayForExistingAndNewArenas() throws {
        try JemallocAllocator.retainFreedPages()
        var value = 0
        var size = MemoryLayout<Int>.size
        XCTAssertEqual(mallctl("arenas.dirty_decay_ms", &value, &size, nil, 0), 0)
        XCTAssertEqual(value, -1)
        // A block of 8 MiB or more comes from jemalloc's huge arena, created on first use with the new default.
        let allocator = try JemallocAllocator(sampling: false)
        let big = try allocator.allocate(bytes: 16 << 20, role: .activation, layerPath: "conv", name: "output", timestep: 0)
        try allocator.free(big)
        var arenas: UInt32 = 0
        var arenasSize = MemoryLayout<UInt32>.size
        XCTAssertEqual(mallctl("arenas.narenas", &arenas, &arenasSize, nil, 0), 0)
        var initialized = 0
        for index in 0..<Int(arenas) {
            value = 0
            size = MemoryLayout<Int>.size
            guard mallctl("arena.\(index).dirty_decay_ms", &value, &size, nil, 0) == 0 else { continue }
            initialized += 1
            XCTAssertEqual(value, -1, "arena \(index)")
        }
        XCTAssertGreaterThan(initialized, 0)
    }
}
