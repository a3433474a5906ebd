import Foundation

/// A progress bar on a terminal (redrawn in place, with steps and time left); nothing when the
/// output is a file or a pipe, where the commands print plain lines instead.
struct Progress {
    let total: Int
    let label: String
    let start = DispatchTime.now().uptimeNanoseconds
    let enabled: Bool

    init(total: Int, label: String, enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total
        self.label = label
        self.enabled = enabled
    }

    func update(_ done: Int, detail: String = "") {
        guard enabled, total > 0 else { return }
        let width = 24
        let filled = min(width, done * width / total)
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r\(label) [\(bar)] \(done)/\(total)  \(Progress.seconds(left)) left  \(detail)"
        FileHandle.standardError.write(Data(line.utf8))
        if done == total { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func seconds(_ value: Double) -> String {
        value >= 60 ? "\(Int(value) / 60)m\(Int(value) % 60)s" : "\(Int(value.rounded()))s"
    }
}
