import Crypto
import JWTKit
import Testing

@testable import TokenGate

/// TokenGate signs its tokens itself (`TokenIssuer`, `SigningKey.sign`, swift-crypto); jwt-kit, an
/// independent implementation, is the oracle: every token TokenGate issues must verify there, with
/// the claims the contract names, and the RFC examples must come out as the RFCs say.
@Suite("token issuing, checked by jwt-kit")
struct TokenIssuerTests {
    /// The claims as jwt-kit decodes them.
    struct OracleClaims: JWTPayload {
        var iss: String
        var sub: String
        var aud: String?
        var sid: String
        var jti: String
        var iat: Int64
        var exp: Int64

        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// jwt-kit's key collection holding `key` under its kid.
    private func oracle(_ key: SigningKey) async throws -> JWTKeyCollection {
        let kid = JWKIdentifier(string: key.kid)
        switch key.material {
        case .hs256(let secret):
            return await JWTKeyCollection().add(hmac: HMACKey(key: secret), digestAlgorithm: .sha256, kid: kid)
        case .eddsa(let privateKey):
            return await JWTKeyCollection().add(eddsa: EdDSA.PublicKey(backing: privateKey.publicKey), kid: kid)
        case .es256(let privateKey):
            return await JWTKeyCollection().add(ecdsa: try ES256PublicKey(backing: privateKey.publicKey), kid: kid)
        }
    }

    @Test(
        "every algorithm's tokens verify with jwt-kit and with TokenVerifier, with the contract's header and claims",
        arguments: ["HS256", "EdDSA", "ES256"],
        [nil, "app"] as [String?]
    )
    func oracleAgrees(algorithm: String, audience: String?) async throws {
        let key = try SigningKey(line: try #require(SigningKey.generateLine(algorithm: algorithm)))
        let issuer = TokenIssuer(signingKey: key, issuer: "tokengate", audience: audience, tokenTTL: 30)
        let sid = Identifier.random()
        let issued = try issuer.issue(user: "alice", sid: sid, now: TokenFactory.now)

        let claims = try await oracle(key).verify(issued.token, as: OracleClaims.self)
        #expect(claims.iss == "tokengate" && claims.sub == "alice" && claims.aud == audience && claims.sid == sid)
        #expect(claims.jti == issued.jti && Identifier.isValid(claims.jti))
        #expect(claims.iat == TokenFactory.now && claims.exp == TokenFactory.now + 30 && issued.expiresAt == claims.exp)

        let headerSegment = try #require(issued.token.split(separator: ".").first)
        let header = try StrictJSON.parseObject(try #require(Base64URL.decode(headerSegment.utf8)))
        #expect(header == ["alg": .string(algorithm), "typ": .string("JWT"), "kid": .string(key.kid)])

        let verifier = TokenVerifier(signingKeys: [key], issuer: "tokengate", audience: audience, tokenTTL: 30, leeway: 2)
        #expect(
            try verifier.verify(issued.token, now: TokenFactory.now)
                == VerifiedToken(user: "alice", sid: sid, jti: issued.jti, issuedAt: TokenFactory.now, expiresAt: TokenFactory.now + 30)
        )
    }

    @Test("an issuer and audience that need JSON escapes are written escaped, and read back as they were")
    func escapedClaims() async throws {
        let key = SigningKey(hs256: TokenFactory.key)
        let odd = #"iss "quoted" \ <tag> é"#
        let issued = try TokenIssuer(signingKey: key, issuer: odd, audience: odd, tokenTTL: 30).issue(
            user: "alice",
            sid: Identifier.random(),
            now: TokenFactory.now
        )
        #expect(try await oracle(key).verify(issued.token, as: OracleClaims.self).iss == odd)
        let verifier = TokenVerifier(signingKeys: [key], issuer: odd, audience: odd, tokenTTL: 30, leeway: 2)
        #expect(try verifier.verify(issued.token, now: TokenFactory.now).user == "alice")
    }

    @Test("RFC 7515 A.1: the HS256 signature of the RFC's signing input is the RFC's")
    func rfc7515HS256() throws {
        let key = SigningKey(hs256: try #require(Base64URL.decode(SigningKeyTests.rfcKey.utf8)))
        let signature = try key.sign(Array(SigningKeyTests.rfcSigningInput.utf8))
        #expect(Base64URL.encode(signature) == SigningKeyTests.rfcSignature)
    }

    // RFC 8037 A.1 and A.4: the Ed25519 key and the JWS of "Example of Ed25519 signing".
    static let ed25519Seed = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
    static let ed25519Public = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    static let ed25519Input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    static let ed25519Signature = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"

    @Test("RFC 8037 A.4: the Ed25519 JWS verifies with TokenGate's key, and TokenGate's signature with the RFC's public key")
    func rfc8037EdDSA() throws {
        let privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: try #require(Base64URL.decode(Self.ed25519Seed.utf8)))
        #expect(Base64URL.encode(privateKey.publicKey.rawRepresentation) == Self.ed25519Public)
        let key = SigningKey(eddsa: privateKey)
        let input = Array(Self.ed25519Input.utf8)
        let rfcSignature = try #require(Base64URL.decode(Self.ed25519Signature.utf8))
        let checker = VerificationKey(key)
        #expect(input.withUnsafeBytes { checker.isValid(rfcSignature, for: $0) })
        let ours = try key.sign(input)
        let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Base64URL.decode(Self.ed25519Public.utf8)))
        #expect(publicKey.isValidSignature(ours, for: input))
        var flipped = ours
        flipped[0] ^= 1
        #expect(!input.withUnsafeBytes { checker.isValid(flipped, for: $0) })
    }
}
