import MemoryModel

/// The loss: cross-entropy on the time-averaged output. Forward sums each timestep's logits
/// into `outputSum`; the gradient of the mean, dMean, is computed once and each timestep's
/// output gradient is dMean / T.
extension TraceBuilder {
    var logitsShape: TensorShape { TensorShape([profile.classes]) }

    /// Adds a timestep's logits (consumed) into the running sum, allocating the sum at first use.
    mutating func accumulateOutput(_ logits: Int, into sum: inout Int?) {
        if sum == nil {
            sum = allocateActivation("loss", "outputSum", role: .activation, shape: logitsShape, span: .once)
        }
        release(logits)
    }

    /// Softmax gradient of the mean output; the sum is no longer needed afterwards.
    mutating func lossGradient(outputSum: Int) -> Int {
        let dMean = allocateActivation("loss", "dOutputMean", role: .workspace, shape: logitsShape, span: .once)
        release(outputSum)
        return dMean
    }

    /// The output gradient handed to the last layer at one timestep (or all of them).
    mutating func outputGradient(span: Span) -> Int {
        allocateActivation("loss", "dLogits", role: .workspace, shape: logitsShape, span: span)
    }

    /// Backward over `range` from its last timestep, each fed dMean / T.
    mutating func backwardThroughTime(_ range: Range<Int>) {
        for t in range.reversed() {
            phase = .backward(timestep: t)
            let dLogits = outputGradient(span: .timestep(t))
            _ = backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
        }
    }
}
