import MemoryModel
import Profiles

/// The layer walk for the PyTorch runtimes: what eager autograd allocates for one leaf layer,
/// following `PyTorchLayerTable`. Containers (residual adds) and the schedules are shared with
/// the engine's walk; only the leaf layers and the step's edges (set-up, input encoding, loss,
/// optimizer) differ.
extension TraceBuilder {
    var pytorchDevice: PyTorchLayerTable.Device { layerTables.device }

    // MARK: Forward

    /// Runs a layer's forward script (`PyTorchLayerTable`) on x (consumed); returns the output.
    mutating func forwardPyTorch(_ layer: Layer, _ x: Int, span: Span, saving: Bool, path: String) -> Int {
        let table = layerTables.entry(layer)
        let d = layerTables.layout(table)
        addFlops(table.forwardFlops * Double(batch * steps(span)))
        if d.outputIsView { return x }
        if !temporalGradient, let held = heldSaved.removeValue(forKey: path) {
            // SLTT's pre-forward hook detaches v: the graph that made it, and what that graph
            // saved, dies before the new timestep runs (v's storage lives on, detached).
            for id in held { release(id) }
        }
        var run = ScriptRun(path: path, span: span, entry: table)
        swap(&run.named, &spareScriptTemporaries)
        run.input = x
        runForward(d.forward, &run, timestep: nil)
        if let initial = run.initial {
            if run.initialSaved { run.saved.append(initial) } else { release(initial) }
        }
        let keepsInput = d.keepsInput && !run.inputCast
        if saving {
            if keepsInput {
                retain(x)
                run.saved.append(x)
            }
            keep(run.saved, key: SavedKey(path: path, timestep: span.timestep))
            // Kept for backward (and attributed to this layer), but freed with the module's v.
            markKept(run.held, by: path)
            // Most layers hold nothing with v: no entry for them (an empty one would release nothing).
            if !run.held.isEmpty { heldSaved[path, default: []] += run.held }
        } else {
            for id in run.saved + run.held { release(id) }
        }
        precondition(run.named.isEmpty, "\(path): forward script left \(run.named.labels) allocated")
        swap(&run.named, &spareScriptTemporaries)
        release(x)
        return run.output!
    }

    /// The state of one script execution: named temporaries, what it saved, its output.
    struct ScriptRun {
        var path: String
        var span: Span
        /// The layer's table entry: a run refers to its layer instead of copying it.
        let entry: LayerTableCache.Entry
        var layer: Layer { entry.layer }
        var named = ScriptTemporaries()
        var saved: [Int] = []
        /// Saved by the op that made the final v: freed with the module's v, not by backward.
        var held: [Int] = []
        var output: Int?
        var initial: Int?
        var initialSaved = false
        var inputGradient: Int?
        var needInputGradient = false
        /// The layer's input (forward), and whether autocast saved a half copy in its place.
        var input: Int?
        var inputCast = false
        /// Autocast backward: half weight gradients on their way to float32 `.grad`.
        var halfGradients: [Int] = []
    }

