import MemoryModel

/// The largest profiles and runs snnmem plans, checked where the numbers are read.
///
/// Why bounds at all: every byte and element count is an Int product of user numbers. Checking
/// them at the boundary (profile, command-line options) keeps every later product, in the
/// planner, the allocator replays and the reports, provably inside Int64, and keeps one plan to
/// a few seconds. Each bound is far past any network that trains on today's hardware.
public enum PlanningLimits {
    /// Any one size written in a profile: channels, height, width, `out`, kernel, stride,
    /// padding, upsample factor, expansion.
    public static let maxDimension = 1 << 24
    /// Elements of one sample's tensor at one timestep (channels x height x width): 64 GiB of float32.
    public static let maxSampleElements = 1 << 34
    /// Parameters of one layer.
    public static let maxLayerParameters = 1 << 36
    /// Layers once `repeat`, reversible blocks, T-RevSNN blocks and YAML aliases are expanded.
    public static let maxLayers = 100_000
    public static let maxBatch = StepBounds.maxBatch
    public static let maxTimesteps = StepBounds.maxTimesteps
    /// Timesteps x layers: the planner's work (and the size of a plan) is linear in it.
    public static let maxLayerTimesteps = 1 << 17
    /// Bound on the bytes one training step can allocate in all (see `StepBounds.maxStepBytes`).
    public static let maxStepBytes = StepBounds.maxStepBytes

    /// "16,777,216": limits are printed with separators so that their size reads at a glance.
    public static func formatted(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
            out.append(digit)
        }
        return (value < 0 ? "-" : "") + out
    }
}

/// A batch or T (or a network) too large to plan: which number, its value, and the largest one
/// that can be planned with everything else as it is.
public struct PlanSizeProblem: Hashable, Sendable, CustomStringConvertible {
    public enum Quantity: String, Sendable { case batch, timesteps }
    public var quantity: Quantity
    public var value: Int
    /// The largest value of `quantity` that can be planned; 0 where none can.
    public var largest: Int
    public var reason: String

    public var description: String {
        "\(quantity.rawValue) \(PlanningLimits.formatted(value)) is too large to plan: \(reason); the largest \(quantity.rawValue) snnmem plans here is \(PlanningLimits.formatted(largest))"
    }
}

extension Profile {
    /// What the size checks need from the layer tree, gathered in one walk of it.
    struct SizeTotals {
        var layerCount: Int
        /// Every layer's input and output elements for one sample and one timestep; nil past Int64.
        var sampleElementsPerTimestep: Int?
        /// Parameters of the whole network, at most; nil past Int64.
        var parameterElements: Int?
    }

    var sizeTotals: SizeTotals {
        var layerCount = 0
        var elements: Int? = inputShape.checkedElementCount
        var parameters: Int? = 0
        forEachLayer { layer in
            layerCount += 1
            elements = elements.flatMap { CheckedArithmetic.sum($0, layer.inputShape.checkedElementCount ?? Int.max) }
                .flatMap { CheckedArithmetic.sum($0, layer.outputShape.checkedElementCount ?? Int.max) }
            if case .attention(let spec) = layer.kind {
                // The attention map ([heads, N, N]) is larger than the layer's input or output.
                elements = elements.flatMap { CheckedArithmetic.sum($0, spec.mapShape.checkedElementCount ?? Int.max) }
            }
            parameters = parameters.flatMap { sum in layer.parameterElementsBound.flatMap { CheckedArithmetic.sum(sum, $0) } }
            return true
        }
        return SizeTotals(layerCount: layerCount, sampleElementsPerTimestep: elements, parameterElements: parameters)
    }

    /// An upper bound on the bytes one training step allocates in all, or nil past Int64: 8
    /// tensors of 8-byte elements per layer input and output and per parameter (the planners
    /// keep at most a few per layer: output, saved input, gradients, neuron states).
    public func stepBytesBound(batch: Int, timesteps: Int) -> Int? { Self.stepBytesBound(sizeTotals, batch: batch, timesteps: timesteps) }

