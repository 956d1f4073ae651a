import Logging
public import NIOCore
import ServiceLifecycle
import Synchronization

/// Redis Cluster: each command goes to the primary of its key's hash slot (`HashSlot`), over that
/// primary's node client.
///
/// - The slot map (`ClusterSlotMap`, from `CLUSTER SHARDS`) is read at the first command and
///   looked up again on a `MOVED` (the slot is patched at once), on a failed or lost connection to
///   a primary, on `TRYAGAIN`/`CLUSTERDOWN`, and every 5 s (every second while in doubt); one
///   lookup at a time, at least 100 ms apart (`TopologyRefresher`, driven by `run()`: run the
///   client as a service to follow failovers).
/// - Scripts and commands take one redirect path (`ClusterRoute`): `MOVED` and `ASK` (then
///   `ASKING`) send them on to the node named, at most 5 times (they did not run where they were
///   refused); `TRYAGAIN` and `CLUSTERDOWN` fail them (503) and look the map up: never a hot loop
///   of retries.
/// - Scripts are loaded per node (a promoted replica starts with an empty cache: `NOSCRIPT`, then
///   `EVAL`). Only primaries are used; a node that is no longer one has its connections closed.
/// - While a slot has no primary (a failover under way), its commands fail at once with
///   `.unavailable`.
public final class ClusterRedisClient: RedisClient {
    private let seeds: [RedisAddress]
    private let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let counters = RedisCounters()
    private let logger: Logger
    private let refresher = TopologyRefresher(clock: ContinuousClock())
    private let warnings = WarningThrottle()
    private let state = Mutex(State())

    struct State {
        var map = ClusterSlotMap()
        /// A node client per primary address (and per address a redirect named).
        var nodes: [RedisAddress: RedisNodeClient] = [:]
        /// Each slot's primary's client (the hot path: one index, no hashing), following `map`.
        var slotNodes = [RedisNodeClient?](repeating: nil, count: HashSlot.count)
    }

    init(seeds: [RedisAddress], configuration: RedisConfiguration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.seeds = seeds
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    public func run(
        _ script: RedisScript,
        keys: [String],
        arguments: [String],
        wait: ReplicaWait?,
        on eventLoop: (any EventLoop)?,
        _ completion: @escaping @Sendable (Result<RESPValue, RedisError>) -> Void
    ) {
        let slot = keys.first.map { HashSlot(key: $0) }
        if let node = state.withLock({ $0.node(for: slot) }) {
            node.run(script, keys: keys, arguments: arguments, wait: wait, on: eventLoop, completion)
            return
        }
        // The rare path: no map yet, or the slot has no primary. Look the map up once, then run or fail.
        let loop = eventLoop ?? eventLoopGroup.any()
        loop.makeFutureWithTask { try await self.node(for: slot) }.whenComplete { result in
            switch result {
            case .success(let node): node.run(script, keys: keys, arguments: arguments, wait: wait, on: loop, completion)
            case .failure(let error): completion(.failure(error as? RedisError ?? RedisError(.unavailable, "\(error)")))
            }
        }
    }

    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        let slot = command.key.map { HashSlot(key: $0) }
        var redirects = 0
        var asking = false
        var node = try await node(for: slot)
        while true {
            do {
                return try await node.send(command.arguments, asking: asking)
            } catch {
                switch ClusterRoute(after: error, from: node.address.host, redirects: redirects) {
                case .fail(let lookUp):
                    if lookUp { trouble() }
                    throw error
                case .follow(let redirect):
                    redirects += 1
                    asking = redirect.isAsk
                    node = follow(redirect)
                }
            }
        }
    }

    public func primaries() async throws(RedisError) -> [RedisNodeClient] {
        if state.withLock({ $0.map.primaries.isEmpty }) { try await lookedUp().get() }
        return state.withLock { state in state.map.primaries.map { state.client(for: $0, make: makeNode) } }
    }

