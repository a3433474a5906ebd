/// Products and sums of user-given sizes that report overflow instead of trapping. They are used
/// where sizes are read (profile, options, traces, baselines); past that boundary the sizes are
/// known to be small enough that plain arithmetic cannot overflow (see `PlanningLimits`).
public enum CheckedArithmetic {
    /// a x b, or nil if it does not fit an Int.
    public static func product(_ a: Int, _ b: Int) -> Int? {
        let (value, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : value
    }

    /// The product of all factors, or nil if any partial product overflows.
    public static func product(_ factors: [Int]) -> Int? {
        var total = 1
        for factor in factors {
            guard let next = product(total, factor) else { return nil }
            total = next
        }
        return total
    }

    /// a + b, or nil if it does not fit an Int.
    public static func sum(_ a: Int, _ b: Int) -> Int? {
        let (value, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : value
    }
}

extension TensorShape {
    /// `elementCount`, or nil where the dimensions' product does not fit an Int.
    public var checkedElementCount: Int? { CheckedArithmetic.product(dims) }
}
