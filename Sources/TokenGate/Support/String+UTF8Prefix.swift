extension String {
    /// The longest prefix of at most `maxBytes` UTF-8 bytes that ends on a Unicode scalar boundary.
    /// A cap on what is stored must count bytes: a cap on `Character`s lets one grapheme cluster of
    /// thousands of combining marks through as "one character".
    package func utf8Prefix(_ maxBytes: Int) -> String {
        guard utf8.count > maxBytes else { return self }
        var bytes = 0
        var end = unicodeScalars.startIndex
        for index in unicodeScalars.indices {
            let length = UTF8.width(unicodeScalars[index])
            guard bytes + length <= maxBytes else { break }
            bytes += length
            end = unicodeScalars.index(after: index)
        }
        return String(unicodeScalars[..<end])
    }
}