    /// Named temporaries, the same in forward and backward scripts: true when `step` was one.
    mutating func runTemporary(_ step: PyTorchStep, _ run: inout ScriptRun, timestep: Int?) -> Bool {
        switch step {
        case .allocate(let buffer):
            run.named.set(buffer.name, timestep: timestep, to: allocate(buffer, path: run.path, span: scriptSpan(run, timestep)))
            return true
        case .allocateScratchpad(let name, let scratchpad):
            // oneDNN sizes it for the samples this run convolves: T·B, a segment's k·B, or B.
            let span = scriptSpan(run, timestep)
            let bytes = scratchpad.bytes(samples: batch * steps(span), on: oneDNNMachine)
            run.named.set(name, timestep: timestep, to: allocate(run.path, name, timestep: span.timestep, role: .workspace,
                                                                 shape: TensorShape([bytes]), dtype: .bool))  // raw bytes
            return true
        case .allocatePerThread(let buffer):
            // PyTorch's CPU threads: what `--cpu-threads` sets (oneDNN's threads are the same pool).
            var perThread = buffer
            perThread.shape = buffer.shape.prepending(oneDNNMachine.threads)
            run.named.set(buffer.name, timestep: timestep, to: allocate(perThread, path: run.path, span: scriptSpan(run, timestep)))
            return true
        case .deconvolutionScratchpad(let deconv, let pass, let around):
            let span = scriptSpan(run, timestep)
            let bytes = deconv.bytes(pass, samples: batch * steps(span), threads: oneDNNMachine.threads)
            let scratchpad = bytes == 0 ? nil : allocate(run.path, "scratchpad.deconvolution.\(pass.rawValue)", timestep: span.timestep,
                                                         role: .workspace, shape: TensorShape([bytes]), dtype: .bool)  // raw bytes
            for step in around {
                let isTemporary = runTemporary(step, &run, timestep: timestep)
                precondition(isTemporary, "\(run.path): only temporaries run inside a scratchpad's lifetime")
            }
            if let scratchpad { release(scratchpad) }
            return true
        case .free(let name):
            guard let id = run.named.remove(name, timestep: timestep) else {
                preconditionFailure("\(run.path): script frees \(name), which it did not allocate")
            }
            release(id)
            return true
        default:
            return false
        }
    }

    /// Inside `.eachTimestep` of a multi-step run, tensors are one timestep's [B, ...].
    func scriptSpan(_ run: ScriptRun, _ timestep: Int?) -> Span {
        timestep.map { run.span == .allTimesteps ? .timestep($0) : run.span } ?? run.span
    }

    /// A multi-step run loops over T timesteps of [B, ...] tensors; a single-step run is one.
    func scriptTimesteps(_ span: Span) -> Range<Int> {
        span == .allTimesteps ? 0..<multiStepLength : (span.timestep ?? 0)..<(span.timestep ?? 0) + 1
    }

    mutating func runForward(_ steps: [PyTorchStep], _ run: inout ScriptRun, timestep: Int?) {
        let stepSpan = scriptSpan(run, timestep)
        let isLastTimestep = timestep.map { $0 == scriptTimesteps(run.span).upperBound - 1 } ?? true
        for step in steps {
            if runTemporary(step, &run, timestep: timestep) { continue }
            switch step {
            case .save(let buffer, let heldByFinalState):
                let id = allocate(buffer, path: run.path, span: stepSpan)
                if heldByFinalState && isLastTimestep && finalStateHoldsGraph { run.held.append(id) } else { run.saved.append(id) }
            case .output:
                run.output = allocateActivation(run.path, "output", role: .activation, shape: run.layer.outputShape, span: run.span)
            case .initialState(let buffer, let saved):
                if heldStates[run.path] == nil {
                    run.initial = allocate(buffer, path: run.path, span: run.span)
                    run.initialSaved = saved
                }
            case .replaceState(let buffer):
                let state = allocate(buffer, path: run.path, span: stepSpan)
                if let previous = heldStates.updateValue(state, forKey: run.path) { release(previous) }
            case .replaceSavedState(let buffer):
                let state = allocate(buffer, path: run.path, span: stepSpan)
                // The walk's reference to the previous state becomes the saved one.
                if let previous = heldStates.updateValue(state, forKey: run.path) { run.saved.append(previous) }
            case .ifNoFeedback(let body):
                if heldStates[PyTorchLayerTable.feedbackKey(run.path)] == nil { runForward(body, &run, timestep: timestep) }
            case .ifReadsInput(let then, let otherwise):
                runForward(isFirstLeaf(run.path) ? then : otherwise, &run, timestep: timestep)
            case .heldOnce(let buffer, let making, let made):
                if heldStates[run.path] == nil {
                    runForward(making, &run, timestep: timestep)
                    heldStates[run.path] = allocate(buffer, path: run.path, span: run.span)
                    runForward(made, &run, timestep: timestep)
                }
                retain(heldStates[run.path]!)
                run.saved.append(heldStates[run.path]!)
            case .eachTimestep(let body):
                for t in scriptTimesteps(run.span) { runForward(body, &run, timestep: t) }
            case .castWeight:
                guard let half = autocast, let weight = run.layer.pytorchWeight else { break }
                if let cached = castCache?[run.path] {
                    retain(cached)  // a cache hit: the region's first cast serves again
                    run.saved.append(cached)
                    break
                }
                let cast = allocate(run.path, "weight.\(half.rawValue)", timestep: run.span.timestep, role: .parameter,
                                    shape: weight.shape, dtype: half)
                if castCache != nil {
                    castCache![run.path] = cast
                    retain(cast)
                }
                if castIsSaved(run) {
                    run.saved.append(cast)
                } else {
                    // The cast still lives in autocast's cache until the region exits: after the loss,
                    // or after a checkpoint segment's recomputation (its own region).
                    unsavedCasts.append(cast)
                }
            case .castInput:
                guard let half = autocast, let x = run.input, dtype(x) == .float32 else { break }
                run.saved.append(allocate(BufferDeclaration(name: "input.\(half.rawValue)", role: .activation, shape: run.layer.inputShape,
                                                            dtype: half), path: run.path, span: run.span))
                run.inputCast = true
            case .allocate, .allocateScratchpad, .allocatePerThread, .deconvolutionScratchpad, .free:
                break  // runTemporary
            case .inputGradient, .parameterGradients, .releaseSaved, .releaseOutputGradient, .ifInputGradient, .ifMultiStep, .ifWeightGradient,
                 .castGradients:
                preconditionFailure("\(run.path): backward step in a forward script")
            }
        }
    }

