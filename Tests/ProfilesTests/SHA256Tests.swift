import Foundation
import MemoryModel
import Profiles
import XCTest

/// The profile digest against FIPS 180-4's test vectors and against `sha256sum`, an independent
/// implementation: baselines and traces compare these digests, so a wrong one would call every
/// file changed (or, worse, collide).
final class SHA256Tests: XCTestCase {
    func testStandardVectors() {
        XCTAssertEqual(SHA256.hex([UInt8]()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // 56 bytes: the padding needs a second block.
        XCTAssertEqual(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Every length around the block edges, against each other: no two collide.
        let digests = (0..<130).map { SHA256.hex([UInt8](repeating: 0, count: $0)) }
        XCTAssertEqual(Set(digests).count, digests.count)
        XCTAssertTrue(digests.allSatisfy(SHA256.isHexDigest))
        XCTAssertFalse(SHA256.isHexDigest(String(repeating: "A", count: 64)))
    }

    /// A loaded profile carries `sha256sum` of its file's bytes.
    func testLoadedProfileCarriesTheFilesDigest() throws {
        let sha256sum = URL(fileURLWithPath: "/usr/bin/sha256sum")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: sha256sum.path), "no sha256sum on this machine")
        let path = BundledProfileTests.profilesFolder.appendingPathComponent("cifarnet.yaml").path
        let process = Process()
        process.executableURL = sha256sum
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let expected = String(output.prefix(64))
        XCTAssertEqual(try ProfileLoader.load(path: path).sourceSHA256, expected)
        XCTAssertEqual(try ProfileLoader.parse(yaml: try String(contentsOfFile: path, encoding: .utf8), file: path).sourceSHA256, expected)
    }
}
