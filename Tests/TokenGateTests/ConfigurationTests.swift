import RedisClient
import Testing

@testable import TokenGate

@Suite("configuration")
struct ConfigurationTests {
    static let key = "k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y"

    private func parse(_ values: [Setting: String], dev: Bool = false) throws(ConfigurationError) -> Configuration {
        try Configuration.parse(values, dev: dev) { path in
            guard path == "/keys/good" else { throw CocoaLikeError() }
            return Self.key + "\n"
        }
    }

    struct CocoaLikeError: Error {}

    @Test("defaults are the contract's")
    func defaults() throws {
        let configuration = try parse([.signingKey: Self.key])
        #expect(configuration.host == "127.0.0.1" && configuration.port == 8080)
        #expect(configuration.redis.endpoint == .standalone(RedisAddress(host: "127.0.0.1", port: 6379)))
        #expect(configuration.redis.timeout == .seconds(1))
        #expect(configuration.tokenTTL == 30 && configuration.sessionIdle == 1800 && configuration.sessionMaxAge == 43200)
        #expect(configuration.clockLeeway == 2 && configuration.closeGrace == 2 && configuration.reuseGrace == 2)
        #expect(configuration.keys.prefix == "tg:" && configuration.issuer == "tokengate" && configuration.audience == nil)
        #expect(!configuration.ephemeralKey)
        #expect(configuration.rotation == .off && !configuration.cookieMode && configuration.maxSessions == 100)
        #expect(configuration.clientTimeout == .seconds(10) && configuration.ipv6LimitPrefix == 64 && configuration.replicaWait == nil)
    }

    @Test("the table: each setting once, with a variable, a flag derived from it and a default that is accepted")
    func table() {
        #expect(Set(Setting.allCases.map(\.environmentName)).count == Setting.allCases.count)
        for setting in Setting.allCases {
            #expect(setting.environmentName.hasPrefix("TOKENGATE_") && !setting.help.isEmpty)
            #expect(setting.flag.hasPrefix("--") && !setting.flag.contains("_") && setting.flag == setting.flag.lowercased())
        }
        #expect(Setting.redisTLSCAFile.flag == "--redis-tls-ca-file" && Setting.tokenTTL.flag == "--token-ttl")
        // Given as written in --help, each default reads as the value the setting has when unset.
        let defaults = Dictionary(uniqueKeysWithValues: Setting.allCases.compactMap { setting in setting.defaultValue.map { (setting, $0) } })
        let unset = try? parse([.signingKey: Self.key])
        let written = try? parse(defaults.merging([.signingKey: Self.key]) { $1 })
        #expect(unset?.tokenTTL == written?.tokenTTL && unset?.keys == written?.keys && unset?.redis == written?.redis)
        #expect(unset?.clientTimeout == written?.clientTimeout && unset?.maxSessions == written?.maxSessions)
    }

    @Test("one bad value makes one line: checks across settings skip a refused one")
    func oneLineEach() {
        let cases: [([Setting: String], String)] = [
            ([.sessionIdle: "0"], "TOKENGATE_SESSION_IDLE"),
            ([.adminListen: "nope", .adminKeysFile: "/keys/good"], "TOKENGATE_ADMIN_LISTEN"),
            ([.redisURL: "http://x", .redisTLSCAFile: "/ca.pem"], "TOKENGATE_REDIS_URL"),
            ([.redisURL: "http://x", .redisSentinelPassword: "pw"], "TOKENGATE_REDIS_URL"),
            ([.rotation: "sometimes", .cookie: "on"], "TOKENGATE_ROTATION"),
        ]
        for (values, name) in cases {
            do {
                _ = try parse(values.merging([.signingKey: Self.key]) { $1 })
                Issue.record("expected a configuration error for \(values)")
            } catch {
                #expect(error.problems.count == 1 && error.problems[0].hasPrefix(name + ": "), "\(error.problems)")
            }
        }
        #expect(throws: ConfigurationError.self) { try parse([.signingKey: Self.key, .tokenTTL: "3600", .sessionIdle: "60"]) }
    }

