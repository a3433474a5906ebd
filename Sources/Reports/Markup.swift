import MemoryModel

/// Text and numbers as they go into SVG, HTML and Markdown: escaped (layer names are user input)
/// and formatted without locales, so the same report is byte-identical on every machine.
enum Markup {
    /// Escapes the five XML specials and replaces characters XML 1.0 forbids (control
    /// characters other than tab and newline), which would make the whole document unreadable.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// A sentence written for the terminal or Markdown ("add a `reversible:` stage") as HTML:
    /// escaped, each pair of backticks a `<code>` span. An unpaired backtick stays as it is.
    static func prose(_ text: String) -> String {
        let parts = text.split(separator: "`", omittingEmptySubsequences: false)
        // An odd number of parts means every backtick is paired; otherwise the last one is not.
        let paired = parts.count % 2 == 1 ? parts.count : parts.count - 1
        var out = ""
        for (index, part) in parts.enumerated() {
            let text = escape(String(part))
            if index % 2 == 0 {
                out += text
            } else {
                out += index < paired ? "<code>" + text + "</code>" : "`" + text
            }
        }
        return out
    }

    /// A coordinate with one decimal, trailing ".0" dropped ("12.5", "40").
    static func number(_ value: Double) -> String {
        let text = ByteCount.formatFixed(value, digits: 1)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    /// An integer with thousands separators ("1,572,864"), independent of locale.
    static func grouped(_ value: Int) -> String {
        let digits = String(abs(value))
        var out = ""
        for (index, character) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// Milliseconds with as many decimals as the magnitude needs to stay readable.
    static func milliseconds(_ value: Double) -> String {
        ByteCount.formatFixed(value, digits: value >= 100 ? 0 : (value >= 10 ? 1 : 2)) + " ms"
    }

    /// An anchor-safe identifier for a section ("bptt", "checkpoint-k-3").
    static func identifier(_ text: String) -> String {
        var out = ""
        for character in text.lowercased() {
            if character.isASCII, character.isLetter || character.isNumber {
                out.append(character)
            } else if !out.hasSuffix("-") {
                out += "-"
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "schedule" : out
    }
}
