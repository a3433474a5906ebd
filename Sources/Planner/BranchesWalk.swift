import MemoryModel
import Profiles

/// Forward and backward through a `branches` block, for every runtime. The paths run in order on
/// the same input; how the join allocates and what it keeps differs by runtime:
///
/// | join | snnmem (the engine) | PyTorch (`python/snnmem_torch/build.py`'s `Branches`, measured) |
/// |---|---|---|
/// | add | each output summed into the first writable operand as it arrives; keeps nothing | `acc = acc + path(x)`, out of place; keeps nothing |
/// | concat | a new output; backward splits dY into per-path gradients | `torch.cat`; backward hands out views of dY |
/// | and | a new output; keeps a and b | `b * a`: MulBackward0 keeps both |
/// | iand | a new output; keeps a and b | `b * (1 - a)`: rsub's result and b kept; RsubBackward1 negates (one tensor) |
///
/// Backward, as PyTorch's autograd runs it: the join's gradients first, identity paths' arrive at the
/// fork at once, then the paths with layers from the last to the first (the most recently recorded
/// nodes run first); each arriving input gradient is summed into the one before, in place when
/// either holds its storage alone and is not a view (`InputBuffer::accumulate`).
extension TraceBuilder {
    mutating func forwardBranches(_ layer: Layer, _ spec: BranchesSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                                  reversible: ReversibleMode) -> Int {
        let path = prefix + layer.path
        let shape = layer.outputShape
        for _ in 1..<spec.paths.count { retain(x) }
        let elements = Double(shape.elementCount * batch * steps(span))
        switch spec.join {
        case .add:
            var sum: Int?
            for branch in spec.paths {
                let output = forward(branch, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
                guard let previous = sum else { sum = output; continue }
                addFlops(elements)
                sum = runtime.isPyTorch ? addOutOfPlace(previous, output, path: path, shape: shape, span: span)
                                        : sumIntoWritable(previous, output)
            }
            return sum!
        case .concat:
            let outputs = spec.paths.map { forward($0, x, span: span, saving: saving, prefix: prefix, reversible: reversible) }
            let joined = allocateActivation(path, "output", role: .activation, shape: shape, span: span)
            for id in outputs { release(id) }
            return joined
        case .and, .iand:
            let a = forward(spec.paths[0], x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            let b = forward(spec.paths[1], x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            addFlops(elements * (spec.join == .iand ? 2 : 1))
            var operands = [a, b]
            if runtime.isPyTorch && spec.join == .iand {
                // `1.0 - a` is a tensor of its own, which the product keeps in a's place.
                operands[0] = allocateActivation(path, "one_minus_a", role: .activation, shape: shape, span: span)
            }
            let output = allocateActivation(path, "output", role: .activation, shape: shape, span: span)
            if operands[0] != a { release(a) }
            if saving {
                keep(operands, key: SavedKey(path: path, timestep: span.timestep))
            } else {
                for id in operands { release(id) }
            }
            return output
        }
    }

    /// `a + b` into a's storage when a has no other holder, else into b's, else a new tensor.
    mutating func sumIntoWritable(_ a: Int, _ b: Int) -> Int {
        if !isExclusive(a) && isExclusive(b) { return combine(into: b, a) }
        return combine(into: a, b)
    }

    mutating func backwardBranches(_ layer: Layer, _ spec: BranchesSpec, _ dY: Int, span: Span, needInputGrad: Bool,
                                   prefix: String, reversible: ReversibleMode) -> Int? {
        let path = prefix + layer.path
        let count = spec.paths.count
        var gradients: [Int] = []
        // A PyTorch concat's backward gives each path a view of dY: never summed into in place.
        var views = false
        switch spec.join {
        case .add:
            for _ in 1..<count { retain(dY) }
            gradients = Array(repeating: dY, count: count)
        case .concat:
            if runtime.isPyTorch {
                for _ in 1..<count { retain(dY) }
                gradients = Array(repeating: dY, count: count)
                views = true
            } else {
                gradients = spec.paths.enumerated().map { index, branch in
                    allocateActivation(path, "dPath\(index)", role: .workspace, shape: branch.last?.outputShape ?? layer.inputShape,
                                       span: span)
                }
                release(dY)
            }
        case .and, .iand:
            let key = SavedKey(path: path, timestep: span.timestep)
            let shape = layer.outputShape
            if runtime.isPyTorch {
                // MulBackward0 of `b * other`: b's gradient, then other's; the node drops dY and what it kept.
                let dB = allocateActivation(path, "grad_b", role: .workspace, shape: shape, span: span)
                let dOther = allocateActivation(path, spec.join == .iand ? "grad_one_minus_a" : "grad_a", role: .workspace,
                                                shape: shape, span: span)
                release(dY)
                releaseSaved(key)
                var dA = dOther
                if spec.join == .iand {
                    // RsubBackward1: -grad.
                    dA = allocateActivation(path, "grad_a", role: .workspace, shape: shape, span: span)
                    release(dOther)
                }
                gradients = [dA, dB]
            } else {
                let dA = allocateActivation(path, "dA", role: .workspace, shape: shape, span: span)
                let dB = allocateActivation(path, "dB", role: .workspace, shape: shape, span: span)
                releaseSaved(key)
                release(dY)
                gradients = [dA, dB]
            }
        }
        var sum: (id: Int, isView: Bool)?
        for index in spec.backwardPathOrder {
            let branch = spec.paths[index]
            var gradient: Int?
            if branch.isEmpty {
                gradient = gradients[index]
                if !needInputGrad { release(gradients[index]); gradient = nil }
            } else {
                gradient = backward(branch, gradients[index], span: span, needInputGrad: needInputGrad, prefix: prefix,
                                    reversible: reversible)
            }
            guard let gradient else { continue }
            let arriving = (id: gradient, isView: views && branch.isEmpty)
            guard let previous = sum else { sum = arriving; continue }
            sum = accumulate(previous, arriving, path: path, shape: layer.inputShape, span: span)
        }
        return sum?.id
    }

    /// The fork's input gradient so far plus one more: summed in place into one of them when it is
    /// not a view and nothing else holds it, else into a new tensor.
    mutating func accumulate(_ old: (id: Int, isView: Bool), _ new: (id: Int, isView: Bool), path: String, shape: TensorShape,
                             span: Span) -> (id: Int, isView: Bool) {
        if !old.isView && isExclusive(old.id) {
            release(new.id)
            return (old.id, false)
        }
        if !new.isView && isExclusive(new.id) {
            release(old.id)
            return (new.id, false)
        }
        let sum = allocateActivation(path, "dInput", role: .workspace, shape: shape, span: span)
        release(old.id)
        release(new.id)
        return (sum, false)
    }
}
