import MemoryModel
import Planner
import Profiles

/// The arithmetic of one layer over a span: the kernels called on per-timestep slices, so that a
/// multi-step layer (all T at once) computes exactly what T single steps compute.
extension TrainingStep {
    /// Samples per timestep slice and the number of slices in a span.
    func slices(_ span: Span) -> Int { span == .allTimesteps ? timesteps : 1 }

    /// Whether `x` holds one timestep although the span covers all (the static image, read at every timestep).
    /// Told by element count, not rank: a view such as `tokens` keeps its input's [B, C, H, W] shape
    /// under a layer reading [C, H*W].
    func isBroadcast(_ x: Int, layerInput: TensorShape, span: Span) -> Bool {
        span == .allTimesteps && timesteps > 1 && heap.shape(x).elementCount == batch * layerInput.elementCount
    }

    /// Where timestep `span`'s frame starts in `x` when `x` is the whole [T, B, ...] input sequence
    /// (event frames) and the span one timestep; 0 otherwise (counted in elements, as `isBroadcast`).
    func sequenceOffset(_ x: Int, layerInput: TensorShape, span: Span) -> Int {
        guard let t = span.timestep, timesteps > 1,
              heap.shape(x).elementCount == timesteps * batch * layerInput.elementCount else { return 0 }
        return t * batch * layerInput.elementCount
    }

    func computeForward(_ layer: Layer, path: String, span: Span, x: Int, output: Int, own: [Int], workspace: Int?) {
        let inCount = batch * layer.inputShape.elementCount
        let outCount = batch * layer.outputShape.elementCount
        let broadcast = isBroadcast(x, layerInput: layer.inputShape, span: span)
        let frame = sequenceOffset(x, layerInput: layer.inputShape, span: span)
        let updateRunning: Bool
        if case .forward = heap.phase { updateRunning = true } else { updateRunning = false }
        for t in 0..<slices(span) {
            let input = UnsafePointer(heap.values(x) + frame + (broadcast ? 0 : t * inCount))
            let out = heap.values(output) + t * outCount
            let ws = workspace.map { heap.values($0) }
            switch layer.kind {
            case .conv(let conv):
                let shape = Conv2DShape(conv, batch: batch, height: layer.inputShape.dims[1], width: layer.inputShape.dims[2])
                let weight = parameters.slot(path, "weight")
                let bias = conv.bias ? parameters.slot(path, "bias") : nil
                conv2dForward(shape, output: out, input: input, weight: heap.values(weight.value),
                              bias: bias.map { UnsafePointer(heap.values($0.value)) }, workspace: ws)
            case .convTranspose(let conv):
                let weight = parameters.slot(path, "weight")
                let bias = conv.bias ? parameters.slot(path, "bias") : nil
                convTranspose2dForward(ConvTranspose2DShape(conv, batch: batch, layer: layer), output: out, input: input,
                                       weight: heap.values(weight.value), bias: bias.map { UnsafePointer(heap.values($0.value)) },
                                       workspace: ws)
            case .batchNorm(let channels):
                let shape = BatchNormShape(batch: batch, channels: channels, spatial: layer.inputShape.elementCount / channels)
                if inference {
                    batchNormInference(shape, output: out, input: input, gamma: heap.values(parameters.slot(path, "weight").value),
                                       beta: heap.values(parameters.slot(path, "bias").value),
                                       runningMean: heap.values(parameters.slot(path, "runningMean").value),
                                       runningVar: heap.values(parameters.slot(path, "runningVar").value))
                    continue
                }
                batchNormForward(shape, output: out, saveMean: heap.values(own[0]) + t * channels, saveInvstd: heap.values(own[1]) + t * channels,
                                 input: input, gamma: heap.values(parameters.slot(path, "weight").value),
                                 beta: heap.values(parameters.slot(path, "bias").value),
                                 runningMean: heap.values(parameters.slot(path, "runningMean").value),
                                 runningVar: heap.values(parameters.slot(path, "runningVar").value), updateRunningStatistics: updateRunning)
            case .layerNorm(let spec):
                layerNormStepForward(spec, path: path, t: t, output: out, input: input, own: own)
            case .neuron(let neuron) where neuron.type == .li:
                let v = heap.values(forwardStates[path]!)
                leakyIntegratorForward(neuron, count: outCount, output: out, vNext: v, input: input, v: v)
            case .neuron(let neuron) where neuron.type == .alif:
                alifStepForward(neuron, path: path, t: t, count: outCount, spike: out, input: input, own: own)
            case .neuron(let neuron) where neuron.type == .plif:
                plifStepForward(neuron, path: path, t: t, count: outCount, spike: out, input: input, own: own)
            case .neuron(let neuron):
                if neuron.carriesState {
                    let v = heap.values(forwardStates[path]!)
                    let h = heap.values(own[0]) + t * outCount
                    if smoothSpikes {
                        smoothedNeuronForward(neuron, count: outCount, spike: out, h: h, vNext: v, input: input, v: v)
                    } else {
                        neuronForward(neuron, count: outCount, spike: out, h: h, vNext: v, input: input, v: v)
                    }
                } else if smoothSpikes {
                    smoothedTurnOffNeuronForward(neuron, count: outCount, spike: out, input: input)
                } else {
                    turnOffNeuronForward(neuron, count: outCount, spike: out, input: input)
                }
            case .avgPool(let pool), .maxPool(let pool):
                let shape = Pool2DShape(batch: batch, channels: layer.inputShape.dims[0], height: layer.inputShape.dims[1],
                                        width: layer.inputShape.dims[2], kernel: pool.kernel, stride: pool.stride, padding: pool.padding)
                if case .maxPool = layer.kind {
                    maxPool2dForward(shape, output: out, argmax: heap.indices(own[0]) + t * outCount, input: input)
                } else {
                    avgPool2dForward(shape, output: out, input: input)
                }
            case .linear(let linear):
                let weight = parameters.slot(path, "weight")
                let bias = linear.bias ? parameters.slot(path, "bias") : nil
                linearForward(LinearShape(batch: batch, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures), output: out,
                              input: input, weight: heap.values(weight.value), bias: bias.map { UnsafePointer(heap.values($0.value)) })
            case .upsample(let factor):
                upsampleNearestForward(UpsampleShape(batch: batch, channels: layer.inputShape.dims[0], height: layer.inputShape.dims[1],
                                                     width: layer.inputShape.dims[2], factor: factor), output: out, input: input)
            case .scale:
                scaleForward(count: inCount, output: out, input: input, scale: heap.values(parameters.slot(path, "scale").value))
            case .dropout, .adaptiveAvgPool, .voting:
                dvsForward(layer, path: path, t: t, output: out, input: input, own: own)
            case .flatten, .residual, .branches, .reversible, .trevsnn:
                preconditionFailure("\(layer.kind.keyword) has no kernel of its own")
            case .conv1d(let conv):
                conv1dStepForward(conv, layer, path: path, output: out, input: input)
            case .tokenMean:
                tokenMeanForward(rows: batch * layer.inputShape.dims[0], tokens: layer.inputShape.dims[1], output: out, input: input)
            case .tokens, .attention:
                preconditionFailure("\(layer.kind.keyword) has no kernel of its own")
            case .recurrent(let spec):
                recurrentForwardSlice(spec, path: path, t: t, spike: out, input: input, own: own, workspace: workspace)
            }
        }
    }

