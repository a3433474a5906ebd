import Foundation

/// A progress bar on a terminal (redrawn in place, with steps and time left); nothing when the
/// output is a file or a pipe, where the commands print plain lines instead.
///
/// Every redraw ends with "erase to end of line", so a shorter line never leaves the tail of a
/// longer one behind, and is cut to the terminal's width, since a wrapped line cannot be
/// redrawn with a carriage return. `begin` shows the bar before the first unit ends; `finish`
/// erases it whatever the count reached, so the next output starts on a clean line.
/// Public for the tests, which run in release builds where `@testable` is not available.
public final class ProgressBar {
    public let total: Int
    public let label: String
    public let enabled: Bool
    private let write: (String) -> Void
    private let nowNs: () -> UInt64
    private let columns: Int
    private let startNs: UInt64
    private var done = 0
    private var detail = ""
    private var visible = false

    public static let eraseToEndOfLine = "\u{1B}[K"

    public init(total: Int, label: String, enabled: Bool = isatty(STDERR_FILENO) == 1, columns: Int = ProgressBar.terminalColumns(),
         write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) },
         nowNs: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds }) {
        self.total = total
        self.label = label
        self.enabled = enabled && total > 0
        self.columns = max(20, columns)
        self.write = write
        self.nowNs = nowNs
        startNs = nowNs()
    }

    /// Shows the bar at 0 with what is starting, before the first (possibly long) unit ends.
    public func begin(_ detail: String) {
        self.detail = detail
        draw()
    }

    /// `done` units of `total` are finished; `detail` says what runs now or what just ended.
    public func update(_ done: Int, detail: String = "") {
        self.done = min(done, total)
        self.detail = detail
        draw()
        if self.done == total { finish() }
    }

    /// Erases the bar; later updates draw it again.
    public func finish() {
        guard enabled, visible else { return }
        write("\r" + Self.eraseToEndOfLine)
        visible = false
    }

    /// Prints a line of the command's output without gluing it to the bar: the bar is erased,
    /// the line printed, and the bar drawn again below it.
    public func printLine(_ text: String) {
        let wasVisible = visible
        finish()
        print(text)
        fflush(stdout)
        if wasVisible { draw() }
    }

    /// The text of the bar as drawn now (without the carriage return and the erase).
    public var line: String {
        let width = 24
        let filled = total > 0 ? min(width, done * width / total) : 0
        let elapsed = Double(nowNs() &- startNs) / 1e9
        let left = done > 0 ? ProgressBar.seconds(elapsed / Double(done) * Double(total - done)) + " left" : "..."
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = "\(label) [\(bar)] \(done)/\(total)  \(left)" + (detail.isEmpty ? "" : "  \(detail)")
        // One column spare: writing the last column makes some terminals wrap at once.
        return text.count < columns ? text : String(text.prefix(columns - 1))
    }

    private func draw() {
        guard enabled else { return }
        write("\r" + line + Self.eraseToEndOfLine)
        visible = true
    }

    public static func seconds(_ value: Double) -> String {
        value >= 60 ? "\(Int(value) / 60)m\(Int(value) % 60)s" : "\(Int(value.rounded()))s"
    }

    /// The width of the terminal on standard error; 80 when it cannot be asked.
    public static func terminalColumns() -> Int {
        var size = winsize()
        guard ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }
}
