import Foundation
import XCTest

/// Runs the built `snnmem` executable as a user would, capturing its output and exit code.
struct SnnmemProcess {
    struct Result {
        var exitCode: Int32
        var stdout: String
        var stderr: String
        /// Killed after the timeout given to `run`.
        var timedOut = false
    }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The executable sits beside the test bundle in SwiftPM's build folder.
    static var executable: URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for folder in [beside, beside.deletingLastPathComponent(), Bundle.main.bundleURL.deletingLastPathComponent()] {
            let candidate = folder.appendingPathComponent("snnmem")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return beside.appendingPathComponent("snnmem")
    }

    static func run(_ arguments: [String], environment: [String: String]? = nil, timeoutSeconds: Double? = nil) throws -> Result {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killed = TimeoutFlag()
        if let timeoutSeconds {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds) { [process] in
                if process.isRunning { killed.set(); process.terminate() }
            }
        }
        // Read before waiting so a large output cannot fill the pipe and block the child.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(exitCode: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self), timedOut: killed.isSet)
    }

    /// Runs snnmem under `strace` with the given injections (a kill arrives as a signal exit).
    static func run(_ arguments: [String], viaStrace injections: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        process.arguments = ["-f", "-qq", "-o", "/dev/null"] + injections + [executable.path] + arguments
        process.currentDirectoryURL = repositoryRoot
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(exitCode: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try run(arguments)
        XCTAssertEqual(result.exitCode, 0, result.stderr)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(result.stdout.prefix(200))")
    }
}

/// Set from the timer's queue, read by the test's thread.
final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
