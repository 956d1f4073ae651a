import Testing

@testable import TokenGate

@Suite("strict base64url")
struct Base64URLTests {
    @Test("round trip of every length")
    func roundTrip() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64URL.decode(Array(Base64URL.encode(bytes).utf8)) == bytes)
        }
    }

    @Test(
        "padding, foreign characters, impossible lengths and non-canonical tails are refused",
        arguments: [
            "YQ==", "YQ=", "a+b/", "YW J", "Y", "YR", "YWJ", "YWE\n",
        ]
    )
    func refused(text: String) {
        if text == "YWJ" {
            // "YWI" is the canonical spelling of "ab"; "YWJ" has a non-zero leftover bit.
            #expect(Base64URL.decode(Array("YWI".utf8)) == Array("ab".utf8))
        }
        #expect(Base64URL.decode(Array(text.utf8)) == nil)
    }

    @Test("a character outside the alphabet is refused at every position of every length")
    func strangerAnywhere() {
        for length in [2, 3, 4, 6, 7, 8, 43, 44] {
            let valid = Array(Base64URL.encode((0..<(length * 3 / 4)).map { UInt8(truncatingIfNeeded: $0 &* 7) }).utf8)
            #expect(valid.count == length)
            #expect(Base64URL.decode(valid) != nil)
            for position in 0..<length {
                for stranger in Array("=+/ .\0".utf8) + [0x80, 0xFF] {
                    var text = valid
                    text[position] = stranger
                    #expect(Base64URL.decode(text) == nil, "\(length) \(position) \(stranger)")
                    // The same bytes as a slice of a larger buffer (the verifier's form).
                    let framed = [UInt8(ascii: "A")] + text + [UInt8(ascii: "A")]
                    #expect(Base64URL.decode(framed[1..<(framed.count - 1)]) == nil)
                }
            }
        }
    }
}

