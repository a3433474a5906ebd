import MemoryModel
import Profiles

/// T-RevSNN: the stem runs once; column t (one per timestep, with its own weights) computes
/// level by level c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + alpha_l * c[l][t-1].
///
/// With `reconstruct` (the trevsnn strategy) forward keeps nothing but the stem's saved tensors,
/// the stem output and the last column's states. Backward walks the columns from the last; in
/// each it rebuilds the head and then, from the top level down, one level's F_l graph at a time:
/// the rebuilt F_l also gives c[l][t-1] = (c[l][t] - F_l) / alpha_l, and is backpropagated and
/// freed before the next level. Without `reconstruct` (bptt on the same network) every column's
/// graph is kept and backward only backpropagates.
extension TraceBuilder {
    mutating func runTRev(reconstruct: Bool) {
        // PyTorch runs the columns single-step with its own saved tensors and backward order.
        if runtime.isPyTorch { return runTRevPyTorch(reconstruct: reconstruct) }
        guard let netIndex = profile.layers.firstIndex(where: { if case .trevsnn = $0.kind { return true }; return false }),
              case .trevsnn(let net) = profile.layers[netIndex].kind else {
            preconditionFailure("runTRev needs a trevsnn network")
        }
        let stemLayers = Array(profile.layers[..<netIndex])
        let levels = net.levels
        let (input, labels) = setUp()

        // Forward.
        phase = .forward(timestep: nil)
        retain(input)
        let stem = forward(stemLayers, input, span: .once, saving: true)
        markKept(stem)
        var states: [Int] = []
        for t in 0..<timesteps {
            phase = .forward(timestep: t)
            let prefix = TraceBuilder.columnPrefix(t)
            var next: [Int] = []
            for (l, level) in levels.enumerated() {
                let below = l == 0 ? stem : next[l - 1]
                retain(below)
                var fused = forward(level.down, below, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                if t > 0 && !level.up.isEmpty {
                    retain(states[l + 1])
                    let up = forward(level.up, states[l + 1], span: .timestep(t), saving: !reconstruct, prefix: prefix)
                    fused = combine(into: fused, up)
                }
                var state = forward(level.blocks, fused, span: .timestep(t), saving: !reconstruct, prefix: prefix)
                addFlops(Double(2 * level.stateShape.elementCount * batch))
                if t > 0 {
                    if !reconstruct {
                        // dAlpha = sum(dc[l][t] * c[l][t-1]) needs the previous state.
                        retain(states[l])
                        keep([states[l]], key: SavedKey(path: prefix + level.path + "/alpha", timestep: t))
                    }
                    // c[l][t] += alpha_l * c[l][t-1], in c[l][t]'s storage; c[l][t-1] was last read
                    // by level l-1's up path and by this term.
                    state = makeWritable(state)
                    release(states[l])
                }
                next.append(state)
            }
            retain(next[levels.count - 1])
            let logits = forward(net.head, next[levels.count - 1], span: .timestep(t), saving: !reconstruct, prefix: prefix)
            if !reconstruct {
                keep([logits], key: SavedKey(path: prefix + "head/logits", timestep: t))
            } else {
                release(logits)
            }
            states = next
        }
        for id in states { markKept(id) }

        // Backward, column by column from the last.
        var dStates: [Int?] = Array(repeating: nil, count: levels.count)
        var dStem: Int?
        for t in (0..<timesteps).reversed() {
            let prefix = TraceBuilder.columnPrefix(t)
            let top = levels.count - 1
            let dLogits: Int
            if reconstruct {
                phase = .recompute(timestep: t)
                retain(states[top])
                let logits = forward(net.head, states[top], span: .timestep(t), saving: true, prefix: prefix)
                phase = .backward(timestep: t)
                dLogits = outputGradient(span: .timestep(t))
                release(logits)
            } else {
                phase = .backward(timestep: t)
                dLogits = outputGradient(span: .timestep(t))
                releaseSaved(SavedKey(path: prefix + "head/logits", timestep: t))
            }
            let dTop = backward(net.head, dLogits, span: .timestep(t), needInputGrad: true, prefix: prefix)!
            dStates[top] = dStates[top].map { combine(into: $0, dTop) } ?? dTop

            var previous: [Int?] = Array(repeating: nil, count: levels.count)
            var dPrevious: [Int?] = Array(repeating: nil, count: levels.count)
            for (l, level) in levels.enumerated().reversed() {
                if reconstruct {
                    phase = .recompute(timestep: t)
                    let below = l == 0 ? stem : states[l - 1]
                    retain(below)
                    var fused = forward(level.down, below, span: .timestep(t), saving: true, prefix: prefix)
                    if t > 0 && !level.up.isEmpty {
                        retain(previous[l + 1]!)
                        let up = forward(level.up, previous[l + 1]!, span: .timestep(t), saving: true, prefix: prefix)
                        fused = combine(into: fused, up)
                    }
                    let value = forward(level.blocks, fused, span: .timestep(t), saving: true, prefix: prefix)
                    if t > 0 {
                        // c[l][t-1] = (c[l][t] - F_l) / alpha_l
                        previous[l] = allocateActivation(prefix + level.path, "state", role: .activation,
                                                          shape: level.stateShape, span: .timestep(t - 1))
                        addFlops(Double(2 * level.stateShape.elementCount * batch))
                    }
                    release(value)
                }
                phase = .backward(timestep: t)
                let dState = dStates[l]!
                if t > 0 {
                    // dc[l][t-1] = alpha_l * dc[l][t] (+ the up path's contribution below).
                    dPrevious[l] = allocateActivation(prefix + level.path, "dState", role: .workspace,
                                                       shape: level.stateShape, span: .timestep(t - 1))
                    if !reconstruct { releaseSaved(SavedKey(path: prefix + level.path + "/alpha", timestep: t)) }
                }
                let dFused = backward(level.blocks, dState, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if t > 0 && !level.up.isEmpty {
                    retain(dFused)
                    let dUp = backward(level.up, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                    dPrevious[l + 1] = combine(into: dPrevious[l + 1]!, dUp)
                }
                let dBelow = backward(level.down, dFused, span: .timestep(t), needInputGrad: true, prefix: prefix)!
                if l > 0 {
                    dStates[l - 1] = dStates[l - 1].map { combine(into: $0, dBelow) } ?? dBelow
                } else {
                    dStem = dStem.map { combine(into: $0, dBelow) } ?? dBelow
                }
                dStates[l] = nil
            }
            for id in states { release(id) }
            // bptt has nothing to reconstruct: earlier columns' states live on in their saved references.
            states = previous.compactMap { $0 }
            dStates = dPrevious
        }
        phase = .backward(timestep: nil)
        release(stem)
        if let unused = backward(stemLayers, dStem!, span: .once, needInputGrad: false) { release(unused) }
        finish(input: input, labels: labels)
    }

}
