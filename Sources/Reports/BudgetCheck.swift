import MemoryModel

/// The CI gate: each figure against the budget and against its baseline.
public struct BudgetCheck: Codable, Equatable, Sendable {
    public struct Result: Codable, Equatable, Sendable {
        public var entry: MemoryBaseline.Entry
        public var baselinePeakBytes: Int?
        public var overBudget: Bool
        public var overBaseline: Bool
        /// Roles that grew against the baseline: role -> bytes of growth.
        public var grownRoles: [String: Int]

        public var passed: Bool { !overBudget && !overBaseline }
        public var growthBytes: Int? { baselinePeakBytes.map { entry.peakBytes - $0 } }
    }

    public var budgetBytes: Int
    public var tolerancePercent: Double
    public var results: [Result]

    public var passed: Bool { results.allSatisfy(\.passed) }

    /// Fails an entry whose peak exceeds the budget, or exceeds its baseline by more than
    /// `tolerancePercent` (exactly at the tolerance passes). Entries without a baseline are new, not failures.
    public init(entries: [MemoryBaseline.Entry], budgetBytes: Int, baseline: MemoryBaseline?, tolerancePercent: Double) {
        self.budgetBytes = budgetBytes
        self.tolerancePercent = tolerancePercent
        results = entries.map { entry in
            let old = baseline?.entry(for: entry.key)
            var grown: [String: Int] = [:]
            if let old {
                for role in TensorRole.allCases where entry.bytesByRole[role] > old.bytesByRole[role] {
                    grown[role.reportKey] = entry.bytesByRole[role] - old.bytesByRole[role]
                }
            }
            let allowed = old.map { Double($0.peakBytes) * (1 + tolerancePercent / 100) }
            return Result(entry: entry, baselinePeakBytes: old?.peakBytes, overBudget: entry.peakBytes > budgetBytes,
                          overBaseline: allowed.map { Double(entry.peakBytes) > $0 } ?? false, grownRoles: grown)
        }
    }

    public func table() -> TextTable {
        var table = TextTable(["profile", "runtime", "strategy", "peak", "baseline", "change", "status"],
                              alignments: [.left, .left, .left, .right, .right, .right, .left])
        for r in results {
            let change = r.growthBytes.map { ($0 > 0 ? "+" : "") + ByteCount.format($0) } ?? "new"
            let status = r.overBudget ? "OVER BUDGET" : (r.overBaseline ? "GREW" : "ok")
            table.add([r.entry.profile, r.entry.runtime ?? "snnmem", r.entry.strategy, ByteCount.format(r.entry.peakBytes), r.baselinePeakBytes.map(ByteCount.format) ?? "-",
                       change, status])
        }
        return table
    }

    /// Why each failing entry failed: over budget by how much, or which roles grew.
    public func failures() -> [String] {
        results.filter { !$0.passed }.map { r in
            var reasons: [String] = []
            if r.overBudget {
                reasons.append("peak \(ByteCount.format(r.entry.peakBytes)) exceeds the budget \(ByteCount.format(budgetBytes)) by \(ByteCount.format(r.entry.peakBytes - budgetBytes))")
            }
            if r.overBaseline, let base = r.baselinePeakBytes {
                let percent = ByteCount.formatFixed(Double(r.entry.peakBytes - base) / Double(max(base, 1)) * 100, digits: 1)
                let roles = r.grownRoles.sorted { $0.value > $1.value }.map { "\($0.key) +\(ByteCount.format($0.value))" }.joined(separator: ", ")
                reasons.append("peak grew \(percent)% over the baseline \(ByteCount.format(base)) (tolerance \(ByteCount.formatFixed(tolerancePercent, digits: 1))%)"
                               + (roles.isEmpty ? "" : "; grown: \(roles)"))
            }
            return "\(r.entry.profile) \(r.entry.runtime ?? "snnmem") \(r.entry.strategy) (batch \(r.entry.batch), T \(r.entry.timesteps)): " + reasons.joined(separator: "; ")
        }
    }

    public func render(markdown: Bool) -> String {
        var lines = [(markdown ? "### " : "") + "snnmem memory check: budget \(ByteCount.format(budgetBytes)), tolerance \(ByteCount.formatFixed(tolerancePercent, digits: 1))%",
                     markdown ? table().markdown() : table().text()]
        let failed = failures()
        lines.append(failed.isEmpty ? "all \(results.count) within bounds" : "FAILED:\n" + failed.map { (markdown ? "- " : "  ") + $0 }.joined(separator: "\n"))
        return lines.joined(separator: "\n")
    }
}
