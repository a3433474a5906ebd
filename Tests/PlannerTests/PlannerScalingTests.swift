import MemoryModel
import Planner
import Profiles
import XCTest

/// How each strategy's kept-for-backward bytes scale with T and with depth.
final class PlannerScalingTests: XCTestCase {
    func testBPTTActivationBytesAreExactlyProportionalToT() throws {
        for name in Fixtures.bundledNames {
            let profile = try Fixtures.bundled(name)
            let one = try Fixtures.plan(profile, .bptt, batch: 2, timesteps: 1).activationBytes
            XCTAssertGreaterThan(one, 0, name)
            if profile.trevsnnNetwork != nil { continue }  // its columns are checked below
            for t in [2, 3, 8] {
                XCTAssertEqual(try Fixtures.plan(profile, .bptt, batch: 2, timesteps: t).activationBytes, t * one, "\(name) T=\(t)")
            }
        }
    }

    func testSLTTActivationBytesAreConstantInT() throws {
        for name in ["cifarnet", "vgg11", "resnet19", "revsresnet21"] {
            let profile = try Fixtures.bundled(name)
            let one = try Fixtures.plan(profile, .sltt, batch: 2, timesteps: 1).activationBytes
            for t in [2, 4, 16] {
                XCTAssertEqual(try Fixtures.plan(profile, .sltt, batch: 2, timesteps: t).activationBytes, one, "\(name) T=\(t)")
            }
        }
    }

    func testTRevSNNActivationBytesAreConstantInTWhileBPTTGrows() throws {
        let profile = try Fixtures.bundled("trevsnn-cifar")
        let atTwo = try Fixtures.plan(profile, .trevsnn, batch: 2, timesteps: 2).activationBytes
        for t in [4, 8, 16] {
            XCTAssertEqual(try Fixtures.plan(profile, .trevsnn, batch: 2, timesteps: t).activationBytes, atTwo, "T=\(t)")
        }
        let bptt2 = try Fixtures.plan(profile, .bptt, batch: 2, timesteps: 2).activationBytes
        let bptt16 = try Fixtures.plan(profile, .bptt, batch: 2, timesteps: 16).activationBytes
        XCTAssertGreaterThan(Double(bptt16) / Double(bptt2), 7.0, "bptt on columns keeps every column's graph")
        XCTAssertLessThan(atTwo, bptt2)
    }

    func testRevSNNActivationBytesAreConstantInDepth() throws {
        let shallow = try Fixtures.plan(try Fixtures.bundled("revsresnet21"), .revsnn, batch: 4)
        let deep = try Fixtures.plan(try Fixtures.bundled("revsresnet37"), .revsnn, batch: 4)
        XCTAssertEqual(shallow.activationBytes, deep.activationBytes)
        // bptt on the same networks grows with the extra blocks.
        let shallowBPTT = try Fixtures.plan(try Fixtures.bundled("revsresnet21"), .bptt, batch: 4)
        let deepBPTT = try Fixtures.plan(try Fixtures.bundled("revsresnet37"), .bptt, batch: 4)
        XCTAssertGreaterThan(deepBPTT.activationBytes, shallowBPTT.activationBytes)
        XCTAssertGreaterThan(deep.recomputeFlops, shallow.recomputeFlops, "more blocks are reconstructed")
    }

    func testRevSNNKeepsOnlyStageOutputsOfReversibleStages() throws {
        let plan = try Fixtures.plan(try Fixtures.bundled("revsresnet21"), .revsnn, batch: 2)
        let allocatedInForward = Set(plan.events.compactMap { event -> Int? in
            if case .forward = event.phase, event.kind == .allocate { return event.tensorID }
            return nil
        })
        // Of everything computed inside the reversible blocks in forward, only the last block's two
        // output halves of each stage are kept (they are the stage output); the rest is rebuilt.
        let keptFromBlocks = plan.savedTensors.filter { allocatedInForward.contains($0.id) && $0.descriptor.layerPath.contains("/block") }
        XCTAssertEqual(keptFromBlocks.count, 2 * 4, keptFromBlocks.map(\.descriptor.label).joined(separator: ", "))
        let halfBytes = keptFromBlocks.map(\.bytes)
        XCTAssertEqual(halfBytes[0], 4 * 2 * 64 * 32 * 32 * 4, "T x B x C/2 x H x W floats")
    }

