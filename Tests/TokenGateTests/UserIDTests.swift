import RedisClient
import Testing

@testable import TokenGate

@Suite("user ids of the service API")
struct UserIDTests {
    static let ids = [
        "alice", "Carol Smith", "dave+tag@example.com", "Kate", "\u{212A}ate", "kate", String(repeating: "x", count: 65),
        "Zoë", "e\u{301}", "\u{E9}", "{x}", "}", "{", "a:b", "%41", "A", "%", "100%", "UTF-8''x", "utf-8''x", " padded ",
        "名前", "👩‍💻", "a/b", "a\\b", "\"quoted\"", "tg:{alice}:s:1", String(repeating: "é", count: 127),
    ]

    @Test("what can be an id", arguments: UserIDTests.ids)
    func valid(id: String) {
        #expect(UserID.isValid(id))
    }

    @Test(
        "empty, control characters and over 255 bytes can never be ids",
        arguments: [
            "", "a\u{0}b", "a\nb", "a\rb", "\t", "a\u{7F}", "a\u{85}b", "\u{9F}", String(repeating: "x", count: 256),
            String(repeating: "é", count: 128),
        ]
    )
    func invalid(id: String) {
        #expect(!UserID.isValid(id))
    }

    @Test("255 bytes is the limit, counted in bytes")
    func limit() {
        #expect(UserID.isValid(String(repeating: "x", count: 255)))
        #expect(UserID.isValid(String(repeating: "é", count: 127) + "x"))
    }

    @Test("keys: htpasswd names and ordinary ids are verbatim, others encoded and reversible", arguments: UserIDTests.ids)
    func keyTagRoundTrip(id: String) {
        let tag = UserID.keyTag(id)
        #expect(UserID.fromKeyTag(Array(tag.utf8)) == id)
        #expect(UserID.fromKeyTag(Array(tag.utf8)).map { Array($0.utf8) } == Array(id.utf8))
        #expect(!tag.contains("{") && !tag.contains("}") && !tag.contains(":") && tag.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
    }

    @Test("keys of ordinary ids are unchanged")
    func keyTagVerbatim() {
        #expect(UserID.keyTag("alice") == "alice")
        #expect(UserID.keyTag("dave+tag@example.com") == "dave+tag@example.com")
        #expect(UserID.keyTag("Kate") == "Kate")
        #expect(UserID.keyTag("Carol Smith") == "Carol%20Smith")
        #expect(UserID.keyTag("\u{212A}ate") == "%E2%84%AAate")
        #expect(UserID.keyTag("{x}") == "%7Bx%7D")
        #expect(UserID.keyTag("%41") == "%2541")
    }

    @Test("two different ids never share a key (byte-distinct ids, canonically equivalent ones included)")
    func injective() {
        var seen: [String: [UInt8]] = [:]
        var ids = Self.ids
        // Every id of up to two bytes from an alphabet with the encoder's edge cases.
        let alphabet: [String] = ["a", "A", "%", "2", "5", "{", "}", " ", ":", "\u{E9}", "e", "\u{301}"]
        ids += alphabet + alphabet.flatMap { first in alphabet.map { first + $0 } }
        for id in ids {
            let tag = UserID.keyTag(id)
            if let other = seen[tag] { #expect(other == Array(id.utf8), "\(id) shares \(tag)") }
            seen[tag] = Array(id.utf8)
        }
        #expect(UserID.keyTag("\u{E9}") != UserID.keyTag("e\u{301}"))
    }

    @Test("a user's keys share one slot, decided by the whole id, whatever braces it holds", arguments: UserIDTests.ids)
    func slotStable(id: String) {
        let keys = KeyLayout(prefix: "tg:")
        let names = [
            keys.session(user: id, sid: "s1"), keys.token(user: id, jti: "j1"), keys.sessionIndex(user: id),
            keys.endedSessions(user: id, id: "e1"), keys.sessionPrefix(user: id) + "zz",
        ]
        let slots = Set(names.map { HashSlot(key: $0) })
        #expect(slots.count == 1)
        #expect(slots.first == HashSlot(key: "{\(UserID.keyTag(id))}"))
        #expect(keys.user(inIndexKey: keys.sessionIndex(user: id)) == id)
    }

    @Test("ids with braces do not move to the slot of the text between them")
    func bracesKeepTheirSlot() {
        let keys = KeyLayout(prefix: "tg:")
        #expect(keys.sessionIndex(user: "{x}") == "tg:{%7Bx%7D}:sessions")
        #expect(HashSlot(key: keys.sessionIndex(user: "{x}")) != HashSlot(key: keys.sessionIndex(user: "x")))
        #expect(keys.user(inIndexKey: "tg:{x}:sessions") == "x")
        #expect(keys.user(inIndexKey: "tg:{%7bx%7d}:sessions") == nil)  // not what keyTag writes
        #expect(keys.user(inIndexKey: "tg:{alice}:s:1") == nil)
    }

    @Test("X-Auth-User: printable ASCII ids unchanged, the rest RFC 8187-encoded, and back", arguments: UserIDTests.ids)
    func headerRoundTrip(id: String) {
        let value = UserID.headerValue(id)
        #expect(value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F })
        #expect(value.first != " " && value.last != " ")
        #expect(UserID.fromHeaderValue(value).map { Array($0.utf8) } == Array(id.utf8))
    }

    @Test("X-Auth-User values")
    func headerValues() {
        #expect(UserID.headerValue("alice") == "alice")
        #expect(UserID.headerValue("Carol Smith") == "Carol Smith")
        #expect(UserID.headerValue("dave+tag@example.com") == "dave+tag@example.com")
        #expect(UserID.headerValue("{x}") == "{x}")
        #expect(UserID.headerValue("Zoë") == "UTF-8''Zo%C3%AB")
        #expect(UserID.headerValue(" padded ") == "UTF-8''%20padded%20")
        #expect(UserID.headerValue("utf-8''x") == "UTF-8''utf-8%27%27x")
    }

    @Test("path segments are percent-decoded, strictly")
    func pathSegments() {
        #expect(UserID.fromPathSegment("Carol%20Smith") == "Carol Smith")
        #expect(UserID.fromPathSegment("dave+tag@example.com") == "dave+tag@example.com")
        #expect(UserID.fromPathSegment("a%2Fb") == "a/b")
        #expect(UserID.fromPathSegment("Zo%C3%AB") == "Zoë")
        #expect(UserID.fromPathSegment("%E2%84%AAate").map { Array($0.utf8) } == Array("\u{212A}ate".utf8))
        for refused in ["", "%", "%4", "%zz", "%FF", "%C3", "a%0Ab", "%00"] {
            #expect(UserID.fromPathSegment(refused) == nil, "\(refused)")
        }
    }
}
