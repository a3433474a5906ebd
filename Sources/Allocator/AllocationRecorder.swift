import MemoryModel

/// Records every tensor buffer's life: ids, sizes, roles, layers, times; live and peak bytes by
/// role; the memory budget; double frees and leaks; jemalloc samples at phase boundaries.
///
/// One recorder belongs to one allocator and one thread (the training loop's). Every event costs
/// O(1) and, once `reserveCapacity` has room, allocates nothing, so jemalloc's per-thread counters
/// see only the tensors themselves.
public final class AllocationRecorder {
    /// Live and peak bytes as requested (what the planner predicts).
    public private(set) var requested = LiveByteCounters()
    /// Live and peak bytes as handed out by the allocator (size classes).
    public private(set) var allocated = LiveByteCounters()
    /// Refuse allocations that would take live requested bytes above this; nil means no limit.
    public var budgetBytes: Int?
    /// Roles whose tensors may outlive a training step (weights and optimizer state do).
    public var persistentRoles: Set<TensorRole>
    /// When false, only counters, problems and samples are kept (long runs without a trace).
    public var keepsEvents: Bool
    /// Read at every phase boundary; set by the jemalloc allocator.
    public var jemallocStats: JemallocStats?

    public private(set) var events: [TraceEvent] = []
    public private(set) var samples: [JemallocSample] = []
    /// Every double free and leak found so far, in the order found.
    public private(set) var problems: [AllocationProblem] = []
    public private(set) var currentPhase: TrainingPhase = .setup
    public private(set) var trainingStep = 0
    /// Events seen so far, kept or not: the logical clock.
    public private(set) var eventCount = 0
    public var liveTensorCount: Int { slots.count - freeSlots.count }

    private var clock: any MonotonicClock
    private var nextTensorID = 0
    private var slots: [LiveTensor] = []
    private var freeSlots: [Int] = []
    private var stepPeakAllocatedBytes = 0
    private var stepPeakRequestedBytes = 0
    private var problemsAtStepStart = 0

    public init(clock: any MonotonicClock = SystemMonotonicClock(), budgetBytes: Int? = nil,
                persistentRoles: Set<TensorRole> = [.parameter, .optimizerState], keepsEvents: Bool = true) {
        self.clock = clock
        self.budgetBytes = budgetBytes
        self.persistentRoles = persistentRoles
        self.keepsEvents = keepsEvents
    }

    /// Room for this many events and live tensors, so that recording allocates nothing until then.
    public func reserveCapacity(events eventCapacity: Int, liveTensors: Int) {
        events.reserveCapacity(eventCapacity)
        slots.reserveCapacity(liveTensors)
        freeSlots.reserveCapacity(liveTensors)
    }

    /// Forgets the kept events (counters, live tensors and problems stay), keeping their storage.
    public func removeAllEvents() {
        events.removeAll(keepingCapacity: true)
    }

    // MARK: - Allocation and free

    /// Checks the budget before anything is allocated. A refusal is recorded as an event and
    /// thrown; the recorder's state is otherwise unchanged, so later requests that fit succeed.
    public func admit(requestedBytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                      phase: TrainingPhase) throws {
        guard let limit = budgetBytes, requested.liveBytes + requestedBytes > limit else { return }
        let report = OutOfMemory(
            requestedBytes: requestedBytes, role: role, layerPath: layerPath, name: name, timestep: timestep,
            phase: phase, trainingStep: trainingStep, liveBytes: requested.liveBytes,
            liveBytesByRole: requested.liveBytesByRole, limitBytes: limit)
        append(TraceEvent(
            tensorID: -1, kind: .outOfMemory, requestedBytes: requestedBytes, allocatedBytes: 0, role: role,
            layerPath: layerPath, name: name, timestep: timestep, phase: phase, timeNs: clock.nowNs(),
            eventIndex: eventCount, trainingStep: trainingStep))
        throw AllocatorError.outOfMemory(report)
    }

