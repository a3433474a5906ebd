/// Parsing and printing byte sizes ("24GiB", "512MB", "1.5 KiB").
public enum ByteCount {
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var description: String {
            "'\(text)' is not a size: write a number followed by B, KB, MB, GB, KiB, MiB or GiB (e.g. 24GiB)"
        }
    }

    private static let units: [(suffix: String, factor: Double)] = [
        ("kib", 1024), ("mib", 1024 * 1024), ("gib", 1024 * 1024 * 1024), ("tib", 1024 * 1024 * 1024 * 1024),
        ("kb", 1e3), ("mb", 1e6), ("gb", 1e9), ("tb", 1e12), ("b", 1),
    ]

    /// Parses a size; a bare number is bytes. Fractions are allowed before a unit and rounded down to whole bytes.
    public static func parse(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        var numberPart = trimmed
        var factor = 1.0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            numberPart = String(trimmed.dropLast(unit.suffix.count)).trimmingCharacters(in: .whitespaces)
            factor = unit.factor
            break
        }
        guard !numberPart.isEmpty, numberPart.allSatisfy({ $0.isNumber || $0 == "." }),
              let value = Double(numberPart), value.isFinite, value >= 0 else {
            throw ParseError(text: text)
        }
        let bytes = value * factor
        guard bytes < 9.0e18 else { throw ParseError(text: text) }
        return Int(bytes.rounded(.down))
    }

    /// Binary units with three significant digits: "1.50 MiB", "812 KiB", "96 B".
    public static func format(_ bytes: Int) -> String { format(bytes, significantDigits: 3) }

    /// Each value in binary units, with the fewest significant digits (three at least) at which
    /// values that differ also print differently: "24.0 GiB" twice hides which of two peaks
    /// fits a 24 GiB budget, "23.998 GiB" and "24.003 GiB" shows it. Bytes are exact, so any
    /// two different values part at the latest there.
    public static func formatDistinct(_ values: [Int]) -> [String] {
        var digits = 3
        while true {
            let texts = values.map { format($0, significantDigits: digits) }
            var byText: [String: Int] = [:]
            let clash = zip(texts, values).contains { text, value in
                if let other = byText.updateValue(value, forKey: text) { return other != value }
                return false
            }
            if !clash || digits >= maxSignificantDigits { return texts }
            digits += 1
        }
    }

    /// A Double holds 15 significant decimal digits exactly; `formatFixed` scales to an Int.
    static let maxSignificantDigits = 15

    /// Binary units with `significantDigits` digits before and after the point together.
    public static func format(_ bytes: Int, significantDigits: Int) -> String {
        let sign = bytes < 0 ? "-" : ""
        var value = Double(bytes.magnitude)
        let names = ["B", "KiB", "MiB", "GiB", "TiB"]
        var index = 0
        while value >= 1024, index < names.count - 1 {
            value /= 1024
            index += 1
        }
        if index == 0 { return "\(sign)\(bytes.magnitude) B" }
        let wholeDigits = String(Int(value.rounded(.down))).count
        let digits = max(0, min(significantDigits, maxSignificantDigits) - wholeDigits)
        return sign + formatFixed(value, digits: digits) + " " + names[index]
    }

    /// Fixed-point formatting without Foundation's locale-dependent formatters.
    public static func formatFixed(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled - Double(whole) * scale)
        var text = "\(value < 0 && scaled != 0 ? "-" : "")\(whole)"
        if digits > 0 {
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text
    }
}

extension String {
    func trimmingCharacters(in set: CharacterSetLike) -> String {
        var scalars = Substring(self)
        while let first = scalars.first, set.contains(first) { scalars = scalars.dropFirst() }
        while let last = scalars.last, set.contains(last) { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

/// A tiny stand-in for Foundation's CharacterSet so this target has no dependencies.
struct CharacterSetLike {
    let contains: (Character) -> Bool
    static let whitespaces = CharacterSetLike { $0 == " " || $0 == "\t" }
    func contains(_ c: Character) -> Bool { contains(c) }
}