    /// Backward of one layer. `saved` is what forward kept: the declared buffers, then the input.
    /// `dv` is the neuron's dL/dv carried across timesteps (nil when the temporal gradient is cut).
    func computeBackward(_ layer: Layer, path: String, span: Span, dY: Int, dX: Int?, saved: [Int], workspace: Int?, dv: Int?) {
        let inCount = batch * layer.inputShape.elementCount
        let outCount = batch * layer.outputShape.elementCount
        let declaration = LayerMemoryTable.declaration(for: layer)
        let keptInput = declaration.keepsInput ? saved.last : nil
        let broadcast = keptInput.map { isBroadcast($0, layerInput: layer.inputShape, span: span) } ?? false
        let frame = keptInput.map { sequenceOffset($0, layerInput: layer.inputShape, span: span) } ?? 0
        // Neurons walk time backwards: dL/dv of timestep t+1 feeds timestep t.
        let order = Array(0..<slices(span)).reversed()
        for t in order {
            let dOut = UnsafePointer(heap.values(dY) + t * outCount)
            let dIn = dX.map { heap.values($0) + t * inCount }
            let input = keptInput.map { UnsafePointer(heap.values($0) + frame + (broadcast ? 0 : t * inCount)) }
            let ws = workspace.map { heap.values($0) }
            switch layer.kind {
            case .conv(let conv):
                let shape = Conv2DShape(conv, batch: batch, height: layer.inputShape.dims[1], width: layer.inputShape.dims[2])
                let weight = parameters.slot(path, "weight")
                let bias = conv.bias ? parameters.slot(path, "bias") : nil
                conv2dBackward(shape, dInput: dIn, dWeight: heap.values(weight.gradient!), dBias: bias.map { heap.values($0.gradient!) },
                               dOutput: dOut, input: input!, weight: heap.values(weight.value), workspace: ws)
            case .convTranspose(let conv):
                let weight = parameters.slot(path, "weight")
                let bias = conv.bias ? parameters.slot(path, "bias") : nil
                convTranspose2dBackward(ConvTranspose2DShape(conv, batch: batch, layer: layer), dInput: dIn,
                                        dWeight: heap.values(weight.gradient!), dBias: bias.map { heap.values($0.gradient!) },
                                        dOutput: dOut, input: input!, weight: heap.values(weight.value), workspace: ws)
            case .batchNorm(let channels):
                let shape = BatchNormShape(batch: batch, channels: channels, spatial: layer.inputShape.elementCount / channels)
                let gamma = parameters.slot(path, "weight"), beta = parameters.slot(path, "bias")
                batchNormBackward(shape, dInput: dIn!, dGamma: heap.values(gamma.gradient!), dBeta: heap.values(beta.gradient!),
                                  dOutput: dOut, input: input!, gamma: heap.values(gamma.value),
                                  mean: heap.values(saved[0]) + t * channels, invstd: heap.values(saved[1]) + t * channels)
            case .layerNorm(let spec):
                layerNormStepBackward(spec, path: path, t: t, dInput: dIn, dOutput: dOut, input: input!, saved: saved)
            case .neuron(let neuron) where neuron.type == .li:
                let dvPointer = dv.map { heap.values($0) }
                leakyIntegratorBackward(neuron, count: outCount, dInput: dIn!, dVPrevious: dvPointer, dOutput: dOut,
                                        dVNext: dvPointer.map { UnsafePointer($0) })
            case .neuron(let neuron) where neuron.type == .alif:
                alifStepBackward(neuron, t: t, count: outCount, dInput: dIn!, dSpike: dOut, saved: saved, dState: dv)
            case .neuron(let neuron) where neuron.type == .plif:
                plifStepBackward(neuron, path: path, t: t, count: outCount, dInput: dIn!, dSpike: dOut, saved: saved, dv: dv)
            case .neuron(let neuron):
                if neuron.carriesState {
                    let dvPointer = dv.map { heap.values($0) }
                    let h = heap.values(saved[0]) + t * outCount
                    if smoothSpikes {
                        smoothedNeuronBackward(neuron, count: outCount, dInput: dIn!, dVPrevious: dvPointer, dSpike: dOut,
                                               dVNext: dvPointer.map { UnsafePointer($0) }, h: h)
                    } else {
                        neuronBackward(neuron, count: outCount, dInput: dIn!, dVPrevious: dvPointer, dSpike: dOut,
                                       dVNext: dvPointer.map { UnsafePointer($0) }, h: h)
                    }
                } else {
                    turnOffNeuronBackward(neuron, count: outCount, dInput: dIn!, dSpike: dOut, input: input!)
                }
            case .avgPool(let pool), .maxPool(let pool):
                let shape = Pool2DShape(batch: batch, channels: layer.inputShape.dims[0], height: layer.inputShape.dims[1],
                                        width: layer.inputShape.dims[2], kernel: pool.kernel, stride: pool.stride, padding: pool.padding)
                if case .maxPool = layer.kind {
                    maxPool2dBackward(shape, dInput: dIn!, dOutput: dOut, argmax: heap.indices(saved[0]) + t * outCount)
                } else {
                    avgPool2dBackward(shape, dInput: dIn!, dOutput: dOut)
                }
            case .linear(let linear):
                let weight = parameters.slot(path, "weight")
                let bias = linear.bias ? parameters.slot(path, "bias") : nil
                linearBackward(LinearShape(batch: batch, inFeatures: linear.inFeatures, outFeatures: linear.outFeatures), dInput: dIn,
                               dWeight: heap.values(weight.gradient!), dBias: bias.map { heap.values($0.gradient!) }, dOutput: dOut,
                               input: input!, weight: heap.values(weight.value))
            case .upsample(let factor):
                upsampleNearestBackward(UpsampleShape(batch: batch, channels: layer.inputShape.dims[0], height: layer.inputShape.dims[1],
                                                      width: layer.inputShape.dims[2], factor: factor), dInput: dIn!, dOutput: dOut)
            case .scale:
                let scale = parameters.slot(path, "scale")
                scaleBackward(count: inCount, dInput: dIn, dScale: heap.values(scale.gradient!), dOutput: dOut, input: input!,
                              scale: heap.values(scale.value))
            case .dropout, .adaptiveAvgPool, .voting:
                dvsBackward(layer, dInput: dIn!, dOutput: dOut, saved: saved)
            case .flatten, .residual, .branches, .reversible, .trevsnn:
                preconditionFailure("\(layer.kind.keyword) has no kernel of its own")
            case .conv1d(let conv):
                conv1dStepBackward(conv, layer, path: path, dInput: dIn, dOutput: dOut, input: input!)
            case .tokenMean:
                tokenMeanBackward(rows: batch * layer.inputShape.dims[0], tokens: layer.inputShape.dims[1], dInput: dIn!, dOutput: dOut)
            case .tokens, .attention:
                preconditionFailure("\(layer.kind.keyword) has no kernel of its own")
            case .recurrent(let spec):
                recurrentBackwardSlice(spec, path: path, t: t, dInput: dIn, dSpike: dOut, input: input!, saved: saved,
                                       workspace: workspace, dState: dv)
            }
        }
    }
}
