import Foundation
import RedisClient
import Testing

@Suite("Redis client against a real redis-server")
struct RedisClientIntegrationTests {
    @Test("thousands of concurrent commands share two pipelined connections and each gets its own reply")
    func pipelining() async throws {
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        let prefix = TestRedis.uniquePrefix()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<2000 {
                group.addTask {
                    _ = try await redis.send(["SET", "\(prefix)\(index)", "value-\(index)", "EX", "60"])
                    let reply = try await redis.send(["GET", "\(prefix)\(index)"])
                    #expect(reply.string == "value-\(index)")
                }
            }
            try await group.waitForAll()
        }
        #expect(redis.connectionsOpened <= 2)
    }

    @Test("a script evicted by SCRIPT FLUSH runs again (NOSCRIPT falls back to EVAL)")
    func noscript() async throws {
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        let script = RedisScript(name: "echo", source: "return ARGV[1] .. '-' .. KEYS[1]")
        #expect(try await redis.run(script, keys: ["k"], arguments: ["a"]).string == "a-k")
        _ = try await redis.send(["SCRIPT", "FLUSH"])
        #expect(try await redis.run(script, keys: ["k"], arguments: ["b"]).string == "b-k")
        #expect(try await redis.send(["SCRIPT", "EXISTS", script.sha1]).array == [.integer(1)])
    }

    @Test("error replies are thrown as server errors and leave the connection usable")
    func errors() async throws {
        let redis = try TestRedis.client()
        defer { redis.shutdown() }
        await #expect {
            try await redis.send(["NOSUCHCOMMAND"])
        } throws: { ($0 as? RedisError)?.kind == .server }
        #expect(try await redis.send(["PING"]) == .status("PONG"))
    }

    @Test("after Redis restarts the client reconnects by itself; while it is down commands fail fast")
    func restart() async throws {
        let server = try RedisServerProcess()
        try await server.start()
        let redis = try TestRedis.client(url: server.url)
        defer { redis.shutdown() }
        #expect(try await redis.send(["PING"]) == .status("PONG"))
        server.stop()
        let started = ContinuousClock.now
        await #expect(throws: RedisError.self) { try await redis.send(["PING"]) }
        #expect(ContinuousClock.now - started < .seconds(2))
        try await server.start()
        let back = try await eventually {
            (try? await redis.send(["PING"])) == .status("PONG")
        }
        #expect(back)
    }

    @Test("a Redis that stops answering fails commands with a timeout instead of hanging")
    func hungRedis() async throws {
        let server = try RedisServerProcess()
        try await server.start()
        let redis = try TestRedis.client(url: server.url, timeout: .milliseconds(300))
        defer { redis.shutdown() }
        // The first connect may take longer than 300 ms on a loaded machine: a connection first.
        #expect(try await eventually { (try? await redis.send(["PING"])) == .status("PONG") })
        server.freeze()
        let started = ContinuousClock.now
        // On the open connection a timeout; on a new one the handshake times out.
        await #expect {
            try await redis.send(["PING"])
        } throws: { [.timeout, .connectionFailed].contains(($0 as? RedisError)?.kind) }
        #expect(ContinuousClock.now - started < .seconds(2))
        server.thaw()
        #expect(try await eventually { (try? await redis.send(["PING"])) == .status("PONG") })
        server.stop()
    }

    @Test("AUTH and database selection come from the URL; a wrong password is a connection failure")
    func authAndDatabase() async throws {
        let server = try RedisServerProcess(extraArguments: ["--requirepass", "s3cret"])
        try await server.start()
        defer { server.stop() }
        let good = try TestRedis.client(url: "redis://:s3cret@127.0.0.1:\(server.port)/2")
        defer { good.shutdown() }
        _ = try await good.send(["SET", "where", "db2", "EX", "60"])
        let db0 = try TestRedis.client(url: "redis://:s3cret@127.0.0.1:\(server.port)/0")
        defer { db0.shutdown() }
        #expect(try await db0.send(["GET", "where"]) == .null)
        #expect(try await good.send(["GET", "where"]).string == "db2")
        let bad = try TestRedis.client(url: "redis://:wrong@127.0.0.1:\(server.port)/0")
        defer { bad.shutdown() }
        await #expect {
            try await bad.send(["PING"])
        } throws: { ($0 as? RedisError)?.kind == .connectionFailed && !"\($0)".contains("wrong@") }
    }
}
