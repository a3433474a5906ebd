import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// The planner's prediction held against the engine's real allocations, event by event.
final class PlannedVersusMeasuredTests: XCTestCase {
    static let tinyYAML = """
        input: {channels: 1, height: 6, width: 6}
        timesteps: 3
        batch: 2
        optimizer: {type: sgd, momentum: 0.9}
        layers:
          - conv: {name: conv1, out: 4, kernel: 3, padding: 1}
          - batchnorm: {name: bn1}
          - neuron: {name: lif1}
          - residual:
              name: block
              main:
                - conv: {name: conv, out: 4, kernel: 3, padding: 1}
                - batchnorm: {name: bn}
                - neuron: {name: lif, type: if}
          - maxpool: {name: pool, kernel: 2}
          - flatten
          - linear: {name: fc, out: 3}
        """

    static let reversibleYAML = """
        input: {channels: 2, height: 4, width: 4}
        timesteps: 3
        batch: 2
        neuron: {type: lif, reset: soft}
        optimizer: {type: adam}
        layers:
          - conv: {name: stem, out: 4, kernel: 3, padding: 1}
          - batchnorm: {name: stem_bn}
          - reversible:
              name: stage
              blocks: 2
              f:
                - neuron: {name: sn1}
                - conv: {name: conv1, out: 2, kernel: 3, padding: 1}
                - batchnorm: {name: bn1}
          - reversible:
              name: neurons
              f: [neuron]
          - neuron: {name: head_sn}
          - avgpool: {name: pool, kernel: 2}
          - flatten
          - linear: {name: fc, out: 3}
        """

    func randomBatch(_ trainer: Trainer<Float>, seed: UInt64) -> ([Float], [Int32]) {
        var random = SeededRandom(seed: seed)
        let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1.5)) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: trainer.profile.classes)) }
        return (images, labels)
    }

    func assertPlanMatches(_ profile: Profile, _ strategy: Strategy, batch: Int? = nil, timesteps: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let allocator = CountingAllocator(rounding: .exact)
        let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: batch, timesteps: timesteps, allocator: allocator)
        let (images, labels) = randomBatch(trainer, seed: 7)
        let result = try trainer.step(images: images, labels: labels)
        XCTAssertTrue(result.loss.isFinite, file: file, line: line)
        let plan = try Planner.plan(profile, strategy: strategy, options: .init(batch: batch, timesteps: timesteps))
        let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
        XCTAssertNil(comparison.firstDifference, "\(profile.name) \(strategy)", file: file, line: line)
        XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(profile.name) \(strategy)", file: file, line: line)
        let report = allocator.recorder.endStep()
        XCTAssertTrue(report.doubleFrees.isEmpty, file: file, line: line)
        // A second step allocates no parameters and peaks at the same bytes.
        let before = allocator.recorder.events.count
        _ = try trainer.step(images: images, labels: labels)
        let secondStep = Array(allocator.recorder.events[before...])
        let persistent = plan.persistentBytes
        let live = secondStep.lifetimeEvents(measuring: .requested)
        XCTAssertEqual(PeakSweep().run(live).peakBytes + persistent, plan.peakBytes, "\(profile.name) \(strategy) second step",
                       file: file, line: line)
    }

    func testTinyNetworkEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.tinyYAML, file: "tiny.yaml")
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            try assertPlanMatches(profile, strategy)
        }
        try assertPlanMatches(profile, .checkpoint, timesteps: 5)
    }

    func testDVSLayersEveryStrategy() throws {
        for yaml in [DVSNetworkTests.yaml, DVSNetworkTests.framesYAML] {
            let profile = try ProfileLoader.parse(yaml: yaml, file: "dvs.yaml")
            for strategy in [Strategy.bptt, .checkpoint, .sltt] {
                try assertPlanMatches(profile, strategy)
            }
        }
    }

    func testReversibleNetworkEveryStrategy() throws {
        let profile = try ProfileLoader.parse(yaml: Self.reversibleYAML, file: "reversible.yaml")
        for strategy in [Strategy.bptt, .checkpoint, .sltt, .revsnn] {
            try assertPlanMatches(profile, strategy)
        }
    }

    func testBundledDigitsProfile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let profile = try ProfileLoader.load(path: root.appendingPathComponent("profiles/digits.yaml").path)
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            try assertPlanMatches(profile, strategy, batch: 4)
        }
    }
}
