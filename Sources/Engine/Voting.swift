/// SpikingJelly's VotingLayer over [B, features]: output j is the mean of features
/// j * size ..< (j + 1) * size (avg_pool1d with kernel and stride `size`).
@_specialize(where T == Float)
public func votingForward<T: EngineScalar>(batch: Int, features: Int, size: Int, output: UnsafeMutablePointer<T>,
                                           input: UnsafePointer<T>) {
    precondition(features % size == 0)
    let groups = batch * features / size
    let scale = 1 / T(size)
    for g in 0..<groups {
        var sum: T = 0
        for i in 0..<size { sum += input[g * size + i] }
        output[g] = sum * scale
    }
}

/// dInput (overwritten) = dOutput / size for every member of a group.
@_specialize(where T == Float)
public func votingBackward<T: EngineScalar>(batch: Int, features: Int, size: Int, dInput: UnsafeMutablePointer<T>,
                                            dOutput: UnsafePointer<T>) {
    let groups = batch * features / size
    let scale = 1 / T(size)
    for g in 0..<groups {
        let share = dOutput[g] * scale
        for i in 0..<size { dInput[g * size + i] = share }
    }
}
