import MemoryModel
import Profiles

/// Where a token layer norm's transposed tensors reach the PyTorch layers beside it. A profile's
/// `layernorm` on [C, N] tokens runs as spiking transformers write it, `nn.LayerNorm(C)` on
/// `x.transpose(-1, -2)` transposed back (`snnmem_torch.token_layernorm.TokenLayerNorm`, no
/// `.contiguous()`): its output is a transposed view, and so is the input gradient it hands
/// back. What that does to the neighbours was measured on the CPU (python/LAYOUT-NOTES.md §12):
/// a conv1d copies a transposed input (in forward, and its saved input again in backward) and a
/// transposed output gradient; a batch norm takes its strided CPU kernels, which need no
/// input-sized work buffer (on CUDA, cuDNN saves a contiguous copy of a transposed input and
/// copies a transposed gradient, fake-CUDA traces); a LIF/IF neuron, tokenmean and `tokens` (a
/// view, passing the gradient on to a neuron) allocate what they allocate on contiguous tensors. A
/// norm may start a residual's main path beside an identity shortcut (pre-norm) or end it with a
/// LIF/IF or tokenmean after the residual (post-norm).
public struct PyTorchTransposedTokens: Hashable, Sendable {
    /// The layer's input is a token layer norm's output.
    public var input = false
    /// The layer's output gradient is the transposed one a token layer norm hands back.
    public var outputGradient = false

    public init(input: Bool = false, outputGradient: Bool = false) {
        self.input = input
        self.outputGradient = outputGradient
    }

    public var any: Bool { input || outputGradient }
}

/// The layers of a profile that see a token layer norm's transposed view, by path, or the first
/// token layer norm whose neighbour was not measured with one (`refusal`).
public struct TransposedTokenNeighbours: Sendable {
    public private(set) var byPath: [String: PyTorchTransposedTokens] = [:]
    /// Why the PyTorch layouts do not model this profile's token layer norms, naming the layer.
    public private(set) var refusal: String?

    public init(_ profile: Profile) {
        var placed = Set<String>()
        visit(profile.layers, placed: &placed)
        // Token layer norms inside reversible stages or T-RevSNN columns: their walks recompute
        // and invert blocks whose transposed views were not measured.
        if refusal == nil, let norm = profile.firstLayer(where: { Self.isTokenNorm($0) && !placed.contains($0.path) }) {
            refusal = "layer norm '\(norm.path)' over [C, N] tokens inside a reversible or T-RevSNN block is not modelled in the PyTorch layouts (not measured)"
        }
    }

    static func isTokenNorm(_ layer: Layer) -> Bool {
        if case .layerNorm(let spec) = layer.kind { return spec.tokens != nil }
        return false
    }

    /// A LIF or IF neuron: SpikingJelly's step loop is elementwise and stacks its outputs, the same
    /// allocations on a transposed input or gradient (measured). Other neuron types were not.
    static func isPlainNeuron(_ layer: Layer) -> Bool {
        if case .neuron(let spec) = layer.kind { return spec.type == .lif || spec.type == .if }
        return false
    }

    /// The residual whose main path is being visited: a norm at either end of it meets its fork or add.
    private struct ResidualEnds {
        var residual: Layer
        var identityShortcut: Bool
        /// The layer after the residual in its own path.
        var next: Layer?
    }

    private mutating func visit(_ layers: [Layer], placed: inout Set<String>, inMain residual: ResidualEnds? = nil) {
        for (i, layer) in layers.enumerated() where refusal == nil {
            switch layer.kind {
            case .residual(let spec):
                let ends = ResidualEnds(residual: layer, identityShortcut: spec.shortcut.isEmpty, next: i + 1 < layers.count ? layers[i + 1] : nil)
                visit(spec.main, placed: &placed, inMain: ends)
                visit(spec.shortcut, placed: &placed)
            case .branches(let spec):
                for path in spec.paths { visit(path, placed: &placed) }
            case .layerNorm(let spec) where spec.tokens != nil:
                placed.insert(layer.path)
                markBefore(layers[..<i], norm: layer, inMain: residual)
                if refusal == nil { markAfter(i + 1 < layers.count ? layers[i + 1] : nil, norm: layer, inMain: residual) }
            default:
                break
            }
        }
    }

