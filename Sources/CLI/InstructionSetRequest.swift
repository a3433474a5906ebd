import ArgumentParser
import Engine

/// A command that runs the engine's kernels refuses an SNNMEM_ISA it cannot honour (a name snnmem has
/// no kernels for, a level the processor lacks) before it starts: the kernels would run at another
/// level, and the timings printed would not be the ones asked for. Planning commands ignore it. The
/// same for SNNMEM_SPIKE_GEMM with a value other than on or off, and an SNNMEM_GEMM it cannot honour.
enum InstructionSetRequest {
    static func check(before command: ParsableCommand) throws {
        let runsEngine: Bool
        switch command {
        case is RunCommand, is TrainCommand, is CompareCommand: runsEngine = true
        case let planning as PlanningCommand: runsEngine = planning.trainsSteps
        default: runsEngine = false
        }
        guard runsEngine else { return }
        if let problem = SpikeProducts.environmentProblem ?? GEMMBackend.environmentProblem { throw CLIFailure.badInput(problem) }
        do {
            _ = try InstructionSet.requested()
        } catch let error as InstructionSetError {
            throw CLIFailure.badInput(error.description)
        }
    }
}
