import Engine
import Foundation

/// Seeded mutations of profile text, of the kinds users and tools produce: sizes pushed to
/// overflow, misspelled keys, lines lost or doubled, stray punctuation, control bytes, values of
/// the wrong kind, aliases, truncated files. The same seed gives the same mutants.
struct ProfileMutator {
    var random: SeededRandom

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    /// Sizes where byte arithmetic overflows or planning work explodes, and values of the wrong kind.
    static let extremeNumbers = ["0", "-1", "1", "3", "65536", "1000000", "2147483647", "2147483648", "4294967296", "1099511627776",
                                 "4611686018427387904", "9223372036854775807", "9223372036854775808", "99999999999999999999",
                                 "1e9", "1.5", "-0", "0x10", "nan", ".inf", "abc", "\"\"", "~", "[1, 2]", "{a: 1}"]
    static let strayText = ["{", "}", "[", "]", ":", ",", "- ", "&a ", "*a", "\u{0}", "\t", "#", "'", "\"", " ", "\n", "? ", "!!str ", "|"]

    mutating func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(random.next() % UInt64(n)) }

    /// One to three mutations of `text`.
    mutating func mutate(_ text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0...below(3) { mutateOnce(&lines) }
        return lines.joined(separator: "\n")
    }

    private mutating func mutateOnce(_ lines: inout [String]) {
        guard !lines.isEmpty else { lines = [pick(Self.strayText)]; return }
        let index = below(lines.count)
        switch below(9) {
        case 0, 1, 2:
            // A number replaced by an extreme: the common way a profile asks for too much.
            if let line = numberedLine(lines), let replaced = replacingNumber(in: lines[line]) { lines[line] = replaced }
        case 3:
            lines[index] = misspellingKey(in: lines[index])
        case 4:
            lines.remove(at: index)
        case 5:
            lines.insert(lines[index], at: index)
        case 6:
            var characters = Array(lines[index])
            characters.insert(contentsOf: pick(Self.strayText), at: below(characters.count + 1))
            lines[index] = String(characters)
        case 7:
            // A value of the wrong kind, or an alias, after a key.
            if let colon = lines[index].firstIndex(of: ":") {
                lines[index] = String(lines[index][...colon]) + " " + pick(["*a", "&a 3", "[]", "{}", "~", "\"x\"", "[{conv: {out: 4}}]", "-5"])
            }
        default:
            let cut = below(lines[index].count + 1)
            lines = Array(lines[..<index]) + [String(lines[index].prefix(cut))]
        }
    }

    private mutating func numberedLine(_ lines: [String]) -> Int? {
        let numbered = lines.indices.filter { lines[$0].contains(where: \.isNumber) && !lines[$0].hasPrefix("#") }
        return numbered.isEmpty ? nil : pick(numbered)
    }

    private mutating func replacingNumber(in line: String) -> String? {
        let characters = Array(line)
        var runs: [Range<Int>] = []
        var start: Int?
        for offset in 0...characters.count {
            let isDigit = offset < characters.count && characters[offset].isNumber && characters[offset].isASCII
            if isDigit { if start == nil { start = offset } } else if let begin = start {
                runs.append(begin..<offset)
                start = nil
            }
        }
        guard !runs.isEmpty else { return nil }
        let run = pick(runs)
        return String(characters[..<run.lowerBound]) + pick(Self.extremeNumbers) + String(characters[run.upperBound...])
    }

    private mutating func misspellingKey(in line: String) -> String {
        guard let colon = line.firstIndex(of: ":") else { return line }
        var key = Array(line[..<colon])
        let letters = key.indices.filter { key[$0].isLetter }
        guard letters.count >= 2 else { return line }
        let at = pick(letters)
        switch below(3) {
        case 0: key.remove(at: at)
        case 1: if at + 1 < key.count { key.swapAt(at, at + 1) }
        default: key.insert(pick(Array("aeiorstx")), at: at)
        }
        return String(key) + line[colon...]
    }
}
