/// Where and how to reach Redis.
///
/// Parsed from `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS. Only the
/// standalone form exists today; Sentinel discovery and Cluster routing are future `Endpoint` cases
/// behind the same client API.
public struct RedisConfiguration: Sendable, Equatable {
    /// How the client finds its server(s).
    public enum Endpoint: Sendable, Equatable {
        /// One Redis server.
        case standalone(host: String, port: Int)
    }

    /// Where Redis is.
    public var endpoint: Endpoint
    /// ACL user name for `AUTH`, if any.
    public var username: String?
    /// Password for `AUTH`, if any. Never logged.
    public var password: String?
    /// Database index selected after connecting.
    public var database: Int
    /// Time allowed to connect and to hear back for each command.
    public var timeout: Duration
    /// Number of pipelined connections (one per event loop is a good choice).
    public var connectionCount: Int
    /// TLS (`rediss://`), or nil for plain TCP.
    public var tls: TLS?

    /// TLS to Redis: whom to trust and who we are, as PEM files (read once, when the client is made).
    public struct TLS: Sendable, Equatable {
        /// The CA certificates that Redis's certificate must chain to; nil: the system's trust roots.
        public var caFile: String?
        /// The client certificate (chain) for servers that ask for one (`tls-auth-clients`).
        public var certificateFile: String?
        /// The client certificate's private key.
        public var keyFile: String?
        /// The DNS name Redis's certificate must carry (and the SNI sent); nil: the URL's host. A
        /// certificate carrying the IP address connected to is accepted too (swift-nio-ssl's rule).
        public var serverName: String?

        /// TLS with the system's trust roots and no client certificate.
        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverName = serverName
        }
    }

    /// Creates a configuration.
    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        timeout: Duration = .seconds(1),
        connectionCount: Int = 2,
        tls: TLS? = nil
    ) {
        self.tls = tls
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.timeout = timeout
        self.connectionCount = connectionCount
    }

    /// Parses a `redis://` or `rediss://` (TLS, with the system's trust roots until `tls` is set)
    /// URL. Throws a message naming what is wrong (never echoing the password).
    public init(url: String, timeout: Duration = .seconds(1), connectionCount: Int = 2) throws(RedisURLError) {
        let scheme: String
        if url.hasPrefix("redis://") {
            scheme = "redis://"
        } else if url.hasPrefix("rediss://") {
            scheme = "rediss://"
        } else {
            throw RedisURLError("must start with redis:// (or rediss:// for TLS)")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        var username: String? = nil
        var password: String? = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : String(user)
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncodingLossy()
            } else {
                password = String(credentials).removingPercentEncodingLossy()
            }
            if password?.isEmpty == true { password = nil }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let db = Int(dbText), db >= 0, db <= 15_999 else {
                    throw RedisURLError("database must be a number, e.g. redis://127.0.0.1:6379/0")
                }
                database = db
            }
        }
        var host = String(rest)
        var port = 6379
        if host.hasPrefix("[") {  // [::1]:6379
            guard let close = host.firstIndex(of: "]") else { throw RedisURLError("unclosed [ in host") }
            let after = host[host.index(after: close)...]
            let inner = String(host[host.index(after: host.startIndex)..<close])
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else { throw RedisURLError("port must be 1-65535") }
                port = p
            } else if !after.isEmpty {
                throw RedisURLError("unexpected text after host")
            }
            host = inner
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else {
                throw RedisURLError("port must be 1-65535")
            }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty else { throw RedisURLError("host is missing") }
        self.init(
            endpoint: .standalone(host: host, port: port),
            username: username,
            password: password,
            database: database,
            timeout: timeout,
            connectionCount: connectionCount,
            tls: scheme == "rediss://" ? TLS() : nil
        )
    }
}

/// Why a Redis URL was refused.
public struct RedisURLError: Error, Sendable, CustomStringConvertible {
    /// What is wrong with the URL.
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { "invalid Redis URL: \(reason)" }
}

extension String {
    /// Decodes %XX escapes (so passwords may hold '@' or ':'); leaves malformed escapes as they are.
    fileprivate func removingPercentEncodingLossy() -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(self.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
