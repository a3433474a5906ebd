/// A plain-text or Markdown table with columns sized to their contents.
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public var headers: [String]
    public var alignments: [Alignment]
    public var rows: [[String]] = []

    public init(_ headers: [String], alignments: [Alignment]? = nil) {
        self.headers = headers
        self.alignments = alignments ?? ([.left] + Array(repeating: .right, count: max(0, headers.count - 1)))
    }

    public mutating func add(_ row: [String]) {
        precondition(row.count == headers.count, "row has \(row.count) cells, table has \(headers.count) columns")
        rows.append(row)
    }

    /// Columns separated by two spaces; a dashed line under the header.
    public func text() -> String {
        let widths = columnWidths()
        func line(_ cells: [String]) -> String {
            zip(cells.indices, cells).map { index, cell in pad(cell, widths[index], alignments[index]) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }
        var lines = [line(headers), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }

    public func markdown() -> String {
        let widths = columnWidths()
        func line(_ cells: [String]) -> String {
            "| " + zip(cells.indices, cells).map { index, cell in pad(cell.replacingPipes, widths[index], alignments[index]) }
                .joined(separator: " | ") + " |"
        }
        let rule = "|" + zip(widths, alignments).map { width, alignment in
            alignment == .right ? String(repeating: "-", count: width + 1) + ":" : ":" + String(repeating: "-", count: width + 1)
        }.joined(separator: "|") + "|"
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }

    private func columnWidths() -> [Int] {
        headers.indices.map { column in ([headers[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0 }
    }

    private func pad(_ text: String, _ width: Int, _ alignment: Alignment) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return alignment == .left ? text + fill : fill + text
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    var replacingPipes: String {
        var out = ""
        for character in self { out += character == "|" ? "\\|" : String(character) }
        return out
    }
}
