import MemoryModel
import Planner
import Profiles
import XCTest

/// Layer norm over [C, N] tokens on the PyTorch runtimes: which layers see its transposed view
/// (`TransposedTokenNeighbours`), what their layouts declare for it, and the neighbours that were
/// not measured with one, refused naming the layer. The fixtures of
/// python/tests/profiles/layernorm-tokens.yaml hold the declarations to PyTorch (PyTorchFixtureTests).
final class TokenLayerNormLayoutTests: XCTestCase {
    static let profilePath = Fixtures.repositoryRoot.appendingPathComponent("python/tests/profiles/layernorm-tokens.yaml").path

    func layer(_ profile: Profile, _ path: String) throws -> Layer {
        try XCTUnwrap(profile.allLayers.first { $0.path == path }, path)
    }

    func testTheFixtureProfilesNeighbours() throws {
        let profile = try ProfileLoader.load(path: Self.profilePath)
        let neighbours = TransposedTokenNeighbours(profile)
        XCTAssertNil(neighbours.refusal)
        let both = PyTorchTransposedTokens(input: true, outputGradient: true)
        let input = PyTorchTransposedTokens(input: true)
        let gradient = PyTorchTransposedTokens(outputGradient: true)
        // ln0 reads `tokens` of stem_lif (a neuron: nothing changes there); fc1 sits between ln0 and ln1;
        // ssa ends in a neuron before ln2; sdsa's q/k/v convs read ln2, its projection batch norm feeds ln3;
        // lif3 and tokenmean read ln3 and ln4.
        XCTAssertEqual(neighbours.byPath, ["fc1": both, "bn1": input, "sdsa/q_conv": input, "sdsa/k_conv": input,
                                           "sdsa/v_conv": input, "sdsa/proj_bn": gradient, "bn2": gradient])
    }

    func testLayoutsDeclareTheCopiesOfATransposedView() throws {
        let profile = try ProfileLoader.load(path: Self.profilePath)
        let fc1 = try layer(profile, "fc1")
        let plain = PyTorchLayerTable.layout(for: fc1, device: .cpu)
        let transposed = PyTorchLayerTable.layout(for: fc1, device: .cpu, transposed: .init(input: true, outputGradient: true))
        let inputCopy = BufferDeclaration(name: "input.contiguous", role: .workspace, shape: fc1.inputShape)
        let gradientCopy = BufferDeclaration(name: "grad_output.contiguous", role: .workspace, shape: fc1.outputShape)
        XCTAssertEqual(transposed.forward, [.allocate(inputCopy)] + plain.forward + [.free("input.contiguous")])
        XCTAssertEqual(Array(transposed.backward.prefix(2)), [.allocate(inputCopy), .allocate(gradientCopy)])
        XCTAssertEqual(transposed.backward.count, plain.backward.count + 4)
        // The batch norm's strided CPU kernels: no input-sized work buffer.
        let bn1 = try layer(profile, "bn1")
        let work = { (d: PyTorchLayerLayout) in d.backward.contains { if case .allocate(let b) = $0 { return b.name == "grad_input.work" }; return false } }
        XCTAssertTrue(work(PyTorchLayerTable.layout(for: bn1, device: .cpu)))
        XCTAssertFalse(work(PyTorchLayerTable.layout(for: bn1, device: .cpu, transposed: .init(input: true))))
        // cuDNN saves a contiguous copy in place of a transposed input.
        let cuda = PyTorchLayerTable.layout(for: bn1, device: .cuda, transposed: .init(input: true))
        XCTAssertFalse(cuda.keepsInput)
        XCTAssertEqual(cuda.forward.first, .save(BufferDeclaration(name: "input.contiguous", role: .activation, shape: bn1.inputShape),
                                                 heldByFinalState: false))
        // The norm itself copies its input (forward) and its output gradient and input (backward).
        let ln1 = try layer(profile, "ln1")
        for device in [PyTorchLayerTable.Device.cpu, .cuda] {
            let d = PyTorchLayerTable.layout(for: ln1, device: device)
            XCTAssertEqual(d.forward.first, .allocate(BufferDeclaration(name: "input.contiguous", role: .workspace, shape: ln1.inputShape)))
            XCTAssertEqual(d.backward.first, .allocate(BufferDeclaration(name: "grad_output.contiguous", role: .workspace, shape: ln1.inputShape)))
        }
    }

