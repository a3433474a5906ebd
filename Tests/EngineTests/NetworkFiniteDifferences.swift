import Engine

/// The worst disagreement between a whole network's analytic parameter gradients and central finite
/// differences of its loss.
struct NetworkFiniteDifferences {
    /// Entries compared.
    var checked = 0
    /// |numeric - analytic| / max(1e-4, |numeric| + |analytic|), the largest seen. The 1e-4 floor keeps
    /// gradients that are zero in exact arithmetic (a conv bias followed by batch norm, where central
    /// differences leave about 1e-10) from dividing by 0.
    var worstRelative = 0.0
    /// Where the worst one was: "path:name[index] analytic A numeric N".
    var worst = ""
    /// The layer paths whose parameters were compared.
    var checkedPaths: Set<String> = []

    /// Perturbs about `samplesPerTensor` entries of each of `parameters` (by default every trainable one),
    /// spread over the tensor, by ±`epsilon` and compares (loss+ - loss-) / 2 epsilon with the gradient
    /// the unperturbed network gives. The trainer should run in Double with smoothed spikes, so that the
    /// network is differentiable; it is left with its original parameters and their gradients.
    init(_ trainer: Trainer<Double>, images: [Double], labels: [Int32], samplesPerTensor: Int,
         parameters: [(path: String, name: String)]? = nil, epsilon: Double = 1e-6) throws {
        _ = try trainer.lossAndGradients(images: images, labels: labels)
        for (path, name) in parameters ?? trainer.trainableParameters {
            let analytic = trainer.gradient(path, name)
            let original = trainer.parameter(path, name)
            for index in stride(from: 0, to: original.count, by: max(1, original.count / samplesPerTensor)) {
                var plus = original, minus = original
                plus[index] += epsilon
                minus[index] -= epsilon
                trainer.setParameter(path, name, plus)
                let lossPlus = try trainer.lossAndGradients(images: images, labels: labels).loss
                trainer.setParameter(path, name, minus)
                let lossMinus = try trainer.lossAndGradients(images: images, labels: labels).loss
                trainer.setParameter(path, name, original)
                let numeric = (lossPlus - lossMinus) / (2 * epsilon)
                let error = abs(numeric - analytic[index]) / max(1e-4, abs(numeric) + abs(analytic[index]))
                if error > worstRelative {
                    (worstRelative, worst) = (error, "\(path):\(name)[\(index)] analytic \(analytic[index]) numeric \(numeric)")
                }
                checked += 1
            }
            checkedPaths.insert(path)
            // The next parameter's analytic gradient is the unperturbed network's again.
            _ = try trainer.lossAndGradients(images: images, labels: labels)
        }
    }
}