    public var statistics: RedisClientStatistics { counters.statistics }

    public func shutdown() {
        refresher.shutdown()
        let nodes = state.withLock { state in
            defer { state.nodes = [:] }
            return Array(state.nodes.values)
        }
        for node in nodes { node.shutdown() }
    }

    /// Reads the slot map at start, then whenever `TopologyRefresher` says (every 5 s, every
    /// second while in doubt, soon after a trigger) until graceful shutdown; then closes every
    /// connection.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.refresher.run { await self.readSlots() }
        }
        shutdown()
    }

    private static func noPrimary(_ slot: HashSlot?) -> RedisError {
        RedisError(.unavailable, "no Redis Cluster primary serves slot \(slot.map { "\($0)" } ?? "(any)") now")
    }

    /// The primary of `slot` (any primary for nil), looking the map up when it is not known.
    private func node(for slot: HashSlot?) async throws(RedisError) -> RedisNodeClient {
        if let node = state.withLock({ $0.node(for: slot) }) { return node }
        try await lookedUp().get()
        guard let node = state.withLock({ $0.node(for: slot) }) else { throw Self.noPrimary(slot) }
        return node
    }

    /// A node client for `address`, reporting trouble and redirects to this client.
    private func makeNode(_ address: RedisAddress) -> RedisNodeClient {
        RedisNodeClient(
            address: address,
            settings: configuration.nodeSettings(requirePrimary: false),
            connectionCount: configuration.connectionCount,
            eventLoopGroup: eventLoopGroup,
            counters: counters,
            logger: logger,
            onTrouble: { [weak self] _ in self?.trouble() },
            onRedirect: { [weak self] error, script in self?.redirected(error, script) }
        )
    }

    /// A connection to a node failed or closed, or a command met `TRYAGAIN`/`CLUSTERDOWN`: the
    /// map may be stale.
    private func trouble() {
        refresher.trigger()
    }

    /// Waits for a lookup of the slot map (see `TopologyRefresher.lookedUp`).
    private func lookedUp() async -> Result<Void, RedisError> {
        await refresher.lookedUp { await self.readSlots() }
    }

    /// A script came back with `MOVED`, `ASK`, `TRYAGAIN` or `CLUSTERDOWN` from `node`: it did not
    /// run there. It takes the redirect path commands take (`ClusterRoute`).
    private func redirected(_ error: RedisError, _ script: RedirectedScript) {
        guard case .follow(let redirect) = ClusterRoute(after: error, from: script.from.host, redirects: script.redirects) else {
            trouble()
            return script.completion(.failure(error))
        }
        let node = follow(redirect)
        node.run(
            script.script,
            keys: script.keys,
            arguments: script.arguments,
            wait: script.wait,
            asking: redirect.isAsk,
            redirects: script.redirects + 1,
            on: script.eventLoop,
            script.completion
        )
    }

    /// The client of the node `redirect` names; a `MOVED` also patches the slot and looks the map up.
    private func follow(_ redirect: ClusterRedirect) -> RedisNodeClient {
        counters.redirects.add(1, ordering: .relaxed)
        let node = state.withLock { state in
            redirect.isAsk
                ? state.client(for: redirect.address, make: makeNode) : state.move(redirect.slot, to: redirect.address, make: makeNode)
        }
        // The node knows better, and the slot is patched: no doubt, but read the rest of the map.
        if !redirect.isAsk { refresher.trigger(doubt: false) }
        return node
    }

    /// Reads `CLUSTER SHARDS` (or `CLUSTER SLOTS`) from the known primaries, then the seeds, until
    /// one answers; swaps the map in and closes the clients of nodes that are no longer primaries.
    /// Found only when every slot has a primary.
    private func readSlots() async -> TopologyLookup {
        counters.topologyRefreshes.add(1, ordering: .relaxed)
        let known = state.withLock { $0.map.primaries }
        var problems: [String] = []
        for address in known + seeds.filter({ !known.contains($0) }) {
            do throws(RedisError) {
                let map = try await readSlots(from: address)
                let (retired, moved) = state.withLock { state -> ([RedisNodeClient], Bool) in
                    let moved = !state.map.primaries.isEmpty && Set(state.map.primaries) != Set(map.primaries)
                    state.use(map, make: makeNode)
                    let keep = Set(map.primaries)
                    let retired = state.nodes.filter { !keep.contains($0.key) }
                    for address in retired.keys { state.nodes[address] = nil }
                    return (Array(retired.values), moved)
                }
                if moved {
                    counters.failovers.add(1, ordering: .relaxed)
                    logger.warning("Redis Cluster primaries changed", metadata: ["primaries": "\(map.primaries)"])
                }
                for node in retired { node.shutdown() }
                guard map.coveredSlots == HashSlot.count else {
                    if warnings.allows("uncovered") {
                        logger.warning("Redis Cluster slots without a primary", metadata: ["uncovered": "\(HashSlot.count - map.coveredSlots)"])
                    }
                    return .partly
                }
                return .found
            } catch {
                problems.append("\(address): \(error.message)")
            }
        }
        let error = RedisError(.unavailable, "no Redis Cluster node gave its slots: " + problems.joined(separator: "; "))
        if warnings.allows("unreadable") {
            logger.warning("cannot read the Redis Cluster slot map", metadata: ["error": "\(error.message)"])
        }
        return .failed(error)
    }

    private func readSlots(from address: RedisAddress) async throws(RedisError) -> ClusterSlotMap {
        let connection = try await RedisConnection.connect(
            to: address,
            settings: configuration.nodeSettings(requirePrimary: false),
            on: eventLoopGroup.any()
        )
        defer { connection.close() }
        do throws(RedisError) {
            let reply = try await connection.command(["CLUSTER", "SHARDS"])
            guard let map = ClusterSlotMap(shards: reply, tls: configuration.tls != nil) else {
                throw RedisError(.protocolError, "unexpected CLUSTER SHARDS reply")
            }
            return map
        } catch let error where error.kind == .server {
            // Before Redis 7: CLUSTER SLOTS.
            let reply = try await connection.command(["CLUSTER", "SLOTS"])
            guard let map = ClusterSlotMap(slots: reply) else { throw RedisError(.protocolError, "unexpected CLUSTER SLOTS reply") }
            return map
        }
    }
}

