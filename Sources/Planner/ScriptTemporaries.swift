/// The named temporaries of one layer script's run (`PyTorchStep.allocate` / `.free`), by name and
/// timestep. A run usually holds a handful at a time: a short list, searched from the newest, is
/// cheaper than a dictionary keyed by a "name@t" string built and hashed for every allocate and
/// free. A multi-step run can hold one per timestep (SpikingJelly's stacked spikes, freed oldest
/// first), so past a few the temporaries move to a dictionary, where finding one does not depend
/// on how many are held.
struct ScriptTemporaries {
    private struct Key: Hashable {
        var name: String
        var timestep: Int?
    }

    /// The most a list holds before the dictionary takes over.
    private static let listCapacity = 16
    private var list: [(key: Key, id: Int)] = []
    private var dictionary: [Key: Int]?

    var isEmpty: Bool { dictionary?.isEmpty ?? list.isEmpty }

    /// "name" or "name@t" of every temporary still held, sorted, for messages.
    var labels: [String] {
        (dictionary.map { Array($0.keys) } ?? list.map(\.key)).map { key in key.timestep.map { "\(key.name)@\($0)" } ?? key.name }.sorted()
    }

    private func listIndex(_ key: Key) -> Int? {
        list.lastIndex { $0.key.timestep == key.timestep && $0.key.name == key.name }
    }

    /// Holds `id` under the name and timestep, in place of any tensor held there before.
    mutating func set(_ name: String, timestep: Int?, to id: Int) {
        let key = Key(name: name, timestep: timestep)
        if dictionary != nil {
            dictionary![key] = id
        } else if let index = listIndex(key) {
            list[index].id = id
        } else if list.count < Self.listCapacity {
            list.append((key, id))
        } else {
            var all = Dictionary(uniqueKeysWithValues: list.map { ($0.key, $0.id) })
            all[key] = id
            dictionary = all
            list = []
        }
    }

    /// The tensor held under the name and timestep, no longer held; nil when there is none.
    mutating func remove(_ name: String, timestep: Int?) -> Int? {
        let key = Key(name: name, timestep: timestep)
        if dictionary != nil { return dictionary!.removeValue(forKey: key) }
        guard let index = listIndex(key) else { return nil }
        return list.remove(at: index).id
    }
}