    // MARK: Backward

    /// Runs a layer's backward script on dY (consumed); returns dX when `needInputGrad`.
    mutating func backwardPyTorch(_ layer: Layer, _ dY: Int, span: Span, needInputGrad: Bool, path: String) -> Int? {
        let table = layerTables.entry(layer)
        let d = layerTables.layout(table)
        addFlops(2 * table.forwardFlops * Double(batch * steps(span)))
        if d.outputIsView {
            if needInputGrad { return dY }
            release(dY)
            return nil
        }
        var run = ScriptRun(path: path, span: span, entry: table)
        swap(&run.named, &spareScriptTemporaries)
        run.needInputGradient = needInputGrad || !d.canSkipInputGradient
        // A later checkpoint segment's gradient of this neuron's end state joins its backward.
        if let carried = stateGradients.removeValue(forKey: path) { release(carried) }
        if let carried = stateGradients.removeValue(forKey: PyTorchLayerTable.feedbackKey(path)) { release(carried) }
        runBackward(d.backward, &run, dY: dY, parameters: d.parameters, timestep: nil)
        if stateGradientsFlowBack, case .neuron = layer.kind {
            stateGradients[path] = allocate(path, "grad_v_start", timestep: nil, role: .workspace, shape: layer.pytorchStateShape.prepending(batch))
        }
        if stateGradientsFlowBack, case .recurrent = layer.kind {
            // Both carried states' gradients: the neuron's v and the fed-back spikes y.
            stateGradients[path] = allocate(path, "grad_v_start", timestep: nil, role: .workspace, shape: layer.outputShape.prepending(batch))
            stateGradients[PyTorchLayerTable.feedbackKey(path)] = allocate(path, "grad_y_start", timestep: nil, role: .workspace,
                                                                           shape: layer.outputShape.prepending(batch))
        }
        precondition(run.named.isEmpty, "\(path): backward script left \(run.named.labels) allocated")
        swap(&run.named, &spareScriptTemporaries)
        if let dX = run.inputGradient, !needInputGrad {
            release(dX)
            return nil
        }
        return run.inputGradient
    }

