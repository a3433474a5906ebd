import Engine
import XCTest

final class SeededRandomTests: XCTestCase {
    /// SplitMix64's published first outputs for seed 0 (the reference C code's sequence).
    func testKnownSequence() {
        var rng = SeededRandom(seed: 0)
        XCTAssertEqual(rng.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(rng.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(rng.next(), 0x06C4_5D18_8009_454F)
    }

    func testRangesAndDeterminism() {
        var a = SeededRandom(seed: 9), b = SeededRandom(seed: 9)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<7000 {
            let i = a.nextInt(below: 7)
            XCTAssertEqual(i, b.nextInt(below: 7))
            counts[i] += 1
            let u = a.nextUnit()
            XCTAssertTrue(u >= 0 && u < 1)
            _ = b.nextUnit()
        }
        XCTAssertTrue(counts.allSatisfy { (850...1150).contains($0) }, "\(counts)")
        var n = SeededRandom(seed: 3)
        let normals = (0..<20000).map { _ in n.nextNormal() }
        let mean = normals.reduce(0, +) / 20000
        let variance = normals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20000
        XCTAssertEqual(mean, 0, accuracy: 0.03)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testRandomInputFillsDeterministically() {
        var images1 = [Float](repeating: -1, count: 100), images2 = images1
        var labels = [Int32](repeating: -1, count: 50)
        var r1 = SeededRandom(seed: 5), r2 = SeededRandom(seed: 5)
        images1.withUnsafeMutableBufferPointer { RandomInput.fillUniform($0, using: &r1) }
        images2.withUnsafeMutableBufferPointer { RandomInput.fillUniform($0, using: &r2) }
        labels.withUnsafeMutableBufferPointer { RandomInput.fillLabels($0, classes: 10, using: &r1) }
        XCTAssertEqual(images1, images2)
        XCTAssertTrue(images1.allSatisfy { $0 >= 0 && $0 < 1 })
        XCTAssertTrue(labels.allSatisfy { (0..<10).contains($0) })
    }
}
