import MemoryModel
import Planner
import Profiles

/// The engine's schedules, one per strategy, each following the planner's schedule of the same
/// name: same tensors, same order. `input` and `labels` are the step's batch tensors.
extension TrainingStep {
    // MARK: Loss on the time-averaged output

    func accumulateOutput(_ logits: Int, into sum: inout Int?) throws {
        if sum == nil {
            sum = try allocateActivation("loss", "outputSum", role: .activation, shape: TensorShape([profile.classes]), span: .once,
                                         zeroed: true)
        }
        axpy(count: batch * profile.classes, alpha: 1, x: heap.values(logits), y: heap.values(sum!))
        try heap.release(logits)
    }

    func lossGradient(outputSum: Int, labels: Int) throws -> Int {
        let dMean = try allocateActivation("loss", "dOutputMean", role: .workspace, shape: TensorShape([profile.classes]), span: .once)
        let result = crossEntropyOfTimeMean(dMean: heap.values(dMean), logitSum: heap.values(outputSum), labels: heap.indices(labels),
                                            batch: batch, classes: profile.classes, timesteps: timesteps)
        loss = result.loss
        correct = result.correct
        try heap.release(outputSum)
        return dMean
    }

    /// dMean / T for each timestep, or for all of them at once.
    func outputGradient(dMean: Int, span: Span) throws -> Int {
        let dLogits = try allocateActivation("loss", "dLogits", role: .workspace, shape: TensorShape([profile.classes]), span: span)
        let count = batch * profile.classes
        for t in 0..<slices(span) {
            let target = heap.values(dLogits) + t * count, source = heap.values(dMean)
            for i in 0..<count { target[i] = source[i] / T(timesteps) }
        }
        return dLogits
    }

    /// Forward over every timestep, summing the logits; forward states are released after.
    func forwardThroughTime(input: Int, saving: Bool) throws -> Int {
        var outputSum: Int?
        for t in 0..<timesteps {
            try heap.begin(.forward(timestep: t))
            heap.retain(input)
            let logits = try forward(profile.layers, input, span: .timestep(t), saving: saving)
            try accumulateOutput(logits, into: &outputSum)
        }
        try releaseForwardStates()
        return outputSum!
    }

    /// Backward over `range` from its last timestep, each fed dMean / T.
    func backwardThroughTime(_ range: Range<Int>, dMean: Int) throws {
        for t in range.reversed() {
            try heap.begin(.backward(timestep: t))
            let dLogits = try outputGradient(dMean: dMean, span: .timestep(t))
            _ = try backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
        }
    }

    // MARK: Evaluation

    /// Forward only, keeping nothing, batch norm on running statistics; returns correct predictions
    /// of the time-averaged output. Reversible stages run as ordinary layers (the same function).
    func runInference(input: Int, labels: Int) throws -> Int {
        inference = true
        let outputSum = try forwardThroughTime(input: input, saving: false)
        let result = crossEntropyOfTimeMean(dMean: nil, logitSum: heap.values(outputSum), labels: heap.indices(labels), batch: batch,
                                            classes: profile.classes, timesteps: timesteps)
        loss = result.loss
        try heap.release(outputSum)
        return result.correct
    }

    // MARK: Strategies

    func runBPTT(input: Int, labels: Int) throws {
        let outputSum = try forwardThroughTime(input: input, saving: true)
        let dMean = try lossGradient(outputSum: outputSum, labels: labels)
        try backwardThroughTime(0..<timesteps, dMean: dMean)
        try heap.release(dMean)
        try releaseBackwardStates()
    }

    func runCheckpoint(input: Int, labels: Int, segment k: Int) throws {
        let stateful = ParameterLayout.flatten(profile.layers).filter { !LayerMemoryTable.declaration(for: $0).forwardState.isEmpty }
        let segments = (timesteps + k - 1) / k
        var checkpoints: [Int: [(layer: Layer, id: Int)]] = [:]
        var outputSum: Int?
        for t in 0..<timesteps {
            try heap.begin(.forward(timestep: t))
            if t % k == 0 && t > 0 {
                checkpoints[t / k] = try stateful.map { layer in
                    let state = LayerMemoryTable.declaration(for: layer).forwardState[0]
                    let id = try heap.allocate(layer.path, "checkpoint.v", timestep: t, role: .neuronState, shape: state.shape.prepending(batch))
                    let v = forwardStates[layer.path]!
                    heap.values(id).update(from: heap.values(v), count: heap.shape(v).elementCount)
                    return (layer, id)
                }
            }
            heap.retain(input)
            let logits = try forward(profile.layers, input, span: .timestep(t), saving: false)
            try accumulateOutput(logits, into: &outputSum)
        }
        try releaseForwardStates()
        let dMean = try lossGradient(outputSum: outputSum!, labels: labels)
        for s in (0..<segments).reversed() {
            let start = s * k, end = min(timesteps, start + k)
            try heap.begin(.recompute(timestep: start))
            for entry in checkpoints.removeValue(forKey: s) ?? [] {
                let state = LayerMemoryTable.declaration(for: entry.layer).forwardState[0]
                let v = try allocate(state, path: entry.layer.path, span: .timestep(start))
                heap.values(v).update(from: heap.values(entry.id), count: heap.shape(v).elementCount)
                forwardStates[entry.layer.path] = v
                try heap.release(entry.id)
            }
            for t in start..<end {
                try heap.begin(.recompute(timestep: t))
                heap.retain(input)
                let logits = try forward(profile.layers, input, span: .timestep(t), saving: true)
                try heap.release(logits)
            }
            try releaseForwardStates()
            try backwardThroughTime(start..<end, dMean: dMean)
        }
        try heap.release(dMean)
        try releaseBackwardStates()
    }

