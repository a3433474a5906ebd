import Foundation
import XCTest

/// Compares text with a file in `__Snapshots__` beside this file. Snapshots change on purpose
/// only: `SNNMEM_RECORD_SNAPSHOTS=1 swift test --filter ReportsTests` rewrites them; otherwise a
/// mismatch fails with the first differing line.
func assertSnapshot(_ actual: String, named name: String, file: StaticString = #filePath, line: UInt = #line) {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("__Snapshots__")
    let url = folder.appendingPathComponent(name)
    if ProcessInfo.processInfo.environment["SNNMEM_RECORD_SNAPSHOTS"] == "1" {
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: url)
        } catch {
            XCTFail("cannot record snapshot \(url.path): \(error)", file: file, line: line)
        }
        return
    }
    guard let data = FileManager.default.contents(atPath: url.path), let expected = String(data: data, encoding: .utf8) else {
        XCTFail("no snapshot \(url.path): record it with SNNMEM_RECORD_SNAPSHOTS=1 swift test --filter ReportsTests", file: file, line: line)
        return
    }
    guard expected != actual else { return }
    let expectedLines = expected.split(separator: "\n", omittingEmptySubsequences: false)
    let actualLines = actual.split(separator: "\n", omittingEmptySubsequences: false)
    let index = zip(expectedLines, actualLines).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(expectedLines.count, actualLines.count)
    func at(_ lines: [Substring]) -> String { index < lines.count ? "\"\(lines[index])\"" : "(end of file)" }
    XCTFail("""
        \(name) differs from its snapshot at line \(index + 1) (expected \(expectedLines.count) lines, got \(actualLines.count)):
          expected: \(at(expectedLines))
          actual:   \(at(actualLines))
        if the change is intended, re-record with SNNMEM_RECORD_SNAPSHOTS=1 swift test --filter ReportsTests
        """, file: file, line: line)
}
