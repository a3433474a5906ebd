import Foundation
import Profiles
import MemoryModel

/// Recorded peak figures that later runs are held against (`snnmem check --baseline`).
public struct MemoryBaseline: Codable, Equatable, Sendable {
    public static let currentFormatVersion = 1

    public struct Entry: Codable, Equatable, Sendable {
        public var profile: String
        /// Whose step was planned or measured; nil in baselines written before runtimes existed,
        /// which described snnmem's engine.
        public var runtime: String?
        public var strategy: String
        public var batch: Int
        public var timesteps: Int
        public var peakBytes: Int
        public var bytesByRole: RoleBytes
        /// Present when the figures were measured (`--measure`), not only planned.
        public var measured: Bool

        public init(profile: String, runtime: String = "snnmem", strategy: String, batch: Int, timesteps: Int, peakBytes: Int,
                    bytesByRole: RoleBytes, measured: Bool) {
            self.profile = profile
            self.runtime = runtime
            self.strategy = strategy
            self.batch = batch
            self.timesteps = timesteps
            self.peakBytes = peakBytes
            self.bytesByRole = bytesByRole
            self.measured = measured
        }

        public var key: String { "\(profile)/\(runtime ?? "snnmem")/\(strategy)/b\(batch)/t\(timesteps)" }
    }

    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    public var formatVersion: Int
    public var toolVersion: String
    public var entries: [Entry]

    public init(toolVersion: String, entries: [Entry]) {
        formatVersion = Self.currentFormatVersion
        self.toolVersion = toolVersion
        self.entries = entries.sorted { $0.key < $1.key }
    }

    public func entry(for key: String) -> Entry? { entries.first { $0.key == key } }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    public static func read(path: String) throws -> MemoryBaseline {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReadError(path: path, reason: "no such baseline file; write one with `snnmem check ... --write-baseline \(path)`")
        }
        struct Version: Decodable { var formatVersion: Int }
        guard let version = try? JSONDecoder().decode(Version.self, from: data) else {
            throw ReadError(path: path, reason: "not a snnmem baseline (no formatVersion); write one with --write-baseline")
        }
        guard version.formatVersion == currentFormatVersion else {
            throw ReadError(path: path, reason: "baseline format version \(version.formatVersion), this snnmem reads version \(currentFormatVersion); write it again with --write-baseline")
        }
        let baseline: MemoryBaseline
        do {
            baseline = try JSONDecoder().decode(MemoryBaseline.self, from: data)
        } catch {
            throw ReadError(path: path, reason: "the baseline is damaged (\(error)); write it again with --write-baseline")
        }
        try baseline.validate(path: path)
        return baseline
    }

    /// Every field in the range snnmem writes: a negative or absurd figure is a damaged file,
    /// refused with the entry and field named instead of compared (or overflowing) later.
    func validate(path: String) throws {
        for (index, entry) in entries.enumerated() {
            let place = "entry \(index) (\(entry.profile) \(entry.strategy))"
            func check(_ field: String, _ value: Int, _ range: ClosedRange<Int>) throws {
                guard range.contains(value) else {
                    throw ReadError(path: path, reason: "\(place): '\(field)' is \(value), outside \(range.lowerBound)...\(range.upperBound); write the baseline again with --write-baseline")
                }
            }
            try check("batch", entry.batch, 1...PlanningLimits.maxBatch)
            try check("timesteps", entry.timesteps, 1...PlanningLimits.maxTimesteps)
            try check("peakBytes", entry.peakBytes, 0...PlanningLimits.maxStepBytes)
            for role in TensorRole.allCases {
                try check("bytesByRole.\(role.rawValue)", entry.bytesByRole[role], 0...PlanningLimits.maxStepBytes)
            }
            guard entry.bytesByRole.total <= entry.peakBytes || entry.measured else {
                throw ReadError(path: path, reason: "\(place): its roles add up to \(entry.bytesByRole.total) bytes, more than its peak of \(entry.peakBytes); write the baseline again with --write-baseline")
            }
        }
    }
}
