import MemoryModel
import Profiles

extension PyTorchLayerTable {
    /// Whether the PyTorch layouts model the recurrent layer yet.
    static let recurrentIsModelled = false

    static func recurrentLayout(_ d: inout PyTorchLayerLayout, _ spec: RecurrentSpec, _ layer: Layer, device: Device, autocast: DType?) {
        preconditionFailure("\(layer.path): the recurrent layer has no PyTorch layout yet")
    }
}