extension ClusterRedisClient.State {
    /// The client of `slot`'s primary (the first primary's for nil); nil when none is known.
    func node(for slot: HashSlot?) -> RedisNodeClient? {
        if let slot { return slotNodes[Int(slot.rawValue)] }
        return map.primaries.first.flatMap { nodes[$0] }
    }

    /// Takes a new slot map: a client for every primary, each slot pointing at its primary's.
    mutating func use(_ map: ClusterSlotMap, make: (RedisAddress) -> RedisNodeClient) {
        self.map = map
        let clients = map.primaries.map { client(for: $0, make: make) }
        for slot in 0..<HashSlot.count {
            slotNodes[slot] = HashSlot(slot).flatMap { map.primaryIndex(for: $0) }.map { clients[$0] }
        }
    }

    /// `MOVED`: `slot` is `address`'s now; returns that node's client.
    mutating func move(_ slot: HashSlot, to address: RedisAddress, make: (RedisAddress) -> RedisNodeClient) -> RedisNodeClient {
        map.move(slot, to: address)
        let node = client(for: address, make: make)
        slotNodes[Int(slot.rawValue)] = node
        return node
    }

    /// The client of `address`, made (with `make`) when there is none yet.
    mutating func client(for address: RedisAddress, make: (RedisAddress) -> RedisNodeClient) -> RedisNodeClient {
        if let node = nodes[address] { return node }
        let node = make(address)
        nodes[address] = node
        return node
    }
}
