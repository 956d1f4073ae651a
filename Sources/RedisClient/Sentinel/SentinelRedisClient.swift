import Logging
public import NIOCore
import ServiceLifecycle
import Synchronization

/// The primary that Redis Sentinel monitors under one name, followed through failovers, as the
/// Redis docs' client guide says (docs/reference/sentinel-clients.md):
///
/// - the sentinels are asked in turn (`SENTINEL get-master-addr-by-name`, each within the
///   timeout), the one that answers first next time;
/// - every connection to the primary checks with `ROLE` that it is one before serving anything;
/// - the primary is looked up again on every lost or failed connection, on a `READONLY`/`LOADING`/
///   `MASTERDOWN` reply, on `+switch-master` (a subscriber connection to a sentinel), every second
///   while in doubt and every 5 s otherwise, one lookup at a time (`TopologyRefresher`, driven by
///   `run()`: run the client as a service to follow failovers);
/// - when the primary moves, every connection to the old one is closed (its waiting commands fail).
///
/// Until a primary is known, a command waits for the lookup and fails with `.unavailable` if it
/// finds none (the service answers 503); while the known primary cannot be reached, commands fail
/// at once. Nothing goes to a server that has not said it is a primary.
public final class SentinelRedisClient: RedisClient {
    private let sentinels: [RedisAddress]
    private let primaryName: String
    private let configuration: RedisConfiguration
    private let sentinelSettings: RedisConnection.Settings
    private let eventLoopGroup: any EventLoopGroup
    private let counters = RedisCounters()
    private let logger: Logger
    private let refresher = TopologyRefresher(clock: ContinuousClock())
    private let warnings = WarningThrottle()
    private let state = Mutex(State())

    private struct State {
        /// The client of the primary the sentinels named last (nil: none yet, or shut down).
        var primary: RedisNodeClient?
        /// The sentinel to ask first.
        var preferredSentinel = 0
        /// No primary's client is made from now on.
        var isShutDown = false
    }

    init(sentinels: [RedisAddress], primaryName: String, configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.sentinels = sentinels
        self.primaryName = primaryName
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        var settings = configuration.nodeSettings(requirePrimary: false)
        settings.username = configuration.sentinelUsername
        settings.password = configuration.sentinelPassword
        settings.database = 0
        self.sentinelSettings = settings
    }

