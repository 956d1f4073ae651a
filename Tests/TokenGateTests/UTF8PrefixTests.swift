import Testing

@testable import TokenGate

@Suite("UTF-8 prefixes")
struct UTF8PrefixTests {
    @Test("a cap counts UTF-8 bytes, cuts on a scalar boundary, and leaves short text alone")
    func cap() {
        #expect("Firefox/140".utf8Prefix(256) == "Firefox/140")
        // One grapheme cluster: an "e" and 5,000 combining acute accents (2 bytes each), 10,001 bytes.
        let cluster = "e" + String(repeating: "\u{301}", count: 5000)
        #expect(cluster.count == 1)
        let capped = cluster.utf8Prefix(256)
        #expect(capped.utf8.count == 255)
        #expect(cluster.unicodeScalars.starts(with: capped.unicodeScalars))
        // A 4-byte scalar that does not fit is left out whole.
        #expect(("abc" + "\u{1F600}").utf8Prefix(5) == "abc")
        #expect(("abc" + "\u{1F600}").utf8Prefix(7) == "abc\u{1F600}")
        #expect("".utf8Prefix(0) == "")
    }
}
