/// The dimensions of a tensor, outermost first (for activations: batch, channels, height, width).
public struct TensorShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }

    public var elementCount: Int { dims.reduce(1, *) }
    public var rank: Int { dims.count }

    /// The same shape with a leading dimension added (a time or batch axis).
    public func prepending(_ dim: Int) -> TensorShape { TensorShape([dim] + dims) }

    public var description: String { dims.map(String.init).joined(separator: "x") }

    public init(from decoder: Decoder) throws {
        dims = try decoder.singleValueContainer().decode([Int].self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(dims)
    }
}
