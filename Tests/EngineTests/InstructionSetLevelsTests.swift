import Allocator
import CKernels
import Engine
import Planner
import Profiles
import XCTest

/// One CIFARNet training step (bptt, batch 2) at every instruction-set level this process may run:
/// AVX-512 (its GEMM and elementwise kernels), AVX2 (the AVX2 GEMM and kernels, as on a processor
/// without AVX-512) and the baseline (OpenBLAS and SSE2 kernels). The loss and every gradient agree
/// with the baseline's to Float rounding (the GEMMs sum in different orders), and at each level the
/// engine allocates exactly what the plan says.
final class InstructionSetLevelsTests: XCTestCase {
    struct Level {
        var name: String
        var gemm: GEMMBackend
        var elementwise: snn_kernels_level
    }

    static var levels: [Level] {
        [Level(name: "baseline", gemm: .openblas, elementwise: SNN_KERNELS_BASELINE),
         Level(name: "avx2", gemm: .avx2, elementwise: SNN_KERNELS_AVX2),
         Level(name: "avx512", gemm: .avx512, elementwise: SNN_KERNELS_AVX512)]
            .filter { $0.gemm.isSupported && $0.elementwise.rawValue <= snn_kernels_best_level().rawValue }
    }

    func testTrainingStepAgreesAtEveryLevel() throws {
        #if DEBUG
        throw XCTSkip("runs in release builds (swift test -c release), as CI does")
        #endif
        let profile = try EngineMemoryTests.bundled("cifarnet")
        let batch = 2
        let plan = try Planner.plan(profile, strategy: .bptt, options: .init(batch: batch))
        var results: [(name: String, loss: Double, gradients: [[Float]])] = []
        defer { _ = snn_kernels_set_level(snn_kernels_best_level()) }
        for level in Self.levels {
            XCTAssertTrue(snn_kernels_set_level(level.elementwise), level.name)
            let allocator = CountingAllocator(rounding: .exact)
            let trainer = try Trainer<Float>(profile: profile, strategy: .bptt, batch: batch, allocator: allocator)
            var random = SeededRandom(seed: 3)
            let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1)) }
            let labels = (0..<batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
            let loss = try GEMMBackend.withBackend(level.gemm) { try trainer.lossAndGradients(images: images, labels: labels).loss }
            XCTAssertEqual(ElementwiseKernels.level, level.name)
            XCTAssertNil(TraceComparison.compare(plan: plan, measured: allocator.recorder.events).firstDifference, level.name)
            XCTAssertEqual(allocator.recorder.requested.peakBytes, plan.peakBytes, "\(level.name): measured peak == predicted")
            results.append((level.name, loss, trainer.trainableParameters.map { trainer.gradient($0.path, $0.name) }))
        }
        XCTAssertGreaterThanOrEqual(results.count, 1)
        guard let reference = results.first else { return }
        XCTAssertTrue(reference.loss.isFinite)
        for other in results.dropFirst() {
            XCTAssertEqual(other.loss, reference.loss, accuracy: 1e-4 * abs(reference.loss), "\(other.name) against \(reference.name)")
            for (index, gradient) in other.gradients.enumerated() {
                checkTensor("\(other.name) gradient \(index)", gradient.map(Double.init), reference.gradients[index].map(Double.init),
                            rtol: 1e-3, atol: 1e-4)
            }
        }
        print("training step at levels \(results.map(\.name)): losses \(results.map(\.loss))")
    }
}
