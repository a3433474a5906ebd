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
        backwardThroughTime(0..<timesteps)
        release(dMean)
        releaseBackwardStates()
        finish(input: input, labels: labels)
    }
}
