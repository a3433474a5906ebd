import Allocator
import MemoryModel
import Profiles

extension PyTorchMeasurement {
    /// The phases `snnmem-torch measure` writes.
    static let knownPhases: Set<String> = ["setup", "forward", "recompute", "backward", "optimizer", "reset"]

    /// Checks every field against what `snnmem-torch measure` writes: ranges and signs, the
    /// per-layer saved bytes adding up to the total, every free matching a live allocation at its
    /// address, and the allocation stream replaying to the recorded step peak. The first problem
    /// is returned, nil when the measurement is sound.
    public func firstProblem() -> TraceFieldProblem? {
        let maxBytes = PlanningLimits.maxStepBytes
        func outside(_ field: String, _ value: Int, _ range: ClosedRange<Int>) -> TraceFieldProblem? {
            range.contains(value) ? nil : .init(field: field, reason: "is \(value), outside \(range.lowerBound)...\(range.upperBound)")
        }
        let scalars: [(String, Int, ClosedRange<Int>)] = [
            ("batch", batch, 1...PlanningLimits.maxBatch), ("timesteps", timesteps, 1...PlanningLimits.maxTimesteps),
            ("savedBytes", savedBytes, 0...maxBytes), ("liveAtStartBytes", liveAtStartBytes, 0...maxBytes),
            ("stepPeakBytes", stepPeakBytes, 0...maxBytes),
        ]
        for (field, value, range) in scalars { if let problem = outside(field, value, range) { return problem } }
        if let segment, let problem = outside("segment", segment, 1...timesteps) { return problem }
        if let threads, let problem = outside("threads", threads, 1...StepBounds.maxCPUThreads) { return problem }
        if let dtype, !(DType(rawValue: dtype)?.holdsActivations ?? false) {
            return .init(field: "dtype", reason: "is '\(dtype)', not float32, float16 or bfloat16")
        }
        if let profileSHA256, !SHA256.isHexDigest(profileSHA256) {
            return .init(field: "profileSHA256", reason: "is '\(profileSHA256)', not 64 lowercase hexadecimal digits")
        }
        if stepPeakBytes < liveAtStartBytes {
            return .init(field: "stepPeakBytes", reason: "is \(stepPeakBytes), below the \(liveAtStartBytes) bytes live at the step's start")
        }
        var savedSum = 0
        for (index, layer) in savedByLayer.enumerated() {
            if let problem = outside("savedByLayer[\(index)].bytes", layer.bytes, 0...maxBytes) { return problem }
            savedSum += layer.bytes
        }
        if !savedByLayer.isEmpty, savedSum != savedBytes {
            return .init(field: "savedBytes", reason: "is \(savedBytes), but savedByLayer adds up to \(savedSum): the totals disagree")
        }
        if let cuda {
            if let problem = outside("cuda.maxAllocatedBytes", cuda.maxAllocatedBytes, 0...maxBytes) { return problem }
            if let problem = outside("cuda.maxReservedBytes", cuda.maxReservedBytes, 0...maxBytes) { return problem }
            if cuda.maxReservedBytes < cuda.maxAllocatedBytes {
                return .init(field: "cuda.maxReservedBytes", reason: "is \(cuda.maxReservedBytes), below maxAllocatedBytes \(cuda.maxAllocatedBytes) (reserved memory holds every allocation)")
            }
        }
        return allocationProblem()
    }

    private func allocationProblem() -> TraceFieldProblem? {
        guard let allocations, !allocations.isEmpty else { return nil }
        var liveByAddress: [Int: [Int]] = [:]
        var liveBytes = liveAtStartBytes
        var peakBytes = liveBytes
        for (index, allocation) in allocations.enumerated() {
            let place = "allocations[\(index)]"
            if allocation.bytes == Int.min || abs(allocation.bytes) > PlanningLimits.maxStepBytes {
                return .init(field: "\(place).bytes", reason: "is \(allocation.bytes), outside -\(PlanningLimits.maxStepBytes)...\(PlanningLimits.maxStepBytes)")
            }
            if !Self.knownPhases.contains(allocation.phase) {
                return .init(field: "\(place).phase", reason: "is '\(allocation.phase)', not one of \(Self.knownPhases.sorted().joined(separator: ", "))")
            }
            if let t = allocation.timestep, !(0..<timesteps).contains(t) {
                return .init(field: "\(place).timestep", reason: "is \(t), outside 0..<\(timesteps) (timesteps)")
            }
            if allocation.bytes > 0 {
                if let address = allocation.address { liveByAddress[address, default: []].append(allocation.bytes) }
            } else if allocation.bytes < 0, let address = allocation.address {
                guard let allocated = liveByAddress[address]?.popLast() else {
                    return .init(field: "\(place)", reason: "frees \(-allocation.bytes) bytes at address \(address) before any allocation there")
                }
                if allocated != -allocation.bytes {
                    return .init(field: "\(place).bytes", reason: "frees \(-allocation.bytes) bytes at address \(address), where \(allocated) were allocated")
                }
            }
            liveBytes += allocation.bytes
            peakBytes = max(peakBytes, liveBytes)
        }
        if peakBytes != stepPeakBytes {
            return .init(field: "stepPeakBytes", reason: "is \(stepPeakBytes), but the allocations replay to a peak of \(peakBytes): the totals disagree")
        }
        return nil
    }
}
