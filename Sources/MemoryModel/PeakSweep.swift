/// The one peak-finding sweep. Planned traces and measured traces both go through it, so a
/// difference between predicted and measured peaks can only come from the events themselves.
public struct PeakSweep: Sendable {
    public struct Problem: Hashable, Codable, Sendable, CustomStringConvertible {
        public enum Kind: String, Codable, Sendable { case doubleAllocate, freeOfUnknown, leak }
        public var kind: Kind
        public var tensorID: Int
        public var eventIndex: Int?

        public var description: String {
            switch kind {
            case .doubleAllocate: return "tensor \(tensorID) allocated twice (event \(eventIndex ?? -1))"
            case .freeOfUnknown: return "tensor \(tensorID) freed but not live (event \(eventIndex ?? -1)): a double free or a free without allocation"
            case .leak: return "tensor \(tensorID) still live at the end of the step"
            }
        }
    }

    public struct Result: Sendable, Codable, Equatable {
        /// Highest live bytes at any moment (after an allocation).
        public var peakBytes: Int
        /// Index of the event at which the peak was first reached; nil for an empty trace.
        public var peakEventIndex: Int?
        /// The phase of that event.
        public var peakPhase: TrainingPhase?
        /// Live bytes by role at the peak.
        public var bytesByRoleAtPeak: RoleBytes
        /// Highest live bytes of each role on its own (not necessarily at the same moment).
        public var peakBytesByRole: RoleBytes
        /// Peak of the bytes held for the step itself (activations, neuron state, workspace):
        /// live bytes less parameters, gradients, optimizer state and input.
        public var peakTransientBytes: Int
        /// Bytes still live after the last event.
        public var finalLiveBytes: Int
        public var problems: [Problem]
    }

    public var rounding: AllocatorRounding

    public init(rounding: AllocatorRounding = .exact) { self.rounding = rounding }

    /// Sweeps events in order. `allowLive` lists tensors allowed to outlive the trace
    /// (parameters and optimizer state survive a training step); anything else still live is a leak.
    public func run(_ events: [LifetimeEvent], allowLive: Set<Int> = []) -> Result {
        // A planned trace numbers its tensors 0, 1, 2, ... in allocation order: a table indexed by
        // id holds them without hashing. Other ids (a measured trace's) go through a dictionary.
        var maxID = -1
        var minID = 0
        for event in events {
            maxID = max(maxID, event.tensorID)
            minID = min(minID, event.tensorID)
        }
        // The table is handed over inout: a copy (`var live = live`) shared its storage with the
        // caller's, so the first insert copied the whole table.
        if minID >= 0 && maxID < 2 * events.count + 1024 {
            var live = DenseLiveTable(count: maxID + 1)
            return run(events, allowLive: allowLive, live: &live)
        }
        var live = HashedLiveTable(capacity: events.count / 2)
        return run(events, allowLive: allowLive, live: &live)
    }

    private func run<Live: LiveTable>(_ events: [LifetimeEvent], allowLive: Set<Int>, live: inout Live) -> Result {
        var liveBytes = 0
        var byRole = RoleBytes()
        var peakByRole = RoleBytes()
        var peakBytes = 0
        var peakIndex: Int?
        var peakRoles = RoleBytes()
        var problems: [Problem] = []
        var peakTransient = 0
        func transientBytes(_ roles: RoleBytes) -> Int {
            roles[.activation] + roles[.neuronState] + roles[.workspace]
        }

        for (index, event) in events.enumerated() {
            let bytes = rounding.roundedBytes(event.bytes)
            switch event.kind {
            case .allocate:
                guard live.insert(event.tensorID, bytes: bytes, role: event.role) else {
                    problems.append(Problem(kind: .doubleAllocate, tensorID: event.tensorID, eventIndex: index))
                    continue
                }
                liveBytes += bytes
                byRole[event.role] += bytes
                if byRole[event.role] > peakByRole[event.role] { peakByRole[event.role] = byRole[event.role] }
                peakTransient = max(peakTransient, transientBytes(byRole))
                if liveBytes > peakBytes || peakIndex == nil {
                    peakBytes = liveBytes
                    peakIndex = index
                    peakRoles = byRole
                }
            case .free:
                guard let entry = live.remove(event.tensorID) else {
                    problems.append(Problem(kind: .freeOfUnknown, tensorID: event.tensorID, eventIndex: index))
                    continue
                }
                liveBytes -= entry.bytes
                byRole[entry.role] -= entry.bytes
            }
        }
        for id in live.sortedIDs() where !allowLive.contains(id) {
            problems.append(Problem(kind: .leak, tensorID: id, eventIndex: nil))
        }
        return Result(
            peakBytes: peakBytes, peakEventIndex: peakIndex, peakPhase: peakIndex.map { events[$0].phase },
            bytesByRoleAtPeak: peakRoles, peakBytesByRole: peakByRole, peakTransientBytes: peakTransient, finalLiveBytes: liveBytes, problems: problems)
    }

