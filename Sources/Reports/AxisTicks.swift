import Foundation
import MemoryModel

/// Round tick values for chart axes: steps of 1, 2, 2.5 or 5 times a power of ten.
enum AxisTicks {
    static func niceStep(range: Double, targetCount: Int) -> Double {
        guard range > 0, targetCount > 0 else { return 1 }
        let raw = range / Double(targetCount)
        let magnitude = pow(10, floor(log10(raw)))
        let normalized = raw / magnitude
        let factor: Double = normalized <= 1 ? 1 : (normalized <= 2 ? 2 : (normalized <= 2.5 ? 2.5 : (normalized <= 5 ? 5 : 10)))
        return factor * magnitude
    }

    /// Decimals needed to print multiples of `step` exactly (0 for 5, 1 for 2.5, 2 for 0.25).
    static func digits(for step: Double) -> Int {
        var scaled = step
        for digits in 0...3 {
            if abs(scaled - scaled.rounded()) < 1e-9 * max(1, scaled) { return digits }
            scaled *= 10
        }
        return 3
    }

    /// Ticks 0, step, 2 step, ... up to `upTo` inclusive.
    static func ticks(step: Double, upTo top: Double) -> [Double] {
        guard step > 0 else { return [0] }
        let count = Int((top / step + 1e-9).rounded(.down))
        return (0...max(0, count)).map { Double($0) * step }
    }
}

/// A linear byte axis from zero in one binary unit (B, KiB, MiB, GiB, TiB) with round ticks.
struct ByteAxis {
    let unitName: String
    let unitBytes: Double
    let step: Double
    let digits: Int
    /// The top of the axis, in bytes: the first tick at or above the data's maximum plus headroom.
    let topBytes: Double
    /// Tick positions, in bytes.
    let ticks: [Double]

    init(maxBytes: Int, targetTicks: Int = 6) {
        let units: [(String, Double)] = [("B", 1), ("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("TiB", 1_099_511_627_776)]
        let peak = Double(max(1, maxBytes))
        let unit = units.last { peak >= $0.1 } ?? units[0]
        unitName = unit.0
        unitBytes = unit.1
        // 6% headroom keeps the peak marker and its label off the top edge.
        let inUnits = peak * 1.06 / unit.1
        var step = AxisTicks.niceStep(range: inUnits, targetCount: targetTicks)
        if unit.0 == "B" { step = max(1, step.rounded(.up)) }
        self.step = step
        digits = AxisTicks.digits(for: step)
        let top = (inUnits / step).rounded(.up) * step
        topBytes = top * unit.1
        ticks = AxisTicks.ticks(step: step, upTo: top).map { $0 * unit.1 }
    }

    func label(_ bytes: Double) -> String {
        bytes == 0 ? "0" : ByteCount.formatFixed(bytes / unitBytes, digits: digits) + " " + unitName
    }
}