    mutating func runBackward(_ steps: [PyTorchStep], _ run: inout ScriptRun, dY: Int, parameters: [ParameterDeclaration],
                              timestep: Int?) {
        for step in steps {
            if runTemporary(step, &run, timestep: timestep) { continue }
            switch step {
            case .inputGradient:
                if run.needInputGradient {
                    run.inputGradient = allocateActivation(run.path, "grad_input", role: .workspace, shape: run.layer.inputShape,
                                                           span: run.span)
                }
            case .parameterGradients:
                if let half = autocast, run.layer.pytorchWeight != nil {
                    // The op computes in half; ToCopyBackward makes the float32 gradients (.castGradients).
                    run.halfGradients = parameters.filter(\.trainable).map {
                        allocate(run.path, $0.name + ".grad.\(half.rawValue)", timestep: nil, role: .workspace, shape: $0.shape, dtype: half)
                    }
                } else {
                    accumulateParameterGradients(parameters, path: run.path)
                }
            case .castGradients:
                guard !run.halfGradients.isEmpty else { break }
                if let pending = pendingHalfGradients[run.path] {
                    // Added into the gradient buffer a previous checkpoint segment left.
                    for id in run.halfGradients { release(id) }
                    run.halfGradients = pending
                    pendingHalfGradients[run.path] = nil
                }
                if defersGradientCasts {
                    // One cast weight (autocast's cache) serves every segment: its ToCopyBackward
                    // runs once, after the last segment's backward, on the summed half gradient.
                    pendingHalfGradients[run.path] = run.halfGradients
                } else {
                    accumulateParameterGradients(parameters, path: run.path)
                    for id in run.halfGradients { release(id) }
                }
                run.halfGradients = []
            case .releaseSaved:
                releaseSaved(SavedKey(path: run.path, timestep: run.span.timestep))
            case .releaseOutputGradient:
                release(dY)
            case .ifInputGradient(let body):
                if run.needInputGradient { runBackward(body, &run, dY: dY, parameters: parameters, timestep: timestep) }
            case .ifMultiStep(let body):
                if self.steps(run.span) > 1 { runBackward(body, &run, dY: dY, parameters: parameters, timestep: timestep) }
            case .ifWeightGradient(let none, let afterView, let accumulating):
                if gradients[ParameterKey(path: run.path, name: "weight")] == nil {
                    // One multi-step call over one timestep (a checkpoint segment of one) leaves the view.
                    if run.span == .allTimesteps && self.steps(run.span) == 1 { weightGradientIsView.insert(run.path) }
                    runBackward(none, &run, dY: dY, parameters: parameters, timestep: timestep)
                } else if weightGradientIsView.remove(run.path) != nil {
                    runBackward(afterView, &run, dY: dY, parameters: parameters, timestep: timestep)
                } else {
                    runBackward(accumulating, &run, dY: dY, parameters: parameters, timestep: timestep)
                }
            case .eachTimestep(let body):
                for t in scriptTimesteps(run.span) { runBackward(body, &run, dY: dY, parameters: parameters, timestep: t) }
            case .allocate, .allocateScratchpad, .allocatePerThread, .deconvolutionScratchpad, .free:
                break  // runTemporary
            case .save, .output, .initialState, .replaceState, .replaceSavedState, .ifNoFeedback, .castWeight, .castInput, .heldOnce,
                 .ifReadsInput:
                preconditionFailure("\(run.path): forward step in a backward script")
            }
        }
    }

    /// AccumulateGrad: the first gradient of a parameter becomes its `.grad` (kept until the next
    /// `zero_grad(set_to_none=True)`); later ones (one per timestep under SLTT) are added into it.
    mutating func accumulateParameterGradients(_ parameters: [ParameterDeclaration], path: String) {
        for parameter in parameters where parameter.trainable {
            let key = ParameterKey(path: path, name: parameter.name)
            if gradients[key] == nil {
                gradients[key] = allocate(path, parameter.name + ".grad", timestep: nil, role: .gradient, shape: parameter.shape,
                                          dtype: .float32, persistent: true)
            } else {
                let added = allocate(path, parameter.name + ".grad", timestep: nil, role: .gradient, shape: parameter.shape,
                                     dtype: .float32)
                release(added)
            }
        }
    }