    /// The tensors live right after event `index` (for "what makes the peak" listings).
    public func liveTensors(_ events: [LifetimeEvent], after index: Int) -> [Int] {
        var live = Set<Int>()
        for event in events[...index] {
            switch event.kind {
            case .allocate: live.insert(event.tensorID)
            case .free: live.remove(event.tensorID)
            }
        }
        return live.sorted()
    }

    /// Live bytes after every event, for timelines.
    public func liveBytesSeries(_ events: [LifetimeEvent]) -> [Int] {
        var series: [Int] = []
        series.reserveCapacity(events.count)
        var liveBytes = 0
        var sizes: [Int: Int] = [:]
        for event in events {
            switch event.kind {
            case .allocate:
                let bytes = rounding.roundedBytes(event.bytes)
                if sizes[event.tensorID] == nil { sizes[event.tensorID] = bytes; liveBytes += bytes }
            case .free:
                if let bytes = sizes.removeValue(forKey: event.tensorID) { liveBytes -= bytes }
            }
            series.append(liveBytes)
        }
        return series
    }
}

/// The tensors live during a sweep, with the bytes and role each was allocated with.
private protocol LiveTable {
    /// False when the id is live already.
    mutating func insert(_ id: Int, bytes: Int, role: TensorRole) -> Bool
    mutating func remove(_ id: Int) -> (bytes: Int, role: TensorRole)?
    func sortedIDs() -> [Int]
}

/// Ids 0..<count in one array (one uniqueness check per change, where three arrays had three).
private struct DenseLiveTable: LiveTable {
    struct Slot {
        var isLive = false
        var role = TensorRole.activation
        var bytes = 0
    }

    var slots: [Slot]

    init(count: Int) { slots = Array(repeating: Slot(), count: count) }

    mutating func insert(_ id: Int, bytes: Int, role: TensorRole) -> Bool {
        guard !slots[id].isLive else { return false }
        slots[id] = Slot(isLive: true, role: role, bytes: bytes)
        return true
    }

    mutating func remove(_ id: Int) -> (bytes: Int, role: TensorRole)? {
        guard slots[id].isLive else { return nil }
        slots[id].isLive = false
        return (slots[id].bytes, slots[id].role)
    }

    func sortedIDs() -> [Int] { slots.indices.filter { slots[$0].isLive } }
}

private struct HashedLiveTable: LiveTable {
    var live: [Int: (bytes: Int, role: TensorRole)] = [:]

    init(capacity: Int) { live.reserveCapacity(capacity) }

    mutating func insert(_ id: Int, bytes: Int, role: TensorRole) -> Bool {
        guard live[id] == nil else { return false }
        live[id] = (bytes, role)
        return true
    }

    mutating func remove(_ id: Int) -> (bytes: Int, role: TensorRole)? { live.removeValue(forKey: id) }

    func sortedIDs() -> [Int] { live.keys.sorted() }
}
