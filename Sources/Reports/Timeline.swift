import Allocator
import MemoryModel
import Planner

/// One training step's memory over time, planned or measured: the input every chart, table and
/// trace export reads. Both sources become the same sequence of allocation and free events, so
/// the same code draws a prediction and a measurement, and overlays one on the other.
public struct Timeline: Codable, Equatable, Sendable {
    public struct Event: Codable, Equatable, Sendable {
        public var kind: LifetimeEvent.Kind
        public var tensorID: Int
        public var bytes: Int
        public var role: TensorRole
        public var phase: TrainingPhase
        public var layerPath: String
        public var name: String
        public var timestep: Int?
        /// Milliseconds since the step began (measured traces); nil for planned ones.
        public var timeMs: Double?

        public init(kind: LifetimeEvent.Kind, tensorID: Int, bytes: Int, role: TensorRole, phase: TrainingPhase, layerPath: String,
                    name: String, timestep: Int?, timeMs: Double?) {
            self.kind = kind
            self.tensorID = tensorID
            self.bytes = bytes
            self.role = role
            self.phase = phase
            self.layerPath = layerPath
            self.name = name
            self.timestep = timestep
            self.timeMs = timeMs
        }

        public var label: String { "\(layerPath):\(name)" + (timestep.map { "@t\($0)" } ?? "") }
    }

    /// A tensor live at the peak.
    public struct LiveTensor: Codable, Equatable, Sendable {
        public var label: String
        public var role: TensorRole
        public var bytes: Int
    }

    public var title: String
    /// "planned" or "measured".
    public var source: String
    public var strategy: String
    public var events: [Event]

    public init(title: String, source: String, strategy: String, events: [Event]) {
        self.title = title
        self.source = source
        self.strategy = strategy
        self.events = events
    }

    /// A planned step, in the bytes of the plan's rounding.
    public init(plan: MemoryPlan, title: String? = nil) {
        self.init(title: title ?? "\(plan.profileName) \(plan.strategy.rawValue) (planned)", source: "planned", strategy: plan.strategy.rawValue,
                  events: plan.events.map { event in
                      let d = plan.tensors[event.tensorID].descriptor
                      return Event(kind: event.kind, tensorID: event.tensorID, bytes: plan.rounding.roundedBytes(event.bytes), role: event.role,
                                   phase: event.phase, layerPath: d.layerPath, name: d.name, timestep: d.timestep, timeMs: nil)
                  })
    }

    /// A measured step (`step` of the trace; the first by default), in requested or allocated bytes.
    public init(trace: MemoryTrace, step: Int = 0, measuring: MeasuredBytes = .requested, title: String? = nil) {
        let stepEvents = trace.events.filter { $0.trainingStep == step && $0.kind != .outOfMemory }
        let start = stepEvents.first?.timeNs ?? 0
        self.init(title: title ?? "\(trace.header.profile) \(trace.header.strategy) (measured)", source: "measured",
                  strategy: trace.header.strategy,
                  events: stepEvents.map { event in
                      Event(kind: event.kind == .allocate ? .allocate : .free, tensorID: event.tensorID,
                            bytes: measuring == .requested ? event.requestedBytes : event.allocatedBytes, role: event.role,
                            phase: event.phase, layerPath: event.layerPath, name: event.name, timestep: event.timestep,
                            timeMs: Double(event.timeNs &- start) / 1e6)
                  })
    }

    public var lifetimeEvents: [LifetimeEvent] {
        events.map { LifetimeEvent(kind: $0.kind, tensorID: $0.tensorID, bytes: $0.bytes, role: $0.role, phase: $0.phase) }
    }

    /// Live bytes by role after every event (tensors live before the step, such as parameters
    /// allocated in an earlier step, are not in a later step's events and so not counted).
    public var liveByRole: [RoleBytes] {
        var live: [Int: (Int, TensorRole)] = [:]
        var roles = RoleBytes()
        return events.map { event in
            switch event.kind {
            case .allocate:
                if live[event.tensorID] == nil {
                    live[event.tensorID] = (event.bytes, event.role)
                    roles[event.role] += event.bytes
                }
            case .free:
                if let (bytes, role) = live.removeValue(forKey: event.tensorID) { roles[role] -= bytes }
            }
            return roles
        }
    }

    public var sweep: PeakSweep.Result { PeakSweep().run(lifetimeEvents, allowLive: Set(events.map(\.tensorID))) }

    /// The tensors live at the peak, largest first.
    public var tensorsLiveAtPeak: [LiveTensor] {
        guard let index = sweep.peakEventIndex else { return [] }
        var live: [Int: Event] = [:]
        for event in events[...index] {
            switch event.kind {
            case .allocate: live[event.tensorID] = event
            case .free: live[event.tensorID] = nil
            }
        }
        return live.values.sorted { ($0.bytes, $1.tensorID) > ($1.bytes, $0.tensorID) }
            .map { LiveTensor(label: $0.label, role: $0.role, bytes: $0.bytes) }
    }

    /// Contiguous runs of events in one phase: (phase, first event index, last event index).
    public var phaseSpans: [(phase: TrainingPhase, first: Int, last: Int)] {
        var spans: [(TrainingPhase, Int, Int)] = []
        for (index, event) in events.enumerated() {
            if let last = spans.last, last.0 == event.phase {
                spans[spans.count - 1].2 = index
            } else {
                spans.append((event.phase, index, index))
            }
        }
        return spans
    }
}
