/// One live session as `GET /auth/sessions` and `tokengate sessions` show it.
public struct SessionInfo: Sendable, Equatable {
    /// The session id.
    public let sid: String
    /// Login time, Unix seconds (Redis clock).
    public let createdAt: Int64
    /// Last user-driven request, Unix seconds (Redis clock).
    public let lastSeen: Int64
    /// Seconds until the session ends unless refreshed.
    public let expiresIn: Int64
    /// The User-Agent at login.
    public let userAgent: String
    /// The client address at login.
    public let address: String
    /// Live tokens of the session: `jti` and seconds left.
    public let tokens: [(jti: String, ttl: Int64)]

    public static func == (lhs: SessionInfo, rhs: SessionInfo) -> Bool {
        lhs.sid == rhs.sid && lhs.createdAt == rhs.createdAt && lhs.lastSeen == rhs.lastSeen && lhs.expiresIn == rhs.expiresIn
            && lhs.userAgent == rhs.userAgent && lhs.address == rhs.address
            && lhs.tokens.map(\.jti) == rhs.tokens.map(\.jti) && lhs.tokens.map(\.ttl) == rhs.tokens.map(\.ttl)
    }
}
