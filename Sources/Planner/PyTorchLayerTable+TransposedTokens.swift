import MemoryModel
import Profiles

/// The layers beside a token layer norm, whose input or output gradient is a transposed view
/// (`TransposedTokenNeighbours`): what PyTorch 2.15 allocates for that view (python/LAYOUT-NOTES.md §12).
extension PyTorchLayerTable {
    /// A conv1d: `_convolution` computes on a contiguous copy of a transposed input, made first and
    /// freed last (autograd still saves the view: no new bytes); `convolution_backward` copies the
    /// saved view and a transposed output gradient again, both live through the whole op (measured
    /// on the CPU; the copies are aten's, above the backends, not visible on fake CUDA tensors).
    static func transposedConvolutionCopies(_ d: inout PyTorchLayerLayout, _ transposed: PyTorchTransposedTokens,
                                            input: TensorShape, output: TensorShape) {
        guard transposed.any else { return }
        let inputCopy = BufferDeclaration(name: "input.contiguous", role: .workspace, shape: input)
        let gradientCopy = BufferDeclaration(name: "grad_output.contiguous", role: .workspace, shape: output)
        if transposed.input { d.forward = [.allocate(inputCopy)] + d.forward + [.free(inputCopy.name)] }
        let copies: [PyTorchStep] = (transposed.input ? [.allocate(inputCopy)] : []) + (transposed.outputGradient ? [.allocate(gradientCopy)] : [])
        let frees: [PyTorchStep] = (transposed.outputGradient ? [.free(gradientCopy.name)] : []) + (transposed.input ? [.free(inputCopy.name)] : [])
        d.backward = copies + insertingBeforeReleases(frees, d.backward)
    }

    /// A batch norm over tokens. CPU: `native_batch_norm` takes its strided kernels on a transposed
    /// input or output gradient; their backward needs no input-sized work buffer, only a [C] sum
    /// (measured). CUDA (fake-CUDA traces): cuDNN saves a contiguous copy of a transposed input in
    /// place of the input, and copies a transposed output gradient before its backward.
    static func transposedBatchNorm(_ d: inout PyTorchLayerLayout, _ transposed: PyTorchTransposedTokens, channels: Int,
                                    input: TensorShape, device: Device) {
        switch device {
        case .cpu:
            let sum = BufferDeclaration(name: "grad.sum", role: .workspace, shape: TensorShape([channels]), perSample: false,
                                        dtype: .float32, perTimestep: false)
            d.backward = [.inputGradient, .parameterGradients, .allocate(sum), .free(sum.name), .releaseOutputGradient, .releaseSaved]
        case .cuda:
            if transposed.input {
                d.keepsInput = false
                d.forward = [.save(BufferDeclaration(name: "input.contiguous", role: .activation, shape: input), heldByFinalState: false)]
                    + d.forward
            }
            if transposed.outputGradient {
                let gradientCopy = BufferDeclaration(name: "grad_output.contiguous", role: .workspace, shape: input)
                d.backward = [.allocate(gradientCopy)] + insertingBeforeReleases([.free(gradientCopy.name)], d.backward)
            }
        }
    }

    /// `steps` with `frees` put before its first release of the saved tensors or the output gradient.
    private static func insertingBeforeReleases(_ frees: [PyTorchStep], _ steps: [PyTorchStep]) -> [PyTorchStep] {
        let at = steps.firstIndex { $0 == .releaseSaved || $0 == .releaseOutputGradient } ?? steps.endIndex
        return Array(steps[..<at]) + frees + Array(steps[at...])
    }
}
