import MemoryModel
import Planner
import Profiles

/// A `branches` block in the engine, allocating and freeing in the order the planner's
/// `BranchesWalk.swift` declares for the snnmem runtime: paths in order on the same input; add
/// sums into the first writable operand as outputs arrive, concat copies into a new output, and
/// and iand keep both operands; backward gives identity paths their gradient first, then the
/// paths with layers from the last to the first, summing the fork's gradient as they arrive.
extension TrainingStep {
    func forwardBranches(_ layer: Layer, _ spec: BranchesSpec, _ x: Int, span: Span, saving: Bool, prefix: String,
                         reversible: ReversibleMode) throws -> Int {
        let path = prefix + layer.path
        for _ in 1..<spec.paths.count { heap.retain(x) }
        switch spec.join {
        case .add:
            var sum: Int?
            for branch in spec.paths {
                let output = try forward(branch, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
                guard let previous = sum else { sum = output; continue }
                sum = try sumIntoWritable(previous, output)
            }
            return sum!
        case .concat:
            let outputs = try spec.paths.map { try forward($0, x, span: span, saving: saving, prefix: prefix, reversible: reversible) }
            let joined = try allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
            concatForward(samples: batch * slices(span), partSizes: outputs.map { heap.shape($0).elementCount / (batch * slices(span)) },
                          output: heap.values(joined), parts: outputs.map { UnsafePointer(heap.values($0)) })
            for id in outputs { try heap.release(id) }
            return joined
        case .and, .iand:
            let a = try forward(spec.paths[0], x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            let b = try forward(spec.paths[1], x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            let output = try allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
            let count = heap.shape(output).elementCount
            if spec.join == .and {
                andJoinForward(count: count, output: heap.values(output), a: heap.values(a), b: heap.values(b))
            } else {
                iandJoinForward(count: count, output: heap.values(output), a: heap.values(a), b: heap.values(b))
            }
            if saving {
                keep([a, b], key: SavedKey(path: path, timestep: span.timestep))
            } else {
                try heap.release(a)
                try heap.release(b)
            }
            return output
        }
    }

    /// `a + b` into a's storage when a has no other holder, else into b's, else a new tensor.
    func sumIntoWritable(_ a: Int, _ b: Int) throws -> Int {
        if heap.refcount(a) > 1 && heap.refcount(b) == 1 { return try heap.combine(into: b, a) }
        return try heap.combine(into: a, b)
    }

    func backwardBranches(_ layer: Layer, _ spec: BranchesSpec, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                          reversible: ReversibleMode) throws -> Int? {
        let path = prefix + layer.path
        let count = spec.paths.count
        var gradients: [Int] = []
        switch spec.join {
        case .add:
            for _ in 1..<count { heap.retain(dY) }
            gradients = Array(repeating: dY, count: count)
        case .concat:
            gradients = try spec.paths.enumerated().map { index, branch in
                try allocateActivation(path, "dPath\(index)", role: .workspace, shape: branch.last?.outputShape ?? layer.inputShape,
                                       span: span)
            }
            let samples = batch * slices(span)
            concatBackward(samples: samples, partSizes: gradients.map { heap.shape($0).elementCount / samples },
                           dParts: gradients.map { heap.values($0) }, dOutput: heap.values(dY))
            try heap.release(dY)
        case .and, .iand:
            let key = SavedKey(path: path, timestep: span.timestep)
            let dA = try allocateActivation(path, "dA", role: .workspace, shape: layer.outputShape, span: span)
            let dB = try allocateActivation(path, "dB", role: .workspace, shape: layer.outputShape, span: span)
            let kept = saved[key] ?? []
            precondition(kept.count == 2, "\(path): the join's operands were not kept")
            let n = heap.shape(dA).elementCount
            if spec.join == .and {
                andJoinBackward(count: n, dA: heap.values(dA), dB: heap.values(dB), dOutput: heap.values(dY),
                                a: heap.values(kept[0]), b: heap.values(kept[1]))
            } else {
                iandJoinBackward(count: n, dA: heap.values(dA), dB: heap.values(dB), dOutput: heap.values(dY),
                                 a: heap.values(kept[0]), b: heap.values(kept[1]))
            }
            try releaseSaved(key)
            try heap.release(dY)
            gradients = [dA, dB]
        }
        var sum: Int?
        for index in spec.backwardPathOrder {
            let branch = spec.paths[index]
            var gradient: Int?
            if branch.isEmpty {
                gradient = gradients[index]
                if !needInputGrad { try heap.release(gradients[index]); gradient = nil }
            } else {
                gradient = try backward(branch, gradients[index], span: span, needInputGrad: needInputGrad, prefix: prefix,
                                        reversible: reversible)
            }
            guard let gradient else { continue }
            guard let previous = sum else { sum = gradient; continue }
            sum = try accumulate(previous, gradient, path: path, shape: layer.inputShape, span: span)
        }
        return sum
    }

    /// The planner's `accumulate` (no views in the engine): into old or new where one holds its
    /// storage alone, else into a new tensor.
    func accumulate(_ old: Int, _ new: Int, path: String, shape: TensorShape, span: Span) throws -> Int {
        if heap.refcount(old) == 1 {
            add(count: heap.shape(old).elementCount, output: heap.values(old), heap.values(old), heap.values(new))
            try heap.release(new)
            return old
        }
        if heap.refcount(new) == 1 {
            add(count: heap.shape(new).elementCount, output: heap.values(new), heap.values(new), heap.values(old))
            try heap.release(old)
            return new
        }
        let sum = try allocateActivation(path, "dInput", role: .workspace, shape: shape, span: span)
        add(count: heap.shape(sum).elementCount, output: heap.values(sum), heap.values(old), heap.values(new))
        try heap.release(old)
        try heap.release(new)
        return sum
    }
}
