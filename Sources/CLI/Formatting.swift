import Foundation
import MemoryModel

/// Number formatting shared by the tables.
enum Formatting {
    static func bytes(_ value: Int) -> String { ByteCount.format(value) }

    static func gflops(_ flops: Double) -> String {
        ByteCount.formatFixed(flops / 1e9, digits: flops >= 1e11 ? 0 : (flops >= 1e10 ? 1 : 2))
    }

    static func percent(_ ratio: Double) -> String {
        ByteCount.formatFixed(ratio * 100, digits: 0) + "%"
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
