import Allocator
import Foundation
import MemoryModel
import Planner
import Profiles

/// A measured training run on random data: the engine's figures beside the planner's.
public struct MemoryRunResult: Sendable {
    public var strategy: Strategy
    public var batch: Int
    public var timesteps: Int
    public var segment: Int?
    /// The planner's peak in requested bytes, and in jemalloc's size classes.
    public var predictedPeakBytes: Int
    public var predictedAllocatedPeakBytes: Int
    public var predictedActivationBytes: Int
    /// The recorder's peak of tracked bytes: as requested, and as jemalloc handed them out.
    public var measuredPeakBytes: Int
    public var measuredAllocatedPeakBytes: Int
    /// Peak of the kept-for-backward bytes, measured on the tracked trace (the planner says which tensors those are).
    public var measuredActivationBytes: Int
    /// jemalloc's own view: tracked bytes live when its thread peak was reset, plus the peak growth since.
    public var jemallocPeakBytes: Int
    public var stepMs: [Double]
    public var loss: [Double]
    public var outOfMemory: OutOfMemory?
    /// The first step's events against the plan's (nil difference: identical).
    public var comparison: TraceComparison?
    public var trace: MemoryTrace
    /// Bytes of the convs' spike-products weight panels (`SpikePanel`): tracked tensors kept for the
    /// run, in both the predicted and the measured peak.
    public var spikePanelBytes: Int

    /// What jemalloc saw beyond the tracked tensors: the engine's own small arrays, the recorder's
    /// event list, Swift runtime metadata. Reported so the gap between the two is explained.
    public var untrackedBytes: Int { jemallocPeakBytes - measuredAllocatedPeakBytes }
}

public enum MemoryRun {
    /// The most allocation events one run records (about 1.5 GiB of `TraceEvent`s): every step's
    /// events are kept for the trace, so the step count is bounded by what that costs.
    public static let maxRecordedEvents = 16_000_000

    /// The most steps a run of this plan may take.
    public static func largestStepCount(eventsPerStep: Int) -> Int { max(1, maxRecordedEvents / max(1, eventsPerStep) - 1) }

