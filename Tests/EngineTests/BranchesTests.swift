import Allocator
import Engine
import MemoryModel
import Planner
import Profiles
import XCTest

/// `branches` blocks: the join kernels against finite differences, whole networks with every join
/// against finite differences and across schedules, and the planner's snnmem prediction against
/// the engine's allocations, event by event.
final class BranchesTests: XCTestCase {
    /// A three-way fan-out summed (one path the identity), a concat skip (DenseNet-style: the
    /// input beside a conv path), SEW's IAND and AND, and a nested block.
    static let forkYAML = """
        input: {channels: 2, height: 6, width: 6}
        timesteps: 3
        batch: 2
        neuron: {type: lif, tau: 2.0, threshold: 0.5, reset: hard, surrogate: {type: atan, alpha: 2.0}}
        optimizer: {type: sgd, momentum: 0.9}
        layers:
          - conv: {name: stem, out: 4, kernel: 3, padding: 1}
          - batchnorm: {name: stem_bn}
          - neuron: {name: stem_sn}
          - branches:
              name: fan
              join: add
              paths:
                - [{conv: {name: a, out: 4, kernel: 3, padding: 1}}, {batchnorm: {name: a_bn}}]
                - []
                - [{conv: {name: b, out: 4, kernel: 1}}]
          - neuron: {name: fan_sn, type: if, reset: soft}
          - branches:
              name: dense
              join: concat
              paths:
                - []
                - [{conv: {name: c, out: 3, kernel: 3, padding: 1}}, {batchnorm: {name: c_bn}}, {neuron: {name: c_sn}}]
          - branches:
              name: sew_iand
              join: iand
              paths:
                - [{conv: {name: m, out: 7, kernel: 3, padding: 1}}, {batchnorm: {name: m_bn}}, {neuron: {name: m_sn}}]
                - []
          - branches:
              name: sew_and
              join: and
              paths:
                - [{conv: {name: m, out: 5, kernel: 3, padding: 1, stride: 2}}, {neuron: {name: m_sn}}]
                - - branches:
                      name: inner
                      join: add
                      paths:
                        - [{avgpool: {name: pool, kernel: 2}}]
                        - [{conv: {name: d, out: 7, kernel: 1, stride: 2}}]
                  - {conv: {name: d2, out: 5, kernel: 1}}
                  - {neuron: {name: d_sn}}
          - flatten
          - linear: {name: fc, out: 3}
        """

    static var forkProfile: Profile { get throws { try ProfileLoader.parse(yaml: forkYAML, file: "fork.yaml") } }

    // MARK: Kernels against finite differences

    func testProductJoinsMatchFiniteDifferences() {
        let n = 40
        let dOut = randomArray(n, seed: 91)
        for iand in [false, true] {
            var a = randomArray(n, seed: 92, low: 0, high: 1)
            var b = randomArray(n, seed: 93)
            func forward(_ a: [Double], _ b: [Double]) -> [Double] {
                var y = [Double](repeating: 0, count: n)
                if iand { iandJoinForward(count: n, output: &y, a: a, b: b) } else { andJoinForward(count: n, output: &y, a: a, b: b) }
                return y
            }
            var dA = [Double](repeating: .nan, count: n), dB = [Double](repeating: .nan, count: n)
            if iand {
                iandJoinBackward(count: n, dA: &dA, dB: &dB, dOutput: dOut, a: a, b: b)
            } else {
                andJoinBackward(count: n, dA: &dA, dB: &dB, dOutput: dOut, a: a, b: b)
            }
            let fixedB = b, fixedA = a
            let numA = numericalGradient(&a) { dot(forward($0, fixedB), dOut) }
            let numB = numericalGradient(&b) { dot(forward(fixedA, $0), dOut) }
            checkTensor("\(iand ? "iand" : "and") dA", dA, numA, rtol: fdRtol, atol: fdAtol)
            checkTensor("\(iand ? "iand" : "and") dB", dB, numB, rtol: fdRtol, atol: fdAtol)
        }
        // SEW's truth tables on spikes: AND passes both, IAND passes b where a is silent.
        var y = [Double](repeating: 0, count: 4)
        andJoinForward(count: 4, output: &y, a: [0, 0, 1, 1], b: [0, 1, 0, 1])
        XCTAssertEqual(y, [0, 0, 0, 1])
        iandJoinForward(count: 4, output: &y, a: [0, 0, 1, 1], b: [0, 1, 0, 1])
        XCTAssertEqual(y, [0, 1, 0, 0])
    }

