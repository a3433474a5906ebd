import Allocator
import Engine
import Planner
import Profiles

extension Trainer {
    /// Every trainable parameter's gradient after a backward, keyed "path:name": what the schedule and
    /// finite-difference tests compare between runs.
    var parameterGradients: [String: [T]] {
        var gradients: [String: [T]] = [:]
        for (path, name) in trainableParameters { gradients[path + ":" + name] = gradient(path, name) }
        return gradients
    }
}

/// A Double trainer of `profile` (weights from seed 3, exact accounting) after one forward and backward
/// on `images`, with smoothed spikes where `smooth` (for finite differences): what the layer tests'
/// gradient and schedule-agreement checks start from.
func trainedForGradients(_ profile: Profile, _ strategy: Strategy, segment: Int? = nil, smooth: Bool,
                         images: [Double], labels: [Int32]) throws -> Trainer<Double> {
    let trainer = try Trainer<Double>(profile: profile, strategy: strategy, segment: segment,
                                      allocator: CountingAllocator(rounding: .exact), seed: 3)
    trainer.smoothSpikes = smooth
    _ = try trainer.lossAndGradients(images: images, labels: labels)
    return trainer
}
