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
    /// PyTorch's double scalars (the GradScaler's `_scale.double()` and its reciprocal).
    case float64

    public var byteWidth: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .int64, .float64: return 8
        case .bool: return 1
        }
    }

    /// Whether a profile may compute its activations in it: the engine's float32 and the two
    /// half types of mixed precision (float64 only appears as PyTorch's scalars).
    public var holdsActivations: Bool { self == .float32 || self == .float16 || self == .bfloat16 }
}
