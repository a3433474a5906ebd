import Foundation
import MemoryModel
import Planner
import Profiles

/// The network's parameters, their gradients and optimizer state, allocated in the planner's
/// `ParameterLayout` order and kept for the whole run.
final class ParameterStore<T: EngineScalar> {
    struct Slot {
        var value: Int
        var gradient: Int?
        var states: [Int]
        var count: Int
    }

    private(set) var slots: [String: Slot] = [:]
    private(set) var order: [String] = []
    let optimizer: OptimizerSpec
    private(set) var optimizerSteps = 0

    static func key(_ path: String, _ name: String) -> String { path + ":" + name }

    /// Allocates and initializes every parameter: weights uniform in +-1/sqrt(fan_in) (PyTorch's
    /// default for conv and linear), batch-norm scale 1 and shift 0, running variance 1, learnable
    /// scales and alphas at the profile's initial values.
    init(profile: Profile, timesteps: Int, heap: TensorHeap<T>, seed: UInt64) throws {
        optimizer = profile.optimizer
        var random = SeededRandom(seed: seed)
        let alphaInit = profile.trevsnnNetwork?.alphaInit ?? 0.5
        let stateNames = profile.optimizer.stateNames
        for entry in ParameterLayout.entries(of: profile, timesteps: timesteps) {
            let parameter = entry.parameter
            let value = try heap.allocate(entry.path, parameter.name, timestep: nil, role: .parameter, shape: parameter.shape)
            let count = parameter.shape.elementCount
            Self.initialize(heap.values(value), count: count, entry: entry, alphaInit: alphaInit, random: &random)
            var gradient: Int?
            var states: [Int] = []
            if parameter.trainable {
                gradient = try heap.allocate(entry.path, parameter.name + ".grad", timestep: nil, role: .gradient,
                                             shape: parameter.shape, zeroed: true)
                for state in stateNames {
                    states.append(try heap.allocate(entry.path, parameter.name + "." + state, timestep: nil, role: .optimizerState,
                                                    shape: parameter.shape, zeroed: true))
                }
            }
            let key = Self.key(entry.path, parameter.name)
            slots[key] = Slot(value: value, gradient: gradient, states: states, count: count)
            order.append(key)
        }
    }

    static func initialize(_ values: UnsafeMutablePointer<T>, count: Int, entry: ParameterLayout.Entry, alphaInit: Double,
                           random: inout SeededRandom) {
        let name = entry.parameter.name
        switch (entry.layer?.kind, name) {
        case (.conv(let conv)?, _):
            let bound = 1 / Double(conv.inChannels / conv.groups * conv.kernel * conv.kernel).squareRoot()
            for i in 0..<count { values[i] = T(random.uniform(-bound, bound)) }
        case (.convTranspose(let conv)?, _):
            // PyTorch's ConvTranspose2d: fan_in from weight.size(1) * k * k, i.e. the output channels.
            let bound = 1 / Double(conv.outChannels * conv.kernel * conv.kernel).squareRoot()
            for i in 0..<count { values[i] = T(random.uniform(-bound, bound)) }
        case (.conv1d(let conv)?, _):
            let bound = 1 / Double(conv.inChannels / conv.groups * conv.kernel).squareRoot()
            for i in 0..<count { values[i] = T(random.uniform(-bound, bound)) }
        case (.linear(let linear)?, _):
            let bound = 1 / Double(linear.inFeatures).squareRoot()
            for i in 0..<count { values[i] = T(random.uniform(-bound, bound)) }
        case (.batchNorm?, "weight"), (.batchNorm?, "runningVar"), (.layerNorm?, "weight"):
            for i in 0..<count { values[i] = 1 }
        case (.scale(let initial)?, _):
            for i in 0..<count { values[i] = T(initial) }
        case (nil, "alpha"):
            for i in 0..<count { values[i] = T(alphaInit) }
        case (.neuron(let neuron)?, "w"):
            // SpikingJelly's ParametricLIFNode: w = -ln(tau - 1), so that sigmoid(w) = 1 / tau.
            for i in 0..<count { values[i] = T(-Foundation.log(neuron.tau - 1)) }
        default:
            for i in 0..<count { values[i] = 0 }
        }
    }

    func slot(_ path: String, _ name: String) -> Slot {
        guard let slot = slots[Self.key(path, name)] else { preconditionFailure("no parameter \(name) in \(path)") }
        return slot
    }

    func zeroGradients(heap: TensorHeap<T>) {
        for slot in slots.values {
            if let gradient = slot.gradient { heap.values(gradient).update(repeating: 0, count: slot.count) }
        }
    }

    /// One optimizer update of every trainable parameter, in place.
    func step(heap: TensorHeap<T>) {
        optimizerSteps += 1
        for key in order {
            let slot = slots[key]!
            guard let gradient = slot.gradient else { continue }
            switch optimizer.type {
            case .sgd:
                sgdStep(optimizer, count: slot.count, parameter: heap.values(slot.value), gradient: heap.values(gradient),
                        momentumBuffer: slot.states.first.map { heap.values($0) })
            case .adam:
                adamStep(optimizer, step: optimizerSteps, count: slot.count, parameter: heap.values(slot.value),
                         gradient: heap.values(gradient), firstMoment: heap.values(slot.states[0]), secondMoment: heap.values(slot.states[1]))
            }
        }
    }
}
