import Planner
import Profiles

extension TrainingStep {
    /// One timestep of a conv1d: the kernel-1 GEMM when it is pointwise, the windowed loops otherwise.
    func conv1dStepForward(_ conv: ConvSpec, _ layer: Layer, path: String, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>) {
        let weight = heap.values(parameters.slot(path, "weight").value)
        let bias = conv.bias ? UnsafePointer(heap.values(parameters.slot(path, "bias").value)) : nil
        let tokens = layer.inputShape.dims[1]
        if LayerMemoryTable.isPointwise(conv) && conv.groups == 1 {
            conv1dForward(Conv1DShape(batch: batch, inChannels: conv.inChannels, outChannels: conv.outChannels, tokens: tokens),
                          output: output, input: input, weight: weight, bias: bias)
        } else {
            conv1dWindowForward(Conv1DWindowShape(conv, batch: batch, tokens: tokens), output: output, input: input, weight: weight, bias: bias)
        }
    }

    func conv1dStepBackward(_ conv: ConvSpec, _ layer: Layer, path: String, dInput: UnsafeMutablePointer<T>?,
                            dOutput: UnsafePointer<T>, input: UnsafePointer<T>) {
        let weight = parameters.slot(path, "weight")
        let dBias = conv.bias ? heap.values(parameters.slot(path, "bias").gradient!) : nil
        let tokens = layer.inputShape.dims[1]
        if LayerMemoryTable.isPointwise(conv) && conv.groups == 1 {
            conv1dBackward(Conv1DShape(batch: batch, inChannels: conv.inChannels, outChannels: conv.outChannels, tokens: tokens),
                           dInput: dInput, dWeight: heap.values(weight.gradient!), dBias: dBias, dOutput: dOutput, input: input,
                           weight: heap.values(weight.value))
        } else {
            conv1dWindowBackward(Conv1DWindowShape(conv, batch: batch, tokens: tokens), dInput: dInput, dWeight: heap.values(weight.gradient!),
                                 dBias: dBias, dOutput: dOutput, input: input, weight: heap.values(weight.value))
        }
    }
}
