import CLI
import Foundation
import XCTest

/// The progress bar redraws in place without leaving the tail of a longer line, shows before the
/// first unit ends, and is erased when the work ends, whatever count it reached.
final class ProgressBarTests: XCTestCase {
    final class Screen {
        var writes: [String] = []
    }

    private func progress(total: Int, columns: Int = 80, screen: Screen) -> ProgressBar {
        var clock: UInt64 = 0
        return ProgressBar(total: total, label: "sweep", enabled: true, columns: columns, write: { screen.writes.append($0) },
                        nowNs: { clock += 1_000_000_000; return clock })
    }

    func testEveryRedrawErasesTheRestOfTheLine() {
        let screen = Screen()
        let bar = progress(total: 5, screen: screen)
        bar.update(1, detail: "bptt gradients of every layer")
        bar.update(2, detail: "bptt")
        XCTAssertEqual(screen.writes.count, 2)
        for write in screen.writes {
            XCTAssertTrue(write.hasPrefix("\r") && write.hasSuffix(ProgressBar.eraseToEndOfLine), write.debugDescription)
        }
        XCTAssertTrue(screen.writes[1].contains("2/5"), screen.writes[1])
    }

    func testBeginShowsTheBarBeforeTheFirstUnitEnds() {
        let screen = Screen()
        let bar = progress(total: 3, screen: screen)
        bar.begin("bptt 1")
        XCTAssertEqual(screen.writes.count, 1)
        XCTAssertTrue(screen.writes[0].contains("0/3") && screen.writes[0].contains("bptt 1"), screen.writes[0])
    }

    func testFinishErasesTheBarEvenShortOfTheTotal() {
        let screen = Screen()
        let bar = progress(total: 10, screen: screen)
        bar.update(3)
        bar.finish()
        XCTAssertEqual(screen.writes.last, "\r" + ProgressBar.eraseToEndOfLine)
        bar.finish()
        XCTAssertEqual(screen.writes.count, 2, "a second finish writes nothing")
        // Reaching the total erases it by itself.
        let done = Screen()
        let full = progress(total: 2, screen: done)
        full.update(2)
        XCTAssertEqual(done.writes.last, "\r" + ProgressBar.eraseToEndOfLine)
    }

    func testLineIsCutToTheTerminalWidth() {
        let screen = Screen()
        let bar = progress(total: 4, columns: 40, screen: screen)
        bar.update(1, detail: String(repeating: "x", count: 200))
        XCTAssertLessThan(bar.line.count, 40)
    }

    func testDisabledBarWritesNothing() {
        let screen = Screen()
        let bar = ProgressBar(total: 4, label: "x", enabled: false, write: { screen.writes.append($0) })
        bar.begin("a")
        bar.update(4)
        bar.finish()
        XCTAssertEqual(screen.writes, [])
    }

    /// What a terminal shows of a command: it runs under `script`, on a pseudo-terminal.
    private func onTerminal(_ arguments: [String]) throws -> (status: Int32, screen: String) {
        let command = ([SnnmemProcess.executable.path] + arguments).joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command, "/dev/null"]
        process.currentDirectoryURL = SnnmemProcess.repositoryRoot
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The bar was drawn, reached `finished`, and was erased before `following` was printed.
    private func assertBarEnded(_ screen: String, label: String, finished: String, following: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(screen.contains(label + " ["), "no bar drawn on a terminal: \(screen.debugDescription)", file: file, line: line)
        XCTAssertTrue(screen.contains(finished), screen.debugDescription, file: file, line: line)
        guard let erase = screen.range(of: "\r" + ProgressBar.eraseToEndOfLine, options: .backwards) else {
            return XCTFail("the bar was never erased: \(screen.debugDescription)", file: file, line: line)
        }
        XCTAssertFalse(screen[erase.upperBound...].contains(label + " ["), screen.debugDescription, file: file, line: line)
        XCTAssertTrue(screen[erase.upperBound...].contains(following), screen.debugDescription, file: file, line: line)
    }

    /// On a real terminal, `sweep --measure` on a profile where some strategies do not apply still
    /// brings its bar to the end and erases it, so the table starts on a line of its own.
    func testSweepMeasureOnATerminalEndsItsBar() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("no script(1) for a pseudo-terminal") }
        let (status, screen) = try onTerminal(["sweep", "profiles/digits.yaml", "--timesteps", "1,2", "--batch", "2", "--measure",
                                               "--runtime", "snnmem"])
        XCTAssertEqual(status, 0)
        // digits takes bptt, checkpoint and sltt: 3 strategies x 2 points.
        assertBarEnded(screen, label: "sweep", finished: "6/6", following: "bptt")
    }

    /// `check --measure` trains a step per entry: it shows how far it is.
    func testCheckMeasureOnATerminalShowsProgress() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("no script(1) for a pseudo-terminal") }
        let (status, screen) = try onTerminal(["check", "profiles/digits.yaml", "--budget", "1GiB", "--batch", "2", "--runtime", "snnmem",
                                               "--measure"])
        XCTAssertEqual(status, 0, screen)
        assertBarEnded(screen, label: "check --measure", finished: "3/3", following: "within")
    }
}
