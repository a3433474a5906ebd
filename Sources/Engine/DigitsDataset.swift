import CZlib
import Foundation

/// The UCI handwritten digits (1,797 8x8 grey images, labels 0...9) bundled as `data/digits.csv.gz`
/// (attribution in `data/README.md`): each CSV line is 64 pixel values in 0...16, row-major, then
/// the label. Images come out as Float [N, 1, 8, 8] scaled to 0...1.
public struct DigitsDataset: Sendable {
    public static let channels = 1
    public static let height = 8
    public static let width = 8
    public static let pixelsPerImage = 64
    public static let classes = 10
    /// The largest pixel value in the file (4x4 blocks of 32x32 bitmaps counted, so 0...16).
    static let maxPixelValue: Float = 16

    /// [count, 1, 8, 8], values in 0...1.
    public var images: [Float]
    public var labels: [Int32]

    public var count: Int { labels.count }

    public init(images: [Float], labels: [Int32]) {
        precondition(images.count == labels.count * Self.pixelsPerImage)
        self.images = images
        self.labels = labels
    }

    /// `data/digits.csv.gz` in this checkout, found from this source file's place in the repository.
    public static var bundledPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("data/digits.csv.gz").path
    }

    public static func loadBundled() throws -> DigitsDataset { try load(path: bundledPath) }

    /// Reads a gzipped (or plain) CSV of 64 pixels and a label per line.
    public static func load(path: String) throws -> DigitsDataset {
        let text = try readGzip(path: path)
        var images: [Float] = []
        var labels: [Int32] = []
        images.reserveCapacity(1797 * pixelsPerImage)
        labels.reserveCapacity(1797)
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let fields = trimmed.split(separator: ",")
            guard fields.count == pixelsPerImage + 1 else {
                throw DigitsDatasetError.malformedLine(path: path, line: lineNumber,
                                                       reason: "\(fields.count) fields, expected \(pixelsPerImage + 1)")
            }
            for (column, field) in fields.enumerated() {
                guard let value = Int(field.trimmingCharacters(in: .whitespaces)) else {
                    throw DigitsDatasetError.malformedLine(path: path, line: lineNumber, reason: "field \(column + 1) '\(field)' is not an integer")
                }
                if column < pixelsPerImage {
                    guard (0...Int(maxPixelValue)).contains(value) else {
                        throw DigitsDatasetError.malformedLine(path: path, line: lineNumber, reason: "pixel \(column + 1) = \(value) outside 0...16")
                    }
                    images.append(Float(value) / maxPixelValue)
                } else {
                    guard (0..<classes).contains(value) else {
                        throw DigitsDatasetError.malformedLine(path: path, line: lineNumber, reason: "label \(value) outside 0...9")
                    }
                    labels.append(Int32(value))
                }
            }
        }
        return DigitsDataset(images: images, labels: labels)
    }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> DigitsDataset {
        var subImages: [Float] = []
        subImages.reserveCapacity(indices.count * Self.pixelsPerImage)
        for i in indices { subImages += images[i * Self.pixelsPerImage..<(i + 1) * Self.pixelsPerImage] }
        return DigitsDataset(images: subImages, labels: indices.map { labels[$0] })
    }

    /// A seeded shuffle then a cut: the first round(count * trainFraction) shuffled samples train.
    /// The same seed gives the same split on every run.
    public func split(trainFraction: Double = 0.8, seed: UInt64) -> (train: DigitsDataset, test: DigitsDataset) {
        precondition(trainFraction > 0 && trainFraction < 1)
        var order = Array(0..<count)
        var rng = SeededRandom(seed: seed)
        rng.shuffle(&order)
        let trainCount = Int((Double(count) * trainFraction).rounded())
        return (subset(Array(order[..<trainCount])), subset(Array(order[trainCount...])))
    }

    /// The whole file through zlib's gz reader (which also passes plain files through unchanged).
    static func readGzip(path: String) throws -> String {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw DigitsDatasetError.isAFolder(path: path)
        }
        guard let file = gzopen(path, "rb") else { throw DigitsDatasetError.cannotOpen(path: path) }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if read < 0 { throw DigitsDatasetError.cannotDecompress(path: path) }
            if read == 0 { break }
            bytes += chunk[0..<Int(read)]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

public enum DigitsDatasetError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String)
    case isAFolder(path: String)
    case cannotDecompress(path: String)
    case malformedLine(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path): return "\(path): cannot open the digits data set (no such file, or not readable)"
        case .isAFolder(let path): return "\(path): is a folder, not a digits data set file"
        case .cannotDecompress(let path): return "\(path): not a readable gzip file"
        case .malformedLine(let path, let line, let reason): return "\(path):\(line): \(reason)"
        }
    }
}