    func runSLTT(input: Int, labels: Int) throws {
        temporalGradient = false
        var outputSum: Int?
        var lossSum = 0.0
        for t in 0..<timesteps {
            try heap.begin(.forward(timestep: t))
            heap.retain(input)
            let logits = try forward(profile.layers, input, span: .timestep(t), saving: true)
            let dLogits = try allocateActivation("loss", "dLogits", role: .workspace, shape: TensorShape([profile.classes]), span: .timestep(t))
            lossSum += crossEntropyPerTimestep(dLogits: heap.values(dLogits), logits: heap.values(logits), labels: heap.indices(labels),
                                               batch: batch, classes: profile.classes, timesteps: timesteps).loss
            try accumulateOutput(logits, into: &outputSum)
            try heap.begin(.backward(timestep: t))
            _ = try backward(profile.layers, dLogits, span: .timestep(t), needInputGrad: false)
        }
        try releaseForwardStates()
        // Accuracy from the time-averaged output, as the other strategies report it.
        correct = crossEntropyOfTimeMean(dMean: nil, logitSum: heap.values(outputSum!), labels: heap.indices(labels), batch: batch,
                                         classes: profile.classes, timesteps: timesteps).correct
        loss = lossSum
        try heap.release(outputSum!)
    }

    /// A reference for SLTT, not a strategy: BPTT's order (all timesteps forward, then all
    /// backward) with SLTT's loss (the mean of each timestep's cross-entropy) and the temporal
    /// path cut (no dL/dv between timesteps). SLTT must give exactly these gradients.
    func runBPTTWithTemporalPathCut(input: Int, labels: Int) throws {
        temporalGradient = false
        var logitGradients: [Int] = []
        var lossSum = 0.0
        for t in 0..<timesteps {
            try heap.begin(.forward(timestep: t))
            heap.retain(input)
            let logits = try forward(profile.layers, input, span: .timestep(t), saving: true)
            let dLogits = try allocateActivation("loss", "dLogits", role: .workspace, shape: TensorShape([profile.classes]), span: .timestep(t))
            lossSum += crossEntropyPerTimestep(dLogits: heap.values(dLogits), logits: heap.values(logits), labels: heap.indices(labels),
                                               batch: batch, classes: profile.classes, timesteps: timesteps).loss
            try heap.release(logits)
            logitGradients.append(dLogits)
        }
        try releaseForwardStates()
        for t in (0..<timesteps).reversed() {
            try heap.begin(.backward(timestep: t))
            _ = try backward(profile.layers, logitGradients[t], span: .timestep(t), needInputGrad: false)
        }
        loss = lossSum
    }

    func runRevSNN(input: Int, labels: Int) throws {
        try heap.begin(.forward(timestep: nil))
        heap.retain(input)
        let logits = try forward(profile.layers, input, span: .allTimesteps, saving: true, reversible: .keepOutputOnly)
        // Sum the [T, B, classes] logits over time into the output sum.
        var outputSum: Int? = try allocateActivation("loss", "outputSum", role: .activation, shape: TensorShape([profile.classes]),
                                                     span: .once, zeroed: true)
        let count = batch * profile.classes
        for t in 0..<timesteps { axpy(count: count, alpha: 1, x: heap.values(logits) + t * count, y: heap.values(outputSum!)) }
        try heap.release(logits)
        let dMean = try lossGradient(outputSum: outputSum!, labels: labels)
        outputSum = nil
        try heap.begin(.backward(timestep: nil))
        let dLogits = try outputGradient(dMean: dMean, span: .allTimesteps)
        try heap.release(dMean)
        _ = try backward(profile.layers, dLogits, span: .allTimesteps, needInputGrad: false, reversible: .keepOutputOnly)
    }
}