@Suite("strict JSON")
struct StrictJSONTests {
    @Test("objects, arrays, escapes and surrogate pairs parse")
    func parses() throws {
        let object = try StrictJSON.parseObject(Array(#" {"a":[1,-2.5e3,true,false,null],"b":"\u00e9\ud83d\ude00\n","c":{}} "#.utf8))
        #expect(object["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(object["b"] == .string("é😀\n"))
        #expect(object["c"] == .object([:]))
    }

    @Test(
        "what lenient parsers let through is refused",
        arguments: [
            #"{"a":1,"a":2}"#, #"{"a":1} x"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{01}\"}", #"{"a":01}"#, #"{"a":1.}"#, #"{a:1}"#,
            #"{"a":1,}"#, #"[1]"#, #"{"a":"\u+041"}"#, #""s""#, #"{"a":[[[[[[[[[[[[1]]]]]]]]]]]]}"#, #"{"a":"\x"}"#, "",
        ]
    )
    func refused(text: String) {
        #expect(throws: StrictJSON.ParseError.self) { try StrictJSON.parseObject(Array(text.utf8)) }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: StrictJSON.ParseError.self) { try StrictJSON.parseObject([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D]) }
    }

    @Test("integers are exact; fractions and exponents are not integers")
    func integers() {
        #expect(JSONValue.number("1800000000").integer == 1_800_000_000)
        #expect(JSONValue.number("1e9").integer == nil)
        #expect(JSONValue.number("1.0").integer == nil)
        #expect(JSONValue.number("99999999999999999999").integer == nil)
    }
}

@Suite("usernames and key names")
struct KeyLayoutTests {
    @Test("usernames are lower-cased and limited to a safe alphabet")
    func usernames() {
        #expect(Username.canonical("Alice") == "alice")
        #expect(Username.canonical("bob.smith@example.com") == "bob.smith@example.com")
        #expect(Username.canonical("a}b") == nil)
        #expect(Username.canonical("a b") == nil)
        #expect(Username.canonical("") == nil)
        #expect(Username.canonical(String(repeating: "a", count: 65)) == nil)
        #expect(Username.canonical("ǅ") == nil)
    }

    @Test("every key of a user shares the hash tag {user}")
    func keyNames() {
        let keys = KeyLayout(prefix: "tg:")
        #expect(keys.session(user: "alice", sid: "S") == "tg:{alice}:s:S")
        #expect(keys.token(user: "alice", jti: "J") == "tg:{alice}:t:J")
        #expect(keys.sessionIndex(user: "alice") == "tg:{alice}:sessions")
        #expect(keys.sessionPrefix(user: "alice") == "tg:{alice}:s:")
        #expect(keys.tokenPrefix(user: "alice") == "tg:{alice}:t:")
        #expect(keys.endedSessions(user: "alice", id: "E") == "tg:{alice}:ended:E")
        #expect(KeyLayout(prefix: "myapp:auth:").token(user: "bob.b@x", jti: "J") == "myapp:auth:{bob.b@x}:t:J")
        #expect(keys.failedLogins(address: "::1") == "tg:rl:ip:::1")
        let hashed = keys.failedLogins(user: "alice")
        #expect(hashed.hasPrefix("tg:rl:u:") && !hashed.contains("alice") && hashed.count == "tg:rl:u:".count + 20)
    }

    @Test("identifiers carry 128 random bits as 22 base64url characters")
    func identifiers() {
        let a = Identifier.random()
        let b = Identifier.random()
        #expect(a.utf8.count == 22 && Identifier.isValid(a) && a != b)
        #expect(Base64URL.decode(Array(a.utf8))?.count == 16)
    }
}

@Suite("terminal output")
struct TerminalTextTests {
    @Test("stored text printed for operators cannot carry escape sequences, bidi overrides or line breaks")
    func escaped() {
        #expect("Mozilla/5.0 (X11; Linux) Firefox/140 ünïcode".escapedForTerminal == "Mozilla/5.0 (X11; Linux) Firefox/140 ünïcode")
        #expect("\u{1b}[31mred\u{7}".escapedForTerminal == "\\u{1b}[31mred\\u{7}")
        #expect("evil\u{202e}gpj.exe".escapedForTerminal == "evil\\u{202e}gpj.exe")
        #expect("a\nb\rc\u{85}d\u{2028}e\u{200b}f".escapedForTerminal == "a\\u{a}b\\u{d}c\\u{85}d\\u{2028}e\\u{200b}f")
        #expect(#"back\slash"#.escapedForTerminal == #"back\\slash"#)
    }
}

@Suite("client addresses")
struct IPAddressTests {
    @Test("one spelling per address; IPv4-mapped IPv6 is IPv4; garbage stays as it is")
    func canonical() {
        #expect(IPAddress.canonical("2001:DB8:0:0::0:1") == "2001:db8::1")
        #expect(IPAddress.canonical("::ffff:192.0.2.7") == "192.0.2.7")
        #expect(IPAddress.canonical("192.0.2.7") == "192.0.2.7")
        #expect(IPAddress.canonical("unknown") == "unknown")
    }

    @Test("the per-address limits count IPv6 clients by their /64 (or the configured prefix), IPv4 by address")
    func limitKey() {
        let a = IPAddress.limitKey("2001:db8:1:2:aaaa::1", ipv6Prefix: 64)
        #expect(a == "2001:db8:1:2::/64")
        #expect(IPAddress.limitKey("2001:DB8:1:2:ffff:ffff:ffff:ffff", ipv6Prefix: 64) == a)
        #expect(IPAddress.limitKey("2001:db8:1:3::1", ipv6Prefix: 64) != a)
        #expect(IPAddress.limitKey("2001:db8:1:3::1", ipv6Prefix: 48) == "2001:db8:1::/48")
        #expect(IPAddress.limitKey("2001:db8:1:3:0:0:0:1", ipv6Prefix: 128) == "2001:db8:1:3::1")
        #expect(IPAddress.limitKey("2001:db8:1:2:aaaa::1", ipv6Prefix: 60) == "2001:db8:1::/60")
        #expect(IPAddress.limitKey("203.0.113.9", ipv6Prefix: 64) == "203.0.113.9")
        #expect(IPAddress.limitKey("::ffff:203.0.113.9", ipv6Prefix: 64) == "203.0.113.9")
    }
}