    @Test("durations: the client timeout, and WAIT bounded by half the Redis timeout")
    func durations() throws {
        let configuration = try parse([.signingKey: Self.key, .clientTimeout: "300", .redisTimeout: "0.5", .redisWait: "2"])
        #expect(configuration.clientTimeout == .seconds(300) && configuration.redis.timeout == .milliseconds(500))
        #expect(configuration.replicaWait == ReplicaWait(replicas: 2, milliseconds: 250))
        #expect(throws: ConfigurationError.self) { try parse([.signingKey: Self.key, .clientTimeout: "0.5"]) }
    }

    @Test("the operator commands read Redis and the key prefix with serve's code and messages, and nothing else")
    func operatorRedis() throws {
        let (redis, keys) = try Configuration.parseRedis(
            [.redisURL: "redis+sentinel://s1:26379/main", .redisSentinelPassword: "pw", .keyPrefix: "app:", .redisTimeout: "0.25", .tokenTTL: "0"],
            connectionCount: 1
        )
        #expect(redis.sentinelPassword == "pw" && redis.timeout == .milliseconds(250) && redis.connectionCount == 1 && keys.prefix == "app:")
        for values: [Setting: String] in [[.redisTimeout: "99"], [.keyPrefix: "tg*"], [.redisURL: "http://x"], [.redisTLSCAFile: "/ca.pem"]] {
            var served: [String] = []
            do { _ = try parse(values.merging([.signingKey: Self.key]) { $1 }) } catch { served = error.problems }
            do {
                _ = try Configuration.parseRedis(values, connectionCount: 1)
                Issue.record("expected a configuration error for \(values)")
            } catch {
                #expect(error.problems == served && served.count == 1, "\(error.problems) vs \(served)")
            }
        }
    }

    @Test("the service API: off by default, needs both its listener and its keys file, refuses a bad file")
    func serviceAPI() throws {
        #expect(try parse([.signingKey: Self.key]).admin == nil)
        let line = ServiceKeys.generate(name: "app").line
        let configuration = try Configuration.parse([.signingKey: Self.key, .adminListen: "127.0.0.1:0", .adminKeysFile: "/keys"]) { _ in line }
        let admin = try #require(configuration.admin)
        #expect(admin.host == "127.0.0.1" && admin.port == 0 && admin.keys.names == ["app"])
        for values: [Setting: String] in [
            [.signingKey: Self.key, .adminListen: "127.0.0.1:9090"], [.signingKey: Self.key, .adminKeysFile: "/keys/good"],
            [.signingKey: Self.key, .adminListen: "nope", .adminKeysFile: "/keys/good"],
            [.signingKey: Self.key, .adminListen: "127.0.0.1:9090", .adminKeysFile: "/keys/missing"],
            // The signing key is no service key file.
            [.signingKey: Self.key, .adminListen: "127.0.0.1:9090", .adminKeysFile: "/keys/good"],
        ] {
            #expect(throws: ConfigurationError.self, "\(values)") { try parse(values) }
        }
    }

    @Test("rotation, cookie mode and the session cap")
    func modes() throws {
        let rotating = try parse([.signingKey: Self.key, .rotation: "per-request", .maxSessions: "0"])
        #expect(rotating.rotation == .perRequest && !rotating.cookieMode && rotating.maxSessions == nil)
        #expect(try parse([.signingKey: Self.key, .cookie: "on"]).cookieMode)
        // Two holders of one rotation chain (cookie jar and page) would end sessions as stolen.
        #expect(throws: ConfigurationError.self) { try parse([.signingKey: Self.key, .rotation: "per-request", .cookie: "on"]) }
        #expect(throws: ConfigurationError.self) { try parse([.signingKey: Self.key, .cookie: "yes"]) }
        #expect(throws: ConfigurationError.self) { try parse([.signingKey: Self.key, .maxSessions: "-1"]) }
    }

