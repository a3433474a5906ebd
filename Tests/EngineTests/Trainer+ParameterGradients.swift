import Engine

extension Trainer {
    /// Every trainable parameter's gradient after a backward, keyed "path:name": what the schedule and
    /// finite-difference tests compare between runs.
    var parameterGradients: [String: [T]] {
        var gradients: [String: [T]] = [:]
        for (path, name) in trainableParameters { gradients[path + ":" + name] = gradient(path, name) }
        return gradients
    }
}
