// Times a whole plan of every bundled profile under every strategy, max-batch included; then what
// `snnmem check --runtime all` does in one process: load every profile (YAML, shapes, SHA-256)
// and plan it on every runtime under every strategy that applies, each part timed on its own.
// Usage: planner-benchmark [PROFILES_FOLDER] [REPEATS]
import Foundation
import MemoryModel
import Planner
import Profiles

let folder = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "profiles"
let repeats = CommandLine.arguments.count > 2 ? max(1, Int(CommandLine.arguments[2]) ?? 5) : 5
let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
guard !files.isEmpty else {
    FileHandle.standardError.write(Data("no profiles in \(folder)\n".utf8))
    exit(2)
}

func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

let budget = 24 << 30
print("profile            strategies  plan ms  max-batch ms  plans in max-batch  events")
var totalPlan = 0.0, totalMaxBatch = 0.0
for file in files {
    let profile = try ProfileLoader.load(path: folder + "/" + file)
    let strategies = Strategy.allCases.filter { $0.notApplicableReason(profile) == nil }
    var planTimes: [Double] = [], maxTimes: [Double] = []
    var events = 0, plansEvaluated = 0
    for _ in 0..<repeats {
        planTimes.append(try milliseconds {
            events = 0
            for strategy in strategies { events += try Planner.plan(profile, strategy: strategy).events.count }
        })
        maxTimes.append(try milliseconds {
            plansEvaluated = 0
            for strategy in strategies {
                plansEvaluated += try MaxBatch.find(profile, strategy: strategy, budgetBytes: budget).plansEvaluated
            }
        })
    }
    totalPlan += median(planTimes)
    totalMaxBatch += median(maxTimes)
    let name = file.replacingOccurrences(of: ".yaml", with: "")
    print(name.padding(toLength: 19, withPad: " ", startingAt: 0)
          + String(strategies.count).leftPadded(10)
          + ByteCount.formatFixed(median(planTimes), digits: 2).leftPadded(9)
          + ByteCount.formatFixed(median(maxTimes), digits: 1).leftPadded(14)
          + String(plansEvaluated).leftPadded(20) + String(events).leftPadded(8))
}
print("all profiles: plan \(ByteCount.formatFixed(totalPlan, digits: 1)) ms, max-batch (24 GiB) \(ByteCount.formatFixed(totalMaxBatch, digits: 1)) ms (median of \(repeats))")

// `check`'s work, part by part: the median over repeats of each part's total.
var loadTimes: [Double] = []
var runtimeTimes: [Runtime: [Double]] = [:]
var checkPlans = 0
for _ in 0..<repeats {
    var profiles: [Profile] = []
    loadTimes.append(try milliseconds {
        profiles = try files.map { try ProfileLoader.load(path: folder + "/" + $0) }
    })
    checkPlans = 0
    for runtime in Runtime.allCases {
        // As `check` rounds: the CUDA allocator's 512-byte blocks on pytorch-cuda, exact elsewhere.
        let options = Planner.Options(rounding: runtime == .pytorchCUDA ? .cuda : .exact, runtime: runtime)
        runtimeTimes[runtime, default: []].append(try milliseconds {
            for profile in profiles {
                for strategy in Strategy.allCases
                where strategy.notApplicableReason(profile) == nil && runtime.notModelledReason(strategy, profile) == nil {
                    // As `check`: the peak alone, without describing each tensor.
                    _ = try Planner.peak(profile, strategy: strategy, options: options)
                    checkPlans += 1
                }
            }
        })
    }
}
print("\ncheck's work in one process, on one thread (median of \(repeats)): \(checkPlans) peaks planned")
print("  load \(files.count) profiles (YAML, shapes, SHA-256)".padding(toLength: 44, withPad: " ", startingAt: 0)
      + ByteCount.formatFixed(median(loadTimes), digits: 2).leftPadded(8) + " ms")
var checkTotal = median(loadTimes)
for runtime in Runtime.allCases {
    let time = median(runtimeTimes[runtime] ?? [0])
    checkTotal += time
    print("  plan on \(runtime.rawValue)".padding(toLength: 44, withPad: " ", startingAt: 0)
          + ByteCount.formatFixed(time, digits: 2).leftPadded(8) + " ms")
}
print("  total".padding(toLength: 44, withPad: " ", startingAt: 0) + ByteCount.formatFixed(checkTotal, digits: 2).leftPadded(8) + " ms")

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