    /// A residual add out of place (`main(x) + shortcut(x)`): a new output, both operands freed.
    mutating func addOutOfPlace(_ a: Int, _ b: Int, path: String, shape: TensorShape, span: Span) -> Int {
        let sum = allocateActivation(path, "output", role: .activation, shape: shape, span: span)
        release(a)
        release(b)
        return sum
    }

    // MARK: The step's edges

    /// `x.unsqueeze(0).repeat(T, 1, 1, 1, 1)`: the images copied once per timestep, [T, B, ...].
    mutating func repeatInputPyTorch(_ input: Int) -> Int {
        if profile.inputPerTimestep {
            retain(input)  // event frames are fed as they are: x_seq is the batch itself
            return input
        }
        return allocate(BufferDeclaration(name: "x_seq", role: .activation, shape: profile.inputShape, dtype: .float32), path: "input",
                 span: .allTimesteps)
    }

    /// `F.cross_entropy(out_seq.mean(0), labels)`: the mean over T, log_softmax's output (saved),
    /// the loss and nll_loss's total_weight (saved). Consumes the logits; returns the loss.
    mutating func lossPyTorch(_ logits: Int, span: Span) -> Int {
        var scores = logits
        if span == .allTimesteps {
            scores = allocateActivation("loss", "mean", role: .activation, shape: logitsShape, span: .once)
            release(logits)
        }
        // Autocast: the CPU's cross_entropy runs in float32 on a copy of the half scores; CUDA's
        // log_softmax runs in half and nll_loss saves a float32 copy of it.
        let cpuCast = autocast != nil && runtime == .pytorchCPU
        let scoresCopy = cpuCast ? allocate("loss", "scores.float32", timestep: span.timestep, role: .workspace,
                                            shape: logitsShape.prepending(batch), dtype: .float32) : nil
        let logSoftmax = allocate("loss", "log_softmax", timestep: span.timestep, role: .activation, shape: logitsShape.prepending(batch),
                                  dtype: cpuCast ? .float32 : nil)
        let nllCopy = autocast != nil && runtime == .pytorchCUDA
            ? allocate("loss", "log_softmax.float32", timestep: span.timestep, role: .activation, shape: logitsShape.prepending(batch),
                       dtype: .float32)
            : nil
        release(scores)
        let loss = allocate("loss", "loss", timestep: span.timestep, role: .activation, shape: TensorShape([]), dtype: .float32)
        let totalWeight = allocate("loss", "total_weight", timestep: span.timestep, role: .activation, shape: TensorShape([]),
                                   dtype: .float32)
        keep([logSoftmax, totalWeight] + (nllCopy.map { [$0] } ?? []), key: SavedKey(path: "loss", timestep: span.timestep))
        if let scoresCopy { release(scoresCopy) }
        releaseUnsavedCasts()
        return loss
    }

    /// An autocast region ends (with the loss, or a checkpoint segment's recomputation): its cache drops
    /// the casts nothing saved.
    mutating func releaseUnsavedCasts() {
        for id in unsavedCasts { release(id) }
        unsavedCasts = []
    }

    /// Whether an autograd node saves the weight's half copy. addmm saves it (mat2) only for its input's
    /// gradient: a linear layer on the network's input never does; a recurrent layer there only when a
    /// fed-back y carries a gradient into some timestep's concatenation (from a run's second timestep,
    /// or from a checkpoint segment's carried-in y; SLTT detaches y).
    func castIsSaved(_ run: ScriptRun) -> Bool {
        guard isFirstLeaf(run.path) else { return true }
        switch run.layer.kind {
        case .linear:
            return false
        case .recurrent:
            return temporalGradient && (steps(run.span) > 1 || heldStates[PyTorchLayerTable.feedbackKey(run.path)] != nil)
        default:
            return true
        }
    }

