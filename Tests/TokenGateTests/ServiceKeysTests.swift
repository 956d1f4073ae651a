import Testing

@testable import TokenGate

@Suite("service API keys")
struct ServiceKeysTests {
    @Test("a generated key is admitted by its own line only, under its name")
    func generated() throws {
        let first = ServiceKeys.generate(name: "app")
        let second = ServiceKeys.generate(name: "worker")
        #expect(first.secret.hasPrefix(ServiceKeys.secretPrefix) && first.secret.utf8.count == ServiceKeys.secretPrefix.utf8.count + 43)
        #expect(first.secret != second.secret)
        // The file holds the digest, never the key.
        #expect(!first.line.contains(first.secret.dropFirst(ServiceKeys.secretPrefix.count)))
        let keys = try ServiceKeys(parsing: "# keys\n\n\(first.line)\n\(second.line)\r\n")
        #expect(keys.names == ["app", "worker"])
        #expect(keys.name(of: first.secret.utf8) == "app")
        #expect(keys.name(of: second.secret.utf8) == "worker")
        #expect(keys.name(of: (first.secret + "x").utf8) == nil)
        #expect(keys.name(of: first.secret.dropLast().utf8) == nil)
        #expect(keys.name(of: "".utf8) == nil)
        #expect(try ServiceKeys(parsing: second.line).name(of: first.secret.utf8) == nil)
    }

    @Test("bad lines, bad names, duplicate names and an empty file are refused, one message per line")
    func badFiles() {
        let good = ServiceKeys.generate(name: "app").line
        let digest = good.split(separator: ":").last ?? ""
        for text in [
            "", "# only a comment\n", "app\n", "app:sha1:\(digest)\n", "app:sha256:\(digest.dropLast(2))\n", "app:sha256:\(digest)zz\n",
            "bad name:sha256:\(digest)\n", "\(good)\n\(good)\n", "app:sha256:\(digest):extra\n",
        ] {
            #expect(throws: ConfigurationError.self, "\(text)") { try ServiceKeys(parsing: text) }
        }
        do {
            _ = try ServiceKeys(parsing: "x\n\(good)\ny\n")
            Issue.record("accepted bad lines")
        } catch {
            #expect(error.problems.count == 2)
            #expect(error.problems.allSatisfy { !$0.contains(String(digest)) })
        }
    }

    @Test("names: 1-64 of A-Z a-z 0-9 . _ -")
    func names() {
        for name in ["a", "flask-app", "Billing_v2.1", String(repeating: "n", count: 64)] { #expect(ServiceKeys.isValidName(name), "\(name)") }
        for name in ["", "a b", "a:b", "ä", "a\n", String(repeating: "n", count: 65)] { #expect(!ServiceKeys.isValidName(name), "\(name)") }
    }
}
