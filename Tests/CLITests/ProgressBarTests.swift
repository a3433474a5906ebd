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

    /// On a real terminal (a pseudo-terminal through `script`), `sweep --measure` on a profile
    /// where some strategies do not apply still brings its bar to the end and erases it, so the
    /// table starts on a line of its own.
    func testSweepMeasureOnATerminalEndsItsBar() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { throw XCTSkip("no script(1) for a pseudo-terminal") }
        let command = "\(SnnmemProcess.executable.path) sweep profiles/digits.yaml --timesteps 1,2 --batch 2 --measure --runtime snnmem"
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
        XCTAssertEqual(process.terminationStatus, 0)
        let screen = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(screen.contains("sweep ["), "no bar drawn on a terminal: \(screen.debugDescription)")
        XCTAssertTrue(screen.contains("2/2") || screen.contains("4/4") || screen.contains("6/6"), screen.debugDescription)
        // The last redraw is an erase, and the table's heading comes after it, not glued to a bar.
        guard let erase = screen.range(of: "\r" + ProgressBar.eraseToEndOfLine, options: .backwards) else {
            return XCTFail("the bar was never erased: \(screen.debugDescription)")
        }
        XCTAssertFalse(screen[erase.upperBound...].contains("sweep ["), screen.debugDescription)
        XCTAssertTrue(screen[erase.upperBound...].contains("bptt"), screen.debugDescription)
    }
}
