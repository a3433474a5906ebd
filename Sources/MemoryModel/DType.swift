/// Element types. Training math in the engine is float32; float16 and bfloat16 exist so that
/// byte counts can be planned for mixed-precision set-ups; int32 holds labels and pooling indices.
public enum DType: String, Codable, CaseIterable, Sendable {
    case float32
    case float16
    case bfloat16
    case int32

    public var byteWidth: Int {
        switch self {
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        }
    }
}
