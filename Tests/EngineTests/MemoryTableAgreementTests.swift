import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import XCTest

/// The kernels need exactly the scratch and saved buffers the planner's LayerMemoryTable declares:
/// checked for every conv, batch norm, neuron and pooling layer of every bundled profile.
final class MemoryTableAgreementTests: XCTestCase {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    func testKernelBuffersMatchDeclarations() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.repositoryRoot.appendingPathComponent("profiles").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertFalse(names.isEmpty)
        var checked = 0
        for name in names {
            let profile = try ProfileLoader.load(path: Self.repositoryRoot.appendingPathComponent("profiles/\(name)").path)
            for layer in profile.allLayers {
                let declaration = LayerMemoryTable.declaration(for: layer)
                let input = layer.inputShape.dims, output = layer.outputShape.dims
                let context = "\(name) \(layer.path)"
                switch layer.kind {
                case .conv(let spec):
                    let shape = Conv2DShape(spec, batch: 1, height: input[1], width: input[2])
                    XCTAssertEqual([shape.outChannels, shape.outHeight, shape.outWidth], output, context)
                    XCTAssertEqual(shape.weightCount, declaration.parameters[0].shape.elementCount, context)
                    // Grouped convs' scratch grows with the batch up to their group: checked below, at and past it.
                    for batch in [1, 3, 16, 100] {
                        let atBatch = Conv2DShape(spec, batch: batch, height: input[1], width: input[2])
                        XCTAssertEqual(atBatch.workspaceCount, declaration.forwardWorkspace.first?.scratchShape(batch: batch).elementCount ?? 0,
                                       "\(context) batch \(batch)")
                        XCTAssertEqual(atBatch.workspaceCount, declaration.backwardWorkspace.first?.scratchShape(batch: batch).elementCount ?? 0,
                                       "\(context) batch \(batch)")
                    }
                    XCTAssertTrue(declaration.saved.isEmpty && declaration.keepsInput, context)
                    checked += 1
                case .batchNorm(let channels):
                    // mean and invstd, [C] float32: what batchNormForward saves for T = Float.
                    XCTAssertEqual(declaration.saved.map(\.name), ["mean", "invstd"], context)
                    XCTAssertEqual(declaration.saved.map { $0.shape.elementCount }, [channels, channels], context)
                    XCTAssertEqual(declaration.saved.map(\.dtype), [.float32, .float32], context)
                    XCTAssertTrue(declaration.keepsInput && declaration.forwardWorkspace.isEmpty, context)
                    checked += 1
                case .neuron(let spec):
                    if spec.type == .plif {
                        // PLIF also keeps its charge factor, for dL/dw.
                        XCTAssertEqual(declaration.saved.map(\.name), ["h", "factor"], context)
                        XCTAssertEqual(declaration.saved.map(\.shape), [layer.outputShape, layer.outputShape], context)
                        XCTAssertEqual(declaration.parameters.map(\.name), ["w"], context)
                    } else if spec.type == .li {
                        // Linear in x and v: nothing saved, v and dL/dv carried.
                        XCTAssertTrue(declaration.saved.isEmpty && !declaration.keepsInput, context)
                        XCTAssertEqual(declaration.forwardState.map(\.name), ["v"], context)
                    } else if spec.carriesState {
                        XCTAssertEqual(declaration.saved.map(\.name), ["h"], context)
                        XCTAssertEqual(declaration.saved[0].shape, layer.outputShape, context)
                        XCTAssertFalse(declaration.keepsInput, context)
                    } else {
                        XCTAssertTrue(declaration.saved.isEmpty && declaration.keepsInput, context)
                    }
                    XCTAssertTrue(declaration.forwardWorkspace.isEmpty, context)
                    checked += 1
                case .maxPool(let spec):
                    let shape = Pool2DShape(batch: 1, channels: input[0], height: input[1], width: input[2],
                                            kernel: spec.kernel, stride: spec.stride, padding: spec.padding)
                    XCTAssertEqual([input[0], shape.outHeight, shape.outWidth], output, context)
                    XCTAssertEqual(declaration.saved.map(\.dtype), [.int32], context)
                    XCTAssertEqual(declaration.saved[0].shape.elementCount, shape.outputCount, context)
                    checked += 1
                case .avgPool(let spec):
                    let shape = Pool2DShape(batch: 1, channels: input[0], height: input[1], width: input[2],
                                            kernel: spec.kernel, stride: spec.stride, padding: spec.padding)
                    XCTAssertEqual([input[0], shape.outHeight, shape.outWidth], output, context)
                    XCTAssertTrue(declaration.saved.isEmpty && !declaration.keepsInput, context)
                    checked += 1
                case .linear(let spec):
                    XCTAssertEqual(LinearShape(batch: 1, inFeatures: spec.inFeatures, outFeatures: spec.outFeatures).weightCount,
                                   declaration.parameters[0].shape.elementCount, context)
                    XCTAssertTrue(declaration.keepsInput && declaration.saved.isEmpty, context)
                    checked += 1
                case .upsample(let factor):
                    let shape = UpsampleShape(batch: 1, channels: input[0], height: input[1], width: input[2], factor: factor)
                    XCTAssertEqual([input[0], shape.outHeight, shape.outWidth], output, context)
                    XCTAssertTrue(declaration.saved.isEmpty && !declaration.keepsInput, context)
                    checked += 1
                case .scale:
                    XCTAssertTrue(declaration.keepsInput && declaration.parameters[0].shape.elementCount == 1, context)
                    checked += 1
                case .recurrent(let spec):
                    // recurrentForward/Backward: W [out, in + out], s_{t-1} and h per timestep, I_t and dI_t scratch
                    // for the batch, state and dState of 2 x out (v then s_{t-1}).
                    let shape = RecurrentShape(batch: 5, inFeatures: spec.inFeatures, outFeatures: spec.outFeatures)
                    XCTAssertEqual(declaration.parameters[0].shape.dims, [spec.outFeatures, shape.weightColumns], context)
                    XCTAssertEqual(declaration.saved.map(\.name), ["sPrevious", "h"], context)
                    XCTAssertEqual(declaration.saved.map { $0.shape.elementCount * 5 }, [shape.outCount, shape.outCount], context)
                    XCTAssertEqual(declaration.forwardWorkspace.first?.scratchShape(batch: 5).elementCount, shape.outCount, context)
                    XCTAssertEqual(declaration.backwardWorkspace.first?.scratchShape(batch: 5).elementCount, shape.outCount, context)
                    XCTAssertEqual(declaration.forwardState.first.map { $0.shape.elementCount * 5 }, 2 * shape.outCount, context)
                    XCTAssertTrue(declaration.keepsInput, context)
                    checked += 1
                default:
                    break
                }
            }
        }
        print("memory table agreement: \(checked) layers in \(names.count) profiles")
        XCTAssertGreaterThan(checked, 100)
    }
}
