/// Finds where a mapping repeats a key, from the key's first position. Yams rejects the mapping
/// before a tree exists, so this reads the text: in a flow mapping (`{out: 16, out: 8}`) the next
/// `key:` at the same bracket depth; in a block mapping the next `key:` line at the same indent.
struct DuplicateKeyLocator {
    let lines: [[Character]]

    init(yaml: String) {
        lines = yaml.split(separator: "\n", omittingEmptySubsequences: false).map { Array($0) }
    }

    func repeatOf(_ key: String, after first: SourceLocation) -> SourceLocation? {
        let lineIndex = first.line - 1, column = first.column - 1
        guard lineIndex >= 0, lineIndex < lines.count, column >= 0, column <= lines[lineIndex].count else { return nil }
        let before = lines[lineIndex][..<column].last { $0 != " " && $0 != "\t" }
        return before == "{" || before == "," ? inFlow(key, line: lineIndex, column: column)
                                              : inBlock(key, line: lineIndex, indent: column)
    }

    private func startsWithKey(_ key: String, _ line: [Character], at column: Int) -> Bool {
        let key = Array(key)
        guard column + key.count <= line.count, Array(line[column..<column + key.count]) == key else { return false }
        var next = column + key.count
        while next < line.count, line[next] == " " { next += 1 }
        return next < line.count && line[next] == ":"
    }

    private func inFlow(_ key: String, line startLine: Int, column startColumn: Int) -> SourceLocation? {
        var depth = 0
        var quote: Character?
        var afterComma = false
        var line = startLine, column = startColumn + key.count
        while line < lines.count {
            while column < lines[line].count {
                let character = lines[line][column]
                if let open = quote {
                    if character == open { quote = nil }
                } else if afterComma && character != " " && character != "\t" {
                    if depth == 0 && startsWithKey(key, lines[line], at: column) {
                        return SourceLocation(line: line + 1, column: column + 1)
                    }
                    afterComma = false
                    continue
                } else {
                    switch character {
                    case "\"", "'": quote = character
                    case "{", "[": depth += 1
                    case "}", "]":
                        depth -= 1
                        if depth < 0 { return nil }
                    case ",": afterComma = true
                    case "#" where column == 0 || lines[line][column - 1] == " ": column = lines[line].count; continue
                    default: break
                    }
                }
                column += 1
            }
            line += 1
            column = 0
        }
        return nil
    }

    private func inBlock(_ key: String, line startLine: Int, indent: Int) -> SourceLocation? {
        for line in (startLine + 1)..<max(startLine + 1, lines.count) {
            let text = lines[line]
            guard let first = text.firstIndex(where: { $0 != " " }), text[first] != "#" else { continue }
            if first < indent { return nil }
            if first == indent && startsWithKey(key, text, at: first) { return SourceLocation(line: line + 1, column: first + 1) }
        }
        return nil
    }
}
