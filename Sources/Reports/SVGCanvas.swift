/// A tiny SVG writer: elements appended in drawing order, numbers formatted deterministically.
struct SVGCanvas {
    enum Anchor: String { case start, middle, end }

    let width: Int
    let height: Int
    private(set) var body: [String] = []

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    static func n(_ value: Double) -> String { Markup.number(value) }

    /// A tooltip child: browsers show an element's `<title>` on hover, with no script.
    static func title(_ text: String?) -> String { text.map { "<title>\(Markup.escape($0))</title>" } ?? "" }

    mutating func raw(_ element: String) { body.append(element) }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, fill: String, extra: String = "", title: String? = nil) {
        let open = "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, width)))\" height=\"\(Self.n(max(0, height)))\" fill=\"\(fill)\"\(extra)"
        body.append(title == nil ? open + "/>" : open + ">" + Self.title(title) + "</rect>")
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, stroke: String, width: Double = 1, extra: String = "") {
        body.append("<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(extra)/>")
    }

    mutating func path(_ d: String, fill: String, stroke: String = "none", width: Double = 1, extra: String = "", title: String? = nil) {
        let open = "<path d=\"\(d)\" fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"\(Self.n(width))\"\(extra)"
        body.append(title == nil ? open + "/>" : open + ">" + Self.title(title) + "</path>")
    }

    mutating func text(_ string: String, x: Double, y: Double, anchor: Anchor = .start, size: Double = 12, weight: String? = nil,
                       fill: String = Palette.text, extra: String = "") {
        let bold = weight.map { " font-weight=\"\($0)\"" } ?? ""
        body.append("<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" text-anchor=\"\(anchor.rawValue)\" font-size=\"\(Self.n(size))\"\(bold) fill=\"\(fill)\"\(extra)>\(Markup.escape(string))</text>")
    }

    /// Rough width of a label, to decide whether it fits (SVG has no layout engine; a generous
    /// average glyph width keeps labels from overlapping in any common sans-serif font).
    static func textWidth(_ string: String, size: Double) -> Double { Double(string.count) * size * 0.6 }

    /// The first of `candidates` (longest first) that fits `width`; the last one, cut short with
    /// an ellipsis, when none does. Labels built from user input (profile names) can be any length.
    static func fitting(_ candidates: [String], size: Double, width: Double) -> String {
        if let fits = candidates.first(where: { textWidth($0, size: size) <= width }) { return fits }
        let last = candidates.last ?? ""
        let keep = max(0, Int(width / (size * 0.6)) - 1)
        return String(last.prefix(keep)) + "…"
    }

    /// The document. `namespace` is for standalone files; SVG inline in HTML takes its namespace
    /// from the parser, and leaving the URI out keeps the page free of anything that looks like a link.
    func document(label: String, namespace: Bool = true) -> String {
        let xmlns = namespace ? " xmlns=\"http://www.w3.org/2000/svg\"" : ""
        var lines = ["<svg\(xmlns) width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(Markup.escape(label))\" font-family=\"\(Palette.fontStack)\">",
                     "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#FFFFFF\"/>"]
        lines += body
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }
}
