import OutputFiles
import Allocator
import Engine
import Planner
import Reports
import Profiles

/// An error the CLI reports in one message with its exit code, never a stack trace.
struct CLIFailure: Error {
    var message: String
    var exitCode: Int32

    static func badInput(_ message: String) -> CLIFailure { CLIFailure(message: "error: " + message, exitCode: 2) }

    /// Maps library errors to messages and exit codes.
    static func from(_ error: Error) -> Error {
        switch error {
        case let error as CLIFailure: return error
        case let error as ProfileError: return CLIFailure(message: error.description, exitCode: 2)
        case let error as PlannerError: return CLIFailure(message: "error: " + error.description, exitCode: 2)
        case let error as TrainerError: return CLIFailure(message: "error: " + error.description, exitCode: 2)
        // A missing, unreadable or malformed data set is bad input (exit 2); 1 is a failed check.
        case let error as DigitsDatasetError: return CLIFailure(message: "error: " + error.description + "\n  fix: pass --data digits or a digits-format .csv/.csv.gz (65 integer fields per line)", exitCode: 2)
        case let error as AllocatorError: return CLIFailure(message: "error: " + error.description, exitCode: 2)
        case let error as AtomicOutput.WriteError: return CLIFailure(message: "error: " + error.description, exitCode: 2)
        case let error as MemoryBaseline.ReadError: return CLIFailure(message: "error: " + error.description, exitCode: 2)
        default: return error
        }
    }
}

/// Runs a command body, turning library errors into CLI failures.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch { throw CLIFailure.from(error) }
}
