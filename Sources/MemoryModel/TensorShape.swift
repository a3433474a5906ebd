/// The dimensions of a tensor, outermost first (for activations: batch, channels, height, width).
public struct TensorShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var dims: [Int]

    public init(_ dims: [Int]) { self.dims = dims }

    public var elementCount: Int { dims.reduce(1, *) }
    public var rank: Int { dims.count }

    /// The same shape with a leading dimension added (a time or batch axis). One allocation:
    /// the planner makes a shape like this for nearly every tensor it plans.
    public func prepending(_ dim: Int) -> TensorShape {
        var result: [Int] = []
        result.reserveCapacity(dims.count + 1)
        result.append(dim)
        result.append(contentsOf: dims)
        return TensorShape(result)
    }

    /// The same shape with two leading dimensions added, `outer` first ([T, B, ...]).
    public func prepending(_ outer: Int, _ inner: Int) -> TensorShape {
        var result: [Int] = []
        result.reserveCapacity(dims.count + 2)
        result.append(outer)
        result.append(inner)
        result.append(contentsOf: dims)
        return TensorShape(result)
    }

    public var description: String { dims.map(String.init).joined(separator: "x") }

    public init(from decoder: Decoder) throws {
        dims = try decoder.singleValueContainer().decode([Int].self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(dims)
    }
}
