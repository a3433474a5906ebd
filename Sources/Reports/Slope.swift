import Foundation

/// Growth exponents: the least-squares slope of log(y) against log(x). About 1 for memory that
/// grows linearly with T, about 0 for memory that does not grow.
public enum Slope {
    public static func logLog(_ points: [(x: Double, y: Double)]) -> Double? {
        let usable = points.filter { $0.x > 0 && $0.y > 0 }
        guard usable.count >= 2 else { return nil }
        let xs = usable.map { log($0.x) }, ys = usable.map { log($0.y) }
        let mx = xs.reduce(0, +) / Double(xs.count), my = ys.reduce(0, +) / Double(ys.count)
        let sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        guard sxx > 0 else { return nil }
        let sxy = zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        return sxy / sxx
    }
}
