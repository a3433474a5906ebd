import MemoryModel

/// One x position of a timeline chart: events `first..<end` drawn with the live bytes after
/// event `index`, the moment of that range with the most bytes live.
struct TimelineSample: Equatable {
    var first: Int
    var end: Int
    var index: Int
    var roles: RoleBytes
}

enum TimelineSampling {
    /// The chart's x positions. Up to `maxPositions` events are drawn one by one; a longer step is
    /// cut into `maxPositions` equal buckets, each drawn at its highest moment, so downsampling
    /// never hides a peak (averaging or striding would).
    static func samples(_ series: [RoleBytes], maxPositions: Int) -> [TimelineSample] {
        let count = series.count
        guard count > maxPositions, maxPositions > 0 else {
            return series.enumerated().map { TimelineSample(first: $0.offset, end: $0.offset + 1, index: $0.offset, roles: $0.element) }
        }
        return (0..<maxPositions).map { bucket in
            let first = bucket * count / maxPositions, end = (bucket + 1) * count / maxPositions
            var best = first, bestTotal = series[first].total
            for index in (first + 1)..<max(first + 1, end) where series[index].total > bestTotal {
                best = index
                bestTotal = series[index].total
            }
            return TimelineSample(first: first, end: end, index: best, roles: series[best])
        }
    }
}
