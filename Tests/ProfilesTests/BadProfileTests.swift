import Foundation
import Profiles
import XCTest

/// Every file in BadProfiles/ starts with `# expect: line=N [layer=PATH] message=TEXT`; loading it
/// must fail with a ProfileError naming that file, line, layer and message, and offering a fix.
final class BadProfileTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("BadProfiles")

    struct Expectation {
        var line: Int
        var layer: String?
        var message: String
    }

    static func expectation(in text: String) -> Expectation? {
        guard let first = text.split(separator: "\n", omittingEmptySubsequences: false).first,
              first.hasPrefix("# expect: ") else { return nil }
        var rest = Substring(first.dropFirst("# expect: ".count))
        var line = 0
        var layer: String?
        while !rest.hasPrefix("message=") {
            guard let space = rest.firstIndex(of: " ") else { return nil }
            let field = rest[..<space]
            if field.hasPrefix("line=") { line = Int(field.dropFirst(5)) ?? 0 }
            if field.hasPrefix("layer=") { layer = String(field.dropFirst(6)) }
            rest = rest[rest.index(after: space)...]
        }
        return Expectation(line: line, layer: layer, message: String(rest.dropFirst("message=".count)))
    }

    static func badProfiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
    }

    func testCorpusHasAtLeastTwentyCases() throws {
        XCTAssertGreaterThanOrEqual(try Self.badProfiles().count, 20)
    }

    func testEveryBadProfileGetsItsLocatedError() throws {
        for url in try Self.badProfiles() {
            let text = try String(contentsOf: url, encoding: .utf8)
            guard let expected = Self.expectation(in: text) else {
                XCTFail("\(url.lastPathComponent) has no `# expect:` header")
                continue
            }
            do {
                _ = try ProfileLoader.load(path: url.path)
                XCTFail("\(url.lastPathComponent) loaded without error")
            } catch let error as ProfileError {
                let name = url.lastPathComponent
                XCTAssertEqual(error.file, url.path, name)
                XCTAssertEqual(error.location?.line, expected.line, "\(name): \(error)")
                XCTAssertNotNil(error.location?.column, name)
                XCTAssertEqual(error.layerPath, expected.layer, "\(name): \(error)")
                XCTAssertTrue(error.problem.contains(expected.message), "\(name): expected '\(expected.message)' in '\(error.problem)'")
                XCTAssertFalse(error.fix.isEmpty, name)
                XCTAssertTrue(error.description.hasPrefix("\(url.path):\(expected.line):"), "\(name): \(error.description)")
                XCTAssertTrue(error.description.contains("fix: "), name)
            } catch {
                XCTFail("\(url.lastPathComponent): not a ProfileError: \(error)")
            }
        }
    }

    func testMissingFileIsAProfileError() {
        XCTAssertThrowsError(try ProfileLoader.load(path: "/nonexistent/profile.yaml")) { error in
            guard let error = error as? ProfileError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.file, "/nonexistent/profile.yaml")
            XCTAssertTrue(error.problem.contains("no such profile file"))
        }
    }
}
