import Allocator
import ArgumentParser
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a profile on a real data set and report train and test accuracy per epoch.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var batchOption: BatchOption

    @Option(help: LogFormat.help)
    var format: LogFormat = .table

    @Option(help: "The data set: digits (the bundled UCI handwritten digits), or a path to a digits-format .csv or .csv.gz.")
    var data: String = "digits"

    @Option(help: "Epochs to train.")
    var epochs: Int = 10

    @Option(help: ArgumentHelp("The training strategy: \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")).", valueName: "strategy"))
    var strategy: String = "bptt"

    @Option(help: "Seed for weights, the split and the shuffles.")
    var seed: UInt64 = 1

    func validate() throws {
        guard Strategy(rawValue: strategy) != nil else {
            throw ValidationError("unknown strategy '\(strategy)': use one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
    }

    /// `digits` is looked for in ./data, then beside the checkout the executable was built in.
    func dataPath() throws -> String {
        guard data == "digits" else { return data }
        let candidates = ["data/digits.csv.gz", DigitsDataset.bundledPath]
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw CLIFailure.badInput("the bundled digits data set is not in ./data/digits.csv.gz; run from the snnmem checkout or pass --data PATH")
        }
        return found
    }

    func run() throws {
        let profile = try options.loadProfile()
        let strategy = Strategy(rawValue: strategy)!
        guard profile.inputShape == TensorShape([1, 8, 8]), profile.classes == DigitsDataset.classes, !profile.inputPerTimestep else {
            throw CLIFailure.badInput("\(profile.sourcePath): the digits are 1x8x8 images (one per sample, not per timestep) in 10 classes, but the profile takes "
                + "\(profile.inputShape)\(profile.inputPerTimestep ? " per timestep" : "") and gives \(profile.classes) classes; use profiles/digits.yaml or a profile with that input")
        }
        let dataset = try reportingErrors { try DigitsDataset.load(path: try dataPath()) }
        let (train, test) = dataset.split(trainFraction: 0.8, seed: seed)
        let recorder = AllocationRecorder(keepsEvents: false)
        let allocator = try reportingErrors { try JemallocAllocator(recorder: recorder, sampling: false) }
        try reportingErrors { try JemallocAllocator.retainFreedPages() }
        let trainer = try reportingErrors {
            try Trainer<Float>(profile: profile, strategy: strategy, batch: batchOption.batch, timesteps: options.timesteps, allocator: allocator, seed: seed)
        }
        let batch = trainer.batch
        let stepsPerEpoch = train.count / batch
        guard stepsPerEpoch > 0 else { throw CLIFailure.badInput("--batch \(batch) is larger than the \(train.count) training samples") }
        let table = format == .table
        if table {
            print("\(profile.name) \(strategy.rawValue) on digits: \(train.count) train, \(test.count) test, batch \(batch), T \(trainer.timesteps)")
            print("epoch   loss   train acc   test acc   seconds")
        }
        var random = SeededRandom(seed: seed &+ 17)
        var results: [TrainJSON.Epoch] = []
        let pixels = DigitsDataset.pixelsPerImage
        for epoch in 1...epochs {
            let start = DispatchTime.now().uptimeNanoseconds
            var order = Array(0..<train.count)
            random.shuffle(&order)
            let progress = ProgressBar(total: stepsPerEpoch, label: "epoch \(epoch)/\(epochs)")
            progress.begin("step 1")
            defer { progress.finish() }
            var lossSum = 0.0
            for step in 0..<stepsPerEpoch {
                let indices = order[step * batch..<(step + 1) * batch]
                var images: [Float] = []
                images.reserveCapacity(batch * pixels)
                for i in indices { images += train.images[i * pixels..<(i + 1) * pixels] }
                let result = try reportingErrors { try trainer.step(images: images, labels: indices.map { train.labels[$0] }) }
                lossSum += result.loss
                progress.update(step + 1, detail: "loss \(ByteCount.formatFixed(result.loss, digits: 3))")
            }
            progress.finish()
            let trainCorrect = try reportingErrors { try trainer.evaluate(images: train.images, labels: train.labels).correct }
            let testCorrect = try reportingErrors { try trainer.evaluate(images: test.images, labels: test.labels).correct }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let entry = TrainJSON.Epoch(epoch: epoch, loss: lossSum / Double(stepsPerEpoch),
                                        trainAccuracy: Double(trainCorrect) / Double(train.count),
                                        testAccuracy: Double(testCorrect) / Double(test.count), seconds: seconds)
            results.append(entry)
            if table {
                print(String(epoch).leftPadded(5) + ByteCount.formatFixed(entry.loss, digits: 3).leftPadded(7)
                      + (ByteCount.formatFixed(entry.trainAccuracy * 100, digits: 1) + "%").leftPadded(12)
                      + (ByteCount.formatFixed(entry.testAccuracy * 100, digits: 1) + "%").leftPadded(11)
                      + ByteCount.formatFixed(seconds, digits: 2).leftPadded(10))
            }
        }
        if !table {
            print(try Formatting.json(TrainJSON(profile: profile.name, strategy: strategy.rawValue, batch: batch, timesteps: trainer.timesteps,
                                                trainSamples: train.count, testSamples: test.count, epochs: results,
                                                peakTrackedBytes: recorder.requested.peakBytes), kind: .train))
        } else {
            print("peak tracked memory \(Formatting.bytes(recorder.requested.peakBytes))")
        }
    }
}

struct TrainJSON: Codable {
    struct Epoch: Codable {
        var epoch: Int
        var loss: Double
        var trainAccuracy: Double
        var testAccuracy: Double
        var seconds: Double
    }
    var profile: String
    var strategy: String
    var batch: Int
    var timesteps: Int
    var trainSamples: Int
    var testSamples: Int
    var epochs: [Epoch]
    var peakTrackedBytes: Int
}
