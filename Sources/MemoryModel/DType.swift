/// Element types. Training math in the engine is float32; float16 and bfloat16 exist so that
/// byte counts can be planned for mixed-precision set-ups; int32 holds the engine's labels and
/// pooling indices, int64 PyTorch's (class targets, max-pool indices).
public enum DType: String, Codable, CaseIterable, Sendable {
    case float32
    case float16
    case bfloat16
    case int32
    case int64
    /// PyTorch's comparison results (a mask of h >= threshold): one byte an element.
    case bool

    public var byteWidth: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .int64: return 8
        case .bool: return 1
        }
    }

    /// Whether activations can be held in it (profiles may choose only these).
    public var isFloatingPoint: Bool { self == .float32 || self == .float16 || self == .bfloat16 }
}
