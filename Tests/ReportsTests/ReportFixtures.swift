import Foundation
import MemoryModel
import Planner
import Profiles
import Reports

/// Small, fixed inputs for the report tests: every byte and millisecond written out.
enum ReportFixtures {
    typealias E = Timeline.Event

    /// A layer name with every character that needs escaping in XML, HTML and Markdown.
    static let awkwardLayer = "stage<1>/conv&\"bn\"|x"

    /// setup, forward t=0, forward t=1, backward t=1, backward t=0, optimizer step; with a
    /// workspace buffer in forward t=0 that the plan leaves out.
    static func events(measured: Bool) -> [E] {
        var rows: [(LifetimeEvent.Kind, Int, Int, TensorRole, TrainingPhase, String, String, Int?, Double)] = [
            (.allocate, 0, 1152, .parameter, .setup, awkwardLayer, "weight", nil, 0.0),
            (.allocate, 1, 4096, .parameter, .setup, "fc", "weight", nil, 0.05),
            (.allocate, 2, 512, .input, .setup, "input", "spikes", nil, 0.1),
            (.allocate, 3, 2048, .activation, .forward(timestep: 0), awkwardLayer, "out", 0, 0.4),
            (.allocate, 4, 1024, .neuronState, .forward(timestep: 0), "lif", "v", 0, 0.5),
            (.allocate, 5, 3000, .workspace, .forward(timestep: 0), awkwardLayer, "im2col", 0, 0.55),
            (.free, 5, 3000, .workspace, .forward(timestep: 0), awkwardLayer, "im2col", 0, 0.7),
            (.allocate, 6, 2048, .activation, .forward(timestep: 1), awkwardLayer, "out", 1, 1.0),
            (.allocate, 7, 1024, .neuronState, .forward(timestep: 1), "lif", "v", 1, 1.1),
            (.allocate, 8, 4096, .gradient, .backward(timestep: 1), "fc", "dweight", nil, 1.5),
            (.free, 6, 2048, .activation, .backward(timestep: 1), awkwardLayer, "out", 1, 1.75),
            (.free, 7, 1024, .neuronState, .backward(timestep: 1), "lif", "v", 1, 1.8),
            (.allocate, 9, 1152, .gradient, .backward(timestep: 0), awkwardLayer, "dweight", nil, 2.0),
            (.free, 3, 2048, .activation, .backward(timestep: 0), awkwardLayer, "out", 0, 2.25),
            (.free, 4, 1024, .neuronState, .backward(timestep: 0), "lif", "v", 0, 2.3),
            (.allocate, 10, 4096, .optimizerState, .optimizerStep, "fc", "momentum", nil, 2.6),
            (.free, 2, 512, .input, .optimizerStep, "input", "spikes", nil, 2.75),
        ]
        if !measured { rows.removeAll { $0.3 == .workspace } }
        return rows.map { row in
            E(kind: row.0, tensorID: row.1, bytes: row.2, role: row.3, phase: row.4, layerPath: row.5, name: row.6, timestep: row.7,
              timeMs: measured ? row.8 : nil)
        }
    }

    static let planned = Timeline(title: "fixed bptt (planned)", source: "planned", strategy: "bptt", events: events(measured: false))
    static let measured = Timeline(title: "fixed bptt (measured)", source: "measured", strategy: "bptt", events: events(measured: true))

    static let comparison = ComparisonReport(
        profile: "fixed", batch: 2, timesteps: 2, steps: 1,
        strategies: [
            .init(strategy: "bptt", segment: nil, predictedPeakBytes: 16256, measuredPeakBytes: 16256, predictedAllocatedPeakBytes: 16384,
                  measuredAllocatedPeakBytes: 16384, jemallocPeakBytes: 20480, measuredHeldForBackwardBytes: 4096, predictedHeldForBackwardBytes: 4096,
                  stepMs: 12.5, forwardFlops: 1000, recomputeFlops: 0, backwardFlops: 2000, gradientMaxRelDiff: nil,
                  gradientReference: nil, loss: 1.25, firstDifference: nil),
            .init(strategy: "checkpoint", segment: 1, predictedPeakBytes: 14208, measuredPeakBytes: 15232, predictedAllocatedPeakBytes: 14336,
                  measuredAllocatedPeakBytes: 15360, jemallocPeakBytes: 18432, measuredHeldForBackwardBytes: 2048, predictedHeldForBackwardBytes: 2048,
                  stepMs: 15, forwardFlops: 1000, recomputeFlops: 500, backwardFlops: 2000, gradientMaxRelDiff: 0.5,
                  gradientReference: "bptt", loss: 1.25, firstDifference: "event 5: measured allocates conv:im2col, the plan does not"),
        ],
        notApplicable: [.init(strategy: "trevsnn", reason: "not a T-RevSNN network")])

    static let sweep = SweepReport(
        axis: "timesteps", profile: "fixed", batch: 2,
        strategies: [
            .init(strategy: "bptt", points: [4, 8, 16, 32].map { t in
                .init(value: t, heldForBackwardBytes: 3072 * t, measuredHeldForBackwardBytes: t == 32 ? nil : 3072 * t, peakBytes: 3072 * t + 9000)
            }),
            .init(strategy: "checkpoint", points: [4, 8, 16, 32].map { t in
                let k = Int(Double(t).squareRoot().rounded())
                return .init(value: t, heldForBackwardBytes: 1024 * (t / k + 2 * k), measuredHeldForBackwardBytes: nil, peakBytes: 1024 * (t / k + 2 * k) + 9000)
            }),
            .init(strategy: "sltt", points: [4, 8, 16, 32].map { t in
                .init(value: t, heldForBackwardBytes: 3072, measuredHeldForBackwardBytes: nil, peakBytes: 12072)
            }),
        ],
        notApplicable: [.init(strategy: "revsnn", reason: "no reversible stages")])

    /// The planner tests' tiny profile: conv 1->2 on 1x4x4, LIF, flatten, linear 32->3; T = 2, batch 2.
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

    static func tinyPlan(_ strategy: Strategy, timesteps: Int? = nil) throws -> MemoryPlan {
        try Planner.plan(try ProfileLoader.parse(yaml: tinyYAML, file: "tiny.yaml"), strategy: strategy,
                         options: .init(timesteps: timesteps))
    }

    /// A stand-in measurement of a plan: its events at invented, evenly growing times.
    static func fakeMeasurement(of plan: Timeline, millisecondsPerEvent: Double = 0.01) -> Timeline {
        var events = plan.events
        for index in events.indices { events[index].timeMs = Double(index) * millisecondsPerEvent }
        return Timeline(title: plan.title.replacingOccurrences(of: "(planned)", with: "(measured)"), source: "measured",
                        strategy: plan.strategy, events: events)
    }
}
