// Times a whole plan of every bundled profile under every strategy, max-batch included; then what
// `snnmem check --runtime all` does in one process: load every profile (YAML, shapes, SHA-256)
// and plan it on every runtime under every strategy that applies, each part timed on its own.
// Usage: planner-benchmark [PROFILES_FOLDER] [REPEATS] [--check-only]
import Foundation
import MemoryModel
import Planner
import Profiles

let checkOnly = CommandLine.arguments.contains("--check-only")
let positional = CommandLine.arguments.dropFirst().filter { $0 != "--check-only" }
let folder = positional.first ?? "profiles"
let repeats = positional.count > 1 ? max(1, Int(positional[positional.startIndex + 1]) ?? 5) : 5
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
if !checkOnly { print("profile            strategies  plan ms  max-batch ms  plans in max-batch  events") }
var totalPlan = 0.0, totalMaxBatch = 0.0
for file in files where !checkOnly {
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
if !checkOnly {
    print("all profiles: plan \(ByteCount.formatFixed(totalPlan, digits: 1)) ms, max-batch (24 GiB) \(ByteCount.formatFixed(totalMaxBatch, digits: 1)) ms (median of \(repeats))")
}

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
                let strategies = Strategy.allCases.filter {
                    $0.notApplicableReason(profile) == nil && runtime.notModelledReason($0, profile) == nil
                }
                // As `check`: the peaks alone, a profile's strategies together.
                checkPlans += try Planner.peaks(profile, strategies: strategies, options: options).count
            }
        })
    }
}
print("\(checkOnly ? "" : "\n")check's work in one process, on one thread (median of \(repeats)): \(checkPlans) peaks planned")
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
