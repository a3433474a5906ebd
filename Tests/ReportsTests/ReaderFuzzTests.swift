import Allocator
import Foundation
import MemoryModel
import Reports
import XCTest

/// Seeded fuzzing of the readers of files a user hands back to snnmem: memory traces, PyTorch
/// measurements and baselines. Every mutant must either be refused with an error that names the
/// file, or be accepted and then go through the reporters without a trap (a trap ends the test
/// process, which fails the suite). Bounded in time, so it runs in CI.
final class ReaderFuzzTests: XCTestCase {
    /// `sha256sum` of an empty file: a well-formed digest for the seeds' profile fields.
    static let emptyFileSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Numbers where byte arithmetic overflows or signs flip, and values of the wrong kind.
    static let extremeValues: [Any] = [0, -1, 1, 7, -4096, 1 << 31, 1 << 40, 1 << 56, (1 << 56) + 1, 1 << 62, Int.max, Int.min,
                                       1.5, -0.0, 1e300, "", "x", NSNull(), [Any](), [String: Any](), true]

    /// A splitmix64 generator: the same seed gives the same mutants on every machine.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    /// One to three mutations of a JSON document: a leaf replaced by an extreme value, a key
    /// dropped, an array element doubled, removed or swapped, or the bytes cut or flipped.
    static func mutate(_ data: Data, random: inout Random) -> Data {
        if random.below(6) == 0 {
            var bytes = [UInt8](data)
            if random.below(2) == 0 { return Data(bytes.prefix(random.below(bytes.count))) }
            for _ in 0...random.below(3) where !bytes.isEmpty { bytes[random.below(bytes.count)] = UInt8(random.below(256)) }
            return Data(bytes)
        }
        guard var tree = try? JSONSerialization.jsonObject(with: data) else { return data }
        for _ in 0...random.below(3) { tree = mutateTree(tree, random: &random, depth: 0) }
        return (try? JSONSerialization.data(withJSONObject: tree, options: [.fragmentsAllowed])) ?? data
    }

    private static func mutateTree(_ node: Any, random: inout Random, depth: Int) -> Any {
        if var object = node as? [String: Any], !object.isEmpty {
            let key = random.pick(object.keys.sorted())
            switch random.below(8) {
            case 0: object.removeValue(forKey: key)
            case 1: object[key] = random.pick(extremeValues)
            default: object[key] = mutateTree(object[key]!, random: &random, depth: depth + 1)
            }
            return object
        }
        if var array = node as? [Any], !array.isEmpty {
            let index = random.below(array.count)
            switch random.below(8) {
            case 0: array.insert(array[index], at: index)
            case 1: array.remove(at: index)
            case 2: array.swapAt(index, random.below(array.count))
            default: array[index] = mutateTree(array[index], random: &random, depth: depth + 1)
            }
            return array
        }
        if let number = node as? Int, random.below(3) == 0 {
            // Near the original as well as far from it: off-by-one damage is the subtle kind.
            // Wrapping arithmetic: the mutator itself must not trap on Int.max or Int.min.
            return random.pick([number &+ 1, number &- 1, 0 &- number, number &* 2])
        }
        return random.pick(extremeValues)
    }

