import Profiles

extension TrainingStep {
    /// One timestep of an adaptive LIF: h and b to the saved buffers, v and b updated in place.
    func alifStepForward(_ neuron: NeuronSpec, path: String, t: Int, count: Int, spike: UnsafeMutablePointer<T>,
                         input: UnsafePointer<T>, own: [Int]) {
        alifForward(neuron, count: count, smooth: smoothSpikes, spike: spike, h: heap.values(own[0]) + t * count,
                    b: heap.values(own[1]) + t * count, state: heap.values(forwardStates[path]!), input: input)
    }

    /// Its backward: `dState` (dL/dv then dL/db) carried to the previous timestep unless cut.
    func alifStepBackward(_ neuron: NeuronSpec, t: Int, count: Int, dInput: UnsafeMutablePointer<T>,
                          dSpike: UnsafePointer<T>, saved: [Int], dState: Int?) {
        alifBackward(neuron, count: count, smooth: smoothSpikes, dInput: dInput, dState: dState.map { heap.values($0) },
                     dSpike: dSpike, h: heap.values(saved[0]) + t * count, b: heap.values(saved[1]) + t * count)
    }
}
