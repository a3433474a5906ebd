import Foundation

/// OpenBLAS, linked for the training engine, starts its thread pool when the process loads, and
/// each pool thread spins (sched_yield) for about 2^28 cycles before it sleeps: on a 2-core
/// machine one core busy for the first ~100 ms of every command, which `plan` and `check` spend
/// waiting for that core (measured: `check` of every bundled profile took 56 ms instead of 39,
/// and twice the CPU). The commands that only plan shut the pool down first. Looked up at run
/// time: only OpenBLAS's pthreads build has the pool (and the symbol).
enum OpenBLASPool {
    static func shutDown() {
        guard let symbol = dlsym(nil, "blas_thread_shutdown_") else { return }
        _ = unsafeBitCast(symbol, to: (@convention(c) () -> Int32).self)()
    }
}

/// A command that plans and never trains a step, so never calls BLAS.
protocol PlanningCommand {
    /// Whether this invocation trains steps after all (`check --measure`).
    var trainsSteps: Bool { get }
}

extension PlanCommand: PlanningCommand { var trainsSteps: Bool { false } }
extension MaxBatchCommand: PlanningCommand { var trainsSteps: Bool { false } }
extension SweepCommand: PlanningCommand { var trainsSteps: Bool { measure } }
extension CheckCommand: PlanningCommand { var trainsSteps: Bool { measure } }
