import MemoryModel
import Profiles

/// Forward and backward through lists of layers, allocating what `LayerMemoryTable` declares.
/// `prefix` is put before layer paths (a T-RevSNN column's "colN/").
extension TraceBuilder {
    /// How reversible stages run forward: keeping every block's graph (as any other layer), or
    /// keeping only the stage output so that backward can reconstruct the rest (RevSNN).
    enum ReversibleMode { case storeGraphs, keepOutputOnly }

    // MARK: Forward

    /// Runs `layers` on x (whose reference is consumed) and returns the output (a new reference).
    mutating func forward(_ layers: [Layer], _ x: Int, span: Span, saving: Bool, prefix: String = "",
                          reversible: ReversibleMode = .storeGraphs) -> Int {
        var current = x
        for layer in layers {
            current = forward(layer, current, span: span, saving: saving, prefix: prefix, reversible: reversible)
        }
        return current
    }

    mutating func forward(_ layer: Layer, _ x: Int, span: Span, saving: Bool, prefix: String,
                          reversible: ReversibleMode) -> Int {
        let path = prefix + layer.path
        switch layer.kind {
        case .residual(let spec):
            retain(x)
            let main = forward(spec.main, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            let shortcut = forward(spec.shortcut, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            addFlops(Double(layer.outputShape.elementCount * batch * steps(span)))
            if runtime.isPyTorch { return addOutOfPlace(main, shortcut, path: path, shape: layer.outputShape, span: span) }
            return combine(into: main, shortcut)
        case .branches(let spec):
            return forwardBranches(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        case .reversible(let stage):
            if runtime.isPyTorch { return forwardReversiblePyTorch(layer, stage, x, span: span, saving: saving, mode: reversible) }
            return forwardReversible(layer, stage, x, span: span, saving: saving, mode: reversible)
        case .trevsnn:
            preconditionFailure("a T-RevSNN network is run by its schedule, not as a layer")
        case .attention(let spec):
            return forwardAttention(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        default:
            break
        }
        if runtime.isPyTorch { return forwardPyTorch(layer, x, span: span, saving: saving, path: path) }
        let table = layerTables.entry(layer)
        let declaration = table.declaration
        addFlops(table.forwardFlops * Double(batch * steps(span)))
        if declaration.outputIsView { return x }
        for state in declaration.forwardState where forwardStates[path] == nil {
            // Multi-step layers hold the state only while they run; time-major ones across timesteps.
            forwardStates[path] = allocate(state, path: path, span: span == .allTimesteps ? .once : span)
        }
        let output = allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
        let own = declaration.saved.map { allocate($0, path: path, span: span) }
        for workspace in declaration.forwardWorkspace { allocateAndFree(workspace, path: path, span: span) }
        if saving {
            if declaration.keepsInput { retain(x) }
            keep(own + (declaration.keepsInput ? [x] : []), key: SavedKey(path: path, timestep: span.timestep))
        } else {
            for id in own { release(id) }
        }
        release(x)
        if !span.isTimestep, let state = forwardStates.removeValue(forKey: path) {
            release(state)
        }
        return output
    }

    func steps(_ span: Span) -> Int { span == .allTimesteps ? multiStepLength : 1 }

    // MARK: Backward

    /// Backpropagates dY (consumed) through `layers` in reverse; returns dX when `needInputGrad`.
    mutating func backward(_ layers: [Layer], _ dY: Int, span: Span, needInputGrad: Bool, prefix: String = "",
                           reversible: ReversibleMode = .storeGraphs) -> Int? {
        var gradient: Int? = dY
        for (index, layer) in layers.enumerated().reversed() {
            guard let current = gradient else { break }
            gradient = backward(layer, current, span: span, needInputGrad: index > 0 || needInputGrad, prefix: prefix,
                                reversible: reversible)
        }
        return gradient
    }

    mutating func backward(_ layer: Layer, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                           reversible: ReversibleMode) -> Int? {
        let path = prefix + layer.path
        switch layer.kind {
        case .residual(let spec):
            retain(dY)
            let dMain = backward(spec.main, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            let dShortcut: Int?
            if spec.shortcut.isEmpty {
                if needInputGrad { dShortcut = dY } else { release(dY); dShortcut = nil }
            } else {
                dShortcut = backward(spec.shortcut, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            }
            guard let dMain, let dShortcut else { return nil }
            return combine(into: dMain, dShortcut)
        case .branches(let spec):
            return backwardBranches(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        case .reversible(let stage):
            if runtime.isPyTorch {
                if reversible == .keepOutputOnly { return backwardRevSNNPyTorch(layer, stage, dY, needInputGrad: needInputGrad) }
                return backwardReversiblePyTorch(layer, stage, dY, span: span, needInputGrad: needInputGrad)
            }
            switch reversible {
            case .storeGraphs: return backwardStoredReversible(layer, stage, dY, span: span, needInputGrad: needInputGrad)
            case .keepOutputOnly: return backwardReconstructingReversible(layer, stage, dY, needInputGrad: needInputGrad)
            }
        case .trevsnn:
            preconditionFailure("a T-RevSNN network is run by its schedule, not as a layer")
        case .attention(let spec):
            return backwardAttention(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        default:
            break
        }
        if runtime.isPyTorch { return backwardPyTorch(layer, dY, span: span, needInputGrad: needInputGrad, path: path) }
        let table = layerTables.entry(layer)
        let declaration = table.declaration
        // Input gradient and weight gradient: about twice the forward's work.
        addFlops(2 * table.forwardFlops * Double(batch * steps(span)))
        if declaration.outputIsView {
            if needInputGrad { return dY }
            release(dY)
            return nil
        }
        if temporalGradient {
            for state in declaration.backwardState where backwardStates[path] == nil {
                backwardStates[path] = allocate(state, path: path, span: span == .allTimesteps ? .once : span)
            }
        }
        let allocatesInputGrad = needInputGrad || !declaration.canSkipInputGradient
        let dX = allocatesInputGrad ? allocateActivation(path, "dInput", role: .workspace, shape: layer.inputShape, span: span) : nil
        for workspace in declaration.backwardWorkspace { allocateAndFree(workspace, path: path, span: span) }
        releaseSaved(SavedKey(path: path, timestep: span.timestep))
        release(dY)
        if !span.isTimestep, let state = backwardStates.removeValue(forKey: path) {
            release(state)
        }
        if let dX, !needInputGrad {
            // The kernel wrote an input gradient nobody reads.
            release(dX)
            return nil
        }
        return dX
    }

    // MARK: Reversible stages

    /// Y1 = X1 + F(X2), Y2 = X2 + G(Y1) for every block. With `.keepOutputOnly` the blocks keep
    /// nothing and the final halves are kept for backward's reconstruction.
    mutating func forwardReversible(_ layer: Layer, _ stage: ReversibleStage, _ x: Int, span: Span, saving: Bool,
                                    mode: ReversibleMode) -> Int {
        let path = layer.path
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        var x1 = allocateActivation(path, "x1", role: .activation, shape: half, span: span)
        var x2 = allocateActivation(path, "x2", role: .activation, shape: half, span: span)
        release(x)
        let keepGraphs = saving && mode == .storeGraphs
        for block in stage.blocks {
            retain(x2)
            let f = forward(block.f, x2, span: span, saving: keepGraphs, reversible: mode)
            let y1 = combine(into: f, x1)
            retain(y1)
            let g = forward(block.g, y1, span: span, saving: keepGraphs, reversible: mode)
            let y2 = combine(into: g, x2)
            addFlops(2 * Double(half.elementCount * batch * steps(span)))
            x1 = y1
            x2 = y2
        }
        let output = allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
        if saving && mode == .keepOutputOnly {
            keep([x1, x2], key: SavedKey(path: path, timestep: span.timestep))
        } else {
            release(x1)
            release(x2)
        }
        return output
    }

    /// Backward through blocks whose graphs were kept in forward.
    mutating func backwardStoredReversible(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int, span: Span,
                                           needInputGrad: Bool) -> Int? {
        let path = layer.path
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        var dY1 = allocateActivation(path, "dy1", role: .workspace, shape: half, span: span)
        var dY2 = allocateActivation(path, "dy2", role: .workspace, shape: half, span: span)
        release(dY)
        for block in stage.blocks.reversed() {
            retain(dY2)
            let dG = backward(block.g, dY2, span: span, needInputGrad: true)!
            let dZ1 = combine(into: dY1, dG)
            retain(dZ1)
            let dF = backward(block.f, dZ1, span: span, needInputGrad: true)!
            dY2 = combine(into: dY2, dF)
            dY1 = dZ1
        }
        return mergeHalves(path, dY1, dY2, shape: layer.inputShape, span: span, needed: needInputGrad)
    }

    /// RevSNN backward: from the kept output, rebuild G on Y1 (which gives X2 = Y2 - G(Y1)),
    /// backpropagate and free it, then F on X2 (X1 = Y1 - F(X2)); one graph alive at a time.
    /// Each rebuild runs its neurons over all timesteps from a reset state.
    mutating func backwardReconstructingReversible(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int,
                                                   needInputGrad: Bool) -> Int? {
        let path = layer.path
        let span = Span.allTimesteps
        let key = SavedKey(path: path, timestep: nil)
        guard let kept = saved.removeValue(forKey: key), kept.count == 2 else {
            preconditionFailure("reversible stage \(path) has no kept output")
        }
        var (y1, y2) = (kept[0], kept[1])
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        var dY1 = allocateActivation(path, "dy1", role: .workspace, shape: half, span: span)
        var dY2 = allocateActivation(path, "dy2", role: .workspace, shape: half, span: span)
        release(dY)
        let backwardPhase = phase
        for block in stage.blocks.reversed() {
            phase = .recompute(timestep: nil)
            retain(y1)
            let g = forward(block.g, y1, span: span, saving: true)
            let x2 = combine(into: y2, g, name: "x2")
            addFlops(Double(half.elementCount * batch * timesteps))
            phase = backwardPhase
            retain(dY2)
            let dG = backward(block.g, dY2, span: span, needInputGrad: true)!
            let dZ1 = combine(into: dY1, dG)

            phase = .recompute(timestep: nil)
            retain(x2)
            let f = forward(block.f, x2, span: span, saving: true)
            let x1 = combine(into: y1, f, name: "x1")
            addFlops(Double(half.elementCount * batch * timesteps))
            phase = backwardPhase
            retain(dZ1)
            let dF = backward(block.f, dZ1, span: span, needInputGrad: true)!
            dY2 = combine(into: dY2, dF)
            dY1 = dZ1
            y1 = x1
            y2 = x2
        }
        // y1, y2 now hold the reconstructed stage input; the layer before keeps what it needs itself.
        release(y1)
        release(y2)
        return mergeHalves(path, dY1, dY2, shape: layer.inputShape, span: span, needed: needInputGrad)
    }

    private mutating func mergeHalves(_ path: String, _ a: Int, _ b: Int, shape: TensorShape, span: Span, needed: Bool) -> Int? {
        let merged = needed ? allocateActivation(path, "dInput", role: .workspace, shape: shape, span: span) : nil
        release(a)
        release(b)
        return merged
    }
}
