import MemoryModel

/// Fixed colours, so that a role (or a strategy) looks the same in every chart and every
/// schedule. The Okabe-Ito palette stays distinguishable under the common colour-vision
/// deficiencies and prints on white.
public enum Palette {
    /// Bottom to top in a stacked chart: what survives the step first, what a step adds on top.
    public static let stackOrder: [TensorRole] = [.parameter, .gradient, .optimizerState, .input, .neuronState, .activation, .workspace]

    public static func colour(_ role: TensorRole) -> String {
        switch role {
        case .parameter: return "#0072B2"
        case .gradient: return "#56B4E9"
        case .optimizerState: return "#009E73"
        case .input: return "#999999"
        case .neuronState: return "#CC79A7"
        case .activation: return "#E69F00"
        case .workspace: return "#F0E442"
        }
    }

    private static let strategyColours = ["bptt": "#D55E00", "checkpoint": "#0072B2", "sltt": "#009E73",
                                          "revsnn": "#CC79A7", "trevsnn": "#E69F00"]
    private static let spareColours = ["#56B4E9", "#000000", "#999999", "#F0E442"]

    /// A strategy's colour; strategies the palette does not name take spares by position.
    public static func colour(strategy: String, position: Int) -> String {
        strategyColours[strategy] ?? spareColours[position % spareColours.count]
    }

    /// Light band colours for the phases along a timeline's axis.
    static func band(phaseKind: String) -> String {
        switch phaseKind {
        case "forward": return "#DCEBF7"
        case "backward": return "#FBE3D2"
        case "recompute": return "#EADCF2"
        case "optimizer": return "#DDEFE6"
        default: return "#EEEEEE"
        }
    }

    static let text = "#1A1A1A"
    static let mutedText = "#555555"
    static let grid = "#E3E3E3"
    static let axis = "#333333"
    static let fontStack = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif"
}
