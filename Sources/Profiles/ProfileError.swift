/// A position in a profile file (1-based, as editors show it).
public struct SourceLocation: Hashable, Codable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
}

/// Everything that can be wrong with a profile. Each error names the file, the place in it, the
/// layer it concerns, what is wrong and what would fix it, so that a user never needs a debugger.
public struct ProfileError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    public var location: SourceLocation?
    public var layerPath: String?
    public var problem: String
    public var fix: String

    public init(file: String, location: SourceLocation?, layerPath: String? = nil, problem: String, fix: String) {
        self.file = file
        self.location = location
        self.layerPath = layerPath
        self.problem = problem
        self.fix = fix
    }

    public var description: String {
        let place = file + (location.map { ":\($0.line):\($0.column)" } ?? "")
        let layer = layerPath.map { "layer '\($0)': " } ?? ""
        return "\(place): error: \(layer)\(problem)\n  fix: \(fix)"
    }
}
