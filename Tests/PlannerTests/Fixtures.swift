import Foundation
import Planner
import Profiles

/// Profiles used by the planner tests.
enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func bundled(_ name: String) throws -> Profile {
        try ProfileLoader.load(path: repositoryRoot.appendingPathComponent("profiles/\(name).yaml").path)
    }

    static let bundledNames = ["cifarnet", "digits", "vgg11", "vgg13", "resnet19", "resnet18", "sew-resnet34",
                               "revsresnet21", "revsresnet37", "revvgg13", "trevsnn-cifar", "spiking-unet"]

    /// conv 1->2 (3x3, pad 1) on 1x4x4, LIF, flatten, linear 32->3; T = 2, batch 2.
    /// Small enough that every byte of its step is worked out by hand in PlannerByteCountTests.
    static let tinyYAML = """
    input: {channels: 1, height: 4, width: 4}
    timesteps: 2
    batch: 2
    optimizer: {type: sgd, momentum: 0.9}
    layers:
      - conv: {name: conv, out: 2, kernel: 3, padding: 1}
      - neuron: {name: lif}
      - flatten
      - linear: {name: fc, out: 3}
    """

    static func tiny() throws -> Profile { try ProfileLoader.parse(yaml: tinyYAML, file: "tiny.yaml") }

    static func plan(_ profile: Profile, _ strategy: Strategy, batch: Int? = nil, timesteps: Int? = nil,
                     segment: Int? = nil) throws -> MemoryPlan {
        try Planner.plan(profile, strategy: strategy, options: .init(batch: batch, timesteps: timesteps, segment: segment))
    }
}
