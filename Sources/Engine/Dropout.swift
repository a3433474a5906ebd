/// SpikingJelly's multi-step dropout: a mask of zeros and 1 / (1 - p) per sample, shared by every
/// timestep of a step. The mask is a pure function of (seed, layer, element), so a single-step
/// schedule or a checkpoint's recomputation draws exactly the mask the first forward drew.

/// A stable 64-bit key for a layer path (FNV-1a over UTF-8; Swift's `hashValue` changes per process).
public func dropoutLayerKey(_ path: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in path.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
    return hash
}

/// Fills `mask` (count elements: one timestep of the batch) with 0 where an element is dropped,
/// with probability p, and 1 / (1 - p) elsewhere, as `F.dropout(ones, p)` does.
@_specialize(where T == Float)
public func dropoutMask<T: EngineScalar>(count: Int, probability p: Double, seed: UInt64, layerKey: UInt64,
                                         mask: UnsafeMutablePointer<T>) {
    let keep = T(1 / (1 - p))
    let base = seed ^ layerKey
    for i in 0..<count {
        // One SplitMix64 output per element, counter-based so that any element can be drawn alone.
        var random = SeededRandom(seed: base &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03)
        mask[i] = random.nextUnit() < p ? 0 : keep
    }
}

/// output = input * mask (the mask repeats for every timestep slice the caller passes).
@_specialize(where T == Float)
public func dropoutForward<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
                                            mask: UnsafePointer<T>) {
    for i in 0..<count { output[i] = input[i] * mask[i] }
}

/// dInput = dOutput * mask (overwritten).
@_specialize(where T == Float)
public func dropoutBackward<T: EngineScalar>(count: Int, dInput: UnsafeMutablePointer<T>, dOutput: UnsafePointer<T>,
                                             mask: UnsafePointer<T>) {
    for i in 0..<count { dInput[i] = dOutput[i] * mask[i] }
}
