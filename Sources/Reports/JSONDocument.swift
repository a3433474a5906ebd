import Foundation

/// Every JSON document snnmem prints or writes names what it is and the version of its shape
/// (`"document": "snnmem.plan", "formatVersion": 2`), so that a script or CI job reading it can
/// refuse a shape it does not know instead of misreading it. The README's "JSON output" section
/// lists each document's keys. Traces and baselines carry versions of their own, since they are
/// read back by snnmem itself.
public enum JSONDocument {
    /// 1: the documents before they carried a version; 2: one vocabulary for every quantity
    /// (README "Quantities"): `heldForBackwardBytes`, `bytesByRoleAtPeak`, `savedTensorBytes`.
    public static let formatVersion = 2

    public enum Kind: String, Sendable {
        case plan = "snnmem.plan"
        case maxBatch = "snnmem.max-batch"
        case run = "snnmem.run"
        case train = "snnmem.train"
        case compare = "snnmem.compare"
        case sweep = "snnmem.sweep"
        case check = "snnmem.check"
        case report = "snnmem.report"
    }

    /// Pretty, key-sorted JSON with the document's kind and version beside its own keys, ending
    /// in a newline: stable across runs, so reports diff cleanly.
    public static func data<T: Encodable>(_ value: T, kind: Kind) throws -> Data {
        var data = try plainData(Versioned(body: value, kind: kind))
        data.append(0x0A)
        return data
    }

    /// The same encoding without kind and version, for values inside other files (traces).
    public static func plainData<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(value)
    }

    /// The body's keys and the two document keys in one object: the body encodes itself into
    /// the encoder's keyed container, and the kind and version are added to that same container.
    struct Versioned<Body: Encodable>: Encodable {
        var body: Body
        var kind: Kind

        enum Keys: String, CodingKey { case document, formatVersion }

        func encode(to encoder: Encoder) throws {
            try body.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(kind.rawValue, forKey: .document)
            try container.encode(JSONDocument.formatVersion, forKey: .formatVersion)
        }
    }
}
