/// An error from the Redis client: the connection, the protocol, or a Redis error reply.
///
/// Callers that guard requests treat every kind as "Redis did not say yes" and fail closed.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable {
        /// The TCP connection could not be made, or the handshake (AUTH/SELECT) failed.
        case connectionFailed
        /// The connection closed or was reset while commands were waiting.
        case connectionClosed
        /// Redis did not answer within the command timeout.
        case timeout
        /// The client is backing off after failures and did not try.
        case unavailable
        /// The bytes from Redis could not be parsed.
        case protocolError
        /// Redis answered with an error reply.
        case server
        /// The client has been shut down.
        case shutdown
    }

    /// What went wrong.
    public let kind: Kind
    /// Human-readable detail, never containing command arguments.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// True for `NOSCRIPT` error replies (the script cache was flushed or Redis restarted).
    public var isNoScript: Bool { kind == .server && message.hasPrefix("NOSCRIPT") }

    public var description: String { "redis \(kind): \(message)" }
}