    static func stepBytesBound(_ totals: SizeTotals, batch: Int, timesteps: Int) -> Int? {
        guard let perSample = totals.sampleElementsPerTimestep, let parameters = totals.parameterElements,
              let activationBytes = CheckedArithmetic.product([perSample, batch, timesteps, 64]),
              let parameterBytes = CheckedArithmetic.product(parameters, 64) else { return nil }
        return CheckedArithmetic.sum(activationBytes, parameterBytes)
    }

    /// Why this profile cannot be planned at this batch and T, or nil where it can.
    public func sizeProblem(batch: Int, timesteps: Int) -> PlanSizeProblem? {
        if timesteps > PlanningLimits.maxTimesteps {
            return PlanSizeProblem(quantity: .timesteps, value: timesteps, largest: PlanningLimits.maxTimesteps,
                                   reason: "snnmem plans at most \(PlanningLimits.formatted(PlanningLimits.maxTimesteps)) timesteps")
        }
        if batch > PlanningLimits.maxBatch {
            return PlanSizeProblem(quantity: .batch, value: batch, largest: PlanningLimits.maxBatch,
                                   reason: "snnmem plans batches of at most \(PlanningLimits.formatted(PlanningLimits.maxBatch)) samples")
        }
        let totals = sizeTotals
        let layerCount = max(1, totals.layerCount)
        if (CheckedArithmetic.product(timesteps, layerCount) ?? Int.max) > PlanningLimits.maxLayerTimesteps {
            return PlanSizeProblem(quantity: .timesteps, value: timesteps, largest: PlanningLimits.maxLayerTimesteps / layerCount,
                                   reason: "\(layerCount) layers x \(PlanningLimits.formatted(timesteps)) timesteps is more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerTimesteps)) layer-timesteps one plan covers in a few seconds")
        }
        if Self.stepBytesBound(totals, batch: batch, timesteps: timesteps).map({ $0 > PlanningLimits.maxStepBytes }) ?? true {
            var largest = 0
            if let perSample = totals.sampleElementsPerTimestep, let parameters = totals.parameterElements,
               let perBatchBytes = CheckedArithmetic.product([perSample, timesteps, 64]),
               let parameterBytes = CheckedArithmetic.product(parameters, 64), parameterBytes < PlanningLimits.maxStepBytes {
                largest = (PlanningLimits.maxStepBytes - parameterBytes) / perBatchBytes
            }
            return PlanSizeProblem(quantity: .batch, value: batch, largest: largest,
                                   reason: "at T = \(timesteps) the step's tensors could exceed \(ByteCount.format(PlanningLimits.maxStepBytes)), past what snnmem's byte counts hold")
        }
        return nil
    }
}

extension Layer {
    /// At most this many parameters (weights, bias, batch-norm affine and running statistics);
    /// nil past Int64. Composite layers count their sub-layers through `Profile.allLayers`.
    var parameterElementsBound: Int? {
        switch kind {
        case .conv(let conv):
            return CheckedArithmetic.product([conv.outChannels, conv.inChannels / max(1, conv.groups), conv.kernel, conv.kernel])
                .flatMap { CheckedArithmetic.sum($0, conv.outChannels) }
        case .convTranspose(let conv):
            return CheckedArithmetic.product([conv.inChannels, conv.outChannels, conv.kernel, conv.kernel])
                .flatMap { CheckedArithmetic.sum($0, conv.outChannels) }
        case .linear(let linear):
            return CheckedArithmetic.product(linear.outFeatures, linear.inFeatures).flatMap { CheckedArithmetic.sum($0, linear.outFeatures) }
        case .batchNorm(let channels): return CheckedArithmetic.product(4, channels)
        case .layerNorm(let spec): return spec.affine ? CheckedArithmetic.product(2, spec.normalizedCount) : 0
        case .conv1d(let conv):
            return CheckedArithmetic.product([conv.outChannels, conv.inChannels / max(1, conv.groups), conv.kernel])
                .flatMap { CheckedArithmetic.sum($0, conv.outChannels) }
        case .scale: return 1
        case .recurrent(let spec):
            return CheckedArithmetic.product(spec.outFeatures, spec.weightColumns).flatMap { CheckedArithmetic.sum($0, spec.outFeatures) }
        default: return 0
        }
    }
}