    /// Both PyTorch runtimes plan every strategy PyTorch measures; the bytes kept for backward are
    /// the same on both (cuDNN's copy replaces the input it would have kept).
    func testPlansOnBothPyTorchRuntimes() throws {
        let profile = try ProfileLoader.load(path: Self.profilePath)
        for strategy in [Strategy.bptt, .sltt, .checkpoint] {
            let cpu = try Planner.plan(profile, strategy: strategy, options: .init(runtime: .pytorchCPU))
            let cuda = try Planner.plan(profile, strategy: strategy, options: .init(runtime: .pytorchCUDA))
            XCTAssertGreaterThan(cpu.peakBytes, 0)
            if strategy == .bptt {
                let bytes = { (plan: MemoryPlan) in Dictionary(uniqueKeysWithValues: plan.savedBytesByLayer.map { ($0.layer, $0.bytes) }) }
                for path in ["bn1", "ln1", "fc1", "sdsa/q_conv"] { XCTAssertEqual(bytes(cuda)[path], bytes(cpu)[path], path) }
                XCTAssertTrue(cuda.tensors.contains { $0.descriptor.layerPath == "bn1" && $0.descriptor.name == "input.contiguous" })
            }
        }
    }

    /// At the ends of a residual's main path (python/tests/profiles/layernorm-tokens-residual.yaml, with
    /// fixtures): pre-norm beside an identity shortcut and post-norm before a LIF change no neighbour's layout.
    func testNormsAtTheEndsOfResidualPaths() throws {
        let path = Fixtures.repositoryRoot.appendingPathComponent("python/tests/profiles/layernorm-tokens-residual.yaml").path
        let profile = try ProfileLoader.load(path: path)
        let neighbours = TransposedTokenNeighbours(profile)
        XCTAssertNil(neighbours.refusal)
        XCTAssertEqual(neighbours.byPath, ["pre/main/fc1": PyTorchTransposedTokens(input: true),
                                           "post/main/fc2": PyTorchTransposedTokens(outputGradient: true)])
    }

    /// Neighbours not measured with a transposed view: refused on both PyTorch runtimes naming the
    /// norm and the layer; the engine plans them all.
    func testUnmeasuredNeighboursAreRefusedNamingTheLayer() throws {
        let head = """
            input: {channels: 2, height: 4, width: 4}
            timesteps: 2
            batch: 2
            layers:
              - conv: {name: stem, out: 8, kernel: 3, padding: 1}
              - neuron: {name: stem_lif}
              - tokens

            """
        let tail = "\n  - tokenmean\n  - linear: {out: 10}\n"
        let cases: [(layers: String, expected: String)] = [
            ("  - conv1d: {name: fc, out: 8}\n  - residual: {name: block, main: [layernorm: {name: pre}, conv1d: {name: fc2, out: 8}], "
                + "shortcut: [conv1d: {name: down, out: 8}]}",
             "layer norm 'block/main/pre' over [C, N] tokens: it starts its path beside a shortcut with layers"),
            ("  - conv1d: {name: fc, out: 8}\n  - residual: {name: block, main: [conv1d: {name: fc2, out: 8}, layernorm: {name: post}]}\n"
                + "  - conv1d: {name: fc3, out: 8}",
             "layer norm 'block/main/post' over [C, N] tokens: it ends the main path of 'block', whose add is then transposed and goes into 'fc3' (conv1d)"),
            ("  - conv1d: {name: fc, out: 8}\n  - branches: {name: fork, join: add, paths: [[layernorm: {name: a}], [conv1d: {name: fc2, out: 8}]]}",
             "layer norm 'fork/path0/a' over [C, N] tokens: it starts its path"),
            ("  - layernorm: {name: a}\n  - layernorm: {name: b}", "layer norm 'a' over [C, N] tokens: its transposed output goes into 'b' (layernorm)"),
            ("  - layernorm: {name: a}\n  - neuron: {name: p, type: plif}", "goes into 'p' (neuron)"),
            ("  - conv1d: {name: fc, out: 8}\n  - neuron: {name: p, type: plif}\n  - layernorm: {name: a}\n  - conv1d: {name: fc2, out: 8}",
             "layer norm 'a' over [C, N] tokens: its transposed input gradient reaches 'p' (neuron)"),
        ]
        for (layers, expected) in cases {
            let profile = try ProfileLoader.parse(yaml: head.replacingOccurrences(of: "  - tokens\n", with: "  - tokens\n" + layers) + tail,
                                                  file: "tokens.yaml")
            for runtime in [Runtime.pytorchCPU, .pytorchCUDA] {
                XCTAssertThrowsError(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: runtime)), expected) { error in
                    XCTAssertTrue("\(error)".contains(expected), "\(error)")
                    XCTAssertTrue("\(error)".contains("--runtime snnmem"), "\(error)")
                }
            }
            XCTAssertNoThrow(try Planner.plan(profile, strategy: .bptt, options: .init(runtime: .snnmem)), expected)
        }
        // `tokens` after a conv: the norm's gradient would reach the conv through the view.
        let conv = try ProfileLoader.parse(yaml: head.replacingOccurrences(of: "  - neuron: {name: stem_lif}\n", with: "")
                                            .replacingOccurrences(of: "  - tokens\n", with: "  - tokens\n  - layernorm: {name: a}") + tail,
                                           file: "tokens.yaml")
        XCTAssertEqual(TransposedTokenNeighbours(conv).refusal?.contains("goes through 'tokens' to 'stem' (conv)"), true)
    }
}
