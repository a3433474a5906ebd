import MemoryModel

/// A measured training run as stored on disk: what was run, every allocator event, jemalloc's
/// samples at phase boundaries and the lifetime problems found. Reporters read only this.
public struct MemoryTrace: Hashable, Codable, Sendable {
    /// Raise when a field changes meaning, is added or is removed; readers refuse other versions.
    /// 2: the header carries `profileSHA256`.
    public static let currentFormatVersion = 2

    public struct Header: Hashable, Codable, Sendable {
        public var formatVersion: Int
        /// The snnmem that wrote the trace.
        public var toolVersion: String
        /// The architecture profile's name.
        public var profile: String
        /// SHA-256 of the profile file's bytes (`Profile.sourceSHA256`, what `sha256sum` prints):
        /// `report --profile` refuses a profile file other than the one that was measured.
        public var profileSHA256: String
        /// The memory strategy (e.g. "bptt", "checkpoint").
        public var strategy: String
        public var batch: Int
        public var timesteps: Int
        /// `TensorAllocator.name` of the allocator that was measured.
        public var allocatorName: String

        public init(formatVersion: Int = MemoryTrace.currentFormatVersion, toolVersion: String, profile: String,
                    profileSHA256: String, strategy: String, batch: Int, timesteps: Int, allocatorName: String) {
            self.formatVersion = formatVersion
            self.toolVersion = toolVersion
            self.profile = profile
            self.profileSHA256 = profileSHA256
            self.strategy = strategy
            self.batch = batch
            self.timesteps = timesteps
            self.allocatorName = allocatorName
        }
    }

    public var header: Header
    public var events: [TraceEvent]
    public var samples: [JemallocSample]
    public var problems: [AllocationProblem]

    public init(header: Header, events: [TraceEvent], samples: [JemallocSample] = [],
                problems: [AllocationProblem] = []) {
        self.header = header
        self.events = events
        self.samples = samples
        self.problems = problems
    }

    public func lifetimeEvents(measuring bytes: MeasuredBytes = .allocated) -> [LifetimeEvent] {
        events.lifetimeEvents(measuring: bytes)
    }
}
