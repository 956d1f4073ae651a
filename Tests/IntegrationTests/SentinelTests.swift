import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import Testing
import TokenGate

/// Where the Sentinel tests find their set: `./scripts/test` starts a primary, 2 replicas and 3
/// sentinels (monitoring it as `tokengate`) and exports their URL.
enum TestSentinel {
    static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TOKENGATE_TEST_SENTINEL_URL"], !url.isEmpty else {
                throw SetupError("TOKENGATE_TEST_SENTINEL_URL is not set: run ./scripts/test, which starts a Sentinel set")
            }
            return url
        }
    }

    /// A client of the set's primary (found through the sentinels).
    static func client(timeout: Duration = .seconds(1)) throws -> any RedisClient {
        try TestRedis.client(url: try url, timeout: timeout)
    }

    /// Waits until the primary has both replicas connected again (a failover leaves one
    /// resynchronising for a while); true once it has.
    static func whole(_ redis: any RedisClient) async throws -> Bool {
        try await eventually(timeout: .seconds(30)) {
            // While a failover settles, Sentinel closes clients of the nodes it reconfigures: ask again.
            guard case .primary(let replicas)? = (try? await redis.send(["ROLE"])).flatMap(RedisRole.init) else { return false }
            return replicas.count == 2
        }
    }

    /// A plain client of one sentinel, for SENTINEL commands.
    static func sentinel() throws -> any RedisClient {
        guard case .sentinel(let sentinels, _) = try RedisConfiguration(url: try url).endpoint else { throw SetupError("not a Sentinel URL") }
        return try TestRedis.client(url: "redis://\(sentinels[0])/0")
    }
}

/// One suite, one test at a time: a failover changes the primary for everything after it.
@Suite("Redis Sentinel: a primary, 2 replicas and 3 sentinels on loopback", .serialized)
struct SentinelTests {
    @Test("a redis+sentinel:// URL reaches the primary the sentinels name, and nothing else")
    func findsPrimary() async throws {
        let redis = try TestSentinel.client()
        defer { redis.shutdown() }
        #expect(try await TestSentinel.whole(redis), "the primary has its 2 replicas")
        let role = try await redis.send(["ROLE"])
        guard case .primary(let replicas)? = RedisRole(role) else {
            Issue.record("ROLE through the client is \(role), not a primary's")
            return
        }
        #expect(replicas.count == 2)
        let sentinel = try TestSentinel.sentinel()
        defer { sentinel.shutdown() }
        let named = try await sentinel.send(["SENTINEL", "get-master-addr-by-name", "tokengate"]).array?.compactMap(\.string)
        #expect(try await redis.primaries().map(\.address.description) == [named?.joined(separator: ":")])
        #expect(redis.statistics.topologyRefreshes >= 1)
    }

