/// One tensor that training allocates: which layer owns it, what it is called there, for which
/// timestep, its role, shape and element type. Bytes are exact (elements x width); allocator
/// rounding is applied separately by `AllocatorRounding`.
public struct TensorDescriptor: Hashable, Codable, Sendable {
    public var layerPath: String
    public var name: String
    public var timestep: Int?
    public var role: TensorRole
    public var shape: TensorShape
    public var dtype: DType

    public init(layerPath: String, name: String, timestep: Int?, role: TensorRole, shape: TensorShape, dtype: DType) {
        self.layerPath = layerPath
        self.name = name
        self.timestep = timestep
        self.role = role
        self.shape = shape
        self.dtype = dtype
    }

    public var bytes: Int { shape.elementCount * dtype.byteWidth }

    /// "layer/path:name@t" for messages.
    public var label: String {
        "\(layerPath):\(name)" + (timestep.map { "@t\($0)" } ?? "")
    }
}
