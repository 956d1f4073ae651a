/// One live session as `GET /auth/sessions` and `tokengate sessions` show it.
public struct SessionInfo: Sendable {
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
    /// Live tokens of the session: `jti` and seconds left (listed only when asked for).
    public let tokens: [(jti: String, ttl: Int64)]
}