    public func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        if let primary = state.withLock({ $0.primary }) {
            primary.run(script, keys: keys, arguments: arguments, wait: wait, on: eventLoop, completion)
            return
        }
        // The rare path: the first command, or one after a lookup found nothing. It waits for a
        // lookup (each sentinel asked within the timeout) and fails if that finds no primary.
        let loop = eventLoop ?? eventLoopGroup.any()
        loop.makeFutureWithTask { try await self.currentPrimary() }.whenComplete { result in
            switch result {
            case .success(let primary): primary.run(script, keys: keys, arguments: arguments, wait: wait, on: loop, completion)
            case .failure(let error): completion(.failure(error as? RedisError ?? RedisError(.unavailable, "\(error)")))
            }
        }
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try await currentPrimary().send(command.arguments)
    }

    public func primaries() async throws(RedisError) -> [RedisNodeClient] {
        [try await currentPrimary()]
    }

    public var statistics: RedisClientStatistics { counters.statistics }

    public func shutdown() {
        refresher.shutdown()
        let primary = state.withLock { state in
            state.isShutDown = true
            defer { state.primary = nil }
            return state.primary
        }
        primary?.shutdown()
    }

    /// Looks the primary up at start, then watches for failovers (`+switch-master`, and the
    /// lookups `TopologyRefresher` starts) until graceful shutdown; then closes every connection.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.watchSwitches() }
                group.addTask { await self.refresher.run { await self.findPrimary() } }
                // Either ends only when cancelled, or (the refresher) when the client is shut down.
                await group.next()
                group.cancelAll()
            }
        }
        shutdown()
    }

    /// The primary's client: the one known, or the one a lookup finds.
    private func currentPrimary() async throws(RedisError) -> RedisNodeClient {
        if let primary = state.withLock({ $0.primary }) { return primary }
        try await refresher.lookedUp { await self.findPrimary() }.get()
        guard let primary = state.withLock({ $0.primary }) else { throw RedisError(.unavailable, "no Redis primary known") }
        return primary
    }

    /// Something went wrong on the primary's connections: look it up again.
    private func trouble(_ error: RedisError) {
        refresher.trigger()
    }

    /// Asks the sentinels for the primary's address; when it moved, swaps in a client for the new
    /// address (whose connections check `ROLE`) and closes the old one's. Then confirms the
    /// primary answers as one (only then is the doubt over).
    private func findPrimary() async -> TopologyLookup {
        counters.topologyRefreshes.add(1, ordering: .relaxed)
        let address: RedisAddress
        switch await askSentinels() {
        case .success(let found): address = found
        case .failure(let error):
            // Keep the primary known (a sentinel outage is not a primary's), but look again every
            // second: this instance may be cut off from a majority that has promoted another.
            if warnings.allows("unnamed") {
                logger.warning("no sentinel named the Redis primary", metadata: ["primary": "\(primaryName)", "error": "\(error.message)"])
            }
            return .failed(error)
        }
        enum Swap {
            case same(RedisNodeClient)
            case swapped(new: RedisNodeClient, old: RedisNodeClient?)
            case shutDown
        }
        let swap = state.withLock { state -> Swap in
            if state.isShutDown { return .shutDown }
            if let primary = state.primary, primary.address == address { return .same(primary) }
            let node = RedisNodeClient(
                address: address,
                settings: configuration.nodeSettings(requirePrimary: true),
                connectionCount: configuration.connectionCount,
                eventLoopGroup: eventLoopGroup,
                counters: counters,
                logger: logger,
                onTrouble: { [weak self] error in self?.trouble(error) }
            )
            defer { state.primary = node }
            return .swapped(new: node, old: state.primary)
        }
        let primary: RedisNodeClient
        switch swap {
        case .shutDown:
            return .failed(RedisError(.shutdown, "client shut down"))
        case .same(let node):
            primary = node
        case .swapped(let node, let old):
            if let old {
                counters.failovers.add(1, ordering: .relaxed)
                logger.warning(
                    "Redis primary moved: closing every connection to the old one",
                    metadata: ["from": "\(old.address)", "to": "\(address)"]
                )
                old.shutdown()
            } else {
                logger.info("Redis primary found by Sentinel", metadata: ["primary": "\(primaryName)", "address": "\(address)"])
            }
            primary = node
        }
        // Its connections check ROLE as they open: an answer means a primary answered.
        do {
            _ = try await primary.send(["PING"])
            return .found
        } catch {
            return .failed(error)
        }
    }

    /// The primary's address from the first sentinel that knows it (each asked within the timeout).
    private func askSentinels() async -> Result<RedisAddress, RedisError> {
        let first = state.withLock { $0.preferredSentinel }
        var problems: [String] = []
        for step in 0..<sentinels.count {
            let index = (first + step) % sentinels.count
            let sentinel = sentinels[index]
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(to: sentinel, settings: sentinelSettings, on: eventLoopGroup.any())
                defer { connection.close() }
                let reply = try await connection.command(["SENTINEL", "get-master-addr-by-name", primaryName])
                guard let address = Self.address(reply) else {
                    problems.append("\(sentinel): does not know \(primaryName)")
                    continue
                }
                state.withLock { $0.preferredSentinel = index }
                return .success(address)
            } catch {
                problems.append("\(sentinel): \(error.message)")
            }
        }
        return .failure(RedisError(.unavailable, problems.joined(separator: "; ")))
    }

    /// `SENTINEL get-master-addr-by-name`'s reply: `[host, port]`, or null for an unknown name.
    static func address(_ reply: RESPValue) -> RedisAddress? {
        guard let parts = reply.array, parts.count == 2, let host = parts[0].string, let port = parts[1].int, (1...65535).contains(port) else {
            return nil
        }
        return RedisAddress(host: host, port: Int(port))
    }

    /// The primary's name in a `+switch-master` message (`<name> <old-ip> <old-port> <new-ip> <new-port>`).
    static func switchedPrimary(_ message: RESPValue) -> String? {
        guard let parts = message.array, parts.count == 3, parts[0].string == "message", parts[1].string == "+switch-master",
            let text = parts[2].string
        else { return nil }
        let fields = text.split(separator: " ")
        return fields.count == 5 ? String(fields[0]) : nil
    }

    /// Subscribes to `+switch-master` on a sentinel (the next one when it goes away) and looks the
    /// primary up on every switch of ours, until cancelled.
    private func watchSwitches() async {
        var index = state.withLock { $0.preferredSentinel }
        while !Task.isCancelled {
            let sentinel = sentinels[index % sentinels.count]
            index += 1
            do throws(RedisError) {
                let connection = try await RedisConnection.connect(to: sentinel, settings: sentinelSettings, on: eventLoopGroup.any()) {
                    [weak self, primaryName] message in
                    guard let self, Self.switchedPrimary(message) == primaryName else { return }
                    self.logger.info("Sentinel announced a failover", metadata: ["primary": "\(primaryName)"])
                    self.trouble(RedisError(.unavailable, "+switch-master"))
                }
                _ = try await connection.command(["SUBSCRIBE", "+switch-master"])
                // A switch may have happened before the subscription: look once more.
                refresher.trigger(doubt: false)
                await withTaskCancellationHandler {
                    try? await connection.channel.closeFuture.get()
                } onCancel: {
                    connection.close()
                }
            } catch {
                logger.debug("cannot subscribe to a sentinel", metadata: ["sentinel": "\(sentinel)", "error": "\(error.message)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