    func testConcatForwardAndBackwardMatchFiniteDifferences() {
        let samples = 3, sizes = [2 * 4, 3 * 4]  // [2, 2, 2] and [3, 2, 2] per sample
        let total = sizes.reduce(0, +)
        var p0 = randomArray(samples * sizes[0], seed: 94), p1 = randomArray(samples * sizes[1], seed: 95)
        let dOut = randomArray(samples * total, seed: 96)
        func forward(_ p0: [Double], _ p1: [Double]) -> [Double] {
            var y = [Double](repeating: 0, count: samples * total)
            p0.withUnsafeBufferPointer { a in
                p1.withUnsafeBufferPointer { b in
                    concatForward(samples: samples, partSizes: sizes, output: &y, parts: [a.baseAddress!, b.baseAddress!])
                }
            }
            return y
        }
        let y = forward(p0, p1)
        XCTAssertEqual(Array(y[0..<8]), Array(p0[0..<8]))
        XCTAssertEqual(Array(y[8..<20]), Array(p1[0..<12]))
        XCTAssertEqual(Array(y[20..<28]), Array(p0[8..<16]))
        var d0 = [Double](repeating: .nan, count: p0.count), d1 = [Double](repeating: .nan, count: p1.count)
        d0.withUnsafeMutableBufferPointer { a in
            d1.withUnsafeMutableBufferPointer { b in
                concatBackward(samples: samples, partSizes: sizes, dParts: [a.baseAddress!, b.baseAddress!], dOutput: dOut)
            }
        }
        let fixed1 = p1, fixed0 = p0
        checkTensor("concat dPart0", d0, numericalGradient(&p0) { dot(forward($0, fixed1), dOut) }, rtol: fdRtol, atol: fdAtol)
        checkTensor("concat dPart1", d1, numericalGradient(&p1) { dot(forward(fixed0, $0), dOut) }, rtol: fdRtol, atol: fdAtol)
    }

    // MARK: Whole networks

