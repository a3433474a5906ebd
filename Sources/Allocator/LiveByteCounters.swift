import MemoryModel

/// Live and peak bytes, in total and by role, updated in O(1) per event. The recorder keeps two:
/// one in requested bytes (what the planner predicts) and one in allocated bytes (size classes).
public struct LiveByteCounters: Hashable, Codable, Sendable {
    public private(set) var liveBytes = 0
    /// Highest `liveBytes` so far (reached right after an allocation).
    public private(set) var peakBytes = 0
    public private(set) var liveBytesByRole = RoleBytes()
    /// The highest live bytes of each role on its own, not necessarily at the same moment.
    public private(set) var peakBytesByRole = RoleBytes()
    /// Live bytes by role at the moment `peakBytes` was first reached.
    public private(set) var bytesByRoleAtPeak = RoleBytes()

    public init() {}

    public mutating func add(_ bytes: Int, role: TensorRole) {
        liveBytes += bytes
        liveBytesByRole[role] += bytes
        if liveBytesByRole[role] > peakBytesByRole[role] { peakBytesByRole[role] = liveBytesByRole[role] }
        if liveBytes > peakBytes {
            peakBytes = liveBytes
            // Element by element: assigning the whole RoleBytes would share its storage and make
            // the next update copy it, an allocation on the hot path that jemalloc would count.
            // An index loop, not for-in: unspecialized iterators allocate in debug builds.
            var index = 0
            while index < Self.roles.count {
                let role = Self.roles[index]
                bytesByRoleAtPeak[role] = liveBytesByRole[role]
                index += 1
            }
        }
    }

    public mutating func remove(_ bytes: Int, role: TensorRole) {
        liveBytes -= bytes
        liveBytesByRole[role] -= bytes
    }

    /// Read once: `allCases` of an enum may build a new array at every call in debug builds.
    static let roles = TensorRole.allCases
}
