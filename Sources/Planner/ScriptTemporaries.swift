/// The named temporaries of one layer script's run (`PyTorchStep.allocate` / `.free`), by name and
/// timestep. A run holds a handful at a time, so a list searched from the newest is cheaper than
/// a dictionary keyed by a "name@t" string built and hashed for every allocate and free.
struct ScriptTemporaries {
    private var entries: [(name: String, timestep: Int?, id: Int)] = []

    var isEmpty: Bool { entries.isEmpty }

    /// "name" or "name@t" of every temporary still held, sorted, for messages.
    var labels: [String] { entries.map { entry in entry.timestep.map { "\(entry.name)@\($0)" } ?? entry.name }.sorted() }

    private func index(_ name: String, _ timestep: Int?) -> Int? {
        entries.lastIndex { $0.timestep == timestep && $0.name == name }
    }

    /// Holds `id` under the name and timestep, in place of any tensor held there before.
    mutating func set(_ name: String, timestep: Int?, to id: Int) {
        if let index = index(name, timestep) { entries[index].id = id } else { entries.append((name, timestep, id)) }
    }

    /// The tensor held under the name and timestep, no longer held; nil when there is none.
    mutating func remove(_ name: String, timestep: Int?) -> Int? {
        guard let index = index(name, timestep) else { return nil }
        return entries.remove(at: index).id
    }
}
