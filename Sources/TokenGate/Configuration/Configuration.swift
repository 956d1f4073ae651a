public import RedisClient

/// The service's whole configuration, parsed and validated once at start-up.
///
/// Timeouts are `Duration`s. The lifetimes (token TTL, session idle and maximum age, leeway,
/// grace periods) stay whole seconds: Redis TTLs, token claims and `expires_in` count in them,
/// and so does every code that uses them.
public struct Configuration: Sendable {
    /// Host to bind.
    public var host: String
    /// Port to bind (0 picks a free one).
    public var port: Int
    /// Where Redis is.
    public var redis: RedisConfiguration
    /// Replicas that must confirm a login, refresh, logout or revoke before it is answered
    /// (`TOKENGATE_REDIS_WAIT`); nil: none (replication stays asynchronous).
    public var replicaWait: ReplicaWait? = nil
    /// The signing keys read at start: the first signs, every one verifies. Never logged. After a
    /// reload (`SIGHUP`) `AuthService.signingKeys` holds those in force.
    public var signingKeys: [SigningKey]
    /// The `kid` of the key that signs: derived from the key, so instances sharing a key agree.
    public var signingKeyID: String { signingKeys[0].kid }
    /// True when the key was generated for this process (`--dev`).
    public var ephemeralKey: Bool
    /// Token lifetime and Redis TTL, seconds.
    public var tokenTTL: Int
    /// Idle limit, seconds.
    public var sessionIdle: Int
    /// Absolute session limit, seconds.
    public var sessionMaxAge: Int
    /// Tolerated clock skew, seconds.
    public var clockLeeway: Int
    /// Path of the htpasswd file, if any (read again on `SIGHUP`).
    public var usersFile: String?
    /// Path of the signing-key file, when the keys came from one (read again on `SIGHUP`).
    public var signingKeyFile: String?
    /// Redis key layout.
    public var keys: KeyLayout
    /// `iss`.
    public var issuer: String
    /// `aud`, when configured.
    public var audience: String?
    /// Seconds a closed page's session survives.
    public var closeGrace: Int
    /// Seconds a rotated-out token keeps working.
    public var reuseGrace: Int
    /// Whether every protected response carries a successor token.
    public var rotation: Rotation
    /// Whether the token also travels in an HttpOnly cookie (with a CSRF check).
    public var cookieMode: Bool
    /// Live sessions per user; nil for no limit.
    public var maxSessions: Int?
    /// How long a client connection may stay idle, or take to send a request's headers or body.
    public var clientTimeout: Duration
    /// Proxies whose `X-Forwarded-For` is believed.
    public var trustedProxies: TrustedProxies
    /// Prefix length by which IPv6 clients are counted for the per-address limits.
    public var ipv6LimitPrefix: Int
    /// The service API, when configured (off by default).
    public var admin: AdminAPI?
    /// Failed logins of one username from one client address within `failedLoginWindow` before
    /// 429: the tight limit, which stops one client guessing without locking the user out elsewhere.
    public var maxFailedLoginsPerUserAndAddress = 10
    /// Failed logins of one username from all addresses within `failedLoginWindow` before 429: the
    /// loose limit against guessing from many addresses.
    public var maxFailedLoginsPerUser = 100
    /// Failed logins from one client address (any usernames) within `failedLoginWindow` before 429.
    public var maxFailedLoginsPerAddress = 100
    /// Window of the failed-login counters, seconds.
    public var failedLoginWindow = 300
    /// Wrong service keys per client address within `failedLoginWindow` before 429.
    public var maxFailedServiceKeysPerAddress = 10
    /// Largest accepted auth request body, bytes.
    public var maxBodyBytes = 16 * 1024
    /// `--dev`: throw-away key and demo user allowed.
    public var dev: Bool