    /// Trains `steps` steps of random data through jemalloc and measures every allocation.
    /// With `memoryLimit`, an allocation past it stops the run: `outOfMemory` says where.
    public static func measure(profile: Profile, strategy: Strategy, batch: Int? = nil, timesteps: Int? = nil, segment: Int? = nil,
                               steps: Int = 1, memoryLimit: Int? = nil, seed: UInt64 = 1,
                               progress: ((Int, Int, StepResult) -> Void)? = nil) throws -> MemoryRunResult {
        let options = Planner.Options(batch: batch, timesteps: timesteps, segment: segment)
        let plan = try Planner.plan(profile, strategy: strategy, options: options)
        var rounded = options
        rounded.rounding = .jemalloc
        let allocatedPlan = try Planner.plan(profile, strategy: strategy, options: rounded)
        let largestSteps = largestStepCount(eventsPerStep: plan.events.count)
        guard steps <= largestSteps else {
            throw TrainerError.tooManySteps(steps: steps, eventsPerStep: plan.events.count, largestSteps: largestSteps)
        }
        if memoryLimit == nil {
            let machineBytes = Int(clamping: ProcessInfo.processInfo.physicalMemory)
            if allocatedPlan.peakBytes > machineBytes {
                let largest = (try? MaxBatch.find(profile, strategy: strategy, budgetBytes: machineBytes, options: rounded).maxBatch) ?? 0
                throw TrainerError.exceedsMachineMemory(plannedPeakBytes: allocatedPlan.peakBytes, machineBytes: machineBytes,
                                                        largestBatch: largest)
            }
        }

        let recorder = AllocationRecorder(budgetBytes: memoryLimit)
        // Room for every event up front, so that recording allocates nothing while it measures.
        recorder.reserveCapacity(events: plan.events.count * (steps + 1) + 64, liveTensors: plan.tensors.count + 64)
        let allocator = try JemallocAllocator(recorder: recorder)
        try JemallocAllocator.retainFreedPages()
        let stats = try JemallocStats(resetsThreadPeakOnRead: false)
        var stepMs: [Double] = []
        var losses: [Double] = []
        var outOfMemory: OutOfMemory?
        var jemallocPeak = 0
        var firstStepEvents = 0
        let header = MemoryTrace.Header(toolVersion: EngineVersion.current, profile: profile.name,
                                        profileSHA256: profile.sourceSHA256, strategy: strategy.rawValue,
                                        batch: plan.batch, timesteps: plan.timesteps, allocatorName: allocator.name)
        do {
            let trainer = try Trainer<Float>(profile: profile, strategy: strategy, batch: plan.batch, timesteps: plan.timesteps,
                                             segment: plan.segment, allocator: allocator, seed: seed)
            var random = SeededRandom(seed: seed &+ 1)
            var images = [Float](repeating: 0, count: trainer.imageValues)
            var labels = [Int32](repeating: 0, count: trainer.batch)
            for step in 0..<steps {
                for i in images.indices { images[i] = Float(random.uniform(0, 1)) }
                for i in labels.indices { labels[i] = Int32(random.nextInt(below: profile.classes)) }
                // The allocator samples jemalloc (and resets its thread peak) at every phase boundary;
                // the step's peak is the highest of (thread live bytes at a reset + peak growth after it).
                let trackedAtStart = recorder.allocated.liveBytes
                let threadLiveAtStart = Int(stats.threadCounters.allocatedBytes) - Int(stats.threadCounters.deallocatedBytes)
                let firstSample = recorder.samples.count
                try stats.resetThreadPeak()
                let result = try trainer.step(images: images, labels: labels)
                let finalGrowth = Int(try stats.readThreadPeak())
                var threadLive = threadLiveAtStart
                var threadPeak = threadLiveAtStart
                for sample in recorder.samples[firstSample...] {
                    threadPeak = max(threadPeak, threadLive + Int(sample.snapshot.threadPeakBytes))
                    threadLive = Int(sample.snapshot.threadAllocatedBytes) - Int(sample.snapshot.threadDeallocatedBytes)
                }
                threadPeak = max(threadPeak, threadLive + finalGrowth)
                jemallocPeak = max(jemallocPeak, trackedAtStart + threadPeak - threadLiveAtStart)
                if step == 0 { firstStepEvents = recorder.events.count }
                _ = recorder.endStep()
                stepMs.append(result.stepMs)
                losses.append(result.loss)
                progress?(step + 1, steps, result)
            }
        } catch AllocatorError.outOfMemory(let refused) {
            outOfMemory = refused
        }
        let events = recorder.events
        let comparison = outOfMemory == nil ? TraceComparison.compare(plan: plan, measured: Array(events.prefix(firstStepEvents))) : nil
        return MemoryRunResult(
            strategy: strategy, batch: plan.batch, timesteps: plan.timesteps, segment: plan.segment,
            predictedPeakBytes: plan.peakBytes, predictedAllocatedPeakBytes: allocatedPlan.peakBytes,
            predictedActivationBytes: plan.activationBytes, measuredPeakBytes: recorder.requested.peakBytes,
            measuredAllocatedPeakBytes: recorder.allocated.peakBytes,
            measuredActivationBytes: measuredActivationBytes(plan: plan, events: Array(events.prefix(firstStepEvents))),
            jemallocPeakBytes: jemallocPeak, stepMs: stepMs, loss: losses, outOfMemory: outOfMemory, comparison: comparison,
            trace: recorder.trace(header: header),
            spikePanelBytes: plan.tensors.filter { $0.descriptor.name == SpikePanel.name }.reduce(0) { $0 + $1.descriptor.bytes })
    }

    /// The peak of live kept-for-backward bytes in the measured events, matching each measured
    /// tensor to the planned one at the same position (the comparison checks they are the same).
    static func measuredActivationBytes(plan: MemoryPlan, events: [TraceEvent]) -> Int {
        guard events.count == plan.events.count else { return 0 }
        var keptIDs = Set<Int>()
        var live = 0, peak = 0
        for (planned, measured) in zip(plan.events, events) {
            guard plan.tensors[planned.tensorID].keptForBackward else { continue }
            switch measured.kind {
            case .allocate:
                keptIDs.insert(measured.tensorID)
                live += measured.requestedBytes
            case .free:
                if keptIDs.remove(measured.tensorID) != nil { live -= measured.requestedBytes }
            case .outOfMemory:
                break
            }
            peak = max(peak, live)
        }
        return peak
    }
}

public enum EngineVersion {
    public static let current = "0.1.0"
}
