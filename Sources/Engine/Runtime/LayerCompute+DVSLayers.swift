import MemoryModel
import Planner
import Profiles

/// Dropout, adaptive average pooling and voting on one timestep slice (see `computeForward`).
extension TrainingStep {
    func dvsForward(_ layer: Layer, path: String, t: Int, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>, own: [Int]) {
        let inCount = batch * layer.inputShape.elementCount
        switch layer.kind {
        case .dropout(let p):
            if inference {
                output.update(from: input, count: inCount)  // evaluation: dropout is the identity
                return
            }
            let mask = heap.values(own[0])
            // One mask for the span, drawn before its first slice; every timestep multiplies by it.
            if t == 0 { dropoutMask(count: inCount, probability: p, seed: dropoutSeed, layerKey: dropoutLayerKey(path), mask: mask) }
            dropoutForward(count: inCount, output: output, input: input, mask: mask)
        case .adaptiveAvgPool(let oh, let ow):
            let dims = layer.inputShape.dims
            adaptiveAvgPool2dForward(AdaptivePool2DShape(batch: batch, channels: dims[0], height: dims[1], width: dims[2],
                                                         outHeight: oh, outWidth: ow), output: output, input: input)
        case .voting(let size):
            votingForward(batch: batch, features: layer.inputShape.dims[0], size: size, output: output, input: input)
        default:
            preconditionFailure("\(layer.kind.keyword) is not a DVS-network layer")
        }
    }

    func dvsBackward(_ layer: Layer, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>, saved: [Int]) {
        switch layer.kind {
        case .dropout:
            dropoutBackward(count: batch * layer.inputShape.elementCount, dInput: dInput, dOutput: dOutput,
                            mask: heap.values(saved[0]))
        case .adaptiveAvgPool(let oh, let ow):
            let dims = layer.inputShape.dims
            adaptiveAvgPool2dBackward(AdaptivePool2DShape(batch: batch, channels: dims[0], height: dims[1], width: dims[2],
                                                          outHeight: oh, outWidth: ow), dInput: dInput, dOutput: dOutput)
        case .voting(let size):
            votingBackward(batch: batch, features: layer.inputShape.dims[0], size: size, dInput: dInput, dOutput: dOutput)
        default:
            preconditionFailure("\(layer.kind.keyword) is not a DVS-network layer")
        }
    }
}
