import MemoryModel

/// Records every tensor buffer's life: ids, sizes, roles, layers, times; live and peak bytes by
/// role; the memory budget; double frees and leaks; jemalloc samples at phase boundaries.
///
/// One recorder belongs to one allocator and one thread (the training loop's). Every event costs
/// O(1) and, once `reserveCapacity` has room, allocates nothing, so jemalloc's per-thread counters
/// see only the tensors themselves.
public final class AllocationRecorder {
    private var state: RecorderState
    /// Read at every phase boundary; set by the jemalloc allocator.
    public var jemallocStats: JemallocStats?

    public init(clock: any MonotonicClock = SystemMonotonicClock(), budgetBytes: Int? = nil,
                persistentRoles: Set<TensorRole> = [.parameter, .optimizerState], keepsEvents: Bool = true) {
        state = RecorderState(clock: clock, budgetBytes: budgetBytes, persistentRoles: persistentRoles,
                              keepsEvents: keepsEvents)
    }

    /// Live and peak bytes as requested (what the planner predicts).
    public var requested: LiveByteCounters { state.requested }
    /// Live and peak bytes as handed out by the allocator (size classes).
    public var allocated: LiveByteCounters { state.allocated }
    /// Refuse allocations that would take live requested bytes above this; nil means no limit.
    public var budgetBytes: Int? {
        get { state.budgetBytes }
        set { state.budgetBytes = newValue }
    }
    /// Roles whose tensors may outlive a training step (weights and optimizer state do).
    public var persistentRoles: Set<TensorRole> {
        get { state.persistentRoles }
        set { state.persistentRoles = newValue }
    }
    /// When false, only counters, problems and samples are kept (long runs without a trace).
    public var keepsEvents: Bool {
        get { state.keepsEvents }
        set { state.keepsEvents = newValue }
    }
    public var events: [TraceEvent] { state.events }
    public var samples: [JemallocSample] { state.samples }
    /// Every double free and leak found so far, in the order found.
    public var problems: [AllocationProblem] { state.problems }
    public var currentPhase: TrainingPhase { state.currentPhase }
    public var trainingStep: Int { state.trainingStep }
    /// Events seen so far, kept or not: the logical clock.
    public var eventCount: Int { state.eventCount }
    public var liveTensorCount: Int { state.slots.count - state.freeSlots.count }

    /// Room for this many events and live tensors, so that recording allocates nothing until then.
    public func reserveCapacity(events eventCapacity: Int, liveTensors: Int) {
        state.events.reserveCapacity(eventCapacity)
        state.slots.reserveCapacity(liveTensors)
        state.freeSlots.reserveCapacity(liveTensors)
    }

    /// Forgets the kept events (counters, live tensors and problems stay), keeping their storage.
    public func removeAllEvents() {
        state.events.removeAll(keepingCapacity: true)
    }

    // MARK: - Allocation and free

    /// Checks the budget before anything is allocated. A refusal is recorded as an event and
    /// thrown; nothing else changes, so later requests that fit succeed.
    public func admit(requestedBytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                      phase: TrainingPhase) throws {
        if let refusal = state.admit(requestedBytes: requestedBytes, role: role, layerPath: layerPath, name: name,
                                     timestep: timestep, phase: phase) {
            throw AllocatorError.outOfMemory(refusal)
        }
    }

    /// Records memory the allocator has just handed out and returns its handle.
    public func recordAllocation(pointer: UnsafeMutableRawPointer, requestedBytes: Int, allocatedBytes: Int,
                                 role: TensorRole, layerPath: String, name: String, timestep: Int?,
                                 phase: TrainingPhase) -> TensorBuffer {
        state.recordAllocation(pointer: pointer, requestedBytes: requestedBytes, allocatedBytes: allocatedBytes,
                               role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase)
    }

    /// Records a free before the allocator releases the memory. A buffer that is not live is
    /// recorded as a double free and thrown, and the caller must not release it again. Without a
    /// phase, the free belongs to the phase last begun.
    public func recordFree(_ buffer: TensorBuffer, phase: TrainingPhase? = nil) throws {
        if let problem = state.recordFree(buffer, phase: phase) {
            throw AllocatorError.doubleFree(problem)
        }
    }

    // MARK: - Phases and steps

    /// Marks a phase boundary: later frees belong to `phase`, and jemalloc is sampled (when the
    /// allocator is jemalloc) so the trace has its view of the memory at every boundary.
    public func beginPhase(_ phase: TrainingPhase) throws {
        state.currentPhase = phase
        guard let stats = jemallocStats else { return }
        let snapshot = try stats.read()
        let sample = JemallocSample(phase: phase, timeNs: state.clock.nowNs(), eventIndex: state.eventCount,
                                    trainingStep: state.trainingStep, snapshot: snapshot)
        state.samples.append(sample)
    }

    /// Ends the training step: reports the step's double frees and every live tensor of a
    /// non-persistent role as a leak, then starts the next step.
    @discardableResult
    public func endStep() -> StepReport {
        state.endStep()
    }

    // MARK: - Export

    /// The kept events as MemoryModel lifetime events: `PeakSweep` over them gives `peakBytes`
    /// of the matching counters (when every event was kept).
    public func lifetimeEvents(measuring bytes: MeasuredBytes = .allocated) -> [LifetimeEvent] {
        state.events.lifetimeEvents(measuring: bytes)
    }

    /// The trace so far, with this header; can be written even after an out-of-memory error.
    public func trace(header: MemoryTrace.Header) -> MemoryTrace {
        MemoryTrace(header: header, events: state.events, samples: state.samples, problems: state.problems)
    }
}