    func testEveryJoinInANetworkMatchesFiniteDifferences() throws {
        let profile = try Self.forkProfile
        let trainer = try Trainer<Double>(profile: profile, strategy: .bptt, allocator: CountingAllocator(rounding: .exact), seed: 3)
        trainer.smoothSpikes = true
        var random = SeededRandom(seed: 12)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 1.5) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let check = try NetworkFiniteDifferences(trainer, images: images, labels: labels, samplesPerTensor: 4,
                                                 parameters: trainer.trainableParameters.filter { $0.name == "weight" })
        // Every path's conv, behind every join, was checked.
        for path in ["fan/path0/a", "fan/path2/b", "dense/path1/c", "sew_iand/path0/m", "sew_and/path0/m",
                     "sew_and/path1/inner/path1/d", "sew_and/path1/d2", "stem"] {
            XCTAssertTrue(check.checkedPaths.contains(path), path)
        }
        XCTAssertLessThan(check.worstRelative, 1e-5, "worst: \(check.worst)")
    }

    func testCheckpointAndSLTTAgreeWithBPTT() throws {
        let profile = try ProfileLoader.parse(yaml: Self.forkYAML.replacingOccurrences(of: "timesteps: 3", with: "timesteps: 4"),
                                              file: "fork.yaml")
        let (_, reference) = try gradients(profile, .bptt)
        for segment in [1, 3] {
            let (_, checkpoint) = try gradients(profile, .checkpoint, segment: segment)
            XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(reference, checkpoint), 1e-9, "segment \(segment)")
        }
        let (slttLoss, sltt) = try gradients(profile, .sltt)
        let (cutLoss, cut) = try gradients(profile, .bptt, pathCut: true)
        XCTAssertEqual(slttLoss, cutLoss, accuracy: 1e-12)
        XCTAssertLessThan(NetworkGradientTests.maxRelativeDifference(sltt, cut), 1e-10)
        XCTAssertGreaterThan(NetworkGradientTests.maxRelativeDifference(sltt, reference), 1e-3)
    }

    func gradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil,
                   pathCut: Bool = false) throws -> (loss: Double, gradients: [String: [Double]]) {
        let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                          allocator: CountingAllocator(rounding: .exact), seed: 4)
        trainer.bpttWithTemporalPathCut = pathCut
        var random = SeededRandom(seed: 8)
        let images = (0..<trainer.imageValues).map { _ in random.uniform(-0.5, 2) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let loss = try trainer.lossAndGradients(images: images, labels: labels).loss
        let out = trainer.parameterGradients
        return (loss, out)
    }

    // MARK: Predicted == measured

    func testPlanMatchesMeasurementUnderEverySchedule() throws {
        let profile = try Self.forkProfile
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            try assertPlanMatches(profile, strategy)
        }
        try assertPlanMatches(profile, .checkpoint, timesteps: 5)
        try assertPlanMatches(profile, .bptt, batch: 3)
    }

    /// PlannedVersusMeasuredTests' check: the engine's events equal the plan's, one by one.
    func assertPlanMatches(_ profile: Profile, _ strategy: Strategy, batch: Int? = nil, timesteps: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws {
        let allocator = CountingAllocator(rounding: .exact)
        let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: batch, timesteps: timesteps, allocator: allocator)
        var random = SeededRandom(seed: 7)
        let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1.5)) }
        let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
        let result = try trainer.step(images: images, labels: labels)
        XCTAssertTrue(result.loss.isFinite, file: file, line: line)
        let plan = try Planner.plan(profile, strategy: strategy, options: .init(batch: batch, timesteps: timesteps))
        let comparison = TraceComparison.compare(plan: plan, measured: allocator.recorder.events)
        XCTAssertNil(comparison.firstDifference, "\(strategy)", file: file, line: line)
        XCTAssertEqual(comparison.measuredPeakBytes, comparison.plannedPeakBytes, "\(strategy)", file: file, line: line)
        XCTAssertTrue(allocator.recorder.endStep().doubleFrees.isEmpty, file: file, line: line)
    }

    func testJoinsKeepWhatTheyDeclare() throws {
        let plan = try Planner.plan(try Self.forkProfile, strategy: .bptt, options: .init())
        let savedByLayer = Dictionary(grouping: plan.tensors.filter(\.keptForBackward), by: { $0.keptByLayer ?? "" })
        // The products keep their two operands per timestep; add and concat keep nothing. IAND's b is
        // the block input, which its path's first conv kept already, so only a is the join's own.
        XCTAssertEqual(savedByLayer["sew_iand"]?.count, 3)
        XCTAssertEqual(savedByLayer["sew_and"]?.count, 2 * 3)
        XCTAssertNil(savedByLayer["fan"])
        XCTAssertNil(savedByLayer["dense"])
    }

    /// The PyTorch runtimes' joins (`BranchesWalk.swift`, measured in python/tests/test_branches.py):
    /// IAND keeps `1 - a` (a tensor of its own) and b, AND keeps a and b, a concat's backward hands out
    /// views (no per-path gradient), and RsubBackward1 makes one negated gradient.
    func testPyTorchJoinsKeepWhatAutogradKeeps() throws {
        for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
            let plan = try Planner.plan(try Self.forkProfile, strategy: .bptt, options: .init(runtime: runtime))
            let kept = plan.tensors.filter(\.keptForBackward)
            let iand = kept.filter { $0.keptByLayer == "sew_iand" }.map(\.descriptor.name).sorted()
            XCTAssertEqual(iand, ["one_minus_a"], "\(runtime): b is the path's conv input, kept by it first")
            XCTAssertEqual(kept.filter { $0.keptByLayer == "sew_and" }.map(\.descriptor.name).sorted(), ["output", "output"])
            let names = Set(plan.tensors.filter { $0.descriptor.layerPath == "sew_iand" }.map(\.descriptor.name))
            XCTAssertEqual(names, ["one_minus_a", "output", "grad_b", "grad_one_minus_a", "grad_a"], "\(runtime)")
            XCTAssertFalse(plan.tensors.contains { $0.descriptor.layerPath == "dense" && $0.descriptor.name.hasPrefix("dPath") })
            XCTAssertNil(kept.first { $0.keptByLayer == "fan" || $0.keptByLayer == "dense" })
        }
    }

    func testReversibleSchedulesRefuseBranches() throws {
        let profile = try Self.forkProfile
        XCTAssertTrue(Strategy.revsnn.notApplicableReason(profile)?.contains("'fan' is a branches block") ?? false)
        XCTAssertNotNil(Strategy.trevsnn.notApplicableReason(profile))
    }
}
