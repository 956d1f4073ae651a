/// The claims of a token whose signature and claims verified (not yet checked against Redis).
public struct VerifiedToken: Sendable, Equatable {
    /// `sub`: the canonical username.
    public let user: String
    /// `sid`: the session id.
    public let sid: String
    /// `jti`: the token id, also the last part of its Redis key.
    public let jti: String
    /// `iat`, Unix seconds.
    public let issuedAt: Int64
    /// `exp`, Unix seconds.
    public let expiresAt: Int64

    /// Creates verified claims.
    public init(user: String, sid: String, jti: String, issuedAt: Int64, expiresAt: Int64) {
        self.user = user
        self.sid = sid
        self.jti = jti
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// Random identifiers for sessions and tokens.
public enum Identifier {
    /// 128 bits from the system CSPRNG, base64url: 22 characters.
    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base64URL.encode((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    /// True for a 22–64 character base64url identifier (what `sid` and `jti` must look like).
    public static func isValid(_ text: String) -> Bool {
        let utf8 = text.utf8
        return (22...64).contains(utf8.count) && Base64URL.isAlphabet(utf8)
    }
}
