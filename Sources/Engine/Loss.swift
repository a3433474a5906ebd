/// A loss value and how many samples the logits classify correctly (argmax == label, first max on ties).
public struct CrossEntropyResult: Hashable, Sendable {
    public var loss: Double
    public var correct: Int

    public init(loss: Double, correct: Int) {
        self.loss = loss
        self.correct = correct
    }
}

/// Cross-entropy of the time-averaged logits, averaged over the batch (SpikingJelly's usual head:
/// out_fr = mean over T of the output, loss = CE(out_fr, label)).
/// `logitSum` is the sum over the T timesteps of [batch, classes] logits. Writes
/// dMean = (softmax(mean) - onehot) / batch, the gradient w.r.t. the mean output (nil: loss only);
/// each timestep's logit gradient is then dMean / T.
@_specialize(where T == Float)
public func crossEntropyOfTimeMean<T: EngineScalar>(
    dMean: UnsafeMutablePointer<T>?, logitSum: UnsafePointer<T>, labels: UnsafePointer<Int32>,
    batch: Int, classes: Int, timesteps: Int
) -> CrossEntropyResult {
    precondition(timesteps > 0)
    return softmaxCrossEntropy(dLogits: dMean, logits: logitSum, inputScale: 1 / T(timesteps), labels: labels,
                               batch: batch, classes: classes, gradientScale: 1 / T(batch), lossScale: 1 / Double(batch))
}

/// One timestep's share of the per-timestep loss (SLTT and T-RevSNN heads): loss = mean over the T
/// timesteps of CE(logits_t), each CE averaged over the batch. Returns CE(logits_t) / T, and writes
/// dLogits = (softmax(logits_t) - onehot) / (batch * T) (nil: loss only). `correct` counts this
/// timestep's logits alone; accuracy of the summed logits comes from `crossEntropyOfTimeMean`.
@_specialize(where T == Float)
public func crossEntropyPerTimestep<T: EngineScalar>(
    dLogits: UnsafeMutablePointer<T>?, logits: UnsafePointer<T>, labels: UnsafePointer<Int32>,
    batch: Int, classes: Int, timesteps: Int
) -> CrossEntropyResult {
    precondition(timesteps > 0)
    return softmaxCrossEntropy(dLogits: dLogits, logits: logits, inputScale: 1, labels: labels, batch: batch, classes: classes,
                               gradientScale: 1 / T(batch * timesteps), lossScale: 1 / Double(batch * timesteps))
}

/// For each row z = inputScale * logits[b]: loss += lossScale * (logsumexp(z) - z[label]),
/// dLogits[b] = gradientScale * (softmax(z) - onehot(label)). The softmax subtracts the row maximum
/// so exp never overflows; the loss is summed in Double.
@inline(__always)
func softmaxCrossEntropy<T: EngineScalar>(
    dLogits: UnsafeMutablePointer<T>?, logits: UnsafePointer<T>, inputScale: T, labels: UnsafePointer<Int32>,
    batch: Int, classes: Int, gradientScale: T, lossScale: Double
) -> CrossEntropyResult {
    precondition(batch > 0 && classes > 0)
    var loss = 0.0
    var correct = 0
    for b in 0..<batch {
        let row = logits + b * classes
        let label = Int(labels[b])
        precondition(label >= 0 && label < classes, "label \(label) of sample \(b) outside 0..<\(classes)")
        var maxIndex = 0
        for j in 1..<max(classes, 1) where row[j] > row[maxIndex] { maxIndex = j }
        if maxIndex == label { correct += 1 }
        let maxZ = row[maxIndex] * inputScale
        var sumExp: T = 0
        for j in 0..<classes { sumExp += T.exp(row[j] * inputScale - maxZ) }
        let logSumExp = maxZ + T.log(sumExp)
        loss += Double(logSumExp - row[label] * inputScale)
        if let dLogits {
            let dRow = dLogits + b * classes
            for j in 0..<classes {
                let p = T.exp(row[j] * inputScale - logSumExp)
                dRow[j] = gradientScale * (j == label ? p - 1 : p)
            }
        }
    }
    return CrossEntropyResult(loss: loss * lossScale, correct: correct)
}
