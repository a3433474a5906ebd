import MemoryModel

/// The CI gate: each figure against the budget and against its baseline, with one verdict per
/// entry, as package-benchmark judges its thresholds.
public struct BudgetCheck: Codable, Equatable, Sendable {
    /// How an entry stands against the baseline.
    public enum Verdict: String, Codable, Sendable {
        /// Within the tolerance of the baseline's peak.
        case ok
        /// Grew past the tolerance: fails.
        case grew
        /// Shrank past the tolerance: passes, but the baseline should be written again (exit 4).
        case improved
        /// The profile file's content, the batch, T, or planned-versus-measured differ from the
        /// baseline's: the two figures describe different runs and are not compared. Fails.
        case changed
        /// No baseline entry for this file, runtime and strategy: reported; fails with `failOnNew`.
        case new
        /// A baseline entry that nothing checked now matches (its profile file removed or
        /// renamed, or a strategy that no longer applies): fails, so the gate cannot lose an entry unseen.
        case stale
    }

    /// The whole check's result, and the exit code the CLI gives it.
    public enum Outcome: String, Codable, Sendable {
        case passed, failed
        /// Nothing failed, but some entry shrank past the tolerance: update the baseline.
        case improved
    }

    public struct Result: Codable, Equatable, Sendable {
        /// The figures of this run; nil for a stale baseline entry.
        public var entry: MemoryBaseline.Entry?
        /// The baseline's entry with the same key; nil for a new entry or when no baseline was given.
        public var baseline: MemoryBaseline.Entry?
        /// nil when no baseline was given: only the budget is checked.
        public var verdict: Verdict?
        public var overBudget: Bool
        /// Roles that grew against the baseline: role -> bytes of growth (only for comparable entries).
        public var grownRoles: [String: Int]
        /// What differs from the baseline when the verdict is `changed`, in words.
        public var differences: [String]
        /// For a new entry, the file of a stale entry with the same content (a renamed profile),
        /// and the other way round.
        public var sameContentAs: String?
        public var failed: Bool

        /// The entry the row describes: this run's, or the stale baseline entry (every result has one of the two).
        public var shown: MemoryBaseline.Entry { entry ?? baseline! }
        public var growthBytes: Int? {
            guard let entry, let baseline, verdict != .changed else { return nil }
            return entry.peakBytes - baseline.peakBytes
        }
    }

    public var budgetBytes: Int
    /// An entry is within tolerance when its peak differs from the baseline's by at most
    /// `tolerancePercent` of the baseline's peak OR at most `toleranceBytes` (the larger band).
    public var tolerancePercent: Double
    public var toleranceBytes: Int
    public var failOnNew: Bool
    public var results: [Result]
    /// Baseline entries this run did not set out to check (another runtime or strategy, or a
    /// profile file that exists but was not named): neither compared nor stale.
    public var notCheckedCount: Int
    public var outcome: Outcome

    public var passed: Bool { outcome != .failed }

