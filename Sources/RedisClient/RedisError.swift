/// An error from the Redis client: the connection, the protocol, or a Redis error reply.
///
/// Callers that guard requests treat every kind as "Redis did not say yes" and fail closed.
public struct RedisError: Error, Sendable, CustomStringConvertible {
    /// What went wrong. New kinds may be added (a struct, not a closed enum, so that adding one
    /// breaks no caller's `switch`).
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The TCP connection could not be made, or the handshake (AUTH/SELECT/ROLE) failed.
        public static let connectionFailed = Kind("connectionFailed")
        /// The connection closed or was reset while commands were waiting.
        public static let connectionClosed = Kind("connectionClosed")
        /// Redis did not answer within the command timeout.
        public static let timeout = Kind("timeout")
        /// The client is backing off after failures, or knows no primary, and did not try.
        public static let unavailable = Kind("unavailable")
        /// The bytes from Redis could not be parsed.
        public static let protocolError = Kind("protocolError")
        /// Redis answered with an error reply (its first word is the `code`).
        public static let server = Kind("server")
        /// Fewer replicas than asked confirmed a write within the bound (`WAIT`); the write may
        /// still have happened on the primary.
        public static let notReplicated = Kind("notReplicated")
        /// The client has been shut down.
        public static let shutdown = Kind("shutdown")
    }

    /// The first word of an error reply (`-READONLY You can't write…` → `READONLY`), so callers
    /// can tell a redirect or a failover from a script's error. New codes may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The script is not in the server's cache (flushed, restarted, or a promoted replica).
        public static let noScript = Code("NOSCRIPT")
        /// The server is a replica (a failover demoted the primary we were talking to).
        public static let readOnly = Code("READONLY")
        /// The server is loading its data set.
        public static let loading = Code("LOADING")
        /// A replica lost its primary (`replica-serve-stale-data no`).
        public static let masterDown = Code("MASTERDOWN")
        /// Cluster: the key's slot is served by another node.
        public static let moved = Code("MOVED")
        /// Cluster: the key's slot is migrating; ask the other node once.
        public static let ask = Code("ASK")
        /// Cluster: a multi-key command during a resharding; try again later.
        public static let tryAgain = Code("TRYAGAIN")
        /// Cluster: the cluster is down (a slot has no primary).
        public static let clusterDown = Code("CLUSTERDOWN")
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

    /// An error reply's code (nil for every other kind).
    public var code: Code? {
        guard kind == .server else { return nil }
        return Code(String(message.prefix { $0 != " " }))
    }

    /// True for `NOSCRIPT` error replies (the script cache was flushed or Redis restarted).
    public var isNoScript: Bool { code == .noScript }

    /// True when the server we talked to is not (or no longer) a primary that can serve us: a
    /// failover is under way or over. The command did not run; the topology must be looked up again.
    public var isRoleChange: Bool {
        switch code {
        case Code.readOnly?, Code.loading?, Code.masterDown?: true
        default: false
        }
    }

    /// True for Cluster's replies that say the command did not run here: `MOVED`, `ASK`,
    /// `TRYAGAIN`, `CLUSTERDOWN`.
    public var isRedirect: Bool {
        switch code {
        case Code.moved?, Code.ask?, Code.tryAgain?, Code.clusterDown?: true
        default: false
        }
    }

    public var description: String { "redis \(kind): \(message)" }
}
