public import RedisClient

/// Every setting of `tokengate serve`, each declared once: environment variable (the flag is
/// derived from it), default, help, and how its text becomes a value. A new setting is one
/// declaration here, its entry in `allCases`, its `@Option` line in `Serve` and its use in
/// `Configuration.parse`; the README's settings table says the same in more words.
extension Setting {
    /// Every setting, in the order of the README's table.
    public static let allCases: [Setting] = [
        listen, redisURL, redisTLSCAFile, redisTLSCertFile, redisTLSKeyFile, redisTLSServerName, redisSentinelUsername,
        redisSentinelPassword, redisWait, signingKeyFile, signingKey, tokenTTL, sessionIdle, sessionMaxAge, clockLeeway, rotation,
        usersFile, keyPrefix, issuer, audience, reuseGrace, closeGrace, cookie, redisTimeout, trustedProxies, maxSessions,
        clientTimeout, ipv6LimitPrefix, adminListen, adminKeysFile,
    ]

    // MARK: Listening

    public static let listen = Typed<ListenAddress>(
        "TOKENGATE_LISTEN",
        default: "127.0.0.1:8080",
        help: "host:port to bind",
        parse: listenAddress
    )
    public static let clientTimeout = Typed<Duration>(
        "TOKENGATE_CLIENT_TIMEOUT",
        default: "10",
        help: "seconds a client connection may stay idle, or take to send a request's headers or body",
        parse: duration(seconds: 1...300)
    )
    public static let trustedProxies = Typed<TrustedProxies?>(
        "TOKENGATE_TRUSTED_PROXIES",
        help: "addresses or CIDR ranges of proxies whose X-Forwarded-For names the client, e.g. 127.0.0.1"
    ) { text throws(Refusal) in
        if text.isEmpty { return TrustedProxies.none }
        guard let proxies = TrustedProxies(parsing: text) else {
            throw Refusal("a comma-separated list of IP addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8")
        }
        return proxies
    }
    public static let ipv6LimitPrefix = Typed<Int>(
        "TOKENGATE_IPV6_LIMIT_PREFIX",
        default: "64",
        help: "IPv6 clients are counted by their network of this many bits for the per-address limits (32-128)",
        parse: wholeNumber(of: "bits", in: 32...128)
    )
    public static let adminListen = Typed<ListenAddress?>(
        "TOKENGATE_ADMIN_LISTEN",
        help: "host:port of the service API (/admin/v1/), for app backends only: never route it through the balancer",
        parse: listenAddress
    )
    public static let adminKeysFile = Typed<String?>(
        "TOKENGATE_ADMIN_KEYS_FILE",
        help: "the service API's keys, one NAME:sha256:<hex> a line (`tokengate admin-key generate`)",
        parse: text
    )

    // MARK: Redis

    /// The URL alone; `Configuration.readRedis` adds the timeout, TLS and sentinel settings.
    public static let redisURL = Typed<RedisConfiguration>(
        "TOKENGATE_REDIS_URL",
        default: "redis://127.0.0.1:6379/0",
        help:
            "redis://[[user]:password@]host:port/db, rediss://… for TLS, redis+sentinel://[[user]:password@]host1:port1,host2:port2/<primary-name>[/db], or redis+cluster://[[user]:password@]host1:port1,host2:port2/"
    ) { url throws(Refusal) in
        do { return try RedisConfiguration(url: url) } catch { throw Refusal("\(error)") }
    }
    public static let redisTimeout = Typed<Duration>(
        "TOKENGATE_REDIS_TIMEOUT",
        default: "1",
        help: "seconds to connect to and hear back from Redis before failing closed (503)",
        parse: fractionalSeconds(upTo: 60)
    )
    public static let redisTLSCAFile = Typed<String?>(
        "TOKENGATE_REDIS_TLS_CA_FILE",
        help: "with rediss://: PEM file of the CA(s) Redis's certificate must chain to (default: the system's roots)",
        parse: text
    )
    public static let redisTLSCertFile = Typed<String?>(
        "TOKENGATE_REDIS_TLS_CERT_FILE",
        help: "with rediss://: PEM client certificate, for a Redis that asks for one (tls-auth-clients)",
        parse: text
    )
    public static let redisTLSKeyFile = Typed<String?>(
        "TOKENGATE_REDIS_TLS_KEY_FILE",
        help: "with rediss://: PEM private key of the client certificate",
        parse: text
    )
    public static let redisTLSServerName = Typed<String?>(
        "TOKENGATE_REDIS_TLS_SERVER_NAME",
        help: "with rediss://: the DNS name Redis's certificate must carry, and the SNI sent (default: the URL's host)",
        parse: text
    )
    public static let redisSentinelUsername = Typed<String?>(
        "TOKENGATE_REDIS_SENTINEL_USERNAME",
        help: "with redis+sentinel://: ACL user for the sentinels (the URL's credentials are the data nodes')",
        parse: text
    )
    public static let redisSentinelPassword = Typed<String?>(
        "TOKENGATE_REDIS_SENTINEL_PASSWORD",
        help: "with redis+sentinel://: password for the sentinels",
        parse: text
    )
    public static let redisWait = Typed<Int>(
        "TOKENGATE_REDIS_WAIT",
        default: "0",
        help: "replicas that must confirm a login, refresh, logout or revoke (WAIT, at most half the Redis timeout) before it is answered, else 503"
    ) { text throws(Refusal) in
        guard let replicas = Int(text), (0...16).contains(replicas) else { throw Refusal("must be a number of replicas from 0 to 16") }
        return replicas
    }
    public static let keyPrefix = Typed<KeyLayout>(
        "TOKENGATE_KEY_PREFIX",
        default: "tg:",
        help: "prefix of every Redis key"
    ) { prefix throws(Refusal) in
        let allowed = prefix.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        guard !prefix.isEmpty, prefix.utf8.count <= 64, allowed else { throw Refusal("1-64 characters of A-Z a-z 0-9 : _ - .") }
        return KeyLayout(prefix: prefix)
    }

