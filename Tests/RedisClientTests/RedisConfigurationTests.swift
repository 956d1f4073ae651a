import Testing

@testable import RedisClient

@Suite("redis:// URLs")
struct RedisConfigurationTests {
    @Test("host, port and database")
    func basic() throws {
        let configuration = try RedisConfiguration(url: "redis://example.internal:6380/3")
        #expect(configuration.endpoint == .standalone(RedisAddress(host: "example.internal", port: 6380)))
        #expect(configuration.database == 3)
        #expect(configuration.password == nil)
    }

    @Test("password, ACL user and percent-escapes")
    func credentials() throws {
        let onlyPassword = try RedisConfiguration(url: "redis://:s3cr%40t@127.0.0.1:6379/0")
        #expect(onlyPassword.password == "s3cr@t")
        #expect(onlyPassword.username == nil)
        let withUser = try RedisConfiguration(url: "redis://app:pw@127.0.0.1")
        #expect(withUser.username == "app")
        #expect(withUser.password == "pw")
        #expect(withUser.endpoint == .standalone(RedisAddress(host: "127.0.0.1", port: 6379)))
    }

    @Test("rediss:// is the same URL over TLS (the system's roots until TLS files are given); redis:// is plain")
    func tls() throws {
        let secure = try RedisConfiguration(url: "rediss://:pw@cache.example.com:6380/2")
        #expect(secure.tls == RedisConfiguration.TLS())
        #expect(secure.endpoint == .standalone(RedisAddress(host: "cache.example.com", port: 6380)))
        #expect(secure.password == "pw" && secure.database == 2)
        #expect(try RedisConfiguration(url: "redis://cache.example.com").tls == nil)
    }

    @Test("TLS files that cannot be used name the setting at fault, never a file's contents")
    func tlsFiles() {
        #expect {
            try RedisConfiguration.TLS(caFile: "/nonexistent/ca.pem").makeContext()
        } throws: { ($0 as? RedisTLSError)?.setting == .caFile }
        #expect {
            try RedisConfiguration.TLS(certificateFile: "/nonexistent/client.pem").makeContext()
        } throws: { ($0 as? RedisTLSError)?.setting == .keyFile }
        #expect(throws: Never.self) { try RedisConfiguration.TLS().makeContext() }
    }

    @Test("IPv6 hosts in brackets")
    func ipv6() throws {
        #expect(try RedisConfiguration(url: "redis://[::1]:7000").endpoint == .standalone(RedisAddress(host: "::1", port: 7000)))
    }

    @Test(
        "malformed URLs are refused without echoing the password",
        arguments: [
            "http://127.0.0.1:6379", "redis://", "redis://host:99999", "redis://host:6379/x", "redis://:pw@host:port",
            "rediss://", "redis+tls://host", "REDIS://host", "redis+sentinel://:pw@s1:26379,s2:26379",
            "redis+sentinel://:pw@s1:26379,s2:26379/", "redis+sentinel://:pw@s1:26379,,s2/mymaster", "redis+sentinel://:pw@s1:x/mymaster",
            "redis+sentinel://:pw@s1/mymaster/x", "redis+sentinel://:pw@s1/mymaster/0/extra", "redis+cluster://:pw@h1:7000,h2:7001/1",
            "redis+cluster://:pw@h1:7000,,h2:7001", "redis+cluster://:pw@/",
        ]
    )
    func refused(url: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            !"\(error)".contains("pw")
        }
    }

    @Test("redis+sentinel://: every sentinel (26379 by default), the primary's name, the database; credentials are the data nodes'")
    func sentinel() throws {
        let configuration = try RedisConfiguration(url: "redis+sentinel://app:s3cr%40t@s1.internal,s2.internal:26380,[::1]:26381/mymaster/2")
        #expect(
            configuration.endpoint
                == .sentinel(
                    sentinels: [
                        RedisAddress(host: "s1.internal", port: 26379), RedisAddress(host: "s2.internal", port: 26380),
                        RedisAddress(host: "::1", port: 26381),
                    ],
                    primaryName: "mymaster"
                )
        )
        #expect(configuration.username == "app" && configuration.password == "s3cr@t")
        #expect(configuration.database == 2)
        #expect(configuration.sentinelUsername == nil && configuration.sentinelPassword == nil)
        #expect(configuration.tls == nil)
        let plain = try RedisConfiguration(url: "redis+sentinel://127.0.0.1:26379/tokengate")
        #expect(plain.database == 0 && plain.password == nil)
        #expect(try RedisConfiguration(url: "rediss+sentinel://s1:26379/tokengate").tls == RedisConfiguration.TLS())
    }

    @Test("redis+cluster://: the seed nodes (6379 by default), database 0 only; rediss+cluster:// with TLS")
    func cluster() throws {
        let configuration = try RedisConfiguration(url: "redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2/")
        #expect(
            configuration.endpoint
                == .cluster(seeds: [RedisAddress(host: "10.0.0.1", port: 7000), RedisAddress(host: "10.0.0.2", port: 6379)])
        )
        #expect(configuration.username == "app" && configuration.password == "pw" && configuration.database == 0)
        #expect(try RedisConfiguration(url: "redis+cluster://h1:7000").endpoint == .cluster(seeds: [RedisAddress(host: "h1", port: 7000)]))
        #expect(try RedisConfiguration(url: "rediss+cluster://h1:7000/").tls == RedisConfiguration.TLS())
    }
}
