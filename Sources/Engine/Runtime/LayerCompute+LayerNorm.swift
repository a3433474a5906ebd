import MemoryModel
import Planner
import Profiles

/// Layer norm on one timestep slice (see `computeForward`): each sample's (or each token's)
/// statistics go to the saved `mean` and `rstd` buffers ([B, N] a timestep, [T, B, N] over a
/// multi-step span; N = 1 over whole samples).
extension TrainingStep {
    func layerNormStepForward(_ spec: LayerNormSpec, path: String, t: Int, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
                              own: [Int]) {
        let affine = spec.affine ? (parameters.slot(path, "weight"), parameters.slot(path, "bias")) : nil
        layerNormForward(LayerNormShape(rows: batch, features: spec.normalizedCount, tokens: spec.statisticsPerSample), output: output,
                         mean: heap.values(own[0]) + t * batch * spec.statisticsPerSample, rstd: heap.values(own[1]) + t * batch * spec.statisticsPerSample, input: input,
                         gamma: affine.map { UnsafePointer(heap.values($0.0.value)) },
                         beta: affine.map { UnsafePointer(heap.values($0.1.value)) }, epsilon: spec.epsilon)
    }

    func layerNormStepBackward(_ spec: LayerNormSpec, path: String, t: Int, dInput: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>,
                               input: UnsafePointer<T>, saved: [Int]) {
        let affine = spec.affine ? (parameters.slot(path, "weight"), parameters.slot(path, "bias")) : nil
        layerNormBackward(LayerNormShape(rows: batch, features: spec.normalizedCount, tokens: spec.statisticsPerSample), dInput: dInput,
                          dGamma: affine.map { heap.values($0.0.gradient!) }, dBeta: affine.map { heap.values($0.1.gradient!) },
                          dOutput: dOutput, input: input, gamma: affine.map { UnsafePointer(heap.values($0.0.value)) },
                          mean: heap.values(saved[0]) + t * batch * spec.statisticsPerSample, rstd: heap.values(saved[1]) + t * batch * spec.statisticsPerSample)
    }
}
