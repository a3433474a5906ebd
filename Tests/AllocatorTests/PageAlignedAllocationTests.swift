import Allocator
import CJemalloc
import Glibc
import MemoryModel
import XCTest

/// `allocatePageAligned`: past jemalloc's small classes a page-aligned block of the same size class
/// as the engine's 64-byte-aligned tensors (so the plan's jemalloc rounding holds), below them the
/// usual 64-byte alignment; tracked and freed like any tensor.
final class PageAlignedAllocationTests: XCTestCase {
    func testLargeBlocksArePageAlignedInTheSameSizeClass() throws {
        let allocator = try JemallocAllocator(sampling: false)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let sizes = [6_912, 14_336, 14_337, 27_648, 294_912 * 4, 2_359_296 * 4]
        var buffers: [TensorBuffer] = []
        for bytes in sizes {
            let buffer = try allocator.allocatePageAligned(bytes: bytes, role: .workspace, layerPath: "conv", name: "weight.panel",
                                                           timestep: nil, phase: .setup)
            buffer.pointer.storeBytes(of: 1, as: UInt8.self)
            buffers.append(buffer)
        }
        for (bytes, buffer) in zip(sizes, buffers) {
            let address = Int(bitPattern: buffer.pointer)
            XCTAssertEqual(buffer.requestedBytes, bytes)
            XCTAssertEqual(buffer.allocatedBytes, allocator.allocatedBytes(forRequest: bytes), "\(bytes) B: the plan's size class")
            XCTAssertEqual(buffer.allocatedBytes, AllocatorRounding.jemalloc.roundedBytes(bytes), "\(bytes) B")
            XCTAssertEqual(address % AllocatorRounding.jemallocAlignment, 0, "\(bytes) B")
            if bytes > 14_336 { XCTAssertEqual(address % page, 0, "\(bytes) B: page-aligned") }
        }
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, buffers.reduce(0) { $0 + $1.allocatedBytes })
        for buffer in buffers { try allocator.free(buffer) }
        XCTAssertEqual(allocator.recorder.allocated.liveBytes, 0)
    }
}
