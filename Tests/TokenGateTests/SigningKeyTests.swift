import Crypto
import Testing

@testable import TokenGate

/// Signing keys: EdDSA and ES256 next to HS256, rotation with overlap, and the RFC 7515 examples.
@Suite("signing keys and rotation")
struct SigningKeyTests {
    let now = TokenFactory.now

    private func verifier(_ keys: [SigningKey]) -> TokenVerifier {
        TokenVerifier(signingKeys: keys, issuer: "tokengate", audience: nil, tokenTTL: 30, leeway: 2)
    }

    private func issue(_ key: SigningKey) throws -> String {
        let issuer = TokenIssuer(signingKey: key, issuer: "tokengate", audience: nil, tokenTTL: 30)
        return try issuer.issue(user: "alice", sid: Identifier.random(), now: now).token
    }

    private func header(of token: String) -> [String: JSONValue]? {
        guard let segment = token.split(separator: ".").first, let bytes = Base64URL.decode(segment.utf8) else { return nil }
        return try? StrictJSON.parseObject(bytes)
    }

    private func failure(_ body: () throws(TokenGateError) -> VerifiedToken) -> TokenGateError? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }

    @Test("EdDSA and ES256 tokens from TokenIssuer verify, with their alg and kid in the header")
    func asymmetric() throws {
        for key in [SigningKey(eddsa: .init()), SigningKey(es256: .init())] {
            let token = try issue(key)
            #expect(try verifier([key]).verify(token, now: now).user == "alice")
            #expect(header(of: token)?["alg"]?.string == key.algorithm)
            #expect(header(of: token)?["kid"]?.string == key.kid)
            // One flipped bit in the signature.
            var bytes = Array(token.utf8)
            let last = bytes.count - 2
            bytes[last] = bytes[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            let error = failure { () throws(TokenGateError) in try verifier([key]).verify(String(decoding: bytes, as: UTF8.self), now: now) }
            #expect(error?.code == .invalidToken)
        }
    }

    @Test("an HS256 token cannot use an asymmetric key's public half as its secret (key confusion)")
    func keyConfusion() {
        let key = SigningKey(eddsa: .init())
        guard case .eddsa(let privateKey) = key.material else { return }
        var factory = TokenFactory()
        factory.key = Array(privateKey.publicKey.rawRepresentation)
        let forged = factory.sign(header: #"{"alg":"HS256","typ":"JWT","kid":"\#(key.kid)"}"#)
        let error = failure { () throws(TokenGateError) in try verifier([key]).verify(forged, now: now) }
        #expect(error?.code == .invalidToken)
        #expect(error?.message.contains("algorithm does not match the key") == true)
        // And the other way: a header claiming EdDSA for the HS256 key.
        let secret = SigningKey(hs256: TokenFactory.key)
        let claimed = TokenFactory().sign(header: #"{"alg":"EdDSA","typ":"JWT","kid":"\#(secret.kid)"}"#)
        #expect(failure { () throws(TokenGateError) in try verifier([secret]).verify(claimed, now: now) }?.code == .invalidToken)
    }

    @Test("rotation with overlap: the new key signs, the old one still verifies, and a dropped key verifies nothing")
    func rotation() throws {
        let old = SigningKey(hs256: Array("an-old-hs256-secret-of-at-least-32-bytes".utf8))
        let new = SigningKey(eddsa: .init())
        let oldToken = try issue(old)
        let newToken = try issue(new)
        let overlap = verifier([new, old])
        #expect(try overlap.verify(oldToken, now: now).user == "alice")
        #expect(try overlap.verify(newToken, now: now).user == "alice")
        let after = failure { () throws(TokenGateError) in try verifier([new]).verify(oldToken, now: now) }
        #expect(after?.message.contains("unknown key id") == true, "an unknown kid never falls back to another key")
    }

    @Test("without a kid, only a verifier with a single key knows which key is meant")
    func missingKid() throws {
        let headerWithoutKid = #"{"alg":"HS256","typ":"JWT"}"#
        let token = TokenFactory().sign(header: headerWithoutKid)
        #expect(try TokenFactory.verifier().verify(token, now: now).user == "alice")
        let two = TokenVerifier(
            keys: [TokenFactory.kid: SymmetricKey(data: TokenFactory.key), "other": SymmetricKey(size: .bits256)],
            issuer: "tokengate",
            audience: nil,
            tokenTTL: 30,
            leeway: 2
        )
        #expect(failure { () throws(TokenGateError) in try two.verify(token, now: now) }?.code == .invalidToken)
    }

    // RFC 7515 Appendix A.1: the HS256 example, with its key (a JWK "k" value).
    static let rfcKey = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    static let rfcSigningInput =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    static let rfcSignature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    @Test("RFC 7515 A.1 verifies with its key (then fails TokenGate's claims); A.5 (alg none) is refused")
    func rfc7515() throws {
        let key = try #require(Base64URL.decode(Self.rfcKey.utf8))
        let rfc = TokenVerifier(keys: ["k": SymmetricKey(data: key)], issuer: "joe", audience: nil, tokenTTL: 30, leeway: 2)
        let a1 = Self.rfcSigningInput + "." + Self.rfcSignature
        // The signature and header pass; the first refusal is a claim A.1 does not have (sub).
        let error = failure { () throws(TokenGateError) in try rfc.verify(a1, now: 1_300_819_370) }
        #expect(error?.message == "the token is invalid: bad sub")
        let tampered = Self.rfcSigningInput + "." + "eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        #expect(failure { () throws(TokenGateError) in try rfc.verify(tampered, now: 1_300_819_370) }?.message.contains("signature") == true)
        let a5 = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
        #expect(failure { () throws(TokenGateError) in try rfc.verify(a5, now: 1_300_819_370) }?.message.contains("algorithm not accepted") == true)
    }

    @Test("key files: one key a line, the first signs; bad lines are named without echoing the key")
    func keyFile() throws {
        let ed = try #require(SigningKey.generateLine(algorithm: "EdDSA"))
        let es = try #require(SigningKey.generateLine(algorithm: "ES256"))
        let hs = try #require(SigningKey.generateLine(algorithm: "HS256"))
        let keys = try SigningKey.parseList("# rotated in on Monday\n\(ed)\n\n\(es)\n  \(hs)  \n")
        #expect(keys.map(\.algorithm) == ["EdDSA", "ES256", "HS256"])
        #expect(try SigningKey.parseList(ed).first?.kid == keys.first?.kid, "the kid is derived from the key")
        #expect(keys[0].publicJWK?.first { $0.0 == "crv" }?.1 == "Ed25519")
        #expect(keys[1].publicJWK?.first { $0.0 == "crv" }?.1 == "P-256")
        #expect(keys[2].publicJWK == nil, "HS256 secrets are never published")
        for bad in ["EdDSA:c2hvcnQ", "ES256:!!!!", "too-short-secret", "", "\(hs)\n\(hs)"] {
            do {
                _ = try SigningKey.parseList(bad)
                Issue.record("accepted \(bad)")
            } catch {
                #expect(!error.message.contains("c2hvcnQ") && !error.message.contains("too-short"))
            }
        }
    }
}
