/// Standard BPTT, time-major: forward t = 0..T-1 keeping every layer's saved tensors, then
/// backward t = T-1..0 with dL/dv carried to the previous timestep.
extension TraceBuilder {
    mutating func runBPTT() {
        let (input, labels) = setUp()
        var outputSum: Int?
        for t in 0..<timesteps {
            phase = .forward(timestep: t)
            retain(input)
            let logits = forward(profile.layers, input, span: .timestep(t), saving: true)
            accumulateOutput(logits, into: &outputSum)
        }
        releaseForwardStates()
        let dMean = lossGradient(outputSum: outputSum!)
        for t in (0..<timesteps).reversed() {
            phase = .backward(timestep: t)
            let dLogits = outputGradient(span: .timestep(t))
            _ = backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
        }
        release(dMean)
        releaseBackwardStates()
        finish(input: input, labels: labels)
    }
}
