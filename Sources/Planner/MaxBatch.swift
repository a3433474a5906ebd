import MemoryModel
import Profiles

/// The largest batch whose planned peak fits a memory budget.
public struct MaxBatchResult: Sendable, Equatable {
    public var strategy: Strategy
    public var budgetBytes: Int
    /// 0 when not even one sample fits.
    public var maxBatch: Int
    /// Peak at `maxBatch`; nil when it is 0.
    public var peakBytesAtMax: Int?
    public var peakBytesAtMaxPlusOne: Int
    /// Plans made by the search (for the benchmark's curiosity).
    public var plansEvaluated: Int
}

public enum MaxBatch {
    /// Batches above this are not searched: no profile's step fits a real machine there.
    public static let searchLimit = 1 << 24

    /// Exponential then binary search on the planned peak, which never decreases with the batch.
    /// `bytesNeeded` turns a plan into the bytes that must fit: the planned peak, or for a
    /// pytorch-cuda plan what the GPU must hold (`CUDAMemoryEstimate.totalBytes`).
    public static func find(_ profile: Profile, strategy: Strategy, budgetBytes: Int,
                            options: Planner.Options = Planner.Options(),
                            bytesNeeded: (MemoryPlan) -> Int = { $0.peakBytes }) throws -> MaxBatchResult {
        var evaluated = 0
        func peak(_ batch: Int) throws -> Int {
            var o = options
            o.batch = batch
            evaluated += 1
            return bytesNeeded(try Planner.plan(profile, strategy: strategy, options: o))
        }
        // The search never asks for a batch past what can be planned at this T (PlanningLimits).
        var ceiling = searchLimit
        if let problem = profile.sizeProblem(batch: searchLimit, timesteps: options.timesteps ?? profile.timesteps) {
            guard problem.quantity == .batch, problem.largest >= 2 else {
                throw PlannerError.tooLarge(profile: profile.sourcePath, problem: problem)
            }
            ceiling = problem.largest
        }
        var fits = 1, fitsPeak: Int
        var tooBig = 2
        var tooBigPeak: Int
        let timesteps = options.timesteps ?? profile.timesteps
        let segment = strategy == .checkpoint ? options.segment ?? Strategy.defaultSegment(timesteps: timesteps) : nil
        if let reason = options.runtime.oneSampleReason(profile, strategy: strategy, batch: 1, timesteps: timesteps, segment: segment) {
            // Batch 1 cannot be planned on this runtime (a transposed conv on one sample runs PyTorch's
            // native kernel): search from 2, and say so when 2 does not fit either.
            fitsPeak = try peak(2)
            guard fitsPeak <= budgetBytes else {
                throw PlannerError.notApplicable(strategy: strategy, reason: "batch 2 needs \(fitsPeak) bytes, over the budget, and batch 1 is not modelled: \(reason)")
            }
            (fits, tooBig) = (2, min(4, ceiling))
            tooBigPeak = try peak(tooBig)
        } else {
            let peakAtOne = try peak(1)
            if peakAtOne > budgetBytes {
                return MaxBatchResult(strategy: strategy, budgetBytes: budgetBytes, maxBatch: 0, peakBytesAtMax: nil,
                                      peakBytesAtMaxPlusOne: peakAtOne, plansEvaluated: evaluated)
            }
            fitsPeak = peakAtOne
            tooBigPeak = try peak(2)
        }
        while tooBigPeak <= budgetBytes {
            fits = tooBig
            fitsPeak = tooBigPeak
            guard tooBig < ceiling else {
                throw PlannerError.invalidArgument(name: "memory", value: "\(budgetBytes) bytes",
                                                   fix: "the budget fits more than \(ceiling) samples, the largest batch snnmem plans here; use a realistic memory size")
            }
            tooBig = min(tooBig * 2, ceiling)
            tooBigPeak = try peak(tooBig)
        }
        while tooBig - fits > 1 {
            let middle = (fits + tooBig) / 2
            let middlePeak = try peak(middle)
            if middlePeak <= budgetBytes {
                fits = middle
                fitsPeak = middlePeak
            } else {
                tooBig = middle
                tooBigPeak = middlePeak
            }
        }
        return MaxBatchResult(strategy: strategy, budgetBytes: budgetBytes, maxBatch: fits, peakBytesAtMax: fitsPeak,
                              peakBytesAtMaxPlusOne: tooBigPeak, plansEvaluated: evaluated)
    }
}
