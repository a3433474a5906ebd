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

    /// One timestep of a ParametricLIF: h and the charge factor go to the saved buffers, v is updated in place.
    func plifStepForward(_ neuron: NeuronSpec, path: String, t: Int, count: Int, spike: UnsafeMutablePointer<T>,
                         input: UnsafePointer<T>, own: [Int]) {
        let v = heap.values(forwardStates[path]!)
        let q = plifDecay(heap.values(parameters.slot(path, "w").value)[0])
        plifForward(neuron, q: q, count: count, smooth: smoothSpikes, spike: spike, h: heap.values(own[0]) + t * count,
                    factor: heap.values(own[1]) + t * count, vNext: v, input: input, v: v)
    }

    /// Its backward: dL/dw accumulates dL/dq q (1 - q) of every timestep.
    func plifStepBackward(_ neuron: NeuronSpec, path: String, t: Int, count: Int, dInput: UnsafeMutablePointer<T>,
                          dSpike: UnsafePointer<T>, saved: [Int], dv: Int?) {
        let w = parameters.slot(path, "w")
        let q = plifDecay(heap.values(w.value)[0])
        let dvPointer = dv.map { heap.values($0) }
        let dq = plifBackward(neuron, q: q, count: count, smooth: smoothSpikes, dInput: dInput, dVPrevious: dvPointer, dSpike: dSpike,
                              dVNext: dvPointer.map { UnsafePointer($0) }, h: heap.values(saved[0]) + t * count,
                              factor: heap.values(saved[1]) + t * count)
        heap.values(w.gradient!)[0] += dq * q * (1 - q)
    }
}
