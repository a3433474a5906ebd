import Foundation
import MemoryModel
import Planner
import Profiles

/// Recorded peak figures that later runs are held against (`snnmem check --baseline`).
///
/// An entry is keyed by the profile FILE (its path as named on the command line, relative to the
/// working directory), the runtime and the strategy, and carries what makes its figures
/// comparable: the SHA-256 of the file's bytes and the batch and T it was planned at. Keying by
/// the profile's `name` let an edited or renamed file pass against figures of another network.
public struct MemoryBaseline: Codable, Equatable, Sendable {
    /// 2: entries keyed by profile file, with the file's SHA-256 (version 1 keyed by name, batch and T).
    public static let currentFormatVersion = 2

    public struct Entry: Codable, Equatable, Sendable {
        /// The profile file as named on the command line, normalised by `MemoryBaseline.fileKey`.
        public var profileFile: String
        /// SHA-256 of the file's bytes (`sha256sum`), so an edit of the file is seen as one.
        public var profileSHA256: String
        /// The profile's `name`, for reading the table.
        public var profile: String
        /// Whose step was planned or measured (`Runtime.rawValue`).
        public var runtime: String
        public var strategy: String
        public var batch: Int
        public var timesteps: Int
        public var peakBytes: Int
        public var bytesByRoleAtPeak: RoleBytes
        /// Present when the figures were measured (`--measure`), not only planned.
        public var measured: Bool

        public init(profileFile: String, profileSHA256: String, profile: String, runtime: String = "snnmem", strategy: String,
                    batch: Int, timesteps: Int, peakBytes: Int, bytesByRoleAtPeak: RoleBytes, measured: Bool) {
            self.profileFile = profileFile
            self.profileSHA256 = profileSHA256
            self.profile = profile
            self.runtime = runtime
            self.strategy = strategy
            self.batch = batch
            self.timesteps = timesteps
            self.peakBytes = peakBytes
            self.bytesByRoleAtPeak = bytesByRoleAtPeak
            self.measured = measured
        }

        /// What an entry is matched on: which file, whose step, which schedule. Batch, T and the
        /// file's content are compared after matching, so a change to them is reported as one.
        public var key: String { "\(profileFile) \(runtime) \(strategy)" }
    }

    /// A path as a baseline key: lexically normalised (no `.` or empty components, `a/..` folded)
    /// and, when it lies under `currentDirectory`, relative to it, so `./profiles/a.yaml`,
    /// `profiles//a.yaml` and `$PWD/profiles/a.yaml` name one entry. Symbolic links are not
    /// followed: two links to one file are two entries.
    public static func fileKey(_ path: String, currentDirectory: String) -> String {
        func components(_ text: String) -> [String] {
            var out: [String] = []
            for part in text.split(separator: "/", omittingEmptySubsequences: true) where part != "." {
                if part == "..", let last = out.last, last != ".." { out.removeLast() } else { out.append(String(part)) }
            }
            return out
        }
        guard path.hasPrefix("/") else {
            let parts = components(path)
            return parts.isEmpty ? "." : parts.joined(separator: "/")
        }
        let absolute = components(path), base = components(currentDirectory)
        if currentDirectory.hasPrefix("/"), absolute.count > base.count, Array(absolute.prefix(base.count)) == base {
            return absolute.dropFirst(base.count).joined(separator: "/")
        }
        return "/" + absolute.joined(separator: "/")
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
        // Paths are keys: written as typed (`profiles/a.yaml`, not `profiles\/a.yaml`), so the file reads and greps plainly.
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
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
            // Version 1 matched entries by profile name, batch and T; its figures carry no file or
            // digest to compare against, so they cannot be converted: they must be recorded again.
            throw ReadError(path: path, reason: "baseline format version \(version.formatVersion), this snnmem reads version \(currentFormatVersion) (entries keyed by profile file and its SHA-256); write it again with `snnmem check PROFILES --budget SIZE --write-baseline \(path)`")
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

    /// Every field in the range snnmem writes: a negative or absurd figure, an unknown runtime
    /// or strategy, a digest no file has, or two entries with one key is a damaged file, refused
    /// with the entry and field named instead of compared (or overflowing) later.
    func validate(path: String) throws {
        var firstWithKey: [String: Int] = [:]
        for (index, entry) in entries.enumerated() {
            let place = "entry \(index) (\(entry.profileFile) \(entry.runtime) \(entry.strategy))"
            func refuse(_ field: String, _ problem: String) -> ReadError {
                ReadError(path: path, reason: "\(place): '\(field)' \(problem); write the baseline again with --write-baseline")
            }
            // A key is a path as typed: no control characters (a newline would break the table).
            if entry.profileFile.isEmpty || entry.profileFile.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                throw refuse("profileFile", "is \(entry.profileFile.debugDescription), not a file path")
            }
            if !SHA256.isHexDigest(entry.profileSHA256) {
                throw refuse("profileSHA256", "is \(String(entry.profileSHA256.prefix(80)).debugDescription), not a SHA-256 digest (64 lowercase hex digits)")
            }
            if entry.profile.isEmpty { throw refuse("profile", "is empty") }
            if Runtime(rawValue: entry.runtime) == nil {
                throw refuse("runtime", "is \(entry.runtime.debugDescription), not one of \(Runtime.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if Strategy(rawValue: entry.strategy) == nil {
                throw refuse("strategy", "is \(entry.strategy.debugDescription), not one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let first = firstWithKey[entry.key] {
                throw ReadError(path: path, reason: "\(place) repeats entry \(first): one file, runtime and strategy can have one entry; write the baseline again with --write-baseline")
            }
            firstWithKey[entry.key] = index
            func check(_ field: String, _ value: Int, _ range: ClosedRange<Int>) throws {
                guard range.contains(value) else {
                    throw ReadError(path: path, reason: "\(place): '\(field)' is \(value), outside \(range.lowerBound)...\(range.upperBound); write the baseline again with --write-baseline")
                }
            }
            try check("batch", entry.batch, 1...PlanningLimits.maxBatch)
            try check("timesteps", entry.timesteps, 1...PlanningLimits.maxTimesteps)
            try check("peakBytes", entry.peakBytes, 0...PlanningLimits.maxStepBytes)
            for role in TensorRole.allCases {
                try check("bytesByRoleAtPeak.\(role.rawValue)", entry.bytesByRoleAtPeak[role], 0...PlanningLimits.maxStepBytes)
            }
            guard entry.bytesByRoleAtPeak.total <= entry.peakBytes || entry.measured else {
                throw ReadError(path: path, reason: "\(place): its roles add up to \(entry.bytesByRoleAtPeak.total) bytes, more than its peak of \(entry.peakBytes); write the baseline again with --write-baseline")
            }
        }
    }
}
