import Profiles

/// The recurrent layer's kernels on one timestep slice (`Recurrent.swift`). `own` / `saved` are the
/// declared buffers (`LayerMemoryTable+Recurrent.swift`): sPrevious, h, then the kept input.
extension TrainingStep {
    func recurrentForwardSlice(_ spec: RecurrentSpec, path: String, t: Int, spike: UnsafeMutablePointer<T>,
                               input: UnsafePointer<T>, own: [Int], workspace: Int?) {
        let shape = RecurrentShape(batch: batch, inFeatures: spec.inFeatures, outFeatures: spec.outFeatures)
        let n = shape.outCount
        let bias = spec.bias ? UnsafePointer(heap.values(parameters.slot(path, "bias").value)) : nil
        recurrentForward(shape, neuron: spec.neuron, smooth: smoothSpikes, spike: spike, h: heap.values(own[1]) + t * n,
                         sPrevious: heap.values(own[0]) + t * n, current: heap.values(workspace!),
                         state: heap.values(forwardStates[path]!), input: input,
                         weight: heap.values(parameters.slot(path, "weight").value), bias: bias)
    }

    func recurrentBackwardSlice(_ spec: RecurrentSpec, path: String, t: Int, dInput: UnsafeMutablePointer<T>?,
                                dSpike: UnsafePointer<T>, input: UnsafePointer<T>, saved: [Int], workspace: Int?, dState: Int?) {
        let shape = RecurrentShape(batch: batch, inFeatures: spec.inFeatures, outFeatures: spec.outFeatures)
        let n = shape.outCount
        let weight = parameters.slot(path, "weight")
        let bias = spec.bias ? parameters.slot(path, "bias") : nil
        recurrentBackward(shape, neuron: spec.neuron, smooth: smoothSpikes, dInput: dInput, dWeight: heap.values(weight.gradient!),
                          dBias: bias.map { heap.values($0.gradient!) }, dCurrent: heap.values(workspace!),
                          dState: dState.map { heap.values($0) }, dSpike: dSpike, h: heap.values(saved[1]) + t * n,
                          sPrevious: heap.values(saved[0]) + t * n, input: input, weight: heap.values(weight.value))
    }

    /// v starts at the neuron's initial potential, the fed-back spikes at zero.
    func initializeRecurrentState(_ spec: RecurrentSpec, _ id: Int) {
        let half = heap.shape(id).elementCount / 2
        heap.values(id).update(repeating: T(neuronInitialPotential(spec.neuron)), count: half)
        (heap.values(id) + half).update(repeating: 0, count: half)
    }
}
