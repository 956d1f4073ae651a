/// A freshly signed access token.
public struct IssuedToken: Sendable {
    /// The compact JWS.
    public let token: String
    /// Its `jti`.
    public let jti: String
    /// Its `exp`, Unix seconds.
    public let expiresAt: Int64
}

/// Signs access tokens (`docs/sessions.md`, "The token"): the header `{"alg":…,"typ":"JWT","kid":…}`, the claims
/// `iss`, `sub`, `aud` (when configured), `sid`, `jti`, `iat` and `exp`, and the key's signature
/// (`SigningKey.sign`, swift-crypto). The header is the same for every token of a key, so it is
/// encoded once. The tests check every algorithm's tokens with jwt-kit, an independent
/// implementation, and the RFC 7515 and RFC 8037 examples.
public struct TokenIssuer: Sendable {
    private let key: SigningKey
    /// The base64url header and its `.`, ahead of every payload.
    private let headerSegment: [UInt8]
    private let issuer: String
    private let audience: String?
    private let tokenTTL: Int64

    /// Creates an issuer that signs with `key`, named by its `kid`.
    public init(signingKey key: SigningKey, issuer: String, audience: String?, tokenTTL: Int) {
        self.key = key
        self.headerSegment = Array((Base64URL.encode(Self.header(algorithm: key.algorithm, kid: key.kid)) + ".").utf8)
        self.issuer = issuer
        self.audience = audience
        self.tokenTTL = Int64(tokenTTL)
    }

    /// The JSON header of every token of a key (`TokenVerifier` recognises its bytes without parsing).
    static func header(algorithm: String, kid: String) -> [UInt8] {
        var header = JSONWriter()
        header.object {
            $0.field("alg", algorithm)
            $0.field("typ", "JWT")
            $0.field("kid", kid)
        }
        return header.bytes
    }

    /// Signs a new token for `user` in session `sid`, issued at `now` (Unix seconds).
    public func issue(user: String, sid: String, now: Int64) throws -> IssuedToken {
        let jti = Identifier.random()
        var claims = JSONWriter()
        claims.object {
            $0.field("iss", issuer)
            $0.field("sub", user)
            if let audience { $0.field("aud", audience) }
            $0.field("sid", sid)
            $0.field("jti", jti)
            $0.field("iat", now)
            $0.field("exp", now + tokenTTL)
        }
        let input = headerSegment + Array(Base64URL.encode(claims.bytes).utf8)
        let signature = try key.sign(input)
        let token = String(decoding: input, as: UTF8.self) + "." + Base64URL.encode(signature)
        return IssuedToken(token: token, jti: jti, expiresAt: now + tokenTTL)
    }
}
