// Recording overhead of the instrumented allocator: tracked allocate+free through
// JemallocAllocator against raw mallocx/sdallocx of the same sizes, same flags, same order.
// Run in release: swift run -c release allocator-benchmark [pairsPerRound] [rounds]
import Allocator
import CJemalloc
import MemoryModel

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let pairsPerRound = arguments.first ?? 200_000
let rounds = arguments.dropFirst().first ?? 7
// Buffers live at once: tensors are freed in batches in training, not one by one.
let batch = 64

// Log-uniform sizes from 64 B to 1 MiB, from a fixed-seed generator so every run measures the same mix.
var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
func nextRandom() -> UInt64 {
    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return seed >> 11
}
let sizes: [Int] = (0..<4096).map { _ in
    let base = 1 << (6 + Int(nextRandom() % 14))  // 64 B ... 512 KiB
    return base + Int(nextRandom() % UInt64(base))  // up to just under 1 MiB
}

let clock = SystemMonotonicClock()
let flags = snnmem_mallocx_lg_align(UInt32(JemallocAllocator.lgAlignment))
var checksum: UInt64 = 0

func rawRound() -> UInt64 {
    var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: batch)
    let start = clock.nowNs()
    var index = 0
    for _ in 0..<(pairsPerRound / batch) {
        for slot in 0..<batch {
            let pointer = mallocx(sizes[(index + slot) & 4095], flags)!
            // Touch the memory so the optimizer cannot drop the malloc/free pair.
            pointer.storeBytes(of: UInt8(truncatingIfNeeded: slot), as: UInt8.self)
            pointers[slot] = pointer
        }
        for slot in 0..<batch {
            let pointer = pointers[slot]!
            checksum &+= UInt64(pointer.load(as: UInt8.self))
            sdallocx(pointer, sizes[(index + slot) & 4095], flags)
        }
        index += batch
    }
    return clock.nowNs() - start
}

func trackedRound(_ allocator: JemallocAllocator) throws -> UInt64 {
    var buffers: [TensorBuffer] = []
    buffers.reserveCapacity(batch)
    let start = clock.nowNs()
    var index = 0
    for _ in 0..<(pairsPerRound / batch) {
        for slot in 0..<batch {
            let buffer = try allocator.allocate(
                bytes: sizes[(index + slot) & 4095], role: .activation, layerPath: "block3/conv2", name: "spikes",
                timestep: slot, phase: .forward(timestep: slot))
            buffer.pointer.storeBytes(of: UInt8(truncatingIfNeeded: slot), as: UInt8.self)
            buffers.append(buffer)
        }
        for buffer in buffers {
            checksum &+= UInt64(buffer.pointer.load(as: UInt8.self))
            try allocator.free(buffer)
        }
        buffers.removeAll(keepingCapacity: true)
        index += batch
    }
    let elapsed = clock.nowNs() - start
    allocator.recorder.removeAllEvents()
    return elapsed
}

func nsPerPair(_ elapsed: [UInt64]) -> (best: Double, median: Double) {
    let pairs = Double(pairsPerRound / batch * batch)
    let sorted = elapsed.sorted()
    return (Double(sorted[0]) / pairs, Double(sorted[sorted.count / 2]) / pairs)
}

func format(_ value: Double) -> String { ByteCount.formatFixed(value, digits: 1) }

let keeping = try JemallocAllocator(sampling: false)
keeping.recorder.reserveCapacity(events: 2 * pairsPerRound, liveTensors: batch)
let countersOnly = try JemallocAllocator(recorder: AllocationRecorder(keepsEvents: false), sampling: false)
countersOnly.recorder.reserveCapacity(events: 0, liveTensors: batch)

// Warm-up: fault in the pages and fill jemalloc's caches before timing.
_ = rawRound()
_ = try trackedRound(keeping)
_ = try trackedRound(countersOnly)

var raw: [UInt64] = []
var tracked: [UInt64] = []
var trackedNoEvents: [UInt64] = []
for _ in 0..<rounds {
    raw.append(rawRound())
    tracked.append(try trackedRound(keeping))
    trackedNoEvents.append(try trackedRound(countersOnly))
}

let rawNs = nsPerPair(raw)
let trackedNs = nsPerPair(tracked)
let countersNs = nsPerPair(trackedNoEvents)
print("allocate+free pairs: \(pairsPerRound / batch * batch) per round, \(rounds) rounds, \(batch) live at once, sizes 64 B - 1 MiB")
print("                               best ns/pair   median ns/pair")
print("raw mallocx/sdallocx           \(format(rawNs.best).padded(12))   \(format(rawNs.median).padded(14))")
print("tracked, events kept           \(format(trackedNs.best).padded(12))   \(format(trackedNs.median).padded(14))")
print("tracked, counters only         \(format(countersNs.best).padded(12))   \(format(countersNs.median).padded(14))")
print("recording overhead (median)    events kept: \(format(trackedNs.median - rawNs.median)) ns/pair, counters only: \(format(countersNs.median - rawNs.median)) ns/pair")
print("checksum \(checksum)")

extension String {
    func padded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
