import MemoryModel
import Profiles

/// The weight panel the engine's spike products (`SpikeProducts`, `snn_sparse_conv.c`) keep for a
/// convolution: the weight's [Cin k k, Cout] transpose, made once per training step for all its
/// forward calls, and then its gradient's transpose, accumulated over the step's backward calls and
/// added into dW once. One per conv whose shape the kernels take (stride 1, one group, Cout a
/// multiple of 16), whether or not a given call takes the path: that choice counts the call's
/// nonzero inputs, and a plan must not depend on data. Allocated with the parameters and kept for
/// the run, so a step neither maps nor faults in weight-sized buffers.
public enum SpikePanel {
    /// The panel's tensor name, under its conv's path.
    public static let name = "weight.panel"

    /// The panel's shape, [Cin k k, Cout] float32, for a conv reading `input` ([Cin, H, W]); nil where
    /// the kernels do not apply. The same test as the engine's `SpikeProducts.kernelShape` (stride 1,
    /// one group) and `snn_sparse_conv_supports` (the rest); `SpikePanelTests` checks they agree.
    public static func shape(_ conv: ConvSpec, input: TensorShape) -> TensorShape? {
        guard conv.stride == 1, conv.groups == 1, input.rank == 3 else { return nil }
        let height = input.dims[1], width = input.dims[2]
        let outHeight = height + 2 * conv.padding - conv.kernel + 1, outWidth = width + 2 * conv.padding - conv.kernel + 1
        let rows = conv.inChannels * conv.kernel * conv.kernel
        guard conv.inChannels > 0, conv.outChannels > 0, conv.outChannels % 16 == 0, conv.kernel > 0,
              conv.padding >= 0, conv.padding < conv.kernel, outHeight > 0, outWidth > 0, height < 32768, width < 32768,
              rows.multipliedReportingOverflow(by: conv.outChannels).partialValue < Int(Int32.max) else { return nil }
        return TensorShape([rows, conv.outChannels])
    }

    /// The panel's declaration for `layer`, nil where it keeps none.
    static func declaration(_ conv: ConvSpec, layer: Layer) -> BufferDeclaration? {
        shape(conv, input: layer.inputShape).map {
            BufferDeclaration(name: name, role: .workspace, shape: $0, perSample: false, dtype: .float32, perTimestep: false)
        }
    }
}
