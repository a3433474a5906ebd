/// A learnable scalar times its input (ReZero / layer scale): output = scale * input.
/// `scale` points at the layer's one-element parameter tensor.
@_specialize(where T == Float)
public func scaleForward<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>, scale: UnsafePointer<T>) {
    let a = scale.pointee
    for i in 0..<count { output[i] = a * input[i] }
}

/// dScale += sum(dOutput * input) (the kept input), dInput = scale * dOutput (overwritten).
@_specialize(where T == Float)
public func scaleBackward<T: EngineScalar>(
    count: Int, dInput: UnsafeMutablePointer<T>?, dScale: UnsafeMutablePointer<T>,
    dOutput: UnsafePointer<T>, input: UnsafePointer<T>, scale: UnsafePointer<T>
) {
    let a = scale.pointee
    var sum: T = 0
    for i in 0..<count { sum += dOutput[i] * input[i] }
    dScale.pointee += sum
    if let dInput { for i in 0..<count { dInput[i] = a * dOutput[i] } }
}
