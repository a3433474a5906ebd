import Foundation
import Allocator
import MemoryModel

/// One training step measured in PyTorch by the project's Python package (`snnmem-torch
/// measure`, schema `snnmem-torch-measurement/1`): what autograd saved per layer, the ordered
/// CPU (or CUDA) allocation stream and the step's peak. Reports hold it against a plan of the
/// same profile, strategy, batch and T on the matching runtime.
public struct PyTorchMeasurement: Codable, Equatable, Sendable {
    public static let schema = "snnmem-torch-measurement/1"

    public struct LayerBytes: Codable, Equatable, Sendable {
        public var layer: String
        public var bytes: Int
    }

    /// One allocation (bytes > 0) or free (bytes < 0), with the address that pairs them.
    public struct Allocation: Codable, Equatable, Sendable {
        public var bytes: Int
        public var address: Int?
        public var op: String?
        public var phase: String
        public var layer: String?
        public var timestep: Int?
    }

    public struct CUDA: Codable, Equatable, Sendable {
        public var maxAllocatedBytes: Int
        public var maxReservedBytes: Int
    }

    public var schema: String
    public var profile: String
    public var profileFile: String
    public var runtime: String
    public var strategy: String
    public var segment: Int?
    public var batch: Int
    public var timesteps: Int
    /// float32, or the half type of autocast; absent in measurements from before mixed precision.
    public var dtype: String?
    /// SHA-256 of the profile file measured.
    public var profileSHA256: String?
    /// `torch.get_num_threads()` on the CPU (absent before it was written: the fixtures' 2).
    public var threads: Int?
    public var torch: String?
    public var spikingjelly: String?
    public var savedBytes: Int
    public var savedTimestep: Int?
    public var savedByLayer: [LayerBytes]
    public var liveAtStartBytes: Int
    public var stepPeakBytes: Int
    public var allocations: [Allocation]?
    public var cuda: CUDA?

    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// Whether a JSON file is such a measurement (and not an engine trace).
    public static func isMeasurement(_ data: Data) -> Bool {
        struct Schema: Decodable { var schema: String? }
        return (try? JSONDecoder().decode(Schema.self, from: data))?.schema == schema
    }

    public static func read(path: String) throws -> PyTorchMeasurement {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReadError(path: path, reason: "no such file; write one with `snnmem-torch measure PROFILE -o \(path)`")
        }
        guard isMeasurement(data) else {
            throw ReadError(path: path, reason: "not an snnmem-torch measurement (schema \(schema)); write one with `snnmem-torch measure`")
        }
        let measurement: PyTorchMeasurement
        do {
            measurement = try JSONDecoder().decode(PyTorchMeasurement.self, from: data)
        } catch {
            throw ReadError(path: path, reason: "the measurement is damaged (\(error)); measure it again")
        }
        if let problem = measurement.firstProblem() {
            throw ReadError(path: path, reason: "\(problem.field) \(problem.reason); the measurement is damaged or was edited, measure it again")
        }
        return measurement
    }

    /// The measured stream as a timeline: the bytes live at the start as one set-up allocation,
    /// then every allocation and free, frees matched to allocations by address.
    public func timeline() -> Timeline? {
        guard let allocations else { return nil }
        var events = [Timeline.Event(kind: .allocate, tensorID: 0, bytes: liveAtStartBytes, role: .parameter, phase: .setup,
                                     layerPath: "step start", name: "parameters, optimizer state, batch", timestep: nil, timeMs: nil)]
        var live: [Int: [Int]] = [:]  // address -> tensor ids allocated there, innermost last
        var allocationIndex: [Int: Int] = [:]
        var nextID = 1
        for a in allocations {
            let phase = Self.phase(a.phase, timestep: a.timestep)
            let role: TensorRole
            switch phase {
            case .forward, .recompute: role = .activation
            case .optimizerStep: role = .gradient
            default: role = .workspace
            }
            if a.bytes > 0 {
                let id = nextID
                nextID += 1
                if let address = a.address { live[address, default: []].append(id) }
                allocationIndex[id] = events.count
                events.append(.init(kind: .allocate, tensorID: id, bytes: a.bytes, role: role, phase: phase, layerPath: a.layer ?? "-",
                                    name: a.op ?? "", timestep: a.timestep, timeMs: nil))
            } else if a.bytes < 0, let address = a.address, let id = live[address]?.popLast() {
                let allocated = allocationIndex[id].map { events[$0] }
                events.append(.init(kind: .free, tensorID: id, bytes: -a.bytes, role: allocated?.role ?? role, phase: phase,
                                    layerPath: a.layer ?? allocated?.layerPath ?? "-", name: allocated?.name ?? "", timestep: a.timestep,
                                    timeMs: nil))
            }
        }
        return Timeline(title: "\(profile) \(strategy) (PyTorch, measured)", source: "measured", strategy: strategy, events: events)
    }

    static func phase(_ name: String, timestep: Int?) -> TrainingPhase {
        switch name {
        case "forward": return .forward(timestep: timestep)
        case "recompute": return .recompute(timestep: timestep)
        case "backward": return .backward(timestep: timestep)
        case "optimizer", "reset": return .optimizerStep
        default: return .setup
        }
    }
}