    /// Whether the layer at `path` is the network's first leaf layer past any views (`flatten`,
    /// `tokens`), the one that reads the float32 input sequence (which needs no gradient).
    func isFirstLeaf(_ path: String) -> Bool {
        ParameterLayout.flatten(profile.layers).first(where: {
            switch $0.kind {
            case .flatten, .tokens: return false
            default: return true
            }
        })?.path == path
    }

    /// `loss.backward()` from the loss node to the logits' gradient: ones, nll_loss's and
    /// log_softmax's input gradients, and MeanBackward's [T, B, classes] expansion.
    mutating func lossBackwardPyTorch(_ loss: Int, span: Span) -> Int {
        // float16: `scaler.scale(loss).backward()` starts from loss * scale, and MulBackward0
        // multiplies the seed by the scale again before NllLossBackward0.
        let scaled = usesGradScaler
            ? allocate("loss", "loss.scaled", timestep: span.timestep, role: .workspace, shape: TensorShape([]), dtype: .float32) : nil
        let seed = allocate("loss", "grad_loss", timestep: span.timestep, role: .workspace, shape: TensorShape([]), dtype: .float32)
        let seedTimesScale = usesGradScaler
            ? allocate("loss", "grad_loss.scaled", timestep: span.timestep, role: .workspace, shape: TensorShape([]), dtype: .float32) : nil
        let dLogSoftmax = allocateActivation("loss", "grad_log_softmax", role: .workspace, shape: logitsShape, span: .once)
        for id in [seedTimesScale, scaled].compactMap({ $0 }) { release(id) }
        release(seed)
        var dScores = allocateActivation("loss", "grad_scores", role: .workspace, shape: logitsShape, span: .once)
        release(dLogSoftmax)
        if autocast != nil && runtime == .pytorchCPU {
            // ToCopyBackward: the float32 gradient back to the half scores.
            let half = allocateActivation("loss", "grad_scores.half", role: .workspace, shape: logitsShape, span: .once)
            release(dScores)
            dScores = half
        }
        releaseSaved(SavedKey(path: "loss", timestep: span.timestep))
        release(loss)
        guard span == .allTimesteps else { return dScores }
        let dLogits = allocateActivation("loss", "grad_logits", role: .workspace, shape: logitsShape, span: .allTimesteps)
        release(dScores)
        return dLogits
    }

    /// `optimizer.step()`: weight decay adds into a new tensor per parameter (SGD and Adam);
    /// Adam's denominator sqrt(v) / bias correction is a temporary too, which the CPU's per-tensor
    /// loop computes in two (sqrt, then the division), one parameter at a time, while CUDA's
    /// default foreach kernels make each temporary for all parameters at once and divide in place.
    /// Momentum, moments and weights are updated in place.
    mutating func optimizerStepPyTorch() {
        // float16: `scaler.step` unscales the gradients in place first; `scaler.update` after the
        // step drops the found-inf copy the optimizer's per-step state held.
        let foundInfCopy = usesGradScaler ? unscaleGradientsPyTorch() : nil
        defer { if let foundInfCopy { release(foundInfCopy) } }
        let optimizer = profile.optimizer
        var names: [String] = optimizer.weightDecay != 0 ? ["decayed_grad"] : []
        if optimizer.type == .adam { names += runtime == .pytorchCUDA ? ["denominator"] : ["sqrt_v", "denominator"] }
        guard !names.isEmpty else { return }
        // A parameter without a gradient (T-RevSNN's first column's up paths and alphas) is skipped.
        let withoutGradient = parametersWithoutPyTorchGradient
        let trainable = parameterEntries
            .filter { $0.parameter.trainable && (withoutGradient.isEmpty || !withoutGradient.contains($0.path + "/" + $0.parameter.name)) }
        func temporary(_ entry: ParameterLayout.Entry, _ name: String) -> Int {
            allocate(entry.path, entry.parameter.name + "." + name, timestep: nil, role: .workspace, shape: entry.parameter.shape,
                     dtype: .float32)
        }
        if runtime == .pytorchCUDA {
            for name in names {
                let ids = trainable.map { temporary($0, name) }
                for id in ids { release(id) }
            }
        } else {
            for entry in trainable {
                let ids = names.map { temporary(entry, $0) }
                for id in ids { release(id) }
            }
        }
    }
}

