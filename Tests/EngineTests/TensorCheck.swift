import Engine
import XCTest

/// llm.c's `check_tensor`: compares a computed tensor with a reference, prints the maximum absolute
/// and relative errors, and on failure the first differing values.
/// An entry passes when |computed - reference| <= atol + rtol * |reference|. The relative error is
/// reported over entries whose magnitude is at least `atol` and at least 1e-3 of the tensor's largest
/// (a finite difference has an absolute error of about 1e-10, which says nothing relative about an
/// entry of 1e-7; such entries are still held to the atol + rtol bound).
@discardableResult
func checkTensor(_ name: String, _ computed: [Double], _ reference: [Double], rtol: Double, atol: Double,
                 file: StaticString = #filePath, line: UInt = #line) -> (maxAbs: Double, maxRel: Double) {
    XCTAssertEqual(computed.count, reference.count, "\(name): sizes differ", file: file, line: line)
    var maxAbs = 0.0, maxRel = 0.0
    var failures: [String] = []
    let largest = zip(computed, reference).map { max(abs($0), abs($1)) }.max() ?? 0
    let relativeFloor = max(atol, 1e-3 * largest)
    for i in 0..<min(computed.count, reference.count) {
        let a = computed[i], b = reference[i]
        let diff = abs(a - b)
        maxAbs = max(maxAbs, diff.isNaN ? .infinity : diff)
        let magnitude = max(abs(a), abs(b))
        if magnitude >= relativeFloor { maxRel = max(maxRel, diff / magnitude) }
        if !(diff <= atol + rtol * abs(b)) && failures.count < 5 {
            failures.append("  [\(i)] computed \(a) reference \(b) diff \(diff)")
        }
    }
    let summary = "\(name): \(computed.count) values, max abs err \(sci(maxAbs)), max rel err \(sci(maxRel))"
    print(summary)
    if !failures.isEmpty {
        XCTFail("\(summary) exceeds rtol \(rtol) atol \(atol); first differing values:\n" + failures.joined(separator: "\n"),
                file: file, line: line)
    }
    return (maxAbs, maxRel)
}

func sci(_ x: Double) -> String {
    x == 0 ? "0" : String(format: "%.2e", x)
}

/// Central differences of a scalar function of one tensor's entries: (f(x + eps e_i) - f(x - eps e_i)) / 2 eps.
/// `values` is perturbed in place and restored; `loss` must read it.
func numericalGradient(_ values: inout [Double], eps: Double = 1e-6, _ loss: (_ values: [Double]) -> Double) -> [Double] {
    var gradient = [Double](repeating: 0, count: values.count)
    for i in values.indices {
        let saved = values[i]
        values[i] = saved + eps
        let plus = loss(values)
        values[i] = saved - eps
        let minus = loss(values)
        values[i] = saved
        gradient[i] = (plus - minus) / (2 * eps)
    }
    return gradient
}

/// sum_i weights[i] * values[i]: a scalar loss whose gradient w.r.t. `values` is `weights`, so that
/// a kernel's backward given dOut = weights must reproduce the loss's numerical gradient.
func dot(_ values: [Double], _ weights: [Double]) -> Double {
    precondition(values.count == weights.count)
    var sum = 0.0
    for i in values.indices { sum += values[i] * weights[i] }
    return sum
}

/// Seeded test data.
func randomArray(_ count: Int, seed: UInt64, low: Double = -1, high: Double = 1) -> [Double] {
    var rng = SeededRandom(seed: seed)
    return (0..<count).map { _ in rng.uniform(low, high) }
}

// Tolerances of the finite-difference checks. In Double, central differences with eps = 1e-6 have a
// rounding error of about 1e-16 * |f| / 1e-6 = 1e-10 |f| and a truncation error of eps^2 f''' / 6;
// the losses here are O(1)-O(10), so 1e-6 relative and 1e-7 absolute leave a margin of 100x while a
// wrong term (an error of the size of one summand) is off by more than 1e-3.
let fdRtol = 1e-6
let fdAtol = 1e-7
