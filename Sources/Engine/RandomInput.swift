/// Seeded random data for memory runs, where the values do not matter but must be reproducible.
/// Fills caller-owned buffers: the engine's allocator owns the input tensors it measures.
public enum RandomInput {
    /// Uniform values in [low, high) (images in [0, 1) by default).
    @_specialize(where T == Float)
    public static func fillUniform<T: EngineScalar>(_ buffer: UnsafeMutableBufferPointer<T>, low: Double = 0, high: Double = 1,
                                                    using rng: inout SeededRandom) {
        for i in buffer.indices { buffer[i] = T(rng.uniform(low, high)) }
    }

    /// Normal values with the given mean and standard deviation.
    @_specialize(where T == Float)
    public static func fillNormal<T: EngineScalar>(_ buffer: UnsafeMutableBufferPointer<T>, mean: Double = 0, standardDeviation: Double = 1,
                                                   using rng: inout SeededRandom) {
        for i in buffer.indices { buffer[i] = T(mean + standardDeviation * rng.nextNormal()) }
    }

    /// Labels uniform in 0..<classes.
    public static func fillLabels(_ buffer: UnsafeMutableBufferPointer<Int32>, classes: Int, using rng: inout SeededRandom) {
        for i in buffer.indices { buffer[i] = Int32(rng.nextInt(below: classes)) }
    }
}