    /// Judges `entries` against the budget and `baseline`. `notChecked` says which unmatched
    /// baseline entries lie outside this run's selection; every other unmatched one is stale.
    public init(entries: [MemoryBaseline.Entry], budgetBytes: Int, baseline: MemoryBaseline?, tolerancePercent: Double,
                toleranceBytes: Int = 0, failOnNew: Bool = false, notChecked: (MemoryBaseline.Entry) -> Bool = { _ in false }) {
        self.budgetBytes = budgetBytes
        self.tolerancePercent = tolerancePercent
        self.toleranceBytes = toleranceBytes
        self.failOnNew = failOnNew
        let old = Dictionary((baseline?.entries ?? []).map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        var results = entries.map { entry in
            Self.judge(entry, against: old[entry.key], hasBaseline: baseline != nil, budgetBytes: budgetBytes,
                       tolerancePercent: tolerancePercent, toleranceBytes: toleranceBytes, failOnNew: failOnNew)
        }
        let matched = Set(entries.map(\.key))
        var skipped = 0
        for unmatched in baseline?.entries ?? [] where !matched.contains(unmatched.key) {
            if notChecked(unmatched) { skipped += 1; continue }
            results.append(Result(entry: nil, baseline: unmatched, verdict: .stale, overBudget: false, grownRoles: [:],
                                  differences: [], sameContentAs: nil, failed: true))
        }
        // A renamed file: a new entry and a stale one with the same content. Said on both rows.
        for i in results.indices where results[i].verdict == .new {
            let digest = results[i].shown.profileSHA256
            if let j = results.indices.first(where: { results[$0].verdict == .stale && results[$0].shown.profileSHA256 == digest }) {
                results[i].sameContentAs = results[j].shown.profileFile
                results[j].sameContentAs = results[i].shown.profileFile
            }
        }
        self.results = results
        notCheckedCount = skipped
        if results.contains(where: \.failed) {
            outcome = .failed
        } else if results.contains(where: { $0.verdict == .improved }) {
            outcome = .improved
        } else {
            outcome = .passed
        }
    }

    private static func judge(_ entry: MemoryBaseline.Entry, against old: MemoryBaseline.Entry?, hasBaseline: Bool, budgetBytes: Int,
                              tolerancePercent: Double, toleranceBytes: Int, failOnNew: Bool) -> Result {
        let overBudget = entry.peakBytes > budgetBytes
        guard hasBaseline else {
            return Result(entry: entry, baseline: nil, verdict: nil, overBudget: overBudget, grownRoles: [:], differences: [],
                          sameContentAs: nil, failed: overBudget)
        }
        guard let old else {
            return Result(entry: entry, baseline: nil, verdict: .new, overBudget: overBudget, grownRoles: [:], differences: [],
                          sameContentAs: nil, failed: overBudget || failOnNew)
        }
        var differences: [String] = []
        if old.profileSHA256 != entry.profileSHA256 {
            differences.append("the profile file's content (sha256 \(old.profileSHA256.prefix(12)) in the baseline, \(entry.profileSHA256.prefix(12)) now)")
        }
        if old.batch != entry.batch { differences.append("batch \(old.batch) -> \(entry.batch)") }
        if old.timesteps != entry.timesteps { differences.append("T \(old.timesteps) -> \(entry.timesteps)") }
        if old.measured != entry.measured {
            differences.append(old.measured ? "measured in the baseline, planned now" : "planned in the baseline, measured now")
        }
        if !differences.isEmpty {
            return Result(entry: entry, baseline: old, verdict: .changed, overBudget: overBudget, grownRoles: [:],
                          differences: differences, sameContentAs: nil, failed: true)
        }
        var grown: [String: Int] = [:]
        for role in TensorRole.allCases where entry.bytesByRoleAtPeak[role] > old.bytesByRoleAtPeak[role] {
            grown[role.reportKey] = entry.bytesByRoleAtPeak[role] - old.bytesByRoleAtPeak[role]
        }
        // The band is the wider of the two tolerances; exactly at its edge is within it.
        let band = max(Double(old.peakBytes) * tolerancePercent / 100, Double(toleranceBytes))
        let change = Double(entry.peakBytes - old.peakBytes)
        let verdict: Verdict = change > band ? .grew : (-change > band ? .improved : .ok)
        return Result(entry: entry, baseline: old, verdict: verdict, overBudget: overBudget, grownRoles: grown, differences: [],
                      sameContentAs: nil, failed: overBudget || verdict == .grew)
    }

    /// "5.0% or 1.00 MiB": the tolerance as the user gave it.
    public var toleranceText: String {
        "\(ByteCount.formatFixed(tolerancePercent, digits: 1))% or \(ByteCount.format(toleranceBytes))"
    }

    public func table() -> TextTable {
        var table = TextTable(["profile file", "runtime", "strategy", "batch", "T", "peak", "baseline", "change", "status"],
                              alignments: [.left, .left, .left, .right, .right, .right, .right, .right, .left])
        for r in results {
            let shown = r.shown
            let change: String
            if let growth = r.growthBytes {
                let percent = Double(growth) / Double(max(r.baseline!.peakBytes, 1)) * 100
                change = (growth > 0 ? "+" : "") + ByteCount.format(growth) + " (" + (growth > 0 ? "+" : "")
                    + ByteCount.formatFixed(percent, digits: 1) + "%)"
            } else {
                change = "-"
            }
            table.add([shown.profileFile, shown.runtime, shown.strategy, "\(shown.batch)", "\(shown.timesteps)",
                       r.entry.map { ByteCount.format($0.peakBytes) } ?? "-", r.baseline.map { ByteCount.format($0.peakBytes) } ?? "-",
                       change, status(r)])
        }
        return table
    }

    /// Failing verdicts in capitals, so a failed row stands out in a long table.
    func status(_ r: Result) -> String {
        var words: [String] = []
        if r.overBudget { words.append("OVER BUDGET") }
        switch r.verdict {
        case nil, .ok?: if words.isEmpty { words.append("ok") }
        case .grew?: words.append("GREW")
        case .improved?: words.append("improved")
        case .changed?: words.append("CHANGED")
        case .new?: words.append(failOnNew ? "NEW" : "new")
        case .stale?: words.append("STALE")
        }
        return words.joined(separator: ", ")
    }

    /// One line per entry that needs a word: why it failed, or what the user should do.
    func explanation(_ r: Result) -> String {
        let shown = r.shown
        var reasons: [String] = []
        if r.overBudget, let entry = r.entry {
            reasons.append("peak \(ByteCount.format(entry.peakBytes)) exceeds the budget \(ByteCount.format(budgetBytes)) by \(ByteCount.format(entry.peakBytes - budgetBytes))")
        }
        switch r.verdict {
        case .grew?, .improved?:
            let entry = r.entry!, base = r.baseline!
            let growth = entry.peakBytes - base.peakBytes
            let percent = ByteCount.formatFixed(Double(abs(growth)) / Double(max(base.peakBytes, 1)) * 100, digits: 1)
            if growth > 0 {
                let roles = r.grownRoles.sorted { $0.value > $1.value }.map { "\($0.key) +\(ByteCount.format($0.value))" }.joined(separator: ", ")
                reasons.append("peak grew \(percent)% (+\(ByteCount.format(growth))) over the baseline \(ByteCount.format(base.peakBytes)) (tolerance \(toleranceText))"
                               + (roles.isEmpty ? "" : "; grown: \(roles)"))
            } else {
                reasons.append("peak shrank \(percent)% (\(ByteCount.format(growth))) below the baseline \(ByteCount.format(base.peakBytes)) (tolerance \(toleranceText)); update the baseline with --write-baseline")
            }
        case .changed?:
            reasons.append("changed since the baseline: " + r.differences.joined(separator: ", ")
                           + "; the figures are not comparable: write the baseline again with --write-baseline")
        case .new?:
            let renamed = r.sameContentAs.map { " (same content as the baseline's \($0): renamed?)" } ?? ""
            reasons.append("not in the baseline\(renamed); add it with --write-baseline" + (failOnNew ? " (failing: --fail-on-new)" : ""))
        case .stale?:
            // The file was checked for other strategies: this one no longer applies to it (or its
            // runtime no longer models it). Not checked at all: it was removed or renamed.
            let why = results.contains { $0.entry?.profileFile == shown.profileFile }
                ? "the file was checked, but \(shown.strategy) no longer applies to it under \(shown.runtime)"
                : "the file was not checked: removed or renamed" + (r.sameContentAs.map { " (its content is now \($0))" } ?? "")
            reasons.append("in the baseline (profile '\(shown.profile)', peak \(ByteCount.format(shown.peakBytes))) but nothing matches it now: \(why); write the baseline again with --write-baseline")
        case .ok?, nil:
            break
        }
        return "\(shown.profileFile) \(shown.runtime) \(shown.strategy) (batch \(shown.batch), T \(shown.timesteps)): " + reasons.joined(separator: "; ")
    }

    /// Why each failing entry failed: over budget by how much, which roles grew, what changed.
    public func failures() -> [String] { results.filter(\.failed).map(explanation) }

    public func render(markdown: Bool) -> String {
        let heading = (markdown ? "### " : "") + "snnmem memory check: budget \(ByteCount.format(budgetBytes)), tolerance \(toleranceText)"
        var sections = [heading, markdown ? table().markdown() : table().text()]
        func list(_ title: String, _ rows: [Result]) {
            guard !rows.isEmpty else { return }
            sections.append(title + "\n" + rows.map { (markdown ? "- " : "  ") + explanation($0) }.joined(separator: "\n"))
        }
        list("FAILED:", results.filter(\.failed))
        list("IMPROVED (nothing failed; exit 4 until the baseline is written again):", results.filter { !$0.failed && $0.verdict == .improved })
        list("NEW (not failing; --fail-on-new fails on them):", results.filter { !$0.failed && $0.verdict == .new })
        if notCheckedCount > 0 {
            sections.append("\(notCheckedCount) baseline \(notCheckedCount == 1 ? "entry" : "entries") not checked: another runtime or strategy, or a profile file that exists but was not named")
        }
        if results.allSatisfy({ !$0.failed && ($0.verdict == nil || $0.verdict == .ok) }) {
            sections.append("all \(results.count) within bounds")
        }
        // Markdown needs a blank line after a table (and between a list and the next paragraph),
        // or GitHub renders the next line as one more table row or list item.
        return sections.joined(separator: markdown ? "\n\n" : "\n")
    }
}
