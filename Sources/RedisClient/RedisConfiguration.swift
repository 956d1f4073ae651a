/// Where and how to reach Redis.
///
/// Parsed from `redis://[[user]:password@]host[:port][/db]` (`rediss://…` for TLS) or
/// `redis+sentinel://[[user]:password@]host1[:port1],host2[:port2],…/<primary-name>[/db]`
/// (`rediss+sentinel://…`: TLS to the sentinels and the data nodes) or
/// `redis+cluster://[[user]:password@]host1[:port1],host2[:port2],…[/]` (`rediss+cluster://…`).
public struct RedisConfiguration: Sendable, Equatable {
    /// How the client finds its server.
    public enum Endpoint: Sendable, Equatable {
        /// One Redis server.
        case standalone(RedisAddress)
        /// The primary that Redis Sentinel monitors under `primaryName`, asked of `sentinels` in turn.
        case sentinel(sentinels: [RedisAddress], primaryName: String)
        /// Redis Cluster, its slot map read from any of `seeds` (and then from the nodes it names).
        case cluster(seeds: [RedisAddress])
    }

    /// Where Redis is.
    public var endpoint: Endpoint
    /// ACL user name for `AUTH`, if any.
    public var username: String?
    /// Password for `AUTH`, if any. Never logged.
    public var password: String?
    /// ACL user name for `AUTH` on the sentinels (`TOKENGATE_REDIS_SENTINEL_USERNAME`), if any.
    public var sentinelUsername: String?
    /// Password for `AUTH` on the sentinels (`TOKENGATE_REDIS_SENTINEL_PASSWORD`), if any: the
    /// URL's credentials are the data nodes'. Never logged.
    public var sentinelPassword: String?
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

    /// The Redis URL schemes, with what each means.
    private enum Kind { case standalone, sentinel, cluster }
    private static let schemes: [(prefix: String, kind: Kind, tls: Bool)] = [
        ("redis://", .standalone, false), ("rediss://", .standalone, true), ("redis+sentinel://", .sentinel, false),
        ("rediss+sentinel://", .sentinel, true), ("redis+cluster://", .cluster, false), ("rediss+cluster://", .cluster, true),
    ]

    /// Parses a `redis://`, `rediss://` (TLS, with the system's trust roots until `tls` is set),
    /// `redis+sentinel://`, `rediss+sentinel://`, `redis+cluster://` or `rediss+cluster://` URL.
    /// Throws a message naming what is wrong (never echoing the password).
    public init(url: String, timeout: Duration = .seconds(1), connectionCount: Int = 2) throws(RedisURLError) {
        guard let scheme = Self.schemes.first(where: { url.hasPrefix($0.prefix) }) else {
            throw RedisURLError("must start with redis://, rediss:// (TLS), redis+sentinel:// or redis+cluster://")
        }
        var rest = Substring(url.dropFirst(scheme.prefix.count))
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
        var path: [Substring] = []
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
            rest = rest[..<slash]
        }
        let endpoint: Endpoint
        var databaseText: Substring?
        switch scheme.kind {
        case .sentinel:
            let sentinels = try rest.split(separator: ",", omittingEmptySubsequences: false).map {
                (host) throws(RedisURLError) -> RedisAddress in try Self.address(host, defaultPort: 26379)
            }
            guard let name = path.first, !name.isEmpty else {
                throw RedisURLError("the primary's name is missing, e.g. redis+sentinel://s1:26379,s2:26379/mymaster")
            }
            guard path.count <= 2 else { throw RedisURLError("unexpected text after the database") }
            endpoint = .sentinel(sentinels: sentinels, primaryName: String(name))
            databaseText = path.count == 2 ? path[1] : nil
        case .cluster:
            let seeds = try rest.split(separator: ",", omittingEmptySubsequences: false).map {
                (host) throws(RedisURLError) -> RedisAddress in try Self.address(host, defaultPort: 6379)
            }
            guard path.allSatisfy({ $0.isEmpty }), path.count <= 1 else {
                throw RedisURLError("Redis Cluster has only database 0: nothing may follow the hosts but /")
            }
            endpoint = .cluster(seeds: seeds)
        case .standalone:
            guard path.count <= 1 else { throw RedisURLError("database must be a number, e.g. redis://127.0.0.1:6379/0") }
            endpoint = .standalone(try Self.address(rest, defaultPort: 6379))
            databaseText = path.first
        }
        var database = 0
        if let databaseText, !databaseText.isEmpty {
            guard let db = Int(databaseText), db >= 0, db <= 15_999 else {
                throw RedisURLError("database must be a number, e.g. redis://127.0.0.1:6379/0")
            }
            database = db
        }
        self.init(
            endpoint: endpoint,
            username: username,
            password: password,
            database: database,
            timeout: timeout,
            connectionCount: connectionCount,
            tls: scheme.tls ? TLS() : nil
        )
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    private static func address(_ text: Substring, defaultPort: Int) throws(RedisURLError) -> RedisAddress {
        var host = String(text)
        var port = defaultPort
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
        return RedisAddress(host: host, port: port)
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