    /// Parses settings given by name (flags already merged over the environment): every value is
    /// read as its declaration in `Setting+Table.swift` says, then the checks across settings.
    ///
    /// - Parameters:
    ///   - values: raw values by setting; missing ones take their defaults.
    ///   - dev: `--dev` mode, which makes an ephemeral key when none is configured.
    ///   - readFile: reads a file's text (injected for tests).
    /// - Throws: one line per problem, each naming its setting.
    public static func parse(
        _ values: [Setting: String],
        dev: Bool = false,
        readFile: (String) throws -> String
    ) throws(ConfigurationError) -> Configuration {
        var read = SettingReader(values)
        let listen = read(.listen)
        let redis = readRedis(&read)
        // WAIT: bounded by half the Redis timeout, so its answer comes before the command's deadline.
        let replicas = read(.redisWait)
        let replicaWait = replicas > 0 ? ReplicaWait(replicas: replicas, milliseconds: redis.timeout.milliseconds / 2) : nil
        let (signingKeys, ephemeral) = readSigningKeys(&read, dev: dev, readFile: readFile)
        let tokenTTL = read(.tokenTTL)
        let sessionIdle = read(.sessionIdle)
        if read.accepted(.tokenTTL, .sessionIdle), sessionIdle < tokenTTL { read.refuse(.sessionIdle, "must not be shorter than the token TTL") }
        let rotation = read(.rotation)
        let cookieMode = read(.cookie)
        if rotation == .perRequest, cookieMode {
            // The cookie jar and the page's script would each hold a token of one rotation chain, and
            // whichever falls behind (a navigation rotates the cookie, a script call the page's copy)
            // would look like a replayed token and end the session.
            read.report("\(Setting.rotation.environmentName)=per-request and \(Setting.cookie.environmentName)=on: not together; pick one")
        }
        let configuration = Configuration(
            host: listen.host,
            port: listen.port,
            redis: redis,
            replicaWait: replicaWait,
            signingKeys: signingKeys,
            ephemeralKey: ephemeral,
            tokenTTL: tokenTTL,
            sessionIdle: sessionIdle,
            sessionMaxAge: read(.sessionMaxAge),
            clockLeeway: read(.clockLeeway),
            usersFile: read(.usersFile),
            signingKeyFile: read(.signingKeyFile),
            keys: read(.keyPrefix),
            issuer: read(.issuer),
            audience: read(.audience),
            closeGrace: read(.closeGrace),
            reuseGrace: read(.reuseGrace),
            rotation: rotation,
            cookieMode: cookieMode,
            maxSessions: read(.maxSessions),
            clientTimeout: read(.clientTimeout),
            trustedProxies: read(.trustedProxies) ?? .none,
            ipv6LimitPrefix: read(.ipv6LimitPrefix),
            admin: readAdmin(&read, readFile: readFile),
            dev: dev
        )
        if !read.problems.isEmpty { throw ConfigurationError(read.problems) }
        return configuration
    }

    /// Signing keys: a file or a value, never both, never a built-in default (`--dev` makes a
    /// throw-away one).
    private static func readSigningKeys(
        _ read: inout SettingReader,
        dev: Bool,
        readFile: (String) throws -> String
    ) -> (keys: [SigningKey], ephemeral: Bool) {
        switch (read(.signingKeyFile), read(.signingKey)) {
        case (.some, .some):
            read.report("\(Setting.signingKeyFile.environmentName) and \(Setting.signingKey.environmentName): set only one")
        case (let path?, nil):
            do { return (try SecretFiles.signingKeys(path, readFile: readFile), false) } catch {
                read.refuse(.signingKeyFile, problems: error.problems)
            }
        case (nil, let value?):
            do { return (try SigningKey.parseList(value), false) } catch {
                // Never the key itself: the message says what is wrong with it.
                read.refuse(.signingKey, error.message)
            }
        case (nil, nil):
            guard dev else {
                read.report(
                    "\(Setting.signingKeyFile.environmentName) or \(Setting.signingKey.environmentName): a signing key is required (make one with `tokengate key generate`, or use --dev)"
                )
                return ([], false)
            }
            return ([SigningKey(hs256: Array(Identifier.random().utf8) + Array(Identifier.random().utf8))], true)
        }
        return ([], false)
    }

    /// The service API: its own listener and its keys, both or neither.
    private static func readAdmin(_ read: inout SettingReader, readFile: (String) throws -> String) -> AdminAPI? {
        switch (read(.adminListen), read(.adminKeysFile)) {
        case (let address?, let path?):
            do {
                let keys = try SecretFiles.serviceKeys(path, readFile: readFile)
                return AdminAPI(host: address.host, port: address.port, keys: keys, keysFile: path)
            } catch {
                read.refuse(.adminKeysFile, problems: error.problems)
            }
        case (nil, nil):
            break
        default:
            if read.accepted(.adminListen) {
                read.report(
                    "\(Setting.adminListen.environmentName) and \(Setting.adminKeysFile.environmentName): the service API needs both (or neither)"
                )
            }
        }
        return nil
    }
}

/// The service API's listener and keys (`TOKENGATE_ADMIN_LISTEN`, `TOKENGATE_ADMIN_KEYS_FILE`).
public struct AdminAPI: Sendable {
    /// Host to bind.
    public var host: String
    /// Port to bind (0 picks a free one).
    public var port: Int
    /// The keys that may call it, as read at start (`AuthService.serviceKeys` holds those in force
    /// after a reload).
    public var keys: ServiceKeys
    /// Where they are kept (read again on `SIGHUP`).
    public var keysFile: String
}

/// `TOKENGATE_ROTATION`.
public enum Rotation: String, Sendable {
    /// Tokens are multi-use for their TTL; only `/auth/refresh` hands out a successor.
    case off
    /// Every successful protected response carries a successor (README, "Per-request rotation").
    case perRequest = "per-request"
}
