extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line breaks (for the package's
    /// modules: header values, file lines).
    package func trimmingSpaces() -> String {
        var result = Substring(self)
        while let first = result.first, first == " " || first == "\n" || first == "\r" || first == "\t" { result = result.dropFirst() }
        while let last = result.last, last == " " || last == "\n" || last == "\r" || last == "\t" { result = result.dropLast() }
        return String(result)
    }
}
