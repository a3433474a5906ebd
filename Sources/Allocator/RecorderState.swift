import MemoryModel

/// Everything the recorder changes per event, in one value. The recorder class holds it in a
/// single stored property, so each event costs one exclusivity check instead of one per field
/// (class properties are checked at run time, and those checks dominated the recording cost).
struct RecorderState {
    var requested = LiveByteCounters()
    var allocated = LiveByteCounters()
    var budgetBytes: Int?
    var persistentRoles: Set<TensorRole>
    var keepsEvents: Bool
    var events: [TraceEvent] = []
    var samples: [JemallocSample] = []
    var problems: [AllocationProblem] = []
    var currentPhase: TrainingPhase = .setup
    var trainingStep = 0
    var eventCount = 0
    var clock: any MonotonicClock
    var nextTensorID = 0
    var slots: [LiveTensor] = []
    var freeSlots: [Int] = []
    var stepPeakAllocatedBytes = 0
    var stepPeakRequestedBytes = 0
    var problemsAtStepStart = 0
    /// Tensors already reported as leaked: a leak is reported once, at the end of the step that
    /// left it live, not again at every later step.
    var reportedLeaks = Set<Int>()

    init(clock: any MonotonicClock, budgetBytes: Int?, persistentRoles: Set<TensorRole>, keepsEvents: Bool) {
        self.clock = clock
        self.budgetBytes = budgetBytes
        self.persistentRoles = persistentRoles
        self.keepsEvents = keepsEvents
    }

    mutating func admit(requestedBytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                        phase: TrainingPhase) -> OutOfMemory? {
        guard let limit = budgetBytes, requested.liveBytes + requestedBytes > limit else { return nil }
        append(TraceEvent(
            tensorID: -1, kind: .outOfMemory, requestedBytes: requestedBytes, allocatedBytes: 0, role: role,
            layerPath: layerPath, name: name, timestep: timestep, phase: phase, timeNs: clock.nowNs(),
            eventIndex: eventCount, trainingStep: trainingStep))
        return OutOfMemory(
            requestedBytes: requestedBytes, role: role, layerPath: layerPath, name: name, timestep: timestep,
            phase: phase, trainingStep: trainingStep, liveBytes: requested.liveBytes,
            liveBytesByRole: requested.liveBytesByRole, limitBytes: limit)
    }

    mutating func recordAllocation(pointer: UnsafeMutableRawPointer, requestedBytes: Int, allocatedBytes: Int,
                                   role: TensorRole, layerPath: String, name: String, timestep: Int?,
                                   phase: TrainingPhase) -> TensorBuffer {
        let id = nextTensorID
        nextTensorID += 1
        let record = LiveTensor(id: id, requestedBytes: requestedBytes, allocatedBytes: allocatedBytes, role: role,
                                layerPath: layerPath, name: name, timestep: timestep, phase: phase)
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = record
        } else {
            slot = slots.count
            slots.append(record)
        }
        requested.add(requestedBytes, role: role)
        allocated.add(allocatedBytes, role: role)
        if allocated.liveBytes > stepPeakAllocatedBytes { stepPeakAllocatedBytes = allocated.liveBytes }
        if requested.liveBytes > stepPeakRequestedBytes { stepPeakRequestedBytes = requested.liveBytes }
        append(TraceEvent(
            tensorID: id, kind: .allocate, requestedBytes: requestedBytes, allocatedBytes: allocatedBytes,
            role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase, timeNs: clock.nowNs(),
            eventIndex: eventCount, trainingStep: trainingStep))
        return TensorBuffer(id: id, pointer: pointer, requestedBytes: requestedBytes, allocatedBytes: allocatedBytes,
                            role: role, layerPath: layerPath, name: name, timestep: timestep, slot: slot)
    }

    /// Returns the problem instead of recording the free when the buffer is not live.
    mutating func recordFree(_ buffer: TensorBuffer, phase: TrainingPhase?) -> AllocationProblem? {
        let phase = phase ?? currentPhase
        guard buffer.slot >= 0, buffer.slot < slots.count, slots[buffer.slot].id == buffer.id else {
            let problem = AllocationProblem(
                kind: .doubleFree, tensorID: buffer.id, requestedBytes: buffer.requestedBytes, role: buffer.role,
                layerPath: buffer.layerPath, name: buffer.name, timestep: buffer.timestep, phase: phase,
                trainingStep: trainingStep)
            problems.append(problem)
            return problem
        }
        slots[buffer.slot].id = LiveTensor.vacant
        freeSlots.append(buffer.slot)
        // The handle carries what the free event needs; the slot's id check proved it is this tensor.
        requested.remove(buffer.requestedBytes, role: buffer.role)
        allocated.remove(buffer.allocatedBytes, role: buffer.role)
        append(TraceEvent(
            tensorID: buffer.id, kind: .free, requestedBytes: buffer.requestedBytes,
            allocatedBytes: buffer.allocatedBytes, role: buffer.role, layerPath: buffer.layerPath, name: buffer.name,
            timestep: buffer.timestep, phase: phase, timeNs: clock.nowNs(), eventIndex: eventCount,
            trainingStep: trainingStep))
        return nil
    }

    private mutating func append(_ event: TraceEvent) {
        eventCount += 1
        if keepsEvents { events.append(event) }
    }

    mutating func endStep() -> StepReport {
        var stepProblems = Array(problems[problemsAtStepStart...])
        // What the set-up allocated (parameters, their gradient buffers, optimizer state) is the
        // model's for the whole run and lives across steps by design; a leak is a tensor that a
        // step allocated and did not free.
        for record in slots where record.id != LiveTensor.vacant && !persistentRoles.contains(record.role)
            && record.phase != .setup && !reportedLeaks.contains(record.id) {
            reportedLeaks.insert(record.id)
            let leak = AllocationProblem(
                kind: .leak, tensorID: record.id, requestedBytes: record.requestedBytes, role: record.role,
                layerPath: record.layerPath, name: record.name, timestep: record.timestep, phase: record.phase,
                trainingStep: trainingStep)
            stepProblems.append(leak)
            problems.append(leak)
        }
        let report = StepReport(trainingStep: trainingStep, problems: stepProblems,
                                peakAllocatedBytes: stepPeakAllocatedBytes, peakRequestedBytes: stepPeakRequestedBytes)
        trainingStep += 1
        problemsAtStepStart = problems.count
        stepPeakAllocatedBytes = allocated.liveBytes
        stepPeakRequestedBytes = requested.liveBytes
        return report
    }
}

/// The recorder's entry for a live tensor; `id == vacant` marks a slot free for reuse.
struct LiveTensor {
    static let vacant = -1

    var id: Int
    var requestedBytes: Int
    var allocatedBytes: Int
    var role: TensorRole
    var layerPath: String
    var name: String
    var timestep: Int?
    var phase: TrainingPhase
}