    /// Records memory the allocator has just handed out and returns its handle.
    public func recordAllocation(pointer: UnsafeMutableRawPointer, requestedBytes: Int, allocatedBytes: Int,
                                 role: TensorRole, layerPath: String, name: String, timestep: Int?,
                                 phase: TrainingPhase) -> TensorBuffer {
        let id = nextTensorID
        nextTensorID += 1
        let timeNs = clock.nowNs()
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
            role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase, timeNs: timeNs,
            eventIndex: eventCount, trainingStep: trainingStep))
        return TensorBuffer(id: id, pointer: pointer, requestedBytes: requestedBytes, allocatedBytes: allocatedBytes,
                            role: role, layerPath: layerPath, name: name, timestep: timestep, slot: slot)
    }

    /// Records a free before the allocator releases the memory. A buffer that is not live is
    /// recorded as a double free and thrown, and the caller must not release it again.
    public func recordFree(_ buffer: TensorBuffer, phase: TrainingPhase? = nil) throws {
        let phase = phase ?? currentPhase
        guard buffer.slot >= 0, buffer.slot < slots.count, slots[buffer.slot].id == buffer.id else {
            let problem = AllocationProblem(
                kind: .doubleFree, tensorID: buffer.id, requestedBytes: buffer.requestedBytes, role: buffer.role,
                layerPath: buffer.layerPath, name: buffer.name, timestep: buffer.timestep, phase: phase,
                trainingStep: trainingStep)
            problems.append(problem)
            throw AllocatorError.doubleFree(problem)
        }
        let record = slots[buffer.slot]
        slots[buffer.slot].id = LiveTensor.vacant
        freeSlots.append(buffer.slot)
        requested.remove(record.requestedBytes, role: record.role)
        allocated.remove(record.allocatedBytes, role: record.role)
        append(TraceEvent(
            tensorID: record.id, kind: .free, requestedBytes: record.requestedBytes,
            allocatedBytes: record.allocatedBytes, role: record.role, layerPath: record.layerPath, name: record.name,
            timestep: record.timestep, phase: phase, timeNs: clock.nowNs(), eventIndex: eventCount,
            trainingStep: trainingStep))
    }

    private func append(_ event: TraceEvent) {
        eventCount += 1
        if keepsEvents { events.append(event) }
    }

    // MARK: - Phases and steps

    /// Marks a phase boundary: later frees belong to `phase`, and jemalloc is sampled (when the
    /// allocator is jemalloc) so the trace has its view of the memory at every boundary.
    public func beginPhase(_ phase: TrainingPhase) throws {
        currentPhase = phase
        guard let stats = jemallocStats else { return }
        let snapshot = try stats.read()
        samples.append(JemallocSample(phase: phase, timeNs: clock.nowNs(), eventIndex: eventCount,
                                      trainingStep: trainingStep, snapshot: snapshot))
    }

    /// Ends the training step: reports the step's double frees and every live tensor of a
    /// non-persistent role as a leak, then starts the next step.
    @discardableResult
    public func endStep() -> StepReport {
        var stepProblems = Array(problems[problemsAtStepStart...])
        for record in slots where record.id != LiveTensor.vacant && !persistentRoles.contains(record.role) {
            let leak = AllocationProblem(
                kind: .leak, tensorID: record.id, requestedBytes: record.requestedBytes, role: record.role,
                layerPath: record.layerPath, name: record.name, timestep: record.timestep, phase: record.phase,
                trainingStep: trainingStep)
            stepProblems.append(leak)
            problems.append(leak)
        }
        stepProblems.sort { ($0.kind == .doubleFree ? 0 : 1, $0.tensorID) < ($1.kind == .doubleFree ? 0 : 1, $1.tensorID) }
        let report = StepReport(trainingStep: trainingStep, problems: stepProblems,
                                peakAllocatedBytes: stepPeakAllocatedBytes, peakRequestedBytes: stepPeakRequestedBytes)
        trainingStep += 1
        problemsAtStepStart = problems.count
        stepPeakAllocatedBytes = allocated.liveBytes
        stepPeakRequestedBytes = requested.liveBytes
        return report
    }

    // MARK: - Export

    /// The kept events as MemoryModel lifetime events: `PeakSweep` over them gives `peakBytes`
    /// of the matching counters (when every event was kept).
    public func lifetimeEvents(measuring bytes: MeasuredBytes = .allocated) -> [LifetimeEvent] {
        events.lifetimeEvents(measuring: bytes)
    }

    /// The trace so far, with this header; can be written even after an out-of-memory error.
    public func trace(header: MemoryTrace.Header) -> MemoryTrace {
        MemoryTrace(header: header, events: events, samples: samples, problems: problems)
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
