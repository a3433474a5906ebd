import Foundation

/// Writes files so that a failure never leaves a half-written result: a file goes to a
/// temporary name in the same folder and is renamed over the target; a report folder is built
/// beside the target and swapped in whole.
public enum AtomicOutput {
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: folder.path) else {
            throw WriteError(path: path, reason: "the folder \(folder.path) does not exist")
        }
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try data.write(to: temporary)
            if rename(temporary.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw WriteError(path: path, reason: reason)
            }
        } catch let error as WriteError {
            throw error
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw WriteError(path: path, reason: error.localizedDescription)
        }
    }

    /// Replaces the folder `path` with exactly `files` (name -> contents). Until the last step the
    /// old folder is untouched; then it is swapped for the new one.
    public static func writeFolder(_ files: [String: Data], to path: String) throws {
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        if fm.fileExists(atPath: target.path, isDirectory: &isFolder), !isFolder.boolValue {
            throw WriteError(path: path, reason: "it exists and is not a folder")
        }
        let staging = parent.appendingPathComponent(".\(target.lastPathComponent).new-\(getpid())")
        let retired = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(getpid())")
        do {
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: true)
            for (name, data) in files.sorted(by: { $0.key < $1.key }) {
                try data.write(to: staging.appendingPathComponent(name))
            }
            if fm.fileExists(atPath: target.path) {
                try fm.moveItem(at: target, to: retired)
            }
            try fm.moveItem(at: staging, to: target)
            try? fm.removeItem(at: retired)
        } catch {
            try? fm.removeItem(at: staging)
            if !fm.fileExists(atPath: target.path), fm.fileExists(atPath: retired.path) {
                try? fm.moveItem(at: retired, to: target)
            }
            throw WriteError(path: path, reason: "\(error.localizedDescription)")
        }
    }
}
