import Foundation

/// A fresh folder under the system temporary directory for one test.
struct TemporaryFolder {
    let path: String

    static func make() throws -> TemporaryFolder {
        let path = NSTemporaryDirectory() + "/snnmem-allocator-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return TemporaryFolder(path: path)
    }

    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }
}
