import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import RedisClient
import Synchronization
import Testing
import TokenGate

/// Where the integration tests find Redis: `./scripts/test` starts a private `redis-server` on a
/// free port and exports its URL.
enum TestRedis {
    static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["TOKENGATE_TEST_REDIS_URL"], !url.isEmpty else {
                throw SetupError("TOKENGATE_TEST_REDIS_URL is not set: run ./scripts/test, which starts a private redis-server")
            }
            return url
        }
    }

    /// A key prefix no other test uses, so tests run in parallel without FLUSHALL.
    static func uniquePrefix() -> String { "t" + UUID().uuidString.prefix(8).lowercased() + ":" }

    static func client(url: String? = nil, timeout: Duration = .seconds(1)) throws -> any RedisClient {
        var logger = Logger(label: "test.redis")
        logger.logLevel = .critical
        return try RedisConfiguration(url: url ?? self.url, timeout: timeout).makeClient(logger: logger)
    }

    /// Every key matching `pattern`, by SCAN on every primary.
    static func keys(_ redis: any RedisClient, matching pattern: String) async throws -> [String] {
        var found: [String] = []
        for node in try await redis.primaries() {
            var cursor = "0"
            repeat {
                let parts = try await node.send(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]).array ?? []
                cursor = parts.first?.string ?? "0"
                found += (parts.last?.array ?? []).compactMap(\.string)
            } while cursor != "0"
        }
        return found.sorted()
    }

    static func ttl(_ redis: any RedisClient, _ key: String) async throws -> Int64 {
        try await redis.send(["TTL", key], key: key).int ?? -2
    }
}

struct SetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

private let portsHandedOut = Mutex<Set<Int>>([])

/// A free TCP port on loopback (bound, read, released), never the same one twice in this process,
/// so tests running in parallel do not start two servers on one port.
func freePort() throws -> Int {
    while true {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        guard let port = channel.localAddress?.port else { throw SetupError("no port") }
        if portsHandedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
}

/// A `redis-server` of the test's own, for tests that stop, freeze or restart Redis.
///
/// Spawned with posix_spawn and reaped with waitpid (Foundation's Process.waitUntilExit spins on Linux).
final class RedisServerProcess: Sendable {
    let port: Int
    private let extraArguments: [String]
    private let pid = Mutex<pid_t?>(nil)

    init(extraArguments: [String] = []) throws {
        self.port = try freePort()
        self.extraArguments = extraArguments
    }

    var url: String { "redis://\(authPart)127.0.0.1:\(port)/0" }

    func start() async throws {
        let arguments =
            [
                "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--logfile", "/dev/null",
            ] + extraArguments
        var child: pid_t = 0
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        // The child must not inherit this process's sockets: a listening one would keep its port busy.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        _ = spawnCloseFrom(&actions, 3)
        let status = posix_spawnp(&child, "redis-server", &actions, nil, &cArguments, environ)
        guard status == 0 else { throw SetupError("cannot spawn redis-server: \(status)") }
        pid.withLock { $0 = child }
        let probe = try TestRedis.client(url: url)
        defer { probe.shutdown() }
        let up = try await eventually {
            if case .status("PONG")? = try? await probe.send(["PING"]) { return true }
            return false
        }
        guard up else { throw SetupError("redis-server on \(port) did not start") }
    }

    private var authPart: String {
        guard let index = extraArguments.firstIndex(of: "--requirepass"), index + 1 < extraArguments.count else { return "" }
        return ":\(extraArguments[index + 1])@"
    }

    func stop() {
        guard
            let child = pid.withLock({ value -> pid_t? in
                defer { value = nil }
                return value
            })
        else { return }
        kill(child, SIGKILL)
        var status: Int32 = 0
        waitpid(child, &status, 0)
    }

    func freeze() { if let child = pid.withLock({ $0 }) { kill(child, SIGSTOP) } }
    func thaw() { if let child = pid.withLock({ $0 }) { kill(child, SIGCONT) } }

    deinit { stop() }
}

/// Bcrypt hashes (cost 4) for test users: alice / alice-password, bob / bob-password.
enum TestUsers {
    static let bobHash = hash("bob", "bob-password")
    static let store = UserStore(hashes: [
        "alice": hash("alice", "alice-password"),
        "bob": bobHash,
    ])

    private static func hash(_ user: String, _ password: String) -> String {
        String(UserStore.htpasswdLine(username: user, password: password, cost: 4).dropFirst(user.count + 1))
    }
}

/// A wall clock the test can move forward.
final class TestClock: Sendable {
    private let offset = Atomic<Int64>(0)
    func now() -> Int64 { UnixTime.now() + offset.load(ordering: .relaxed) }
    func advance(seconds: Int64) { offset.add(seconds, ordering: .relaxed) }
}

let signingKey = "integration-test-signing-key-0123456789"

/// A configuration for tests: a fresh key prefix, port 0, the test Redis.
func testConfiguration(_ overrides: [Setting: String] = [:], redisURL: String? = nil) throws -> Configuration {
    var values: [Setting: String] = [
        .signingKey: signingKey, .listen: "127.0.0.1:0", .redisURL: try redisURL ?? TestRedis.url,
        .keyPrefix: TestRedis.uniquePrefix(),
    ]
    values.merge(overrides) { $1 }
    return try Configuration.parse(values) { _ in "" }
}

extension Configuration {
    /// The signing secret, for tests that forge HS256 tokens by hand (the tests' keys are HS256).
    var hs256Secret: [UInt8] {
        guard case .hs256(let secret) = signingKeys[0].material else { preconditionFailure("the tests sign with HS256") }
        return secret.withUnsafeBytes { Array($0) }
    }
}
