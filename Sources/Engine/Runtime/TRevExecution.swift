import MemoryModel
import Planner
import Profiles

/// T-RevSNN in the engine, following the planner's `runTRev`: columns are timesteps with their
/// own weights; level states c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + alpha_l * c[l][t-1].
/// With `reconstruct` (trevsnn) earlier columns' states are rebuilt in backward by the inverse
/// c[l][t-1] = (c[l][t] - F_l) / alpha_l; without it (bptt) every column's graph is kept.
extension TrainingStep {
    /// Per-channel y += alpha[c] * x over [B, C, spatial].
    func addScaledPerChannel(_ y: Int, _ x: Int, alpha: UnsafePointer<T>, channels: Int, spatial: Int) {
        let yv = heap.values(y), xv = heap.values(x)
        for b in 0..<batch {
            for c in 0..<channels {
                let offset = (b * channels + c) * spatial, a = alpha[c]
                for i in 0..<spatial { yv[offset + i] += a * xv[offset + i] }
            }
        }
    }

    func runTRev(input: Int, labels: Int, reconstruct: Bool) throws {
        guard let netIndex = profile.layers.firstIndex(where: { if case .trevsnn = $0.kind { return true }; return false }),
              case .trevsnn(let net) = profile.layers[netIndex].kind else {
            preconditionFailure("runTRev needs a trevsnn network")
        }
        let stemLayers = Array(profile.layers[..<netIndex])
        let levels = net.levels
        let top = levels.count - 1
        let classes = profile.classes
        func alpha(_ prefix: String, _ level: TRevNetwork.Level) -> ParameterStore<T>.Slot { parameters.slot(prefix + level.path, "alpha") }
        func spatial(_ level: TRevNetwork.Level) -> Int { level.stateShape.elementCount / level.channels }

        // Forward.
        try heap.begin(.forward(timestep: nil))
        heap.retain(input)
        let stem = try forward(stemLayers, input, span: .once, saving: true)
        var states: [Int] = []
        var lossSum = 0.0
        for t in 0..<timesteps {
            try heap.begin(.forward(timestep: t))
            let prefix = ParameterLayout.columnPrefix(t)
            var next: [Int] = []
            for (l, level) in levels.enumerated() {
                let below = l == 0 ? stem : next[l - 1]
                heap.retain(below)
                var fused = try forward(level.down, below, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                if t > 0 && !level.up.isEmpty {
                    heap.retain(states[l + 1])
                    let up = try forward(level.up, states[l + 1], span: .timestep(t), saving: !reconstruct, prefix: prefix)
                    fused = try heap.combine(into: fused, up)
                }
                var state = try forward(level.blocks, fused, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                if t > 0 {
                    if !reconstruct {
                        heap.retain(states[l])
                        keep([states[l]], key: SavedKey(path: prefix + level.path + "/alpha", timestep: t))
                    }
                    state = try heap.makeWritable(state)
                    addScaledPerChannel(state, states[l], alpha: heap.values(alpha(prefix, level).value), channels: level.channels,
                                        spatial: spatial(level))
                    try heap.release(states[l])
                }
                stateObserver?("\(level.path)@t\(t)", false, state)
                next.append(state)
            }
            heap.retain(next[top])
            let logits = try forward(net.head, next[top], span: .timestep(t), saving: !reconstruct, prefix: prefix)
            let columnLoss = crossEntropyPerTimestep(dLogits: nil, logits: heap.values(logits), labels: heap.indices(labels), batch: batch,
                                                     classes: classes, timesteps: timesteps)
            lossSum += columnLoss.loss
            // The last column has seen every timestep: its head gives the prediction.
            if t == timesteps - 1 { correct = columnLoss.correct }
            if !reconstruct {
                keep([logits], key: SavedKey(path: prefix + "head/logits", timestep: t))
            } else {
                try heap.release(logits)
            }
            states = next
        }
        loss = lossSum

        // Backward, column by column from the last.
        var dStates: [Int?] = Array(repeating: nil, count: levels.count)
        var dStem: Int?
        for t in (0..<timesteps).reversed() {
            let prefix = ParameterLayout.columnPrefix(t)
            let logits: Int
            if reconstruct {
                try heap.begin(.recompute(timestep: t))
                heap.retain(states[top])
                logits = try forward(net.head, states[top], span: .timestep(t), saving: true, prefix: prefix)
                try heap.begin(.backward(timestep: t))
            } else {
                try heap.begin(.backward(timestep: t))
                logits = saved[SavedKey(path: prefix + "head/logits", timestep: t)]![0]
            }
            let dLogits = try allocateActivation("loss", "dLogits", role: .workspace, shape: TensorShape([classes]), span: .timestep(t))
            _ = crossEntropyPerTimestep(dLogits: heap.values(dLogits), logits: heap.values(logits), labels: heap.indices(labels),
                                        batch: batch, classes: classes, timesteps: timesteps)
            if reconstruct { try heap.release(logits) } else { try releaseSaved(SavedKey(path: prefix + "head/logits", timestep: t)) }
            let dTop = try backward(net.head, dLogits, span: .timestep(t), needInputGrad: true, prefix: prefix)!
            dStates[top] = try dStates[top].map { try heap.combine(into: $0, dTop) } ?? dTop

            var previous: [Int?] = Array(repeating: nil, count: levels.count)
            var dPrevious: [Int?] = Array(repeating: nil, count: levels.count)
            for (l, level) in levels.enumerated().reversed() {
                let alphaSlot = alpha(prefix, level)
                let channels = level.channels, plane = spatial(level)
                if reconstruct {
                    try heap.begin(.recompute(timestep: t))
                    let below = l == 0 ? stem : states[l - 1]
                    heap.retain(below)
                    var fused = try forward(level.down, below, span: .timestep(t), saving: true, prefix: prefix)
                    if t > 0 && !level.up.isEmpty {
                        heap.retain(previous[l + 1]!)
                        let up = try forward(level.up, previous[l + 1]!, span: .timestep(t), saving: true, prefix: prefix)
                        fused = try heap.combine(into: fused, up)
                    }
                    let value = try forward(level.blocks, fused, span: .timestep(t), saving: true, prefix: prefix)
                    if t > 0 {
                        // c[l][t-1] = (c[l][t] - F_l) / alpha_l
                        let rebuilt = try allocateActivation(prefix + level.path, "state", role: .activation, shape: level.stateShape,
                                                             span: .timestep(t - 1))
                        let out = heap.values(rebuilt), current = heap.values(states[l]), f = heap.values(value)
                        let a = heap.values(alphaSlot.value)
                        for b in 0..<batch {
                            for c in 0..<channels {
                                let offset = (b * channels + c) * plane, inverse = 1 / a[c]
                                for i in 0..<plane { out[offset + i] = (current[offset + i] - f[offset + i]) * inverse }
                            }
                        }
                        previous[l] = rebuilt
                        stateObserver?("\(level.path)@t\(t - 1)", true, rebuilt)
                    }
                    try heap.release(value)
                }
                try heap.begin(.backward(timestep: t))
                let dState = dStates[l]!
                if t > 0 {
                    // dAlpha += sum(dc[l][t] * c[l][t-1]); dc[l][t-1] = alpha * dc[l][t] (+ the up path's share below).
                    let previousState = reconstruct ? previous[l]! : saved[SavedKey(path: prefix + level.path + "/alpha", timestep: t)]![0]
                    let dPrev = try allocateActivation(prefix + level.path, "dState", role: .workspace, shape: level.stateShape,
                                                       span: .timestep(t - 1))
                    let g = heap.values(dState), p = heap.values(previousState), out = heap.values(dPrev)
                    let a = heap.values(alphaSlot.value), dA = heap.values(alphaSlot.gradient!)
                    for b in 0..<batch {
                        for c in 0..<channels {
                            let offset = (b * channels + c) * plane
                            var sum: T = 0
                            for i in 0..<plane {
                                sum += g[offset + i] * p[offset + i]
                                out[offset + i] = a[c] * g[offset + i]
                            }
                            dA[c] += sum
                        }
                    }
                    dPrevious[l] = dPrev
                    if !reconstruct { try releaseSaved(SavedKey(path: prefix + level.path + "/alpha", timestep: t)) }
                }
                let dFused = try backward(level.blocks, dState, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if t > 0 && !level.up.isEmpty {
                    heap.retain(dFused)
                    let dUp = try backward(level.up, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                    dPrevious[l + 1] = try heap.combine(into: dPrevious[l + 1]!, dUp)
                }
                let dBelow = try backward(level.down, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if l > 0 {
                    dStates[l - 1] = try dStates[l - 1].map { try heap.combine(into: $0, dBelow) } ?? dBelow
                } else {
                    dStem = try dStem.map { try heap.combine(into: $0, dBelow) } ?? dBelow
                }
                dStates[l] = nil
            }
            for id in states { try heap.release(id) }
            states = previous.compactMap { $0 }
            dStates = dPrevious
        }
        try heap.begin(.backward(timestep: nil))
        try heap.release(stem)
        if let unused = try backward(stemLayers, dStem!, span: .once, needInputGrad: false) { try heap.release(unused) }
    }
}
