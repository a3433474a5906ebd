import Profiles

/// Checkpointing over time as PyTorch does it: the multi-step network over segments of k
/// timesteps, each under `torch.utils.checkpoint.checkpoint(use_reentrant=False)` with the neuron
/// states at the segment's start as explicit inputs and those at its end as outputs (gradients
/// flow through v across segments, as in bptt). The checkpoint keeps only its inputs (a view of
/// x_seq, the start states); the ops inside save nothing. Backward, segment by segment from the
/// last, recomputes the segment from its inputs keeping what the ops save, backpropagates it and
/// frees it. Autograd reaches a segment's recomputation at the first saved tensor it unpacks, and
/// the recomputation stops after the last op that saves one: layers at the network's end that
/// save nothing (global pooling, flatten, upsampling) run their backward before it and are not
/// recomputed.
extension TraceBuilder {
    /// The last top-level layers whose PyTorch ops save nothing for backward.
    var pytorchUnsavedTail: [Layer] {
        Array(profile.layers.reversed().prefix { layer in
            switch layer.kind {
            case .flatten, .upsample: return true
            case .avgPool(let pool): return pool.isGlobal
            default: return false
            }
        }.reversed())
    }

    mutating func runCheckpointPyTorch(segment k: Int) {
        let (input, labels) = setUp()
        let layers = ParameterLayout.flatten(profile.layers)
        // A recurrent layer carries two states, as the Python package passes them: its fed-back
        // spikes y (under `feedbackKey`) and its neuron's v (under its path).
        let recurrent = layers.filter { if case .recurrent = $0.kind { return true }; return false }
        let neurons = layers.flatMap { layer -> [String] in
            switch layer.kind {
            case .neuron: return [layer.path]
            case .recurrent: return [PyTorchLayerTable.feedbackKey(layer.path), layer.path]
            default: return []
            }
        }
        let owner = Dictionary(uniqueKeysWithValues: recurrent.map { (PyTorchLayerTable.feedbackKey($0.path), $0.path) })
        let neuronPaths = Set(neurons)
        let starts = Array(stride(from: 0, to: timesteps, by: k))
        phase = .forward(timestep: nil)
        let sequence = repeatInputPyTorch(input)
        var carried: [String: Int] = [:]      // end states of the last segment, held by Python
        var startStates: [Int: [String: Int]] = [:]
        var outputs: [Int] = []
        // One autocast region covers every segment's forward and the loss: a weight is cast once.
        if autocast != nil { castCache = [:] }
        for (s, start) in starts.enumerated() {
            phase = .forward(timestep: start)
            segmentLength = min(k, timesteps - start)
            // The checkpoint keeps its inputs: the segment of x_seq (a view) and the start states.
            retain(sequence)
            keep([sequence], key: SavedKey(path: "input", timestep: -1 - s))
            var states: [String: Int] = [:]
            for path in neurons {
                guard let state = carried.removeValue(forKey: path) else { continue }
                // Attributed to its layer (a recurrent layer's y is held under its feedback key).
                keep([state], key: SavedKey(path: owner[path] ?? path, timestep: -1 - s))
                retain(state)
                heldStates[path] = state  // the module runs from it; the list's reference became the checkpoint's
                states[path] = state
            }
            startStates[s] = states
            retain(sequence)
            outputs.append(forward(profile.layers, sequence, span: .allTimesteps, saving: false))
            // The end states are outputs of the checkpoint; the modules are restored to what they held.
            for path in neurons { carried[path] = heldStates.removeValue(forKey: path) }
            // The script frees its spikes with its output; the module keeps the last one as y, which
            // is the checkpoint's output and the next segment's start (the start it ran from dies).
            for layer in recurrent {
                let key = PyTorchLayerTable.feedbackKey(layer.path)
                if let start = carried[key] { release(start) }
                carried[key] = allocate(layer.path, "y", timestep: nil, role: .neuronState, shape: layer.outputShape.prepending(batch))
            }
        }
        segmentLength = nil
        release(sequence)
        // After the forward each module holds its last state, detached.
        for (path, state) in carried { heldStates[path] = state }
        let logits: Int
        if outputs.count > 1 {
            logits = allocateActivation("loss", "cat", role: .activation, shape: logitsShape, span: .allTimesteps)
            for output in outputs { release(output) }
        } else {
            logits = outputs[0]
        }
        let loss = lossPyTorch(logits, span: .allTimesteps)
        for path in (castCache ?? [:]).keys.sorted() { release(castCache![path]!) }
        castCache = nil
        phase = .backward(timestep: nil)
        let dLogits = lossBackwardPyTorch(loss, span: .allTimesteps)
        let tail = pytorchUnsavedTail
        let body = Array(profile.layers.dropLast(tail.count))
        for (s, start) in starts.enumerated().reversed() {
            segmentLength = min(k, timesteps - start)
            retain(dLogits)  // the segment's gradient is a view of dLogits
            var gradient = dLogits
            if !tail.isEmpty {
                phase = .backward(timestep: start)
                gradient = backward(tail, dLogits, span: .allTimesteps, needInputGrad: true)!
            }
            phase = .recompute(timestep: start)
            let finalStates = heldStates
            // The recomputation runs from the segment's start states; other held tensors (dropout's
            // mask, drawn once) stay with their modules and serve it too.
            heldStates = (startStates[s] ?? [:]).merging(finalStates.filter { !neuronPaths.contains($0.key) }) { start, _ in start }
            // Sorted by path: a dictionary's order changes from process to process, the event stream must not.
            for path in heldStates.keys.sorted() { retain(heldStates[path]!) }
            // The last segment's end states feed nothing: what their graph saves is recomputed and
            // dropped with them. An earlier segment's end states carry the next one's gradient.
            let isLast = s == starts.count - 1
            finalStateHoldsGraph = isLast
            retain(sequence)
            release(forward(body, sequence, span: .allTimesteps, saving: true))
            releaseUnsavedCasts()  // the recomputation's autocast region ends
            finalStateHoldsGraph = true
            for path in heldStates.keys.sorted() { release(heldStates[path]!) }
            for path in heldSaved.keys.sorted() { for id in heldSaved.removeValue(forKey: path)! { release(id) } }
            heldStates = finalStates
            phase = .backward(timestep: start)
            // The gradient of each start state flows back to the previous segment's end state.
            stateGradientsFlowBack = s > 0
            defersGradientCasts = autocast != nil && s > 0
            _ = backward(body, gradient, span: .allTimesteps, needInputGrad: false)
            stateGradientsFlowBack = false
            defersGradientCasts = false
            releaseSaved(SavedKey(path: "input", timestep: -1 - s))
            for path in Set(neurons.map { owner[$0] ?? $0 }).sorted() { releaseSaved(SavedKey(path: path, timestep: -1 - s)) }
        }
        segmentLength = nil
        release(dLogits)
        finish(input: input, labels: labels)
    }
}
