public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
public import ServiceLifecycle

/// A Redis deployment as TokenGate uses it: scripts and commands go to the primary that holds
/// their keys (never a replica: a replica happily answers `EXISTS` for a revoked token), and any
/// doubt about which server that is fails the command rather than guessing.
///
/// `RedisConfiguration.makeClient` makes the one its URL names: `StandaloneRedisClient` (one
/// server), `SentinelRedisClient` (the primary Redis Sentinel names, followed through failovers)
/// or `ClusterRedisClient` (each key's slot's primary). Each is a `Service`: run it so graceful
/// shutdown closes its connections, and so the Sentinel and Cluster clients follow failovers (their
/// topology lookups run in it: `TopologyRefresher`).
///
/// Nothing is retried that may have run: a command that timed out or lost its connection after
/// being sent fails (the caller answers 503); the client itself only reconnects.
public protocol RedisClient: Service, Sendable {
    /// Runs a Lua script on the primary holding `keys` by `EVALSHA`, falling back to `EVAL` on
    /// `NOSCRIPT`; with `wait`, answers only once enough replicas confirmed it (`WAIT`, pipelined
    /// after it: still one round trip). `completion` runs on `eventLoop` (nil: any) with the reply
    /// or a `RedisError` (an error reply is a failure). The hot path's form: with a connection open
    /// on the caller's loop, no task, no thread hop and no allocation but the command's.
    func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    )

    /// Sends one command to the primary holding its key (any primary for a command without one)
    /// and returns its reply; an error reply is thrown as `.server`.
    func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue

    /// Every primary, for what walks the whole key space (`SCAN`, `CONFIG GET`): one for a
    /// standalone server or a Sentinel-managed primary, each shard's for Cluster.
    func primaries() async throws(RedisError) -> [RedisNodeClient]

    /// What the client has done so far.
    var statistics: RedisClientStatistics { get }

    /// Closes every connection; later commands fail with `.shutdown`.
    func shutdown()
}

extension RedisClient {
    /// Runs a Lua script (see the requirement); async.
    public func run(_ script: RedisScript, keys: [String], arguments: [String], wait: ReplicaWait? = nil) async throws(RedisError) -> RESPValue {
        try await awaiting { run(script, keys: keys, arguments: arguments, wait: wait, on: nil, $0) }
    }

    /// `run` with a callback on `eventLoop` and no `WAIT`.
    public func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        on eventLoop: any EventLoop,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        run(script, keys: keys, arguments: arguments, wait: nil, on: eventLoop, completion)
    }

    /// Sends a command whose routing key (if any) is `key`.
    public func send(_ arguments: [String], key: String? = nil) async throws(RedisError) -> RESPValue {
        try await send(RedisCommand(arguments, key: key))
    }

    /// How many connections the client has opened so far (for tests and metrics).
    public var connectionsOpened: Int { statistics.connectionsOpened }

    /// How many commands the client has sent so far (scripts count as one: what goes on the wire).
    public var commandsSent: Int { statistics.commandsSent }
}

/// A command with the key it is about, so that it goes to the server holding that key.
public struct RedisCommand: Sendable, Equatable {
    /// The command and its arguments, e.g. `["TTL", "tg:{alice}:sessions"]`.
    public var arguments: [String]
    /// The key that decides where it goes; nil: any primary.
    public var key: String?

    /// Creates a command.
    public init(_ arguments: [String], key: String? = nil) {
        self.arguments = arguments
        self.key = key
    }
}

extension RedisConfiguration {
    /// The client this configuration names; no connection is made until the first command (or,
    /// for Sentinel and Cluster, until it runs as a service).
    public func makeClient(
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "tokengate.redis")
    ) -> any RedisClient {
        switch endpoint {
        case .standalone(let address):
            StandaloneRedisClient(address: address, configuration: self, eventLoopGroup: eventLoopGroup, logger: logger)
        case .sentinel(let sentinels, let primaryName):
            SentinelRedisClient(sentinels: sentinels, primaryName: primaryName, configuration: self, eventLoopGroup: eventLoopGroup, logger: logger)
        case .cluster(let seeds):
            ClusterRedisClient(seeds: seeds, configuration: self, eventLoopGroup: eventLoopGroup, logger: logger)
        }
    }

    /// How to connect to the data nodes.
    func nodeSettings(requirePrimary: Bool) -> RedisConnection.Settings {
        RedisConnection.Settings(
            username: username,
            password: password,
            database: database,
            timeout: timeout,
            tls: tls.map { tls in (tls, Result { () throws(RedisTLSError) in try tls.makeContext() }) },
            requirePrimary: requirePrimary
        )
    }
}

/// One Redis server: a node client and nothing more.
public final class StandaloneRedisClient: RedisClient {
    /// The server's client.
    public let node: RedisNodeClient
    private let counters = RedisCounters()

    init(address: RedisAddress, configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.node = RedisNodeClient(
            address: address,
            settings: configuration.nodeSettings(requirePrimary: false),
            connectionCount: configuration.connectionCount,
            eventLoopGroup: eventLoopGroup,
            counters: counters,
            logger: logger
        )
    }

    public func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        node.run(script, keys: keys, arguments: arguments, wait: wait, on: eventLoop, completion)
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try await node.send(command.arguments)
    }

    public func primaries() async throws(RedisError) -> [RedisNodeClient] { [node] }

    public var statistics: RedisClientStatistics { counters.statistics }

    public func shutdown() { node.shutdown() }

    /// Waits for graceful shutdown, then closes the connections.
    public func run() async throws {
        try? await gracefulShutdown()
        shutdown()
    }
}
