import MemoryModel
import Planner
import Profiles

/// Reversible stages in the engine: the channel split, the coupling, and the two backward modes
/// (graphs kept from forward, or rebuilt from the stage output while reconstructing the inputs).
extension TrainingStep {
    func halfShape(_ layer: Layer, _ stage: ReversibleStage) -> TensorShape {
        TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
    }

    /// Copies the channel halves of `source` ([N, C, ...] for N = slices x batch samples) into two tensors.
    func split(_ source: Int, into first: Int, _ second: Int, samples: Int, halfCount: Int) {
        let from = heap.values(source), a = heap.values(first), b = heap.values(second)
        for n in 0..<samples {
            (a + n * halfCount).update(from: from + n * 2 * halfCount, count: halfCount)
            (b + n * halfCount).update(from: from + n * 2 * halfCount + halfCount, count: halfCount)
        }
    }

    func merge(_ first: Int, _ second: Int, into target: Int, samples: Int, halfCount: Int) {
        let to = heap.values(target), a = heap.values(first), b = heap.values(second)
        for n in 0..<samples {
            (to + n * 2 * halfCount).update(from: a + n * halfCount, count: halfCount)
            (to + n * 2 * halfCount + halfCount).update(from: b + n * halfCount, count: halfCount)
        }
    }

    func forwardReversible(_ layer: Layer, _ stage: ReversibleStage, _ x: Int, span: Span, saving: Bool,
                           mode: ReversibleMode) throws -> Int {
        let path = layer.path
        let half = halfShape(layer, stage)
        let samples = slices(span) * batch
        precondition(!isBroadcast(x, layerInput: layer.inputShape, span: span), "a reversible stage needs a per-timestep input")
        var x1 = try allocateActivation(path, "x1", role: .activation, shape: half, span: span)
        var x2 = try allocateActivation(path, "x2", role: .activation, shape: half, span: span)
        split(x, into: x1, x2, samples: samples, halfCount: half.elementCount)
        try heap.release(x)
        let keepGraphs = saving && mode == .storeGraphs
        for (index, block) in stage.blocks.enumerated() {
            stateObserver?("\(path)/block\(index)/x1", false, x1)
            stateObserver?("\(path)/block\(index)/x2", false, x2)
            heap.retain(x2)
            let f = try forward(block.f, x2, span: span, saving: keepGraphs, reversible: mode)
            let y1 = try heap.combine(into: f, x1)
            heap.retain(y1)
            let g = try forward(block.g, y1, span: span, saving: keepGraphs, reversible: mode)
            let y2 = try heap.combine(into: g, x2)
            x1 = y1
            x2 = y2
        }
        let output = try allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
        merge(x1, x2, into: output, samples: samples, halfCount: half.elementCount)
        if saving && mode == .keepOutputOnly {
            keep([x1, x2], key: SavedKey(path: path, timestep: span.timestep))
        } else {
            try heap.release(x1)
            try heap.release(x2)
        }
        return output
    }

    func backwardStoredReversible(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int, span: Span,
                                  needInputGrad: Bool) throws -> Int? {
        let path = layer.path
        let half = halfShape(layer, stage)
        let samples = slices(span) * batch
        var dY1 = try allocateActivation(path, "dy1", role: .workspace, shape: half, span: span)
        var dY2 = try allocateActivation(path, "dy2", role: .workspace, shape: half, span: span)
        split(dY, into: dY1, dY2, samples: samples, halfCount: half.elementCount)
        try heap.release(dY)
        for block in stage.blocks.reversed() {
            heap.retain(dY2)
            let dG = try backward(block.g, dY2, span: span, needInputGrad: true)!
            let dZ1 = try heap.combine(into: dY1, dG)
            heap.retain(dZ1)
            let dF = try backward(block.f, dZ1, span: span, needInputGrad: true)!
            dY2 = try heap.combine(into: dY2, dF)
            dY1 = dZ1
        }
        return try mergeGradient(path, dY1, dY2, shape: layer.inputShape, span: span, needed: needInputGrad, halfCount: half.elementCount)
    }

    /// RevSNN backward: rebuild G on Y1 (X2 = Y2 - G(Y1)), backpropagate it, free it; then F on X2
    /// (X1 = Y1 - F(X2)). Each rebuild runs its neurons over all timesteps from a reset state.
    func backwardReconstructingReversible(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int, needInputGrad: Bool) throws -> Int? {
        let path = layer.path
        let span = Span.allTimesteps
        guard let kept = saved.removeValue(forKey: SavedKey(path: path, timestep: nil)), kept.count == 2 else {
            preconditionFailure("reversible stage \(path) has no kept output")
        }
        var (y1, y2) = (kept[0], kept[1])
        let half = halfShape(layer, stage)
        let samples = timesteps * batch
        var dY1 = try allocateActivation(path, "dy1", role: .workspace, shape: half, span: span)
        var dY2 = try allocateActivation(path, "dy2", role: .workspace, shape: half, span: span)
        split(dY, into: dY1, dY2, samples: samples, halfCount: half.elementCount)
        try heap.release(dY)
        let backwardPhase = heap.phase
        for (index, block) in stage.blocks.enumerated().reversed() {
            try heap.begin(.recompute(timestep: nil))
            heap.retain(y1)
            let g = try forward(block.g, y1, span: span, saving: true)
            let x2 = try heap.combine(into: y2, g, sign: -1, name: "x2")
            try heap.begin(backwardPhase)
            heap.retain(dY2)
            let dG = try backward(block.g, dY2, span: span, needInputGrad: true)!
            let dZ1 = try heap.combine(into: dY1, dG)

            try heap.begin(.recompute(timestep: nil))
            heap.retain(x2)
            let f = try forward(block.f, x2, span: span, saving: true)
            let x1 = try heap.combine(into: y1, f, sign: -1, name: "x1")
            try heap.begin(backwardPhase)
            heap.retain(dZ1)
            let dF = try backward(block.f, dZ1, span: span, needInputGrad: true)!
            dY2 = try heap.combine(into: dY2, dF)
            dY1 = dZ1
            y1 = x1
            y2 = x2
            stateObserver?("\(path)/block\(index)/x1", true, x1)
            stateObserver?("\(path)/block\(index)/x2", true, x2)
        }
        try heap.release(y1)
        try heap.release(y2)
        return try mergeGradient(path, dY1, dY2, shape: layer.inputShape, span: span, needed: needInputGrad, halfCount: half.elementCount)
    }

    private func mergeGradient(_ path: String, _ a: Int, _ b: Int, shape: TensorShape, span: Span, needed: Bool,
                               halfCount: Int) throws -> Int? {
        var merged: Int?
        if needed {
            merged = try allocateActivation(path, "dInput", role: .workspace, shape: shape, span: span)
            merge(a, b, into: merged!, samples: slices(span) * batch, halfCount: halfCount)
        }
        try heap.release(a)
        try heap.release(b)
        return merged
    }
}
