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
                "signing key", "TOKENGATE_TOKEN_TTL", "TOKENGATE_CLOCK_LEEWAY", "TOKENGATE_REDIS_URL", "TOKENGATE_LISTEN",
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
