import Profiles

/// A surrogate gradient: the spike is a Heaviside step of x = h - threshold in forward, and backward
/// uses the derivative of a smooth `primitive` in its place (SpikingJelly's `surrogate` module).
/// The primitive is what the finite-difference checks differentiate.
public protocol SurrogateFunction: Sendable {
    associatedtype Scalar: EngineScalar
    /// The smooth step whose derivative stands in for the Heaviside's.
    func primitive(_ x: Scalar) -> Scalar
    /// d primitive / dx: the gradient backward uses for dSpike/dh.
    func derivative(_ x: Scalar) -> Scalar
}

/// atan surrogate: primitive atan(pi/2 * alpha * x) / pi + 1/2, derivative alpha/2 / (1 + (pi/2 * alpha * x)^2).
public struct ATanSurrogate<Scalar: EngineScalar>: SurrogateFunction {
    public var alpha: Scalar
    public init(alpha: Scalar) { self.alpha = alpha }

    @inline(__always)
    public func primitive(_ x: Scalar) -> Scalar {
        Scalar.atan(Scalar.pi / 2 * alpha * x) / Scalar.pi + Scalar(0.5)
    }

    @inline(__always)
    public func derivative(_ x: Scalar) -> Scalar {
        let u = Scalar.pi / 2 * alpha * x
        return alpha / 2 / (1 + u * u)
    }
}

/// Sigmoid surrogate: primitive sigmoid(alpha * x), derivative alpha * sigmoid(alpha x) * (1 - sigmoid(alpha x)).
public struct SigmoidSurrogate<Scalar: EngineScalar>: SurrogateFunction {
    public var alpha: Scalar
    public init(alpha: Scalar) { self.alpha = alpha }

    @inline(__always)
    public func primitive(_ x: Scalar) -> Scalar {
        // exp(-alpha x) overflows to +inf for very negative x; 1 / (1 + inf) is the right limit, 0.
        1 / (1 + Scalar.exp(-alpha * x))
    }

    @inline(__always)
    public func derivative(_ x: Scalar) -> Scalar {
        let s = primitive(x)
        return alpha * s * (1 - s)
    }
}