    // MARK: Keys, users, tokens

    public static let signingKeyFile = Typed<String?>(
        "TOKENGATE_SIGNING_KEY_FILE",
        help: "file of signing keys, one a line (first signs, all verify): an HS256 secret of 32+ bytes, or EdDSA:/ES256: lines from `key generate`",
        parse: text
    )
    public static let signingKey = Typed<String?>(
        "TOKENGATE_SIGNING_KEY",
        help: "the signing key(s) themselves, as in the file (prefer the file)",
        parse: text
    )
    public static let usersFile = Typed<String?>(
        "TOKENGATE_USERS_FILE",
        help: "htpasswd file with bcrypt entries",
        parse: text
    )
    public static let tokenTTL = Typed<Int>(
        "TOKENGATE_TOKEN_TTL",
        default: "30",
        help: "token lifetime in seconds; the Redis TTL of each token key",
        parse: seconds(1...86_400)
    )
    public static let clockLeeway = Typed<Int>(
        "TOKENGATE_CLOCK_LEEWAY",
        default: "2",
        help: "seconds of clock skew tolerated on exp/iat (0-5)",
        parse: seconds(0...5)
    )
    public static let issuer = Typed<String>(
        "TOKENGATE_ISSUER",
        default: "tokengate",
        help: "iss written into and required of every token"
    ) { issuer throws(Refusal) in
        guard !issuer.isEmpty, issuer.utf8.count <= 256 else { throw Refusal("1-256 characters") }
        return issuer
    }
    public static let audience = Typed<String?>(
        "TOKENGATE_AUDIENCE",
        help: "aud written into and required of every token, when set"
    ) { audience throws(Refusal) in
        guard audience.utf8.count <= 256 else { throw Refusal("at most 256 characters") }
        return audience.isEmpty ? nil : audience
    }

    // MARK: Sessions

    public static let sessionIdle = Typed<Int>(
        "TOKENGATE_SESSION_IDLE",
        default: "1800",
        help: "seconds without a user-driven request before a session ends",
        parse: seconds(1...31_536_000)
    )
    public static let sessionMaxAge = Typed<Int>(
        "TOKENGATE_SESSION_MAX_AGE",
        default: "43200",
        help: "absolute session lifetime in seconds",
        parse: seconds(1...31_536_000)
    )
    public static let maxSessions = Typed<Int?>(
        "TOKENGATE_MAX_SESSIONS",
        default: "100",
        help: "live sessions per user; a login beyond it ends the session closest to expiry (0: no limit)"
    ) { text throws(Refusal) in
        let count = try wholeNumber(of: "sessions", in: 0...1_000_000)(text)
        return count == 0 ? nil : count
    }
    public static let rotation = Typed<Rotation>(
        "TOKENGATE_ROTATION",
        default: "off",
        help: "off, or per-request: every protected response carries a successor token in X-Next-Token"
    ) { text throws(Refusal) in
        guard let rotation = Rotation(rawValue: text) else { throw Refusal("must be off or per-request") }
        return rotation
    }
    public static let reuseGrace = Typed<Int>(
        "TOKENGATE_REUSE_GRACE",
        default: "2",
        help: "seconds a rotated-out token keeps working",
        parse: seconds(0...60)
    )
    public static let closeGrace = Typed<Int>(
        "TOKENGATE_CLOSE_GRACE",
        default: "2",
        help: "seconds a closed page's session survives so a reload can resume it",
        parse: seconds(1...3600)
    )
    public static let cookie = Typed<Bool>(
        "TOKENGATE_COOKIE",
        default: "off",
        help: "on or off: also carry the token in an HttpOnly session cookie, with a CSRF check",
        parse: onOrOff
    )
}