    @Test("WAIT: a write both replicas confirm is answered; one that asks for more replicas than exist fails within its bound")
    func replicaWait() async throws {
        let redis = try TestSentinel.client()
        defer { redis.shutdown() }
        #expect(try await TestSentinel.whole(redis))
        let script = RedisScript(name: "set", source: "redis.call('SET', KEYS[1], ARGV[1], 'EX', 60) return 1")
        let key = TestRedis.uniquePrefix() + "wait"
        #expect(try await redis.run(script, keys: [key], arguments: ["a"], wait: ReplicaWait(replicas: 2, milliseconds: 2000)) == .integer(1))
        let started = ContinuousClock.now
        await #expect {
            try await redis.run(script, keys: [key], arguments: ["b"], wait: ReplicaWait(replicas: 3, milliseconds: 200))
        } throws: { ($0 as? RedisError)?.kind == .notReplicated }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(redis.statistics.replicationTimeouts == 1)
        // The script itself ran on the primary (WAIT does not undo): the caller retries an idempotent write.
        #expect(try await redis.send(["GET", key], key: key).string == "b")
    }

    @Test("a store with WAIT answers logins and logouts only once a replica has them, and they are on the replicas")
    func durableStore() async throws {
        let redis = try TestSentinel.client()
        defer { redis.shutdown() }
        #expect(try await TestSentinel.whole(redis))
        let keys = KeyLayout(prefix: TestRedis.uniquePrefix())
        let store = SessionStore(redis: redis, keys: keys, logger: Logger(label: "test"), replicaWait: ReplicaWait(replicas: 2, milliseconds: 2000))
        let sid = Identifier.random()
        let jti = Identifier.random()
        try await store.create(user: "alice", sid: sid, jti: jti, ttl: 60, userAgent: "test", address: "127.0.0.1")
        guard case .primary(let replicas)? = RedisRole(try await redis.send(["ROLE"])) else {
            Issue.record("no primary")
            return
        }
        for replica in replicas {
            let direct = try TestRedis.client(url: "redis://\(replica)/0")
            defer { direct.shutdown() }
            // WAIT returned 2: each replica has the token's key now, not eventually.
            #expect(try await direct.send(["EXISTS", keys.token(user: "alice", jti: jti)]).int == 1)
        }
    }

    @Test("after a failover commands go to the new primary by themselves; the old one, now a replica, serves none")
    func failover() async throws {
        var logger = Logger(label: "test.sentinel")
        logger.logLevel = .critical
        let redis = try RedisConfiguration(url: try TestSentinel.url, timeout: .seconds(1)).makeClient(logger: logger)
        // Run as a service: it subscribes to +switch-master and looks the primary up while in doubt.
        let service = Task { try await redis.run() }
        defer {
            service.cancel()
            redis.shutdown()
        }
        let key = TestRedis.uniquePrefix() + "failover"
        _ = try await redis.send(["SET", key, "before", "EX", "60"], key: key)
        let old = try await redis.primaries()[0].address
        let sentinel = try TestSentinel.sentinel()
        defer { sentinel.shutdown() }
        #expect(try await sentinel.send(["SENTINEL", "FAILOVER", "tokengate"]) == .status("OK"))
        // Until the client has moved, a write either fails (503 for the service) or lands on the
        // primary of the moment; it never succeeds on a replica (Redis would refuse it: READONLY).
        let moved = try await eventually(timeout: .seconds(30)) {
            let address = try await redis.primaries()[0].address
            guard address != old else { return false }
            return (try? await redis.send(["SET", key, "after", "EX", "60"], key: key)) == .status("OK")
        }
        #expect(moved, "the client follows the failover")
        let demoted = try TestRedis.client(url: "redis://\(old)/0")
        defer { demoted.shutdown() }
        // Sentinel turns the old primary into a replica with REPLICAOF and CLIENT KILL TYPE normal, so
        // this connection may be closed under it once: ask again on a new one until it says replica.
        #expect(try await eventually(timeout: .seconds(30)) { (try? await demoted.send(["ROLE"])).flatMap(RedisRole.init)?.isPrimary == false })
        #expect(try await redis.send(["GET", key], key: key).string == "after")
        #expect(redis.statistics.failovers >= 1)
        // Leave the set whole for what runs after (the store's tests run against it too).
        #expect(try await TestSentinel.whole(redis))
    }

    @Test("when no sentinel answers, commands fail as unavailable within the timeout")
    func noSentinel() async throws {
        let redis = try TestRedis.client(
            url: "redis+sentinel://127.0.0.1:\(try freePort()),127.0.0.1:\(try freePort())/tokengate",
            timeout: .milliseconds(500)
        )
        defer { redis.shutdown() }
        let started = ContinuousClock.now
        await #expect {
            try await redis.send(["PING"])
        } throws: { ($0 as? RedisError)?.kind == .unavailable }
        let script = RedisScript(name: "one", source: "return 1")
        await #expect(throws: RedisError.self) { try await redis.run(script, keys: ["k"], arguments: []) }
        #expect(ContinuousClock.now - started < .seconds(2))
    }
}
