import Crypto
import Testing

@testable import TokenGate

@Suite("token verification: form, signature and claims, no I/O")
struct TokenVerifierTests {
    let factory = TokenFactory()
    let verifier = TokenFactory.verifier()
    let now = TokenFactory.now

    private func code(_ token: String, verifier: TokenVerifier? = nil, at time: Int64? = nil) -> TokenGateError.Code? {
        do {
            _ = try (verifier ?? self.verifier).verify(token, now: time ?? now)
            return nil
        } catch {
            return error.code
        }
    }

    @Test("a well-formed token verifies and yields its claims")
    func valid() throws {
        let claims = try verifier.verify(factory.sign(), now: now)
        #expect(
            claims == VerifiedToken(user: "alice", sid: "sSsSsSsSsSsSsSsSsSsSsS", jti: "jJjJjJjJjJjJjJjJjJjJjJ", issuedAt: now, expiresAt: now + 30)
        )
    }

    @Test("a header with its members in another order (an earlier version's jwt-kit) is parsed and verifies")
    func headerMemberOrder() throws {
        for header in [#"{"kid":"test-kid","alg":"HS256","typ":"JWT"}"#, #"{"typ":"JWT","kid":"test-kid","alg":"HS256"}"#] {
            #expect(try verifier.verify(factory.sign(header: header), now: now).user == "alice")
        }
    }

    @Test("expiry honours the clock leeway, then answers token_expired")
    func expiry() {
        let token = factory.sign()
        #expect(code(token, at: now + 31) == nil)  // within the 2 s leeway
        #expect(code(token, at: now + 32) == .tokenExpired)
        #expect(code(token, at: now + 3600) == .tokenExpired)
    }

    @Test("a token issued in the future, or not yet valid, is refused")
    func future() {
        #expect(code(factory.sign(payload: TokenFactory.claims(iat: now + 10, exp: now + 40))) == .invalidToken)
        #expect(code(factory.sign(payload: TokenFactory.claims(iat: now + 2, exp: now + 32))) == nil)
        #expect(code(factory.sign(payload: TokenFactory.claims(extra: #","nbf":\#(now + 60)"#))) == .invalidToken)
    }

    @Test("a lifetime longer than TOKEN_TTL is refused even with a valid signature")
    func lifetime() {
        // Found by the fuzzer's harness: exp - iat overflowed (a trap, not a 401) for a huge negative iat.
        #expect(code(factory.sign(payload: TokenFactory.claims(iat: .min, exp: 1))) == .invalidToken)
        #expect(code(factory.sign(payload: TokenFactory.claims(iat: .min, exp: .max))) == .invalidToken)
        #expect(code(factory.sign(payload: TokenFactory.claims(exp: now + 31))) == .invalidToken)
        #expect(code(factory.sign(payload: TokenFactory.claims(exp: now))) == .invalidToken)
    }

    @Test(
        "only HS256 with typ JWT and a known kid is accepted",
        arguments: [
            #"{"alg":"none","typ":"JWT","kid":"test-kid"}"#,
            #"{"alg":"None","typ":"JWT","kid":"test-kid"}"#,
            #"{"alg":"hs256","typ":"JWT","kid":"test-kid"}"#,
            #"{"alg":"HS384","typ":"JWT","kid":"test-kid"}"#,
            #"{"alg":"RS256","typ":"JWT","kid":"test-kid"}"#,
            #"{"typ":"JWT","kid":"test-kid"}"#,
            #"{"alg":"HS256","kid":"test-kid"}"#,
            #"{"alg":"HS256","typ":"at+jwt","kid":"test-kid"}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"other"}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"../../etc/passwd"}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"test-kid","crit":["exp"]}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"test-kid","b64":false}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"test-kid","jku":"https://evil.example/keys"}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"test-kid","jwk":{"kty":"oct","k":"AAAA"}}"#,
            #"{"alg":"HS256","typ":"JWT","kid":"test-kid","x5u":"https://evil.example/cert"}"#,
            #"{"alg":"HS256","alg":"HS256","typ":"JWT","kid":"test-kid"}"#,
            #"["HS256"]"#,
        ]
    )
    func header(header: String) {
        #expect(code(factory.sign(header: header)) == .invalidToken)
    }

    @Test("alg none with an empty signature is refused")
    func algNone() {
        let token = TokenFactory.segment(#"{"alg":"none","typ":"JWT"}"#) + "." + TokenFactory.segment(TokenFactory.claims()) + "."
        #expect(code(token) == .invalidToken)
    }

    @Test("a wrong key, a tampered payload or a damaged signature is refused")
    func signature() {
        let token = factory.sign()
        var other = TokenFactory()
        other.key = Array("another-key-another-key-another-key!!".utf8)
        #expect(code(other.sign()) == .invalidToken)
        let parts = token.split(separator: ".").map(String.init)
        let tampered = parts[0] + "." + TokenFactory.segment(TokenFactory.claims(sub: "mallory")) + "." + parts[2]
        #expect(code(tampered) == .invalidToken)
        #expect(code(parts[0] + "." + parts[1] + ".") == .invalidToken)
        #expect(code(parts[0] + "." + parts[1] + "." + parts[2].dropLast(2)) == .invalidToken)
        var flipped = Array(parts[2].utf8)
        flipped[5] = flipped[5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(code(parts[0] + "." + parts[1] + "." + String(decoding: flipped, as: UTF8.self)) == .invalidToken)
    }

    @Test("segment counts, padding and foreign alphabets are refused")
    func shape() {
        let token = factory.sign()
        let parts = token.split(separator: ".").map(String.init)
        #expect(code(parts[0] + "." + parts[1]) == .invalidToken)
        #expect(code(token + ".x") == .invalidToken)
        #expect(code(token + "=") == .invalidToken)
        #expect(code(parts[0] + "=." + parts[1] + "." + parts[2]) == .invalidToken)
        #expect(code(parts[0].replacingFirst("-", "+") + "." + parts[1] + "." + parts[2]) == .invalidToken || !parts[0].contains("-"))
        #expect(code("") == .invalidToken)
        #expect(code("..") == .invalidToken)
    }

    @Test(
        "claims of the wrong type or form are refused",
        arguments: [
            TokenFactory.claims(iss: "someone-else"),
            TokenFactory.claims(sub: ""),
            TokenFactory.claims(sub: "a\\u0000b"),
            TokenFactory.claims(sub: String(repeating: "a", count: 256)),
            TokenFactory.claims(sid: "short"),
            TokenFactory.claims(jti: "short"),
            TokenFactory.claims(jti: "jJjJjJjJjJjJjJjJjJjJ\\r\\nFLUSHALL"),
            #"{"iss":"tokengate","sub":"alice","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":"1800000000","exp":1800000030}"#,
            #"{"iss":"tokengate","sub":"alice","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":1800000000.5,"exp":1800000030}"#,
            #"{"iss":"tokengate","sub":"alice","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":1800000000}"#,
            #"{"iss":"tokengate","sub":"alice","sid":"sSsSsSsSsSsSsSsSsSsSsS","iat":1800000000,"exp":1800000030}"#,
            #"{"iss":"tokengate","sub":"alice","sub":"bob","sid":"sSsSsSsSsSsSsSsSsSsSsS","jti":"jJjJjJjJjJjJjJjJjJjJjJ","iat":1800000000,"exp":1800000030}"#,
            TokenFactory.claims(extra: #","aud":"somebody""#),
            #"[1,2,3]"#,
            #"null"#,
        ]
    )
    func claims(payload: String) {
        #expect(code(factory.sign(payload: payload)) == .invalidToken)
    }

    @Test("aud is required to match when configured")
    func audience() {
        let strict = TokenFactory.verifier(audience: "app")
        #expect(code(factory.sign(), verifier: strict) == .invalidToken)
        #expect(code(factory.sign(payload: TokenFactory.claims(extra: #","aud":"app""#)), verifier: strict) == nil)
        #expect(code(factory.sign(payload: TokenFactory.claims(extra: #","aud":["x","app"]"#)), verifier: strict) == nil)
        #expect(code(factory.sign(payload: TokenFactory.claims(extra: #","aud":"other""#)), verifier: strict) == .invalidToken)
    }

    @Test("a token over 4 KiB is refused before decoding")
    func oversize() {
        let padding = String(repeating: "x", count: 4200)
        #expect(code(factory.sign(payload: TokenFactory.claims(extra: #","pad":"\#(padding)""#))) == .invalidToken)
    }

    @Test("non-UTF-8 and control characters in claims are refused")
    func bytes() {
        let input = TokenFactory.segment(TokenFactory.header) + "." + Base64URL.encode([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: TokenFactory.key))
        #expect(code(input + "." + Base64URL.encode(Array(mac))) == .invalidToken)
    }
}

extension String {
    fileprivate func replacingFirst(_ target: Character, _ replacement: Character) -> String {
        guard let index = firstIndex(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(index...index, with: String(replacement))
        return copy
    }
}
