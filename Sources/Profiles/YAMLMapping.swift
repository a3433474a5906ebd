import Yams

/// A YAML mapping read with its source positions: typed getters that throw `ProfileError`s
/// naming the key's line and column, and a check that no unknown key was given (a typo such as
/// `kernal:` must not be silently ignored).
struct YAMLMapping {
    let node: Node
    let pairs: [(key: String, keyNode: Node, value: Node)]
    let file: String
    var layerPath: String?
    /// What this mapping describes, for messages ("conv", "neuron", "the profile").
    let context: String
    private(set) var used: Set<String> = []

    init(_ node: Node, file: String, layerPath: String?, context: String) throws {
        guard let mapping = node.mapping else {
            throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                               problem: "\(context) must be a mapping of keys to values, found \(node.kindName)",
                               fix: "write it as `key: value` lines (or `{key: value, ...}`)")
        }
        self.node = node
        self.file = file
        self.layerPath = layerPath
        self.context = context
        var pairs: [(String, Node, Node)] = []
        for (key, value) in mapping {
            guard let name = key.scalar?.string else {
                throw ProfileError(file: file, location: key.location, layerPath: layerPath,
                                   problem: "a key in \(context) is not a plain name", fix: "use plain names as keys")
            }
            pairs.append((name, key, value))
        }
        self.pairs = pairs
    }

    var location: SourceLocation { node.location }

    func error(_ problem: String, fix: String, at node: Node? = nil) -> ProfileError {
        ProfileError(file: file, location: (node ?? self.node).location, layerPath: layerPath, problem: problem, fix: fix)
    }

    mutating func value(_ key: String) -> Node? {
        guard let pair = pairs.first(where: { $0.key == key }) else { return nil }
        used.insert(key)
        return pair.value
    }

    mutating func require(_ key: String, example: String) throws -> Node {
        guard let node = value(key) else { throw missingKey(key, example: example) }
        return node
    }

    /// A required key is absent. Where another key in this mapping is a near miss (`bacth:` for
    /// `batch:`), that key is the error, at its own line: the user wrote it, only misspelled.
    func missingKey(_ key: String, example: String) -> ProfileError {
        if let typo = pairs.first(where: { $0.key != key && editDistance($0.key.lowercased(), key) <= 2 && !used.contains($0.key) }) {
            return error("unknown key '\(typo.key)' in \(context) (did you mean '\(key)'?)",
                         fix: "rename it to `\(key):`", at: typo.keyNode)
        }
        return error("\(context) is missing the required key '\(key)'", fix: "add `\(key): \(example)`")
    }

    mutating func int(_ key: String, default defaultValue: Int? = nil, min: Int = 1, max: Int = PlanningLimits.maxDimension,
                      example: String = "1") throws -> Int {
        guard let node = value(key) else {
            if let defaultValue { return defaultValue }
            throw missingKey(key, example: example)
        }
        return try Self.integer(node, key: key, min: min, max: max, file: file, layerPath: layerPath, context: context)
    }

    /// A whole number within min...max. `max` bounds what snnmem plans (see `PlanningLimits`):
    /// a size past it is refused here, at its line, instead of overflowing a byte count later.
    static func integer(_ node: Node, key: String, min: Int, max: Int = PlanningLimits.maxDimension, file: String,
                        layerPath: String?, context: String) throws -> Int {
        let text = node.scalar?.string ?? ""
        let digits = text.hasPrefix("+") || text.hasPrefix("-") ? text.dropFirst() : Substring(text)
        if node.scalar != nil, !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), Int(text) == nil {
            // All digits, but past Int64: a size, only far too large (or small).
            throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                               problem: "'\(key)' in \(context) is \(text), beyond any size snnmem plans (at most \(PlanningLimits.formatted(max)))",
                               fix: "set `\(key)` to \(text.hasPrefix("-") ? "\(min) or more" : "at most \(max)")")
        }
        guard node.scalar != nil, let value = Int(text) else {
            throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                               problem: "'\(key)' in \(context) must be a whole number, found '\(node.displayText)'",
                               fix: "write a whole number such as `\(key): \(Swift.max(min, 1))`")
        }
        guard value >= min else {
            throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                               problem: "'\(key)' in \(context) is \(value), but it must be at least \(min)",
                               fix: "set `\(key)` to \(min) or more")
        }
        guard value <= max else {
            throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                               problem: "'\(key)' in \(context) is \(PlanningLimits.formatted(value)), more than the \(PlanningLimits.formatted(max)) snnmem plans",
                               fix: "set `\(key)` to at most \(max)")
        }
        return value
    }

    mutating func double(_ key: String, default defaultValue: Double, range: ClosedRange<Double>? = nil,
                         positive: Bool = false) throws -> Double {
        guard let node = value(key) else { return defaultValue }
        guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
            throw error("'\(key)' in \(context) must be a number, found '\(node.displayText)'",
                        fix: "write a number such as `\(key): \(defaultValue)`", at: node)
        }
        if positive && value <= 0 {
            throw error("'\(key)' in \(context) is \(value), but it must be greater than 0",
                        fix: "set `\(key)` to a positive number such as \(defaultValue)", at: node)
        }
        if let range, !range.contains(value) {
            throw error("'\(key)' in \(context) is \(value), outside \(range.lowerBound)...\(range.upperBound)",
                        fix: "set `\(key)` within \(range.lowerBound)...\(range.upperBound)", at: node)
        }
        return value
    }

    mutating func bool(_ key: String, default defaultValue: Bool) throws -> Bool {
        guard let node = value(key) else { return defaultValue }
        guard let scalar = node.scalar, let value = Bool(scalar.string.lowercased()) else {
            throw error("'\(key)' in \(context) must be true or false, found '\(node.displayText)'",
                        fix: "write `\(key): true` or `\(key): false`", at: node)
        }
        return value
    }

    mutating func string(_ key: String, default defaultValue: String? = nil) throws -> String? {
        guard let node = value(key) else { return defaultValue }
        guard let scalar = node.scalar else {
            throw error("'\(key)' in \(context) must be a plain value, found \(node.kindName)", fix: "write `\(key): VALUE`", at: node)
        }
        return scalar.string
    }

    /// A string that must be one of an enumeration's raw values.
    mutating func choice<E: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: E) throws -> E where E.RawValue == String {
        guard let node = value(key) else { return defaultValue }
        let text = node.scalar?.string ?? node.displayText
        guard let value = E(rawValue: text.lowercased()) else {
            let options = E.allCases.map(\.rawValue).joined(separator: ", ")
            throw error("'\(key)' in \(context) is '\(text)', which is not one of: \(options)",
                        fix: "set `\(key)` to one of \(options)", at: node)
        }
        return value
    }

    /// Throws on the first key that is not one of `allowed`.
    func rejectUnknownKeys(allowed: [String]) throws {
        for pair in pairs where !allowed.contains(pair.key) {
            let suggestion = allowed.min(by: { editDistance($0, pair.key) < editDistance($1, pair.key) })
            let hint = suggestion.flatMap { editDistance($0, pair.key) <= 2 ? " (did you mean '\($0)'?)" : nil } ?? ""
            throw error("unknown key '\(pair.key)' in \(context)\(hint)",
                        fix: "use only the keys \(allowed.joined(separator: ", "))", at: pair.keyNode)
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on misspelled keys and layer kinds.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

extension Node {
    var location: SourceLocation {
        mark.map { SourceLocation(line: $0.line, column: $0.column) } ?? SourceLocation(line: 1, column: 1)
    }

    var kindName: String {
        switch self {
        case .scalar: return "a single value"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    var displayText: String {
        switch self {
        case .scalar(let scalar): return scalar.string
        default: return kindName
        }
    }
}
