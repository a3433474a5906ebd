import Foundation
import MemoryModel
import Profiles
import XCTest

final class BundledProfileTests: XCTestCase {
    static let profilesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("profiles")

    func load(_ name: String) throws -> Profile {
        try ProfileLoader.load(path: Self.profilesFolder.appendingPathComponent(name + ".yaml").path)
    }

    func convs(_ profile: Profile) -> [ConvSpec] {
        profile.allLayers.compactMap { if case .conv(let c) = $0.kind { return c }; return nil }
    }

    /// Trainable parameters as PyTorch counts them (running statistics excluded).
    func trainableParameters(_ profile: Profile) -> Int {
        profile.allLayers.reduce(0) { total, layer in
            switch layer.kind {
            case .conv(let c): return total + c.outChannels * c.inChannels / c.groups * c.kernel * c.kernel + (c.bias ? c.outChannels : 0)
            case .batchNorm(let channels): return total + 2 * channels
            case .conv1d(let c): return total + c.outChannels * c.inChannels + (c.bias ? c.outChannels : 0)
            case .linear(let l): return total + l.inFeatures * l.outFeatures + (l.bias ? l.outFeatures : 0)
            default: return total
            }
        }
    }

    func testEveryBundledProfileLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.profilesFolder.path).filter { $0.hasSuffix(".yaml") }
        for required in ["cifarnet", "vgg11", "vgg13", "resnet19", "resnet18", "sew-resnet34", "digits",
                         "revsresnet21", "revsresnet37", "trevsnn-cifar", "revvgg13", "spiking-unet", "cifar10dvs"] {
            XCTAssertTrue(files.contains(required + ".yaml"), required)
        }
        for file in files {
            let profile = try ProfileLoader.load(path: Self.profilesFolder.appendingPathComponent(file).path)
            XCTAssertFalse(profile.description.isEmpty, file)
            XCTAssertGreaterThanOrEqual(profile.classes, 10, file)
        }
    }

    func testSpikformerHasThePapersShapeAndParameterCount() throws {
        // Zhou et al. (ICLR 2023), Table 2: Spikformer-4-384 on CIFAR-10 has 9.32M parameters.
        let profile = try load("spikformer-4-384")
        XCTAssertEqual(trainableParameters(profile), 9_320_122)
        let attention = profile.allLayers.compactMap { if case .attention(let spec) = $0.kind { return spec }; return nil }
        XCTAssertEqual(attention.count, 4)
        XCTAssertEqual(attention[0].mapShape, TensorShape([12, 64, 64]))
        XCTAssertEqual(attention[0].headsShape, TensorShape([12, 64, 32]))
        XCTAssertEqual(attention[0].parts.map(\.name), ["q_conv", "q_bn", "q_lif", "k_conv", "k_bn", "k_lif", "v_conv", "v_bn", "v_lif",
                                                      "attn_lif", "proj_conv", "proj_bn", "proj_lif"])
        if case .neuron(let neuron) = attention[0].attentionNeuron.kind {
            XCTAssertEqual(neuron.threshold, 0.5)
        } else {
            XCTFail("attn_lif is not a neuron")
        }
        XCTAssertEqual(profile.layers.first { $0.kind == .tokens }?.outputShape, TensorShape([384, 64]))
    }

    func testSpikeDrivenTransformerHasThePapersParameterCount() throws {
        // Yao et al. (NeurIPS 2023), Table 2: Spike-driven Transformer-8-512 has 29.68M parameters.
        let profile = try load("spike-driven-transformer-8-512")
        XCTAssertEqual(trainableParameters(profile), 29_689_384)
        let attention = profile.allLayers.compactMap { if case .attention(let spec) = $0.kind { return spec }; return nil }
        XCTAssertEqual(attention.count, 8)
        XCTAssertEqual(attention[0].kind, .sdsa)
        XCTAssertEqual(attention[0].attentionNeuron.name, "talking_heads_lif")
        XCTAssertEqual(attention[0].attentionNeuron.outputShape, TensorShape([512, 1]))
        XCTAssertEqual(attention[0].projection.count, 2, "no neuron after the projection")
        XCTAssertEqual(profile.layers.first { $0.kind == .tokens }?.outputShape, TensorShape([512, 196]))
    }

    func testCifarnetShapes() throws {
        let profile = try load("cifarnet")
        XCTAssertEqual(profile.inputShape, TensorShape([3, 32, 32]))
        XCTAssertEqual(profile.timesteps, 4)
        XCTAssertEqual(profile.batch, 16)
        XCTAssertEqual(convs(profile).map(\.outChannels), [64, 128, 256, 256])
        XCTAssertEqual(profile.layers.first { $0.kind == .flatten }?.outputShape, TensorShape([4096]))
        XCTAssertEqual(profile.classes, 10)
        XCTAssertEqual(profile.layers.filter { if case .neuron = $0.kind { return true }; return false }.count, 4)
    }

    func testResNetsMatchTheirPublishedParameterCounts() throws {
        // torchvision's resnet18 and resnet34 have 11,689,512 and 21,797,672 parameters; the
        // spiking versions add neurons, which have none.
        let resnet18 = try load("resnet18")
        XCTAssertEqual(trainableParameters(resnet18), 11_689_512)
        XCTAssertEqual(convs(resnet18).count, 20)
        let pool = resnet18.layers.first { $0.name == "pool" }!
        XCTAssertEqual(pool.inputShape, TensorShape([512, 7, 7]))
        let sew = try load("sew-resnet34")
        XCTAssertEqual(trainableParameters(sew), 21_797_672)
        XCTAssertEqual(convs(sew).count, 36)
        XCTAssertEqual(sew.neuron.type, .if)
    }

    func testResNet19AndVGGLayouts() throws {
        let resnet19 = try load("resnet19")
        XCTAssertEqual(convs(resnet19).count, 17 + 2, "stem + 16 block convs + 2 shortcut convs")
        XCTAssertEqual(resnet19.layers.first { $0.name == "pool" }?.inputShape, TensorShape([512, 8, 8]))
        XCTAssertEqual(convs(try load("vgg11")).count, 8)
        XCTAssertEqual(convs(try load("vgg13")).count, 10)
        XCTAssertEqual(try load("vgg13").layers.first { $0.kind == .flatten }?.inputShape, TensorShape([512, 1, 1]))
    }

    func testRepeatAndResidualPaths() throws {
        let resnet19 = try load("resnet19")
        let paths = resnet19.allLayers.map(\.path)
        XCTAssertTrue(paths.contains("stage1.2/block/main/conv2"), "repeat copies carry their index")
        XCTAssertTrue(paths.contains("stage2_down/shortcut/conv"))
        XCTAssertEqual(Set(paths).count, paths.count, "paths are unique")
    }

    func testReversibleProfiles() throws {
        let shallow = try load("revsresnet21")
        let deep = try load("revsresnet37")
        func blocks(_ p: Profile) -> [Int] {
            p.reversibleStages.map { if case .reversible(let s) = $0.kind { return s.blocks.count }; return 0 }
        }
        XCTAssertEqual(blocks(shallow), [1, 1, 1, 1])
        XCTAssertEqual(blocks(deep), [1, 2, 3, 2])
        XCTAssertEqual(shallow.reversibleStages.map(\.inputShape.dims.first!), [128, 256, 512, 896])
        let vgg = try load("revvgg13")
        XCTAssertEqual(vgg.timesteps, 10)
        XCTAssertEqual(blocks(vgg), [1, 1, 1, 1, 1])
        XCTAssertEqual(convs(vgg).filter { $0.kernel == 3 }.count, 10, "VGG-13's ten 3x3 convolutions, as F and G of five blocks")
        XCTAssertEqual(convs(vgg).filter { $0.kernel == 1 }.count, 5, "one 1x1 widening conv per stage")
    }

    func testTRevSNNLevels() throws {
        let profile = try load("trevsnn-cifar")
        let net = try XCTUnwrap(profile.trevsnnNetwork)
        XCTAssertEqual(net.levels.map(\.stateShape), [TensorShape([48, 16, 16]), TensorShape([96, 8, 8]),
                                                      TensorShape([192, 4, 4]), TensorShape([384, 2, 2])])
        XCTAssertTrue(net.levels.last!.up.isEmpty, "the top level has no level above")
        XCTAssertEqual(net.levels[0].up.last?.kind, .upsample(factor: 2))
        XCTAssertEqual(net.head.last?.outputShape, TensorShape([10]))
        let neurons = profile.allLayers.compactMap { if case .neuron(let n) = $0.kind { return n }; return nil }
        XCTAssertTrue(neurons.allSatisfy { $0.type == .turnoff })
        XCTAssertEqual(profile.classes, 10)
    }

    func testNeuronOverridesAndDefaults() throws {
        let profile = try ProfileLoader.parse(yaml: """
            input: {channels: 2, height: 4, width: 4}
            timesteps: 3
            batch: 2
            dtype: bfloat16
            neuron: {type: lif, tau: 3.0, reset: soft, surrogate: {type: sigmoid, alpha: 4.0}}
            optimizer: {type: adam, learningRate: 0.01}
            layers:
              - neuron
              - neuron: {type: if, detachReset: true}
              - flatten
              - linear: {out: 5, bias: false}
            """, file: "inline.yaml")
        let neurons = profile.allLayers.compactMap { if case .neuron(let n) = $0.kind { return n }; return nil }
        XCTAssertEqual(neurons[0], NeuronSpec(type: .lif, tau: 3.0, reset: .soft, surrogate: .sigmoid, surrogateAlpha: 4.0))
        XCTAssertEqual(neurons[1].type, .if)
        XCTAssertTrue(neurons[1].detachReset)
        XCTAssertEqual(neurons[1].reset, .soft, "unset fields come from the profile's neuron")
        XCTAssertEqual(profile.dtype, .bfloat16)
        XCTAssertEqual(profile.optimizer.type, .adam)
        XCTAssertEqual(profile.optimizer.stateNames.count, 2)
        XCTAssertEqual(profile.layers.last?.kind, .linear(LinearSpec(inFeatures: 32, outFeatures: 5, bias: false)))
    }
}
