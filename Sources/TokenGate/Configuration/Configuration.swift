import Crypto
public import RedisClient

/// The service's whole configuration, parsed and validated once at start-up.
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
    /// Seconds a client connection may stay idle, or take to send a request's headers or body.
    public var clientTimeout: Int
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

    /// Parses settings given by name (flags already merged over the environment).
    ///
    /// - Parameters:
    ///   - values: raw values by setting; missing ones take their defaults.
    ///   - dev: `--dev` mode, which makes an ephemeral key when none is configured.
    ///   - readFile: reads a file's text (injected for tests).
    public static func parse(
        _ values: [Setting: String],
        dev: Bool = false,
        readFile: (String) throws -> String
    ) throws(ConfigurationError) -> Configuration {
        var problems: [String] = []
        func value(_ setting: Setting) -> String? {
            if let raw = values[setting] { return raw }
            return setting.defaultValue
        }
        func seconds(_ setting: Setting, _ range: ClosedRange<Int>, unit: String = "seconds") -> Int {
            guard let text = value(setting), let number = Int(text), range.contains(number) else {
                problems.append("\(setting.environmentName): must be a whole number of \(unit) from \(range.lowerBound) to \(range.upperBound)")
                return range.lowerBound
            }
            return number
        }

        func listenAddress(_ setting: Setting) -> (host: String, port: Int)? {
            guard let text = value(setting) else { return nil }
            guard let address = Self.hostAndPort(text) else {
                problems.append("\(setting.environmentName): must be host:port, e.g. 127.0.0.1:8080")
                return nil
            }
            return address
        }
        let (host, port) = listenAddress(.listen) ?? ("127.0.0.1", 8080)

        // The service API: its own listener and its keys, both or neither.
        var admin: AdminAPI? = nil
        switch (listenAddress(.adminListen), values[.adminKeysFile]) {
        case (let address?, let path?):
            do {
                let keys = try ServiceKeys(parsing: try readFile(path))
                admin = AdminAPI(host: address.host, port: address.port, keys: keys, keysFile: path)
            } catch let error as ConfigurationError {
                problems.append(contentsOf: error.problems.map { "\(Setting.adminKeysFile.environmentName): \($0)" })
            } catch {
                problems.append("\(Setting.adminKeysFile.environmentName): cannot read \(path)")
            }
        case (nil, nil):
            break
        default:
            if values[.adminListen] != nil || values[.adminKeysFile] != nil {
                problems.append(
                    "\(Setting.adminListen.environmentName) and \(Setting.adminKeysFile.environmentName): the service API needs both (or neither)"
                )
            }
        }

        let tokenTTL = seconds(.tokenTTL, 1...86_400)
        let sessionIdle = seconds(.sessionIdle, 1...31_536_000)
        let sessionMaxAge = seconds(.sessionMaxAge, 1...31_536_000)
        let leeway = seconds(.clockLeeway, 0...5)
        let closeGrace = seconds(.closeGrace, 1...3600)
        let reuseGrace = seconds(.reuseGrace, 0...60)
        let timeoutSeconds: Double
        if let text = value(.redisTimeout), let number = Double(text), number > 0, number <= 60 {
            timeoutSeconds = number
        } else {
            problems.append("\(Setting.redisTimeout.environmentName): must be seconds greater than 0 and at most 60, e.g. 1 or 0.5")
            timeoutSeconds = 1
        }

        var redis = RedisConfiguration(endpoint: .standalone(RedisAddress(host: "127.0.0.1", port: 6379)))
        do {
            redis = try RedisConfiguration(url: value(.redisURL) ?? "", timeout: .milliseconds(Int(timeoutSeconds * 1000)))
        } catch {
            problems.append("\(Setting.redisURL.environmentName): \(error)")
        }
        let sentinelSettings: [Setting] = [.redisSentinelUsername, .redisSentinelPassword]
        if case .sentinel = redis.endpoint {
            redis.sentinelUsername = value(.redisSentinelUsername)
            redis.sentinelPassword = value(.redisSentinelPassword)
        } else if let set = sentinelSettings.first(where: { value($0) != nil }) {
            problems.append("\(set.environmentName): sentinel credentials need a redis+sentinel:// URL in \(Setting.redisURL.environmentName)")
        }
        // WAIT: bounded by half the Redis timeout, so its answer comes before the command's deadline.
        var replicaWait: ReplicaWait? = nil
        if let text = value(.redisWait) {
            if let replicas = Int(text), (0...16).contains(replicas) {
                if replicas > 0 { replicaWait = ReplicaWait(replicas: replicas, milliseconds: Int(timeoutSeconds * 500)) }
            } else {
                problems.append("\(Setting.redisWait.environmentName): must be a number of replicas from 0 to 16")
            }
        }
        // TLS: the files are read here, so a bad one stops start-up instead of failing every connect.
        let tlsSettings: [Setting] = [.redisTLSCAFile, .redisTLSCertFile, .redisTLSKeyFile, .redisTLSServerName]
        if var tls = redis.tls {
            tls.caFile = value(.redisTLSCAFile)
            tls.certificateFile = value(.redisTLSCertFile)
            tls.keyFile = value(.redisTLSKeyFile)
            tls.serverName = value(.redisTLSServerName)
            redis.tls = tls
            do { _ = try tls.makeContext() } catch {
                let setting: Setting =
                    switch error.setting {
                    case .caFile: .redisTLSCAFile
                    case .certificateFile: .redisTLSCertFile
                    case .keyFile: .redisTLSKeyFile
                    }
                problems.append("\(setting.environmentName): \(error.reason)")
            }
        } else if let set = tlsSettings.first(where: { value($0) != nil }) {
            problems.append("\(set.environmentName): TLS settings need a rediss:// URL in \(Setting.redisURL.environmentName)")
        }

        // Signing keys: a file or a value, never both, never a built-in default.
        var keyText: String? = nil
        var signingKeys: [SigningKey] = []
        var ephemeral = false
        switch (values[.signingKeyFile], values[.signingKey]) {
        case (.some, .some):
            problems.append("\(Setting.signingKeyFile.environmentName) and \(Setting.signingKey.environmentName): set only one")
        case (let path?, nil):
            do {
                keyText = try readFile(path)
            } catch {
                problems.append("\(Setting.signingKeyFile.environmentName): cannot read \(path)")
            }
        case (nil, let text?):
            keyText = text
        case (nil, nil):
            if dev {
                signingKeys = [SigningKey(hs256: Array(Identifier.random().utf8) + Array(Identifier.random().utf8))]
                ephemeral = true
            } else {
                problems.append(
                    "\(Setting.signingKeyFile.environmentName) or \(Setting.signingKey.environmentName): a signing key is required (make one with `tokengate key generate`, or use --dev)"
                )
            }
        }
        if let keyText {
            do { signingKeys = try SigningKey.parseList(keyText) } catch { problems.append("signing key: \(error.message)") }
        }

        let prefix = value(.keyPrefix) ?? "tg:"
        let prefixAllowed = prefix.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
        if prefix.isEmpty || prefix.utf8.count > 64 || !prefixAllowed {
            problems.append("\(Setting.keyPrefix.environmentName): 1-64 characters of A-Z a-z 0-9 : _ - .")
        }
        let issuer = value(.issuer) ?? ""
        if issuer.isEmpty || issuer.utf8.count > 256 { problems.append("\(Setting.issuer.environmentName): 1-256 characters") }
        let audience = values[.audience].flatMap { $0.isEmpty ? nil : $0 }
        if let audience, audience.utf8.count > 256 { problems.append("\(Setting.audience.environmentName): at most 256 characters") }

        let rotation = value(.rotation).flatMap(Rotation.init(rawValue:)) ?? .off
        if Rotation(rawValue: value(.rotation) ?? "") == nil {
            problems.append("\(Setting.rotation.environmentName): must be off or per-request")
        }
        let cookieMode = value(.cookie) == "on"
        if value(.cookie) != "on", value(.cookie) != "off" { problems.append("\(Setting.cookie.environmentName): must be on or off") }
        if rotation == .perRequest, cookieMode {
            // The cookie jar and the page's script would each hold a token of one rotation chain, and
            // whichever falls behind (a navigation rotates the cookie, a script call the page's copy)
            // would look like a replayed token and end the session.
            problems.append(
                "\(Setting.rotation.environmentName)=per-request and \(Setting.cookie.environmentName)=on: not together; pick one"
            )
        }
        let maxSessions = seconds(.maxSessions, 0...1_000_000, unit: "sessions")
        let clientTimeout = seconds(.clientTimeout, 1...300)
        let ipv6LimitPrefix = seconds(.ipv6LimitPrefix, 32...128, unit: "bits")
        var trustedProxies = TrustedProxies.none
        if let text = values[.trustedProxies], !text.isEmpty {
            if let parsed = TrustedProxies(parsing: text) {
                trustedProxies = parsed
            } else {
                problems.append(
                    "\(Setting.trustedProxies.environmentName): a comma-separated list of IP addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8"
                )
            }
        }
        if sessionIdle < tokenTTL { problems.append("\(Setting.sessionIdle.environmentName): must not be shorter than the token TTL") }

        if !problems.isEmpty { throw ConfigurationError(problems) }
        return Configuration(
            host: host,
            port: port,
            redis: redis,
            replicaWait: replicaWait,
            signingKeys: signingKeys,
            ephemeralKey: ephemeral,
            tokenTTL: tokenTTL,
            sessionIdle: sessionIdle,
            sessionMaxAge: sessionMaxAge,
            clockLeeway: leeway,
            usersFile: values[.usersFile],
            signingKeyFile: values[.signingKeyFile],
            keys: KeyLayout(prefix: prefix),
            issuer: issuer,
            audience: audience,
            closeGrace: closeGrace,
            reuseGrace: reuseGrace,
            rotation: rotation,
            cookieMode: cookieMode,
            maxSessions: maxSessions == 0 ? nil : maxSessions,
            clientTimeout: clientTimeout,
            trustedProxies: trustedProxies,
            ipv6LimitPrefix: ipv6LimitPrefix,
            admin: admin,
            dev: dev
        )
    }

    /// `host:port` (IPv6 hosts in brackets; an empty host means every address), or nil.
    static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (host.isEmpty ? "0.0.0.0" : String(host), port)
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
    /// Every successful protected response carries a successor (CONTRACT section 5).
    case perRequest = "per-request"
}