extension TraceBuilder {
    /// `GradScaler.unscale_`: the inverse scale through a double (`_scale.double().reciprocal()
    /// .float()`), found_inf, the per-device copies of both (found_inf's is kept until `update`),
    /// then the in-place unscale, which allocates nothing. Returns found_inf's copy.
    mutating func unscaleGradientsPyTorch() -> Int {
        func scalar(_ name: String, _ dtype: DType) -> Int {
            allocate("grad_scaler", name, timestep: nil, role: .workspace, shape: TensorShape([]), dtype: dtype)
        }
        let scale64 = scalar("scale.double", .float64)
        let inverse64 = scalar("inv_scale.double", .float64)
        release(scale64)
        let inverse = scalar("inv_scale", .float32)
        release(inverse64)
        let foundInf = scalar("found_inf", .float32)
        let foundInfCopy = scalar("found_inf.copy", .float32)
        let inverseCopy = scalar("inv_scale.copy", .float32)
        release(inverseCopy)
        release(inverse)
        release(foundInf)
        return foundInfCopy
    }
}

/// A reversible stage under plain autograd (bptt, sltt, checkpoint on the PyTorch runtimes):
/// `x1, x2 = x.chunk(2)` are views, the couplings y1 = x1 + F(x2), y2 = x2 + G(y1) are
/// out-of-place adds and `torch.cat` joins the halves; nothing of the stage itself is saved.
extension TraceBuilder {
    /// `keepOutputOnly`: RevSNN's autograd function runs F and G without a graph and keeps only
    /// the stage's output (`ctx.y`), then resets the stage's neurons.
    mutating func forwardReversiblePyTorch(_ layer: Layer, _ stage: ReversibleStage, _ x: Int, span: Span, saving: Bool,
                                           mode: ReversibleMode) -> Int {
        let path = layer.path
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        let graphs = saving && mode == .storeGraphs
        var input = x  // the views' storage
        for block in stage.blocks {
            retain(input)  // x2's view, consumed by F
            let f = forward(block.f, input, span: span, saving: graphs)
            let y1 = allocateActivation(path, "y1", role: .activation, shape: half, span: span)
            release(f)
            retain(y1)
            let g = forward(block.g, y1, span: span, saving: graphs)
            let y2 = allocateActivation(path, "y2", role: .activation, shape: half, span: span)
            release(g)
            let joined = allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
            release(y1)
            release(y2)
            release(input)  // x1's view (and the previous block's output)
            addFlops(2 * Double(half.elementCount * batch * steps(span)))
            input = joined
        }
        if mode == .keepOutputOnly {
            resetNeurons(stage.blocks.flatMap { $0.f + $0.g })
            if saving {
                retain(input)  // ctx.y, an alias of the returned output
                keep([input], key: SavedKey(path: path, timestep: nil))
            }
        }
        return input
    }

    /// `functional.reset_net` on some layers: their neurons drop v and what v's graph saved.
    mutating func resetNeurons(_ layers: [Layer]) {
        for layer in ParameterLayout.flatten(layers) {
            guard case .neuron = layer.kind, let state = heldStates.removeValue(forKey: layer.path) else { continue }
            release(state)
            for id in heldSaved.removeValue(forKey: layer.path) ?? [] { release(id) }
        }
    }

