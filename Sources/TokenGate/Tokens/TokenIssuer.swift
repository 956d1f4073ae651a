import Crypto
import JWTKit

/// A freshly signed access token.
public struct IssuedToken: Sendable {
    /// The compact JWS.
    public let token: String
    /// Its `jti`.
    public let jti: String
    /// Its `exp`, Unix seconds.
    public let expiresAt: Int64
}

/// Signs access tokens with jwt-kit (HS256, EdDSA or ES256, with `kid` and `typ: JWT` in the header).
public struct TokenIssuer: Sendable {
    private let keys: JWTKeyCollection
    private let kid: JWKIdentifier
    private let issuer: String
    private let audience: String?
    private let tokenTTL: Int64

    /// Creates an issuer that signs with the HS256 secret `key`, named `kid`.
    public init(key: [UInt8], kid: String, issuer: String, audience: String?, tokenTTL: Int) async {
        self.kid = JWKIdentifier(string: kid)
        self.keys = await JWTKeyCollection().add(hmac: HMACKey(key: SymmetricKey(data: key)), digestAlgorithm: .sha256, kid: self.kid)
        self.issuer = issuer
        self.audience = audience
        self.tokenTTL = Int64(tokenTTL)
    }

    /// Creates an issuer that signs with `key`, named by its `kid`.
    public init(signingKey key: SigningKey, issuer: String, audience: String?, tokenTTL: Int) async {
        let kid = JWKIdentifier(string: key.kid)
        self.kid = kid
        switch key.material {
        case .hs256(let secret):
            self.keys = await JWTKeyCollection().add(hmac: HMACKey(key: secret), digestAlgorithm: .sha256, kid: kid)
        case .eddsa(let privateKey):
            self.keys = await JWTKeyCollection().add(eddsa: EdDSA.PrivateKey(backing: privateKey), kid: kid)
        case .es256(let privateKey):
            // jwt-kit re-reads swift-crypto's raw key; a key swift-crypto accepted cannot fail here.
            guard let jwtKey = try? ES256PrivateKey(backing: privateKey) else { preconditionFailure("P-256 key rejected by jwt-kit") }
            self.keys = await JWTKeyCollection().add(ecdsa: jwtKey, kid: kid)
        }
        self.issuer = issuer
        self.audience = audience
        self.tokenTTL = Int64(tokenTTL)
    }

    /// Signs a new token for `user` in session `sid`, issued at `now` (Unix seconds).
    public func issue(user: String, sid: String, now: Int64) async throws -> IssuedToken {
        let jti = Identifier.random()
        let claims = AccessClaims(
            iss: issuer,
            sub: user,
            aud: audience,
            sid: sid,
            jti: jti,
            iat: now,
            exp: now + tokenTTL
        )
        let token = try await keys.sign(claims, kid: kid)
        return IssuedToken(token: token, jti: jti, expiresAt: claims.exp)
    }
}

/// The claims TokenGate writes (CONTRACT section 2).
struct AccessClaims: JWTPayload {
    var iss: String
    var sub: String
    var aud: String?
    var sid: String
    var jti: String
    var iat: Int64
    var exp: Int64

    // Verification is TokenVerifier's job; jwt-kit is used here only to sign.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
