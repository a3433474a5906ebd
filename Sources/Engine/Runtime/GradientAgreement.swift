import Allocator
import Planner
import Profiles

/// How closely a strategy's gradients match those it must equal, on one batch and one seed:
/// checkpoint, revsnn and trevsnn against bptt on the same network; sltt against bptt with the
/// temporal path cut (the gradient SLTT is defined to compute).
public struct GradientAgreement: Sendable {
    public var strategy: Strategy
    /// "bptt" or "bptt, temporal path cut"; nil for bptt itself.
    public var reference: String?
    /// Largest |difference| of any entry, relative to its tensor's largest |gradient|.
    public var maxRelativeDifference: Double?

    public static func measure(profile: Profile, strategies: [Strategy], batch: Int? = nil, timesteps: Int? = nil, segment: Int? = nil,
                               seed: UInt64 = 1) throws -> [GradientAgreement] {
        func gradients(_ strategy: Strategy, pathCut: Bool = false) throws -> [String: [Float]] {
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: batch, timesteps: timesteps, segment: segment,
                                             allocator: CountingAllocator(rounding: .exact), seed: seed)
            trainer.bpttWithTemporalPathCut = pathCut
            var random = SeededRandom(seed: seed &+ 1)
            let images = (0..<trainer.imageValues).map { _ in Float(random.uniform(0, 1)) }
            let labels = (0..<trainer.batch).map { _ in Int32(random.nextInt(below: profile.classes)) }
            _ = try trainer.lossAndGradients(images: images, labels: labels)
            var out: [String: [Float]] = [:]
            for (path, name) in trainer.trainableParameters { out[path + ":" + name] = trainer.gradient(path, name) }
            return out
        }
        let bptt = try gradients(.bptt)
        return try strategies.map { strategy in
            switch strategy {
            case .bptt:
                return GradientAgreement(strategy: strategy, reference: nil, maxRelativeDifference: nil)
            case .sltt:
                let cut = try gradients(.bptt, pathCut: true)
                return GradientAgreement(strategy: strategy, reference: "bptt, temporal path cut",
                                         maxRelativeDifference: maxRelativeDifference(try gradients(.sltt), cut))
            case .checkpoint, .revsnn, .trevsnn:
                return GradientAgreement(strategy: strategy, reference: "bptt",
                                         maxRelativeDifference: maxRelativeDifference(try gradients(strategy), bptt))
            }
        }
    }

    /// Per tensor, the largest entry difference over the tensor's largest magnitude (at least 1e-6,
    /// so that gradients that are zero in exact arithmetic do not turn rounding into large ratios).
    public static func maxRelativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        var worst = 0.0
        for (key, x) in a {
            guard let y = b[key], y.count == x.count else { return .infinity }
            let scale = max(Double(x.map(abs).max() ?? 0), Double(y.map(abs).max() ?? 0), 1e-6)
            for (u, v) in zip(x, y) { worst = max(worst, Double(abs(u - v)) / scale) }
        }
        return worst
    }
}
