extension StringProtocol {
    /// The text safe to print on an operator's terminal: control characters (C0, DEL, C1) and
    /// format characters (bidi overrides and isolates, zero-width ones) shown as `\u{…}` escapes,
    /// and backslashes doubled, so stored text (a User-Agent a client chose) cannot move the
    /// cursor, recolour the screen or reorder what the operator reads.
    package var escapedForTerminal: String {
        var result = ""
        for scalar in unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator:
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default:
                if scalar == "\\" { result += "\\\\" } else { result.unicodeScalars.append(scalar) }
            }
        }
        return result
    }
}
