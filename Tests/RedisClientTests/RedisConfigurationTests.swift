import Testing

@testable import RedisClient

@Suite("redis:// URLs")
struct RedisConfigurationTests {
    @Test("host, port and database")
    func basic() throws {
        let configuration = try RedisConfiguration(url: "redis://example.internal:6380/3")
        #expect(configuration.endpoint == .standalone(host: "example.internal", port: 6380))
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
        #expect(withUser.endpoint == .standalone(host: "127.0.0.1", port: 6379))
    }

    @Test("IPv6 hosts in brackets")
    func ipv6() throws {
        #expect(try RedisConfiguration(url: "redis://[::1]:7000").endpoint == .standalone(host: "::1", port: 7000))
    }

    @Test(
        "malformed URLs are refused without echoing the password",
        arguments: [
            "http://127.0.0.1:6379", "redis://", "redis://host:99999", "redis://host:6379/x", "redis://:pw@host:port",
        ]
    )
    func refused(url: String) {
        #expect {
            try RedisConfiguration(url: url)
        } throws: { error in
            !"\(error)".contains("pw")
        }
    }
}