    @Test("the key file is read and trimmed; both forms at once are refused")
    func keyFile() throws {
        #expect(try parse([.signingKeyFile: "/keys/good"]).signingKeys[0].secret == Array(Self.key.utf8))
        #expect(throws: ConfigurationError.self) { try parse([.signingKeyFile: "/keys/missing"]) }
        #expect(throws: ConfigurationError.self) { try parse([.signingKeyFile: "/keys/good", .signingKey: Self.key]) }
    }

    @Test("no key refuses to start, except in --dev which makes a throw-away one")
    func noKey() throws {
        #expect {
            try parse([:])
        } throws: { error in
            (error as? ConfigurationError)?.problems.contains { $0.contains("signing key is required") } == true
        }
        let dev = try parse([:], dev: true)
        #expect(dev.ephemeralKey && dev.signingKeys[0].secret.count >= 32)
    }

    @Test("every bad value is reported, one line each, naming its variable")
    func problems() {
        do {
            _ = try parse([
                .signingKey: "short", .tokenTTL: "0", .clockLeeway: "6", .redisURL: "http://x", .listen: "nowhere",
                .rotation: "sometimes", .keyPrefix: "tg*", .redisTimeout: "-1",
            ])
            Issue.record("expected a configuration error")
        } catch {
            let text = error.problems.joined(separator: "\n")
            for name in [
                "TOKENGATE_SIGNING_KEY", "TOKENGATE_TOKEN_TTL", "TOKENGATE_CLOCK_LEEWAY", "TOKENGATE_REDIS_URL", "TOKENGATE_LISTEN",
                "TOKENGATE_ROTATION", "TOKENGATE_KEY_PREFIX", "TOKENGATE_REDIS_TIMEOUT",
            ] {
                #expect(text.contains(name), "missing \(name)")
            }
            #expect(!text.contains("short"), "the key itself must never be echoed")
        }
    }

    @Test("listen addresses, kid derivation and fractional Redis timeouts")
    func values() throws {
        let configuration = try parse([.signingKey: Self.key, .listen: "0.0.0.0:0", .redisTimeout: "0.25", .audience: "app"])
        #expect(configuration.host == "0.0.0.0" && configuration.port == 0)
        #expect(configuration.redis.timeout == .milliseconds(250))
        #expect(configuration.audience == "app")
        #expect(configuration.signingKeyID == (try parse([.signingKey: Self.key])).signingKeyID)
        #expect(configuration.signingKeyID.count == 12)
    }
}

@Suite("trusted proxies and X-Forwarded-For")
struct TrustedProxiesTests {
    @Test("addresses and CIDR ranges, IPv4 and IPv6")
    func ranges() throws {
        let proxies = try #require(TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8,fd00::/8"))
        #expect(proxies.contains("127.0.0.1") && proxies.contains("10.200.3.4") && proxies.contains("fd12::1"))
        #expect(!proxies.contains("127.0.0.2") && !proxies.contains("11.0.0.1") && !proxies.contains("::1"))
        #expect(TrustedProxies(parsing: "10.0.0.0/33") == nil)
        #expect(TrustedProxies(parsing: "nginx") == nil)
    }

    @Test("the client is the rightmost forwarded address that is not a trusted proxy")
    func clientAddress() throws {
        let proxies = try #require(TrustedProxies(parsing: "127.0.0.1,10.0.0.0/8"))
        #expect(proxies.clientAddress(peer: "127.0.0.1", forwardedFor: ["203.0.113.9"]) == "203.0.113.9")
        // A client cannot pick its own address by sending X-Forwarded-For through the proxy.
        #expect(proxies.clientAddress(peer: "127.0.0.1", forwardedFor: ["6.6.6.6, 203.0.113.9, 10.1.1.1"]) == "203.0.113.9")
        #expect(proxies.clientAddress(peer: "198.51.100.7", forwardedFor: ["203.0.113.9"]) == "198.51.100.7")
        #expect(proxies.clientAddress(peer: "127.0.0.1", forwardedFor: ["not-an-address"]) == "127.0.0.1")
        #expect(TrustedProxies.none.clientAddress(peer: "127.0.0.1", forwardedFor: ["203.0.113.9"]) == "127.0.0.1")
    }
}
