/// SLTT/OTTT-style online training: at each timestep, forward keeping that timestep's saved
/// tensors, then backpropagate it at once. The membrane potential is detached from the previous
/// timestep, so no dL/dv is carried and only one timestep's tensors are ever kept: O(L).
/// The loss is the mean over timesteps of each timestep's cross-entropy.
extension TraceBuilder {
    mutating func runSLTT() {
        let (input, labels) = setUp()
        temporalGradient = false
        if runtime.isPyTorch {
            // Single-step modules fed the images each timestep, v detached before each step;
            // loss_t.backward() inside the loop.
            for t in 0..<timesteps {
                phase = .forward(timestep: t)
                retain(input)
                let logits = forward(profile.layers, input, span: .timestep(t), saving: true)
                let loss = lossPyTorch(logits, span: .timestep(t))
                phase = .backward(timestep: t)
                let dLogits = lossBackwardPyTorch(loss, span: .timestep(t))
                _ = backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
            }
            finish(input: input, labels: labels)
            return
        }
        var outputSum: Int?
        for t in 0..<timesteps {
            phase = .forward(timestep: t)
            retain(input)
            let logits = forward(profile.layers, input, span: .timestep(t), saving: true)
            let dLogits = outputGradient(span: .timestep(t))
            accumulateOutput(logits, into: &outputSum)
            phase = .backward(timestep: t)
            _ = backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
        }
        releaseForwardStates()
        release(outputSum!)
        finish(input: input, labels: labels)
    }
}
