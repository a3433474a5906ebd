import Foundation
import MemoryModel
import Reports

/// Number formatting shared by the tables.
enum Formatting {
    static func bytes(_ value: Int) -> String { ByteCount.format(value) }

    static func gflops(_ flops: Double) -> String {
        ByteCount.formatFixed(flops / 1e9, digits: flops >= 1e11 ? 0 : (flops >= 1e10 ? 1 : 2))
    }

    static func percent(_ ratio: Double) -> String {
        ByteCount.formatFixed(ratio * 100, digits: 0) + "%"
    }

    /// A versioned JSON document (`JSONDocument`) for standard output; `print` adds the newline.
    static func json<T: Encodable>(_ value: T, kind: JSONDocument.Kind) throws -> String {
        String(decoding: try JSONDocument.data(value, kind: kind).dropLast(), as: UTF8.self)
    }

    /// Wraps text at spaces so no line is longer than `width`; continuation lines get `indent`.
    static func wrap(_ text: String, width: Int = 80, indent: String = "    ") -> String {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            let candidate = line.isEmpty ? String(word) : line + " " + word
            if candidate.count > width, !line.isEmpty {
                lines.append(line)
                line = indent + word
            } else {
                line = candidate
            }
        }
        lines.append(line)
        return lines.joined(separator: "\n")
    }

    /// Shortens a long name by cutting its middle: "col0/trev/.../pwconv2:output@t0".
    static func elide(_ text: String, to width: Int) -> String {
        guard text.count > width, width > 8 else { return text }
        let tail = (width - 3) * 2 / 3
        let head = width - 3 - tail
        return String(text.prefix(head)) + "..." + String(text.suffix(tail))
    }
}