    /// RevSNN's backward, block by block from the last: rerun G on y1 with a graph and
    /// backpropagate it at once, x2 = y2 - G(y1), then the same for F, x1 = y1 - F(x2); the
    /// halves and their gradients are concatenated for the block before.
    mutating func backwardRevSNNPyTorch(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int, needInputGrad: Bool) -> Int? {
        let path = layer.path
        let span = Span.allTimesteps
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        guard let kept = saved.removeValue(forKey: SavedKey(path: path, timestep: nil)), kept.count == 1 else {
            preconditionFailure("reversible stage \(path) has no kept output")
        }
        var y = kept[0]
        var gradient = dY
        for (index, block) in stage.blocks.enumerated().reversed() {
            let isLastBlock = index == stage.blocks.count - 1
            let (gy1, dG) = rerunAndBackpropagate(block.g, on: y, gradient: gradient, half: half)  // dG is y1.grad
            let x2 = allocateActivation(path, "x2", role: .activation, shape: half, span: span)
            release(gy1)
            let dX1 = allocateActivation(path, "grad_x1", role: .workspace, shape: half, span: span)
            release(dG)
            let (fx2, dF) = rerunAndBackpropagate(block.f, on: x2, gradient: dX1, half: half)  // dF is x2.grad
            let x1 = allocateActivation(path, "x1", role: .activation, shape: half, span: span)
            release(fx2)
            let dX2 = allocateActivation(path, "grad_x2", role: .workspace, shape: half, span: span)
            release(dF)
            let x = allocateActivation(path, "input", role: .activation, shape: layer.inputShape, span: span)
            let dX = allocateActivation(path, "grad_input", role: .workspace, shape: layer.inputShape, span: span)
            for id in [x2, dX1, x1, dX2] { release(id) }
            release(y)
            if !isLastBlock { release(gradient) }
            y = x
            gradient = dX
        }
        release(y)
        release(dY)
        if needInputGrad { return gradient }
        release(gradient)
        return nil
    }

    /// One half of a RevSNN block's backward: F or G rerun on its input with a graph,
    /// backpropagated at once from `gradient`, its neurons reset. Returns its output and its
    /// input gradient; the input and the gradient stay the caller's.
    mutating func rerunAndBackpropagate(_ layers: [Layer], on input: Int, gradient: Int, half: TensorShape) -> (output: Int, inputGradient: Int) {
        let backwardPhase = phase
        phase = .recompute(timestep: nil)
        retain(input)
        let output = forward(layers, input, span: .allTimesteps, saving: true)
        addFlops(Double(half.elementCount * batch * multiStepLength))
        phase = backwardPhase
        retain(gradient)
        let inputGradient = backward(layers, gradient, span: .allTimesteps, needInputGrad: true)!
        resetNeurons(layers)
        return (output, inputGradient)
    }

    mutating func backwardReversiblePyTorch(_ layer: Layer, _ stage: ReversibleStage, _ dY: Int, span: Span,
                                            needInputGrad: Bool) -> Int? {
        let path = layer.path
        let half = TensorShape([stage.channels / 2] + Array(layer.inputShape.dims.dropFirst()))
        var gradient = dY
        for block in stage.blocks.reversed() {
            // dY2 and dY1 are views of the block's output gradient.
            retain(gradient)
            let dG = backward(block.g, gradient, span: span, needInputGrad: true)!
            // y1's gradient: the dY1 view plus G's input gradient.
            let dY1 = allocateActivation(path, "grad_y1", role: .workspace, shape: half, span: span)
            release(dG)
            retain(dY1)  // x1's gradient too, until SplitBackward
            let dF = backward(block.f, dY1, span: span, needInputGrad: true)!
            // x2's gradient: the dY2 view plus F's input gradient; the output gradient is done.
            let dX2 = allocateActivation(path, "grad_x2", role: .workspace, shape: half, span: span)
            release(gradient)
            release(dF)
            // x1's gradient is y1's (an add passes it through): SplitBackward concatenates.
            let dX = allocateActivation(path, "grad_input", role: .workspace, shape: layer.inputShape, span: span)
            release(dY1)
            release(dX2)
            gradient = dX
        }
        if needInputGrad { return gradient }
        release(gradient)
        return nil
    }
}