    /// Runs `read` on mutants of `seed` for up to `seconds` (and at most `limit` mutants).
    private func fuzz(_ name: String, seed: Data, seconds: Double, limit: Int, randomSeed: UInt64,
                      read: (String) throws -> Void) throws -> (accepted: Int, refused: Int) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-fuzz-\(name)-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("input.json").path
        var random = Random(state: randomSeed)
        let start = Date()
        var accepted = 0, refused = 0
        while accepted + refused < limit, Date().timeIntervalSince(start) < seconds {
            let mutant = Self.mutate(seed, random: &random)
            try mutant.write(to: URL(fileURLWithPath: path))
            do {
                try read(path)
                accepted += 1
            } catch {
                refused += 1
                XCTAssertTrue("\(error)".hasPrefix(path), "\(name) mutant \(accepted + refused): the error does not name the file: \(error)")
            }
        }
        return (accepted, refused)
    }

    func testTraceReaderRefusesOrReportsEveryMutant() throws {
        let seed = try JSONEncoder().encode(try Self.recordedTrace())
        let (accepted, refused) = try fuzz("trace", seed: seed, seconds: 15, limit: 4000, randomSeed: 16) { path in
            let trace = try TraceFile.read(from: path)
            // An accepted trace is sound: the reporters must take it as it is.
            XCTAssertNil(trace.firstProblem())
            _ = PeakSweep().run(trace.lifetimeEvents(), allowLive: Set(trace.events.map(\.tensorID)))
            let steps = Set(trace.events.map(\.trainingStep)).sorted()
            let schedules = steps.prefix(2).map { (planned: Timeline(trace: trace, step: $0), measured: Optional(Timeline(trace: trace, step: $0))) }
            _ = try ReportBundle.files(title: "fuzz", comparison: nil, schedules: schedules)
        }
        XCTAssertGreaterThan(refused, 100, "the mutator should damage most traces")
        XCTAssertGreaterThan(accepted, 10, "some mutants (names, times) are still sound traces")
    }

    func testMeasurementReaderRefusesOrReportsEveryMutant() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("PlannerTests/Fixtures/pytorch/digits-bptt-T2-B2.json")
        let seed = try Data(contentsOf: fixture)
        let (accepted, refused) = try fuzz("measurement", seed: seed, seconds: 12, limit: 3000, randomSeed: 10) { path in
            let measurement = try PyTorchMeasurement.read(path: path)
            XCTAssertNil(measurement.firstProblem())
            if let timeline = measurement.timeline() {
                _ = try ReportBundle.files(title: "fuzz", comparison: nil, schedules: [(planned: timeline, measured: timeline)])
            }
        }
        XCTAssertGreaterThan(refused, 100)
        XCTAssertGreaterThan(accepted, 10)
    }

    private func roles(_ bytes: [TensorRole: Int]) -> RoleBytes {
        var result = RoleBytes()
        for (role, value) in bytes { result[role] = value }
        return result
    }

    func testBaselineReaderRefusesOrChecksEveryMutant() throws {
        let entries = [
            MemoryBaseline.Entry(profileFile: "profiles/cifarnet.yaml", profileSHA256: Self.emptyFileSHA256, profile: "cifarnet",
                                 runtime: "pytorch-cuda", strategy: "bptt", batch: 16, timesteps: 4,
                                 peakBytes: 400_000_000, bytesByRoleAtPeak: roles([.activation: 300_000_000, .parameter: 4_000_000]),
                                 measured: false),
            MemoryBaseline.Entry(profileFile: "profiles/digits.yaml", profileSHA256: Self.emptyFileSHA256, profile: "digits",
                                 strategy: "sltt", batch: 8, timesteps: 2, peakBytes: 90_000,
                                 bytesByRoleAtPeak: roles([.activation: 60_000, .workspace: 4096]), measured: true),
        ]
        let seed = try MemoryBaseline(toolVersion: "fuzz", entries: entries).encoded()
        let (accepted, refused) = try fuzz("baseline", seed: seed, seconds: 8, limit: 3000, randomSeed: 12) { path in
            let baseline = try MemoryBaseline.read(path: path)
            let check = BudgetCheck(entries: entries, budgetBytes: 1 << 30, baseline: baseline, tolerancePercent: 5)
            _ = check.render(markdown: true)
            _ = check.render(markdown: false)
        }
        XCTAssertGreaterThan(refused, 100)
        XCTAssertGreaterThan(accepted, 10)
    }

    /// A trace as the engine's recorder writes one: two steps, a leak, every event kind.
    static func recordedTrace() throws -> MemoryTrace {
        let allocator = CountingAllocator(budgetBytes: 1 << 20)
        let weights = try allocator.allocate(bytes: 5000, role: .parameter, layerPath: "fc", name: "weight", timestep: nil, phase: .setup)
        for step in 0..<2 {
            var kept: [TensorBuffer] = []
            for t in 0..<3 {
                kept.append(try allocator.allocate(bytes: 300 + 10 * t, role: .activation, layerPath: "fc/lif", name: "spikes",
                                                   timestep: t, phase: .forward(timestep: t)))
            }
            XCTAssertThrowsError(try allocator.allocate(bytes: 1 << 21, role: .workspace, layerPath: "fc", name: "scratch",
                                                        timestep: 0, phase: .forward(timestep: 0)))
            let gradient = try allocator.allocate(bytes: 5000, role: .gradient, layerPath: "fc", name: "weight.grad", timestep: nil,
                                                  phase: .backward(timestep: 2))
            for (t, buffer) in kept.enumerated().reversed() where step == 1 || t > 0 { try allocator.free(buffer) }
            try allocator.free(gradient)
            allocator.recorder.endStep()
            if step == 0 { try allocator.free(kept[0]) }
        }
        try allocator.free(weights)
        return allocator.recorder.trace(header: .init(toolVersion: "fuzz", profile: "tiny", profileSHA256: Self.emptyFileSHA256,
                                                      strategy: "bptt", batch: 2, timesteps: 3,
                                                      allocatorName: allocator.name))
    }
}
