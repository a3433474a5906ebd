/// RevSNN: every layer runs over all timesteps at once (multi-step). Non-reversible layers keep
/// their saved tensors as in BPTT; each reversible stage keeps only its output, from which
/// backward reconstructs the blocks' inputs one F or G graph at a time.
extension TraceBuilder {
    mutating func runRevSNN() {
        let (input, labels) = setUp()
        if runtime.isPyTorch {
            // As PyTorch's bptt, with each stage one RevSNN autograd function.
            phase = .forward(timestep: nil)
            let sequence = repeatInputPyTorch(input)
            retain(sequence)
            let logits = forward(profile.layers, sequence, span: .allTimesteps, saving: true, reversible: .keepOutputOnly)
            release(sequence)
            let loss = lossPyTorch(logits, span: .allTimesteps)
            phase = .backward(timestep: nil)
            let dLogits = lossBackwardPyTorch(loss, span: .allTimesteps)
            _ = backward(profile.layers, dLogits, span: .allTimesteps, needInputGrad: false, reversible: .keepOutputOnly)
            finish(input: input, labels: labels)
            return
        }
        phase = .forward(timestep: nil)
        retain(input)
        // The static image is the same at every timestep: the first layer reads it broadcast over T.
        let logits = forward(profile.layers, input, span: .allTimesteps, saving: true, reversible: .keepOutputOnly)
        var outputSum: Int?
        accumulateOutput(logits, into: &outputSum)
        let dMean = lossGradient(outputSum: outputSum!)
        phase = .backward(timestep: nil)
        let dLogits = outputGradient(span: .allTimesteps)
        release(dMean)
        _ = backward(profile.layers, dLogits, span: .allTimesteps, needInputGrad: false, reversible: .keepOutputOnly)
        finish(input: input, labels: labels)
    }
}
