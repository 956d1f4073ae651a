/// Every setting of `tokengate serve`: its environment variable, its flag, its default and its help.
///
/// This table is the one place these facts live; the command line, `--help` and the README
/// follow it (CONTRACT section 3).
public enum Setting: String, CaseIterable, Sendable {
    case listen = "TOKENGATE_LISTEN"
    case redisURL = "TOKENGATE_REDIS_URL"
    case redisTLSCAFile = "TOKENGATE_REDIS_TLS_CA_FILE"
    case redisTLSCertFile = "TOKENGATE_REDIS_TLS_CERT_FILE"
    case redisTLSKeyFile = "TOKENGATE_REDIS_TLS_KEY_FILE"
    case redisTLSServerName = "TOKENGATE_REDIS_TLS_SERVER_NAME"
    case redisSentinelUsername = "TOKENGATE_REDIS_SENTINEL_USERNAME"
    case redisSentinelPassword = "TOKENGATE_REDIS_SENTINEL_PASSWORD"
    case redisWait = "TOKENGATE_REDIS_WAIT"
    case signingKeyFile = "TOKENGATE_SIGNING_KEY_FILE"
    case signingKey = "TOKENGATE_SIGNING_KEY"
    case tokenTTL = "TOKENGATE_TOKEN_TTL"
    case sessionIdle = "TOKENGATE_SESSION_IDLE"
    case sessionMaxAge = "TOKENGATE_SESSION_MAX_AGE"
    case clockLeeway = "TOKENGATE_CLOCK_LEEWAY"
    case rotation = "TOKENGATE_ROTATION"
    case usersFile = "TOKENGATE_USERS_FILE"
    case keyPrefix = "TOKENGATE_KEY_PREFIX"
    case issuer = "TOKENGATE_ISSUER"
    case audience = "TOKENGATE_AUDIENCE"
    case reuseGrace = "TOKENGATE_REUSE_GRACE"
    case closeGrace = "TOKENGATE_CLOSE_GRACE"
    case cookie = "TOKENGATE_COOKIE"
    case redisTimeout = "TOKENGATE_REDIS_TIMEOUT"
    case trustedProxies = "TOKENGATE_TRUSTED_PROXIES"
    case maxSessions = "TOKENGATE_MAX_SESSIONS"
    case clientTimeout = "TOKENGATE_CLIENT_TIMEOUT"
    case ipv6LimitPrefix = "TOKENGATE_IPV6_LIMIT_PREFIX"
    case adminListen = "TOKENGATE_ADMIN_LISTEN"
    case adminKeysFile = "TOKENGATE_ADMIN_KEYS_FILE"

    /// The environment variable.
    public var environmentName: String { rawValue }

    /// The `serve` flag, e.g. `--token-ttl`.
    public var flag: String {
        "--" + rawValue.dropFirst("TOKENGATE_".count).lowercased().replacingOccurrences(of: "_", with: "-")
    }

    /// The default, or nil when there is none.
    public var defaultValue: String? {
        switch self {
        case .listen: "127.0.0.1:8080"
        case .redisURL: "redis://127.0.0.1:6379/0"
        case .signingKeyFile, .signingKey, .usersFile, .audience, .trustedProxies, .adminListen, .adminKeysFile: nil
        case .redisTLSCAFile, .redisTLSCertFile, .redisTLSKeyFile, .redisTLSServerName: nil
        case .redisSentinelUsername, .redisSentinelPassword: nil
        case .redisWait: "0"
        case .tokenTTL: "30"
        case .sessionIdle: "1800"
        case .sessionMaxAge: "43200"
        case .clockLeeway: "2"
        case .rotation: "off"
        case .keyPrefix: "tg:"
        case .issuer: "tokengate"
        case .reuseGrace: "2"
        case .closeGrace: "2"
        case .cookie: "off"
        case .redisTimeout: "1"
        case .maxSessions: "100"
        case .clientTimeout: "10"
        case .ipv6LimitPrefix: "64"
        }
    }

    /// One line of help.
    public var help: String {
        switch self {
        case .listen: "host:port to bind"
        case .redisURL:
            "redis://[[user]:password@]host:port/db, rediss://… for TLS, redis+sentinel://[[user]:password@]host1:port1,host2:port2/<primary-name>[/db], or redis+cluster://[[user]:password@]host1:port1,host2:port2/"
        case .redisTLSCAFile: "with rediss://: PEM file of the CA(s) Redis's certificate must chain to (default: the system's roots)"
        case .redisTLSCertFile: "with rediss://: PEM client certificate, for a Redis that asks for one (tls-auth-clients)"
        case .redisTLSKeyFile: "with rediss://: PEM private key of the client certificate"
        case .redisTLSServerName: "with rediss://: the DNS name Redis's certificate must carry, and the SNI sent (default: the URL's host)"
        case .redisSentinelUsername: "with redis+sentinel://: ACL user for the sentinels (the URL's credentials are the data nodes')"
        case .redisSentinelPassword: "with redis+sentinel://: password for the sentinels"
        case .redisWait:
            "replicas that must confirm a login, refresh, logout or revoke (WAIT, at most half the Redis timeout) before it is answered, else 503"
        case .signingKeyFile:
            "file of signing keys, one a line (first signs, all verify): an HS256 secret of 32+ bytes, or EdDSA:/ES256: lines from `key generate`"
        case .signingKey: "the signing key(s) themselves, as in the file (prefer the file)"
        case .tokenTTL: "token lifetime in seconds; the Redis TTL of each token key"
        case .sessionIdle: "seconds without a user-driven request before a session ends"
        case .sessionMaxAge: "absolute session lifetime in seconds"
        case .clockLeeway: "seconds of clock skew tolerated on exp/iat (0-5)"
        case .rotation: "off, or per-request: every protected response carries a successor token in X-Next-Token"
        case .usersFile: "htpasswd file with bcrypt entries"
        case .keyPrefix: "prefix of every Redis key"
        case .issuer: "iss written into and required of every token"
        case .audience: "aud written into and required of every token, when set"
        case .reuseGrace: "seconds a rotated-out token keeps working"
        case .closeGrace: "seconds a closed page's session survives so a reload can resume it"
        case .cookie: "on or off: also carry the token in an HttpOnly session cookie, with a CSRF check"
        case .redisTimeout: "seconds to connect to and hear back from Redis before failing closed (503)"
        case .trustedProxies: "addresses or CIDR ranges of proxies whose X-Forwarded-For names the client, e.g. 127.0.0.1"
        case .maxSessions: "live sessions per user; a login beyond it ends the session closest to expiry (0: no limit)"
        case .clientTimeout: "seconds a client connection may stay idle, or take to send a request's headers or body"
        case .ipv6LimitPrefix: "IPv6 clients are counted by their network of this many bits for the per-address limits (32-128)"
        case .adminListen: "host:port of the service API (/admin/v1/), for app backends only: never route it through the balancer"
        case .adminKeysFile: "the service API's keys, one NAME:sha256:<hex> a line (`tokengate admin-key generate`)"
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
