import Engine
import Foundation
import XCTest

final class DigitsDatasetTests: XCTestCase {
    func testLoadsAllSamples() throws {
        let data = try DigitsDataset.loadBundled()
        XCTAssertEqual(data.count, 1797)
        XCTAssertEqual(data.images.count, 1797 * 64)
        XCTAssertEqual(Set(data.labels), Set(0...9))
        XCTAssertEqual(data.images.min(), 0)
        XCTAssertEqual(data.images.max(), 1)
        // Every value is a multiple of 1/16 (the file holds 0...16).
        XCTAssertTrue(data.images.allSatisfy { ($0 * 16).rounded() == $0 * 16 })
        // The first line of the file: 0,0,5,13,9,1,0,0,... label 0.
        XCTAssertEqual(Array(data.images[0..<4]), [0, 0, 5.0 / 16, 13.0 / 16])
        XCTAssertEqual(data.labels[0], 0)
        // Class counts of this set are 174-183 each.
        for digit in 0...9 {
            let n = data.labels.filter { $0 == digit }.count
            XCTAssertTrue((170...185).contains(n), "digit \(digit): \(n) samples")
        }
    }

    func testSplitSizesAndDeterminism() throws {
        let data = try DigitsDataset.loadBundled()
        let a = data.split(trainFraction: 0.8, seed: 42)
        let b = data.split(trainFraction: 0.8, seed: 42)
        let c = data.split(trainFraction: 0.8, seed: 7)
        XCTAssertEqual(a.train.count, 1438)  // round(1797 * 0.8)
        XCTAssertEqual(a.test.count, 359)
        XCTAssertEqual(a.train.labels, b.train.labels)
        XCTAssertEqual(a.train.images, b.train.images)
        XCTAssertEqual(a.test.images, b.test.images)
        XCTAssertNotEqual(a.train.labels, c.train.labels)
        XCTAssertEqual(Set(a.test.labels), Set(0...9))
        // A partition: together the two halves hold each image exactly as often as the full set.
        func histogram(_ d: DigitsDataset) -> [Int32: Int] { Dictionary(d.labels.map { ($0, 1) }, uniquingKeysWith: +) }
        let train = histogram(a.train), test = histogram(a.test), all = histogram(data)
        for digit in all.keys { XCTAssertEqual((train[digit] ?? 0) + (test[digit] ?? 0), all[digit]) }
        XCTAssertEqual((a.train.images + a.test.images).reduce(0, +), data.images.reduce(0, +), accuracy: 1e-2)
    }

    func testErrorsNameTheFileAndLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("snnmem-digits-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let bad = directory.appendingPathComponent("bad.csv")
        let good = Array(repeating: "0", count: 64).joined(separator: ",") + ",3"
        try (good + "\n" + good + ",9\n").write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try DigitsDataset.load(path: bad.path)) { error in
            XCTAssertEqual(error as? DigitsDatasetError, .malformedLine(path: bad.path, line: 2, reason: "66 fields, expected 65"))
        }
        XCTAssertThrowsError(try DigitsDataset.load(path: directory.appendingPathComponent("missing.csv.gz").path)) { error in
            guard case .cannotOpen = error as? DigitsDatasetError else { return XCTFail("\(error)") }
        }
        // A plain (not gzipped) file reads too.
        let plain = directory.appendingPathComponent("plain.csv")
        try (good + "\n").write(to: plain, atomically: true, encoding: .utf8)
        XCTAssertEqual(try DigitsDataset.load(path: plain.path).labels, [3])
    }
}
