/// Standard BPTT, time-major: forward t = 0..T-1 keeping every layer's saved tensors, then
/// backward t = T-1..0 with dL/dv carried to the previous timestep.
extension TraceBuilder {
    mutating func runBPTT() {
        let (input, labels) = setUp()
        if runtime.isPyTorch {
            // SpikingJelly's multi-step modules: each layer over all timesteps, then the loss on
            // the mean over T, then autograd back through the layers.
            phase = .forward(timestep: nil)
            let sequence = repeatInputPyTorch(input)
            retain(sequence)  // the Python variable holds x_seq until the network returns
            let logits = forward(profile.layers, sequence, span: .allTimesteps, saving: true)
            release(sequence)
            let loss = lossPyTorch(logits, span: .allTimesteps)
            phase = .backward(timestep: nil)
            let dLogits = lossBackwardPyTorch(loss, span: .allTimesteps)
            _ = backward(profile.layers, dLogits, span: .allTimesteps, needInputGrad: false)
            finish(input: input, labels: labels)
            return
        }
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