    private mutating func refuse(_ norm: Layer, _ why: String) {
        refusal = "layer norm '\(norm.path)' over [C, N] tokens: \(why), which is not modelled in the PyTorch layouts (not measured); "
            + "put a conv1d, batch norm, LIF/IF neuron, attention or tokenmean on each side of it, or plan it with --runtime snnmem"
    }

    /// The layer that receives the norm's transposed input gradient.
    private mutating func markBefore(_ before: ArraySlice<Layer>, norm: Layer, inMain residual: ResidualEnds?) {
        guard let previous = before.last else {
            // Pre-norm, x + f(norm(x)): autograd adds the norm's transposed input gradient in place into
            // the identity shortcut's (contiguous) gradient at the fork (measured: no new tensor), so the
            // layer before the residual gets a contiguous one.
            if let residual, residual.identityShortcut { return }
            return refuse(norm, "it starts its path" + (residual == nil ? "" : " beside a shortcut with layers")
                          + ", so its transposed input gradient meets a join or the input")
        }
        switch previous.kind {
        case .conv1d, .batchNorm:
            byPath[previous.path, default: .init()].outputGradient = true
        case .neuron where Self.isPlainNeuron(previous):
            break
        case .attention(let spec):
            // The attention's last layer (SSA's projection neuron, SDSA's projection batch norm).
            guard let last = spec.projection.last else { return refuse(norm, "attention '\(previous.path)' has no projection") }
            switch last.kind {
            case .conv1d, .batchNorm: byPath[last.path, default: .init()].outputGradient = true
            case .neuron where Self.isPlainNeuron(last): break
            default: refuse(norm, "its transposed input gradient reaches '\(last.path)' (\(last.kind.keyword))")
            }
        case .tokens:
            // A view: the gradient goes on, still transposed, to the layer before `tokens`.
            guard let source = before.dropLast().last, Self.isPlainNeuron(source) else {
                return refuse(norm, "its transposed input gradient goes through 'tokens' to "
                              + (before.dropLast().last.map { "'\($0.path)' (\($0.kind.keyword))" } ?? "a join or the input"))
            }
        default:
            refuse(norm, "its transposed input gradient reaches '\(previous.path)' (\(previous.kind.keyword))")
        }
    }

    /// The layer that reads the norm's transposed output.
    private mutating func markAfter(_ next: Layer?, norm: Layer, inMain residual: ResidualEnds?) {
        guard let next else {
            // Post-norm, x + norm(f(x)): the residual's `main(x) + shortcut(x)` takes the layout of its first
            // operand, so its output is transposed too; a LIF/IF or tokenmean after it allocates the same
            // (measured), others were not measured with one. Its gradient reaches the norm unchanged.
            guard let residual else { return refuse(norm, "it ends its path, so its transposed output meets a join or the loss") }
            guard let after = residual.next, Self.isPlainNeuron(after) || after.kind == .tokenMean else {
                return refuse(norm, "it ends the main path of '\(residual.residual.path)', whose add is then transposed and goes into "
                              + (residual.next.map { "'\($0.path)' (\($0.kind.keyword))" } ?? "a join or the loss"))
            }
            return
        }
        switch next.kind {
        case .conv1d, .batchNorm:
            byPath[next.path, default: .init()].input = true
        case .tokenMean:
            break
        case .neuron where Self.isPlainNeuron(next):
            break
        case .attention(let spec):
            // q, k and v each start with a conv1d reading the attention's input.
            for first in [spec.query.first, spec.key.first, spec.value.first] {
                guard let first, case .conv1d = first.kind else {
                    return refuse(norm, "attention '\(next.path)' reads its transposed output with a layer other than conv1d")
                }
                byPath[first.path, default: .init()].input = true
            }
        default:
            refuse(norm, "its transposed output goes into '\(next.path)' (\(next.kind.keyword))")
        }
    }
}
