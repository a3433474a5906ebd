import MemoryModel
import Yams

extension ProfileLoader {
    /// The input's per-sample shape: `{channels, height, width}` for images and event frames, or
    /// `{features}` for a sequence of feature vectors ([T, B, features] with `perTimestep: true`,
    /// e.g. SHD spike trains). The two forms are exclusive: a sample is one or the other.
    static func parseInputShape(_ input: inout YAMLMapping) throws -> TensorShape {
        guard let featuresNode = input.value("features") else {
            return TensorShape([try input.int("channels", example: "3"), try input.int("height", example: "32"),
                                try input.int("width", example: "32")])
        }
        if let image = ["channels", "height", "width"].first(where: { input.value($0) != nil }) {
            throw input.error("the input gives both `features:` (a vector per sample) and `\(image):` (an image)",
                              fix: "keep `features:` for [T, B, features] sequences, or `channels`, `height` and `width` for images",
                              at: input.value(image))
        }
        return TensorShape([try YAMLMapping.integer(featuresNode, key: "features", min: 1, file: input.file,
                                                    layerPath: nil, context: "input")])
    }
}