    func testCheckpointIsBetweenBPTTAndSLTTAndFollowsTheSegment() throws {
        let profile = try Fixtures.bundled("cifarnet")
        let bptt = try Fixtures.plan(profile, .bptt, batch: 4, timesteps: 16).activationBytes
        let sltt = try Fixtures.plan(profile, .sltt, batch: 4, timesteps: 16).activationBytes
        let k4 = try Fixtures.plan(profile, .checkpoint, batch: 4, timesteps: 16)
        XCTAssertEqual(k4.segment, 4, "default k = round(sqrt(16))")
        XCTAssertLessThan(k4.activationBytes, bptt)
        XCTAssertGreaterThan(k4.activationBytes, sltt)
        // k = T keeps nothing in forward and recomputes everything in one segment: as much as bptt.
        XCTAssertEqual(try Fixtures.plan(profile, .checkpoint, batch: 4, timesteps: 16, segment: 16).activationBytes, bptt)
        // k = 1 recomputes one timestep at a time: SLTT's kept bytes plus the checkpoints.
        let k1 = try Fixtures.plan(profile, .checkpoint, batch: 4, timesteps: 16, segment: 1).activationBytes
        XCTAssertGreaterThan(k1, sltt)
    }

    func testJemallocAndCudaRoundingNeverShrinkAndAreGranular() throws {
        let profile = try Fixtures.bundled("digits")
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let exact = try Planner.plan(profile, strategy: strategy, options: .init(rounding: .exact))
            let jemalloc = try Planner.plan(profile, strategy: strategy, options: .init(rounding: .jemalloc))
            let cuda = try Planner.plan(profile, strategy: strategy, options: .init(rounding: .cuda))
            XCTAssertGreaterThan(jemalloc.peakBytes, exact.peakBytes, "\(strategy): small tensors round up")
            XCTAssertGreaterThan(cuda.peakBytes, exact.peakBytes)
            XCTAssertEqual(cuda.peakBytes % 512, 0)
            XCTAssertEqual(jemalloc.peakBytes % 64, 0, "64-byte aligned size classes")
        }
        XCTAssertEqual(AllocatorRounding.jemalloc.roundedBytes(20000), 20480)
        XCTAssertEqual(AllocatorRounding.jemalloc.roundedBytes((1 << 20) + 1), 1_310_720)
        XCTAssertEqual(AllocatorRounding.cuda.roundedBytes(513), 1024)
    }

    func testEveryBundledProfileUnderEveryApplicableStrategyGivesAConsistentTrace() throws {
        for name in Fixtures.bundledNames {
            let profile = try Fixtures.bundled(name)
            let (plans, skipped) = try Planner.planAll(profile, options: .init(batch: 2))
            XCTAssertEqual(plans.count + skipped.count, Strategy.allCases.count)
            for plan in plans {
                let sweep = PeakSweep().run(plan.events, allowLive: Set(plan.tensors.filter(\.persistent).map(\.id)))
                XCTAssertTrue(sweep.problems.isEmpty, "\(name) \(plan.strategy): \(sweep.problems.prefix(3))")
                XCTAssertEqual(sweep.finalLiveBytes, plan.persistentBytes, "\(name) \(plan.strategy): only persistent tensors survive")
                XCTAssertGreaterThan(plan.peakBytes, plan.persistentBytes)
                XCTAssertGreaterThan(plan.forwardFlops, 0)
            }
        }
    }
}
