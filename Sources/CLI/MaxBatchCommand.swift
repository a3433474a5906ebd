import ArgumentParser
import Reports
import MemoryModel
import Planner
import Profiles

struct MaxBatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "max-batch",
        abstract: "The largest batch whose planned peak fits in memory, per strategy.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var strategyOption: StrategyOption

    @Option(help: "Memory available, e.g. 24GiB, 16GB, 8000MiB.")
    var memory: String

    @Option(help: "Memory to leave free (framework, allocator caches), e.g. 1GiB.")
    var reserve: String = "0B"

    @Option(help: "Round each tensor as an allocator would: exact, jemalloc or cuda.")
    var allocator: AllocatorRounding = .exact

    func validate() throws {
        if options.batch != nil { throw ValidationError("max-batch searches the batch: remove --batch") }
        let memoryBytes = try parseSize(memory, option: "--memory")
        let reserveBytes = try parseSize(reserve, option: "--reserve")
        if reserveBytes >= memoryBytes {
            throw ValidationError("--reserve (\(ByteCount.format(reserveBytes))) leaves nothing of --memory (\(ByteCount.format(memoryBytes)))")
        }
    }

    func run() throws {
        let profile = try options.loadProfile()
        let memoryBytes = try parseSize(memory, option: "--memory")
        let budget = memoryBytes - (try parseSize(reserve, option: "--reserve"))
        let strategies = try strategyOption.strategies()
        let plannerOptions = Planner.Options(timesteps: options.timesteps, segment: strategyOption.segment, rounding: allocator)
        var results: [MaxBatchResult] = []
        var skipped: [(Strategy, String)] = []
        try reportingErrors {
            for strategy in strategies {
                if let reason = strategy.notApplicableReason(profile) {
                    if !strategyOption.isAll { throw PlannerError.notApplicable(strategy: strategy, reason: reason) }
                    skipped.append((strategy, reason))
                    continue
                }
                results.append(try MaxBatch.find(profile, strategy: strategy, budgetBytes: budget, options: plannerOptions))
            }
        }
        let timesteps = options.timesteps ?? profile.timesteps
        switch options.format {
        case .json:
            let json = MaxBatchJSON(profile: profile.name, timesteps: timesteps, memoryBytes: memoryBytes,
                                    reserveBytes: memoryBytes - budget, budgetBytes: budget, allocator: allocator.rawValue,
                                    strategies: results.map {
                                        .init(strategy: $0.strategy.rawValue, maxBatch: $0.maxBatch, peakBytesAtMax: $0.peakBytesAtMax,
                                              peakBytesAtMaxPlusOne: $0.peakBytesAtMaxPlusOne)
                                    },
                                    notApplicable: skipped.map { .init(strategy: $0.0.rawValue, reason: $0.1) })
            print(try Formatting.json(json))
        case .table, .markdown:
            let markdown = options.format == .markdown
            var table = TextTable(["strategy", "max batch", "peak at max", "peak at max+1"])
            for result in results {
                table.add([result.strategy.rawValue, "\(result.maxBatch)", result.peakBytesAtMax.map(Formatting.bytes) ?? "does not fit",
                           Formatting.bytes(result.peakBytesAtMaxPlusOne)])
            }
            var text = (markdown ? "## " : "") +
                "\(profile.name): T \(timesteps), budget \(Formatting.bytes(budget)) (\(Formatting.bytes(memoryBytes)) less \(Formatting.bytes(memoryBytes - budget)) reserve), \(allocator.rawValue) bytes\n\n"
            text += markdown ? table.markdown() : table.text()
            if !skipped.isEmpty {
                text += "\n\nNot applicable to this profile:\n" + skipped.map { Formatting.wrap((markdown ? "- " : "  ") + "\($0.0.rawValue): \($0.1)") }.joined(separator: "\n")
            }
            print(text)
        }
    }
}

struct MaxBatchJSON: Codable {
    struct Entry: Codable {
        var strategy: String
        var maxBatch: Int
        var peakBytesAtMax: Int?
        var peakBytesAtMaxPlusOne: Int
    }
    struct NotApplicable: Codable {
        var strategy: String
        var reason: String
    }
    var profile: String
    var timesteps: Int
    var memoryBytes: Int
    var reserveBytes: Int
    var budgetBytes: Int
    var allocator: String
    var strategies: [Entry]
    var notApplicable: [NotApplicable]
}
