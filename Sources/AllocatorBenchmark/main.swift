// Recording overhead of the instrumented allocator: tracked allocate+free through
// JemallocAllocator against raw mallocx/sdallocx of the same sizes, same flags, same order.
// Run in release: swift run -c release allocator-benchmark [pairsPerRound] [rounds]
import Allocator
import CJemalloc
import MemoryModel

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let pairsPerRound = arguments.first ?? 200_000
let rounds = arguments.dropFirst().first ?? 7
// Buffers live at once: training frees tensors in batches, not right after allocating them.
let batch = 64
let pairs = pairsPerRound / batch * batch

// A fixed-seed generator, so every run measures the same sizes in the same order.
var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
func nextRandom() -> UInt64 {
    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return seed >> 11
}

/// 4096 log-uniform sizes from 64 B up to just under 2^maxLg bytes.
func sizeMix(maxLg: Int) -> [Int] {
    (0..<4096).map { _ in
        let base = 1 << (6 + Int(nextRandom() % UInt64(maxLg - 6)))
        return base + Int(nextRandom() % UInt64(base))
    }
}

let clock = SystemMonotonicClock()
let flags = snnmem_mallocx_lg_align(UInt32(JemallocAllocator.lgAlignment))
var checksum: UInt64 = 0

func rawRound(_ sizes: [Int]) -> UInt64 {
    var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: batch)
    let start = clock.nowNs()
    var index = 0
    while index < pairs {
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

func trackedRound(_ sizes: [Int], _ allocator: JemallocAllocator) throws -> UInt64 {
    var buffers: [TensorBuffer] = []
    buffers.reserveCapacity(batch)
    let start = clock.nowNs()
    var index = 0
    while index < pairs {
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
    // Outside the timing: a real run writes or drops its events once per step, not per tensor.
    allocator.recorder.removeAllEvents()
    return elapsed
}

func median(_ values: [UInt64]) -> Double { Double(values.sorted()[values.count / 2]) / Double(pairs) }
func best(_ values: [UInt64]) -> Double { Double(values.min()!) / Double(pairs) }
func format(_ value: Double) -> String { ByteCount.formatFixed(value, digits: 1) }
func padded(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }

let keeping = try JemallocAllocator(sampling: false)
keeping.recorder.reserveCapacity(events: 2 * pairs, liveTensors: batch)
let countersOnly = try JemallocAllocator(recorder: AllocationRecorder(keepsEvents: false), sampling: false)
countersOnly.recorder.reserveCapacity(events: 0, liveTensors: batch)

print("ns per allocate+free pair, release build: \(pairs) pairs per round, \(rounds) rounds, \(batch) buffers live at once")
print("sizes                     variant                  best    median   overhead (median)")
for (label, sizes) in [("64 B - 16 KiB (tcache)", sizeMix(maxLg: 14)), ("64 B - 1 MiB", sizeMix(maxLg: 20))] {
    // Warm-up: fault the pages in and fill jemalloc's caches before timing.
    _ = rawRound(sizes)
    _ = try trackedRound(sizes, keeping)
    _ = try trackedRound(sizes, countersOnly)
    var raw: [UInt64] = [], tracked: [UInt64] = [], counted: [UInt64] = []
    for _ in 0..<rounds {
        raw.append(rawRound(sizes))
        tracked.append(try trackedRound(sizes, keeping))
        counted.append(try trackedRound(sizes, countersOnly))
    }
    for (variant, times) in [("raw mallocx/sdallocx", raw), ("tracked, events kept", tracked), ("tracked, counters only", counted)] {
        let overhead = variant.hasPrefix("raw") ? "" : padded(format(median(times) - median(raw)), 10)
        print(label.padding(26) + variant.padding(23) + padded(format(best(times)), 7)
              + padded(format(median(times)), 10) + overhead)
    }
}
print("checksum \(checksum)")

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
