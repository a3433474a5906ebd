/// The convs' weight panels the spike products keep over a training step (`SpikePanel` in the
/// planner says which convs and their shapes): each [K, Cout] panel is a tracked tensor the trainer
/// allocates with the parameters and keeps for the run, registered here under its weight's address.
/// Inside `SpikeProducts.withStepPanels` a conv finds its panel by its weight and keeps in it the
/// weight's transpose (its forward calls) or its gradient's transpose (its backward calls).
public final class SpikeStepPanels {
    /// What a panel holds now.
    enum Content: Equatable {
        case nothing
        /// The weight's transpose, valid until the step ends (the weights do not change within it).
        case transpose
        /// A gradient being accumulated, to be added into `target` ([Cout, K]) when flushed.
        case gradient(target: UnsafeMutablePointer<Float>)
    }

    final class Panel {
        let values: UnsafeMutablePointer<Float>
        let rows: Int
        let columns: Int
        var content = Content.nothing

        init(values: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
            self.values = values
            self.rows = rows
            self.columns = columns
        }
    }

    private var panels: [UnsafeRawPointer: Panel] = [:]
    /// Registration order, so that flushing visits the panels deterministically.
    private var order: [Panel] = []

    public init() {}

    /// Registers `panel` ([rows, columns] floats, owned by the caller and alive while these panels are
    /// used) for the conv whose [columns, rows] weight is at `weight`.
    public func add(weight: UnsafePointer<Float>, panel: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        precondition(panels[UnsafeRawPointer(weight)] == nil, "a weight registered twice for a spike-products panel")
        let entry = Panel(values: panel, rows: rows, columns: columns)
        panels[UnsafeRawPointer(weight)] = entry
        order.append(entry)
    }

    /// Panels registered.
    public var count: Int { order.count }

    /// Bytes of the registered panels.
    public var bytes: Int { order.reduce(0) { $0 + $1.rows * $1.columns * MemoryLayout<Float>.size } }

    /// The panel of the conv whose weight is at `weight`, nil when none is registered.
    func panel(for weight: UnsafePointer<Float>, rows: Int, columns: Int) -> Panel? {
        guard let panel = panels[UnsafeRawPointer(weight)] else { return nil }
        precondition(panel.rows == rows && panel.columns == columns,
                     "the spike-products panel of a [\(columns), \(rows)] weight is [\(panel.rows), \(panel.columns)]")
        return panel
    }

    /// Adds every accumulated gradient into its target and empties every panel (the step's end).
    func flushAll() {
        for panel in order { SpikeProducts.flush(panel) }
    }
}
