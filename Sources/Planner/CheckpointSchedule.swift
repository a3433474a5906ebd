import Profiles

/// Skipper-style checkpointing over time. Forward keeps nothing for backward except the
/// membrane potential of every stateful neuron at the start of each segment of k timesteps
/// (the first segment starts from zero and needs none). Backward, segment by segment from the
/// last: restore the states, recompute the segment keeping its saved tensors, backpropagate it
/// carrying dL/dv into the previous segment, free it.
extension TraceBuilder {
    mutating func runCheckpoint(segment k: Int) {
        if runtime.isPyTorch { return runCheckpointPyTorch(segment: k) }
        let (input, labels) = setUp()
        let statefulPaths = TraceBuilder.flatten(profile.layers)
            .filter { !LayerMemoryTable.declaration(for: $0).forwardState.isEmpty }
        let segments = (timesteps + k - 1) / k
        var checkpoints: [Int: [(path: String, layer: Layer, id: Int)]] = [:]
        var outputSum: Int?
        for t in 0..<timesteps {
            phase = .forward(timestep: t)
            if t % k == 0 && t > 0 {
                checkpoints[t / k] = statefulPaths.map { layer in
                    let state = LayerMemoryTable.declaration(for: layer).forwardState[0]
                    let id = allocate(layer.path, "checkpoint.v", timestep: t, role: .neuronState,
                                      shape: state.shape.prepending(batch), dtype: state.dtype)
                    markKept(id)
                    return (layer.path, layer, id)
                }
            }
            retain(input)
            let logits = forward(profile.layers, input, span: .timestep(t), saving: false)
            accumulateOutput(logits, into: &outputSum)
        }
        releaseForwardStates()
        let dMean = lossGradient(outputSum: outputSum!)
        for s in (0..<segments).reversed() {
            let start = s * k
            let end = min(timesteps, start + k)
            phase = .recompute(timestep: start)
            for entry in checkpoints.removeValue(forKey: s) ?? [] {
                let state = LayerMemoryTable.declaration(for: entry.layer).forwardState[0]
                forwardStates[entry.path] = allocate(state, path: entry.path, span: .timestep(start))
                release(entry.id)
            }
            for t in start..<end {
                phase = .recompute(timestep: t)
                retain(input)
                let logits = forward(profile.layers, input, span: .timestep(t), saving: true)
                release(logits)
            }
            releaseForwardStates()
            backwardThroughTime(start..<end)
        }
        release(dMean)
        releaseBackwardStates()
        finish(input: input, labels: labels)
    }
}
