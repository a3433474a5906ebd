import ArgumentParser
import Foundation

/// snnmem's root command. Subcommands are thin: they parse, call the library, print.
public struct Snnmem: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "snnmem",
        abstract: "How much memory will this spiking-network training run need, where does it go, and what batch fits?",
        version: SnnmemVersion.current,
        subcommands: [PlanCommand.self, MaxBatchCommand.self, RunCommand.self, TrainCommand.self, CompareCommand.self, SweepCommand.self, CheckCommand.self, ReportCommand.self])

    public init() {}

    /// Runs the command line. Exit codes: 0 success, 1 a check failed, 2 bad input, 3 out of memory.
    public static func run(arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if let planning = command as? PlanningCommand, !planning.trainsSteps { OpenBLASPool.shutDown() }
            try InstructionSetRequest.check(before: command)
            try command.run()
            Foundation.exit(0)
        } catch let error as CLIFailure {
            if !error.message.isEmpty { FileHandle.standardError.write(Data((error.message + "\n").utf8)) }
            Foundation.exit(error.exitCode)
        } catch {
            // Help and version requests exit 0 through exit(withError:); argument errors (64) are bad input: 2.
            if exitCode(for: error).rawValue == 64 {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

public enum SnnmemVersion {
    public static let current = "0.1.0"
}
