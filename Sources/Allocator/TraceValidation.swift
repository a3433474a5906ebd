import MemoryModel

/// The largest byte count a trace field may hold: the bound the planner puts on a step. Anything
/// larger is a damaged or hand-edited file, and summing such values could overflow later.
let traceMaxBytes = StepBounds.maxStepBytes

/// A field of a trace file that no recording could have written, found by `MemoryTrace.validate`.
public struct TraceFieldProblem: Hashable, Sendable, CustomStringConvertible {
    /// The field as a JSON path into the file, e.g. `events[12].requestedBytes`.
    public var field: String
    public var reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension MemoryTrace {
    /// Checks every field against what the recorder can write: signs and ranges, event order,
    /// each free after its own allocation with the same size and role, each reported leak or
    /// double free a tensor the events know, and jemalloc's samples consistent with the events.
    /// The first problem is returned; nil when the trace is sound. Reporters read only validated
    /// traces, so a damaged file is refused with the field named instead of drawn as if measured.
    public func firstProblem() -> TraceFieldProblem? {
        if let problem = headerProblem() { return problem }
        if let problem = eventProblem() { return problem }
        if let problem = sampleProblem() { return problem }
        return recordedProblemsProblem()
    }

    private func headerProblem() -> TraceFieldProblem? {
        if header.profile.isEmpty { return .init(field: "header.profile", reason: "is empty") }
        // What `Profile.sourceSHA256` writes: 64 lowercase hex digits. Anything else could never
        // match a profile file, so `report --profile` would refuse every file for the wrong reason.
        if !SHA256.isHexDigest(header.profileSHA256) {
            return .init(field: "header.profileSHA256", reason: "is '\(header.profileSHA256.prefix(80))', not a SHA-256 digest (64 lowercase hex digits)")
        }
        if header.strategy.isEmpty { return .init(field: "header.strategy", reason: "is empty") }
        if !(1...StepBounds.maxBatch).contains(header.batch) {
            return .init(field: "header.batch", reason: "is \(header.batch), outside 1...\(StepBounds.maxBatch)")
        }
        if !(1...StepBounds.maxTimesteps).contains(header.timesteps) {
            return .init(field: "header.timesteps", reason: "is \(header.timesteps), outside 1...\(StepBounds.maxTimesteps)")
        }
        return nil
    }

    private func eventProblem() -> TraceFieldProblem? {
        var live: [Int: TraceEvent] = [:]
        var everAllocated = Set<Int>()
        var previous: TraceEvent?
        for (index, event) in events.enumerated() {
            let place = "events[\(index)]"
            func problem(_ field: String, _ reason: String) -> TraceFieldProblem {
                .init(field: field.isEmpty ? place : "\(place).\(field)", reason: reason)
            }
            for (field, value) in [("requestedBytes", event.requestedBytes), ("allocatedBytes", event.allocatedBytes)]
            where !(0...traceMaxBytes).contains(value) {
                return problem(field, "is \(value) bytes, outside 0...\(traceMaxBytes)")
            }
            if event.eventIndex < 0 { return problem("eventIndex", "is \(event.eventIndex), below 0") }
            if event.trainingStep < 0 { return problem("trainingStep", "is \(event.trainingStep), below 0") }
            if let t = event.timestep, !(0..<header.timesteps).contains(t) {
                return problem("timestep", "is \(t), outside 0..<\(header.timesteps) (header.timesteps)")
            }
            if let last = previous {
                if event.eventIndex <= last.eventIndex {
                    return problem("eventIndex", "is \(event.eventIndex), not after the previous event's \(last.eventIndex)")
                }
                if event.timeNs < last.timeNs {
                    return problem("timeNs", "is \(event.timeNs), before the previous event's \(last.timeNs)")
                }
                if event.trainingStep < last.trainingStep {
                    return problem("trainingStep", "is \(event.trainingStep), before the previous event's \(last.trainingStep)")
                }
            }
            previous = event
            switch event.kind {
            case .outOfMemory:
                if event.allocatedBytes != 0 {
                    return problem("allocatedBytes", "is \(event.allocatedBytes) on a refused request, which allocates nothing")
                }
            case .allocate:
                if event.tensorID < 0 { return problem("tensorID", "is \(event.tensorID), below 0") }
                if event.allocatedBytes < event.requestedBytes {
                    return problem("allocatedBytes", "is \(event.allocatedBytes), less than the \(event.requestedBytes) bytes requested")
                }
                if live[event.tensorID] != nil || everAllocated.contains(event.tensorID) {
                    return problem("tensorID", "tensor \(event.tensorID) is allocated a second time")
                }
                live[event.tensorID] = event
                everAllocated.insert(event.tensorID)
            case .free:
                guard let allocation = live.removeValue(forKey: event.tensorID) else {
                    let why = everAllocated.contains(event.tensorID)
                        ? "tensor \(event.tensorID) is freed a second time (a recorded double free is a problem, not an event)"
                        : "tensor \(event.tensorID) is freed before any allocation of it"
                    return problem("tensorID", why)
                }
                if event.requestedBytes != allocation.requestedBytes || event.allocatedBytes != allocation.allocatedBytes {
                    return problem("requestedBytes", "the free of tensor \(event.tensorID) is \(event.requestedBytes)/\(event.allocatedBytes) bytes (requested/allocated), its allocation \(allocation.requestedBytes)/\(allocation.allocatedBytes)")
                }
                if event.role != allocation.role {
                    return problem("role", "the free of tensor \(event.tensorID) is '\(event.role.rawValue)', its allocation '\(allocation.role.rawValue)'")
                }
            }
        }
        return nil
    }

    /// Samples come from jemalloc at phase boundaries. Their order must follow the events', and
    /// when the measured allocator was jemalloc, its process-wide allocated bytes cannot be below
    /// the bytes the events say are live at that moment (every tracked block is a jemalloc block).
    private func sampleProblem() -> TraceFieldProblem? {
        let lastIndex = events.last?.eventIndex ?? -1
        // Live allocated bytes after each event, to compare a sample against the events before it.
        var liveAfter: [Int] = []
        liveAfter.reserveCapacity(events.count)
        var liveBytes = 0
        for event in events {
            switch event.kind {
            case .allocate: liveBytes += event.allocatedBytes
            case .free: liveBytes -= event.allocatedBytes
            case .outOfMemory: break
            }
            liveAfter.append(liveBytes)
        }
        var previous: JemallocSample?
        var eventCursor = 0
        for (index, sample) in samples.enumerated() {
            let place = "samples[\(index)]"
            let snapshot = sample.snapshot
            for (field, value) in [("allocatedBytes", snapshot.allocatedBytes), ("activeBytes", snapshot.activeBytes),
                                   ("residentBytes", snapshot.residentBytes)] where value < 0 {
                return .init(field: "\(place).snapshot.\(field)", reason: "is \(value) bytes, below 0")
            }
            if snapshot.activeBytes < snapshot.allocatedBytes {
                return .init(field: "\(place).snapshot.activeBytes",
                             reason: "is \(snapshot.activeBytes), less than its \(snapshot.allocatedBytes) allocated bytes (active pages hold every allocated block)")
            }
            if sample.eventIndex < 0 || sample.eventIndex > lastIndex + 1 {
                return .init(field: "\(place).eventIndex", reason: "is \(sample.eventIndex), outside the events' 0...\(lastIndex + 1)")
            }
            if let last = previous {
                if sample.eventIndex < last.eventIndex {
                    return .init(field: "\(place).eventIndex", reason: "is \(sample.eventIndex), before the previous sample's \(last.eventIndex)")
                }
                if sample.timeNs < last.timeNs {
                    return .init(field: "\(place).timeNs", reason: "is \(sample.timeNs), before the previous sample's \(last.timeNs)")
                }
            }
            previous = sample
            while eventCursor < events.count, events[eventCursor].eventIndex < sample.eventIndex { eventCursor += 1 }
            let liveThen = eventCursor == 0 ? 0 : liveAfter[eventCursor - 1]
            if header.allocatorName.hasPrefix("jemalloc"), snapshot.allocatedBytes < liveThen {
                return .init(field: "\(place).snapshot.allocatedBytes",
                             reason: "jemalloc reports \(snapshot.allocatedBytes) bytes allocated, but the events before it hold \(liveThen) bytes live: the totals disagree")
            }
        }
        return nil
    }

    /// A leak names a tensor allocated and not freed by the end of its step; a double free a
    /// tensor that was allocated. Anything else was not recorded by the allocator.
    private func recordedProblemsProblem() -> TraceFieldProblem? {
        var allocations: [Int: TraceEvent] = [:]
        var freeStep: [Int: Int] = [:]
        for event in events {
            switch event.kind {
            case .allocate: allocations[event.tensorID] = event
            case .free: freeStep[event.tensorID] = event.trainingStep
            case .outOfMemory: break
            }
        }
        for (index, recorded) in problems.enumerated() {
            let place = "problems[\(index)]"
            if recorded.trainingStep < 0 { return .init(field: "\(place).trainingStep", reason: "is \(recorded.trainingStep), below 0") }
            guard events.isEmpty || allocations[recorded.tensorID] != nil else {
                return .init(field: "\(place).tensorID", reason: "tensor \(recorded.tensorID) is never allocated in the events")
            }
            guard let allocation = allocations[recorded.tensorID] else { continue }
            if recorded.requestedBytes != allocation.requestedBytes {
                return .init(field: "\(place).requestedBytes",
                             reason: "is \(recorded.requestedBytes), but tensor \(recorded.tensorID) was allocated with \(allocation.requestedBytes)")
            }
            if recorded.kind == .leak {
                if recorded.trainingStep < allocation.trainingStep {
                    return .init(field: "\(place).trainingStep",
                                 reason: "reports a leak in step \(recorded.trainingStep), before tensor \(recorded.tensorID) was allocated (step \(allocation.trainingStep))")
                }
                if let freed = freeStep[recorded.tensorID], freed <= recorded.trainingStep {
                    return .init(field: "\(place)",
                                 reason: "reports tensor \(recorded.tensorID) leaked at the end of step \(recorded.trainingStep), but the events free it in step \(freed)")
                }
            }
        }
        return nil
    }
}
