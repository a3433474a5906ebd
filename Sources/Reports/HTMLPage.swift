import MemoryModel

/// A self-contained page: inline CSS, the system font stack, no scripts, nothing fetched from
/// anywhere (reports are opened from CI artefacts and air-gapped machines).
enum HTMLPage {
    static let style = """
    :root { color-scheme: light; }
    body { font-family: \(Palette.fontStack); color: #1a1a1a; background: #fff; margin: 0 auto; max-width: 1240px;
           padding: 6px 20px 40px; font-size: 14px; line-height: 1.4; }
    h1 { font-size: 22px; margin: 6px 0 2px; }
    h2 { font-size: 18px; margin: 18px 0 6px; padding-bottom: 4px; border-bottom: 1px solid #d0d0d0; }
    h3 { font-size: 15px; margin: 14px 0 6px; }
    p { margin: 6px 0; }
    .meta { color: #555; font-size: 13px; }
    nav { display: inline; margin-left: 18px; }
    nav a { margin-right: 12px; color: #0b5394; }
    .wrap { overflow-x: auto; }
    table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }
    th, td { padding: 2px 10px; border-bottom: 1px solid #e3e3e3; text-align: left; white-space: nowrap; }
    th { background: #f2f2f2; font-weight: 600; }
    .num { text-align: right; }
    td.label { white-space: normal; overflow-wrap: anywhere; max-width: 640px; }
    .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border: 1px solid #666; }
    figure { margin: 4px 0; }
    svg { display: block; max-width: 100%; height: auto; }
    .warning { color: #8a1c00; font-weight: 600; }
    code { font-family: ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace; font-size: 0.92em; background: #f2f2f2;
           padding: 0 3px; border-radius: 3px; }
    /* Narrow windows: tighter cells and headers that may wrap, so wide tables need less scrolling. */
    @media (max-width: 900px) { body { padding: 6px 12px 32px; } th, td { padding: 2px 6px; } th { white-space: normal; } }
    @media print { nav { display: none; } section { break-inside: avoid; } body { max-width: none; } }
    """

    static func document(title: String, body: [String]) -> String {
        (["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
          "<title>\(Markup.escape(title))</title>", "<style>", style, "</style>", "</head>", "<body>"]
            + body + ["</body>", "</html>"]).joined(separator: "\n") + "\n"
    }

    /// A table whose cells are already HTML; `numeric` columns are right-aligned.
    static func table(headers: [String], numeric: [Bool], rows: [[String]], cellClass: [Int: String] = [:]) -> String {
        func classes(_ column: Int) -> String {
            let names = (numeric[column] ? ["num"] : []) + (cellClass[column].map { [$0] } ?? [])
            return names.isEmpty ? "" : " class=\"\(names.joined(separator: " "))\""
        }
        var lines = ["<div class=\"wrap\"><table>", "<thead><tr>"
                     + headers.indices.map { "<th\(classes($0))>\(Markup.escape(headers[$0]))</th>" }.joined() + "</tr></thead>", "<tbody>"]
        for row in rows {
            lines.append("<tr>" + row.indices.map { "<td\(classes($0))>\(row[$0])</td>" }.joined() + "</tr>")
        }
        lines.append("</tbody></table></div>")
        return lines.joined(separator: "\n")
    }

    /// A `TextTable` as HTML, its cells escaped.
    static func table(_ text: TextTable) -> String {
        table(headers: text.headers, numeric: text.alignments.map { $0 == .right }, rows: text.rows.map { $0.map(Markup.escape) })
    }

    static func swatch(_ colour: String) -> String { "<span class=\"swatch\" style=\"background:\(colour)\"></span>" }
}
