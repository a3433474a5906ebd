import CFileSystem
import Foundation

/// Writes files and report folders so that no instant of a run, killed or not, leaves a half
/// result, and so that snnmem never deletes what it did not write.
///
/// - A file goes to `.NAME.tmp-PID` beside the target, is fsynced and renamed over it.
/// - A folder is built complete in `.NAME.new-PID` (with a manifest of its files), fsynced, and
///   swapped with the old one in one `renameat2(RENAME_EXCHANGE)`; where the file system cannot
///   exchange, the old folder is first renamed to `.NAME.old-PID`, a journal the next write
///   finishes by putting it back if the kill landed between the two renames.
/// - A folder is replaced only if it is empty or holds exactly files its manifest lists.
/// - Temporaries left by a killed run (their PID no longer lives) are removed by the next
///   write to the same place.
public enum AtomicOutput {
    public struct WriteError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot write \(path): \(reason)" }
    }

    /// The list of files snnmem wrote into a report folder; its presence marks the folder as snnmem's.
    public static let manifestName = ".snnmem-output"

    // MARK: checks before work

    /// Throws now, before any training, if `write(_:to:)` to `path` could not succeed.
    public static func checkFileTarget(_ path: String) throws {
        let url = URL(fileURLWithPath: path)
        try checkWritableFolder(url.deletingLastPathComponent(), for: path)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue {
            throw WriteError(path: path, reason: "it is a folder; name a file")
        }
    }

    /// Throws now, before any training, if `writeFolder(_:to:)` to `path` would fail or would
    /// replace files snnmem did not write.
    public static func checkFolderTarget(_ path: String) throws {
        let target = URL(fileURLWithPath: path).standardizedFileURL
        try checkWritableFolder(target.deletingLastPathComponent(), for: path)
        try checkOwnership(target, path: path)
    }

    static func checkWritableFolder(_ folder: URL, for path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) else {
            throw WriteError(path: path, reason: "the folder \(folder.path) does not exist")
        }
        guard isFolder.boolValue else { throw WriteError(path: path, reason: "\(folder.path) is not a folder") }
        guard access(folder.path, W_OK | X_OK) == 0 else {
            throw WriteError(path: path, reason: "the folder \(folder.path) is not writable")
        }
    }

    /// The target must be absent, an empty folder, or a folder whose every entry its manifest lists.
    static func checkOwnership(_ target: URL, path: String) throws {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: target.path, isDirectory: &isFolder) else { return }
        guard isFolder.boolValue else { throw WriteError(path: path, reason: "it exists and is not a folder") }
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: target.path) } catch {
            throw WriteError(path: path, reason: "its contents cannot be listed (\(error.localizedDescription))")
        }
        guard !entries.isEmpty else { return }
        let listed = (try? String(contentsOf: target.appendingPathComponent(manifestName), encoding: .utf8))
            .map { Set($0.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") }) }
        let foreign = entries.filter { $0 != manifestName && !(listed?.contains($0) ?? false) }.sorted()
        guard foreign.isEmpty else {
            let shown = foreign.prefix(3).joined(separator: ", ") + (foreign.count > 3 ? ", ..." : "")
            throw WriteError(path: path, reason: "it holds files snnmem did not write (\(shown)); snnmem replaces only its own report folders: give a new or empty folder")
        }
    }

    // MARK: writing

    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        try checkFileTarget(path)
        removeStaleTemporaries(of: url)
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try writeDurably(data, to: temporary)
            try renameOrThrow(temporary, url)
            syncFolder(folder)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw WriteError(path: path, reason: (error as? WriteError)?.reason ?? error.localizedDescription)
        }
    }

    /// Replaces the folder `path` with exactly `files` (name -> contents) and a manifest.
    public static func writeFolder(_ files: [String: Data], to path: String) throws {
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let fm = FileManager.default
        try checkWritableFolder(parent, for: path)
        removeStaleTemporaries(of: target)
        try checkOwnership(target, path: path)
        for name in files.keys where name == manifestName || name.contains("/") || name.hasPrefix(".") {
            throw WriteError(path: path, reason: "'\(name)' is not a plain file name")
        }
        let staging = parent.appendingPathComponent(".\(target.lastPathComponent).new-\(getpid())")
        let retired = parent.appendingPathComponent(".\(target.lastPathComponent).old-\(getpid())")
        do {
            try? fm.removeItem(at: staging)
            try fm.createDirectory(at: staging, withIntermediateDirectories: false)
            for (name, data) in files.sorted(by: { $0.key < $1.key }) {
                try writeDurably(data, to: staging.appendingPathComponent(name))
            }
            let manifest = "# files snnmem wrote here; it replaces this folder only while it holds just these\n"
                + files.keys.sorted().joined(separator: "\n") + "\n"
            try writeDurably(Data(manifest.utf8), to: staging.appendingPathComponent(manifestName))
            syncFolder(staging)
            if fm.fileExists(atPath: target.path) {
                if snn_exchange_paths(staging.path, target.path) == 0 {
                    // The new folder is in place; the old one now sits at the staging name.
                    syncFolder(parent)
                    try? fm.removeItem(at: staging)
                    return
                }
                guard errno == EINVAL || errno == ENOSYS || errno == ENOTSUP else {
                    throw WriteError(path: path, reason: String(cString: strerror(errno)))
                }
                // No exchange here: two renames, the first leaving `retired` as a journal.
                try renameOrThrow(target, retired)
                syncFolder(parent)
            }
            try renameOrThrow(staging, target)
            syncFolder(parent)
            try? fm.removeItem(at: retired)
        } catch {
            try? fm.removeItem(at: staging)
            if !fm.fileExists(atPath: target.path), fm.fileExists(atPath: retired.path) {
                try? fm.moveItem(at: retired, to: target)
            }
            throw WriteError(path: path, reason: (error as? WriteError)?.reason ?? error.localizedDescription)
        }
    }

    // MARK: pieces

    static func writeDurably(_ data: Data, to url: URL) throws {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WriteError(path: url.path, reason: String(cString: strerror(errno))) }
        defer { close(descriptor) }
        try data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw WriteError(path: url.path, reason: String(cString: strerror(errno)))
                }
                offset += written
            }
        }
        guard fsync(descriptor) == 0 else { throw WriteError(path: url.path, reason: "fsync: " + String(cString: strerror(errno))) }
    }

    static func renameOrThrow(_ from: URL, _ to: URL) throws {
        guard rename(from.path, to.path) == 0 else {
            throw WriteError(path: to.path, reason: String(cString: strerror(errno)))
        }
    }

    /// Makes a rename in `folder` durable; failure only weakens durability, never atomicity.
    static func syncFolder(_ folder: URL) {
        let descriptor = open(folder.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    /// Finishes or removes what a killed earlier write to `target` left beside it: the retired
    /// old folder goes back if the target is missing; temporaries of dead processes are deleted.
    static func removeStaleTemporaries(of target: URL) {
        let fm = FileManager.default
        let parent = target.deletingLastPathComponent()
        let name = target.lastPathComponent
        guard let entries = try? fm.contentsOfDirectory(atPath: parent.path) else { return }
        var stale: [(kind: String, url: URL)] = []
        for entry in entries where entry.hasPrefix(".\(name).") {
            let rest = entry.dropFirst(name.count + 2)
            guard let dash = rest.lastIndex(of: "-"), let pid = Int32(rest[rest.index(after: dash)...]) else { continue }
            let kind = String(rest[..<dash])
            guard ["tmp", "new", "old"].contains(kind), pid != getpid(), !processIsAlive(pid) else { continue }
            stale.append((kind, parent.appendingPathComponent(entry)))
        }
        if !fm.fileExists(atPath: target.path), let journal = stale.first(where: { $0.kind == "old" }) {
            try? fm.moveItem(at: journal.url, to: target)
        }
        for entry in stale where fm.fileExists(atPath: entry.url.path) { try? fm.removeItem(at: entry.url) }
    }

    /// `removeStaleTemporaries` for tests, which cannot kill a process between two renames.
    public static func removeStaleTemporariesForTesting(of target: URL) { removeStaleTemporaries(of: target) }

    static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
