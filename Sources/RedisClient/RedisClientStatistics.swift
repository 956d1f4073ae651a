import Synchronization

/// What a client has done so far, for `/metrics` (each a running total).
public struct RedisClientStatistics: Sendable, Equatable {
    /// Connections opened to data nodes.
    public var connectionsOpened = 0
    /// Commands sent (a script is one; the `WAIT` after it is not counted).
    public var commandsSent = 0
    /// Scripts sent again with `EVAL` after `NOSCRIPT` (a restarted or newly promoted server).
    public var scriptReloads = 0
    /// Writes answered 503 because too few replicas confirmed them in time (`WAIT`).
    public var replicationTimeouts = 0
    /// Times the topology was looked up (Sentinel: a primary asked of the sentinels).
    public var topologyRefreshes = 0
    /// Times the primary changed address (a failover seen).
    public var failovers = 0
    /// Commands sent on after a Cluster redirect (`MOVED`, `ASK`).
    public var redirects = 0
    /// Per node (`host:port`): failed connects, lost connections (timeouts, resets) and replies
    /// saying it is no longer a primary.
    public var nodeErrors: [String: Int] = [:]

    /// All zero.
    public init() {}
}

/// The counters behind `RedisClientStatistics`, shared by a client and every node client it makes.
final class RedisCounters: Sendable {
    let connectionsOpened = Atomic<Int>(0)
    let commandsSent = Atomic<Int>(0)
    let scriptReloads = Atomic<Int>(0)
    let replicationTimeouts = Atomic<Int>(0)
    let topologyRefreshes = Atomic<Int>(0)
    let failovers = Atomic<Int>(0)
    let redirects = Atomic<Int>(0)
    /// Rare (errors only), so a lock is fine.
    private let nodeErrors = Mutex<[String: Int]>([:])

    func countError(at address: RedisAddress) {
        nodeErrors.withLock { $0[address.description, default: 0] += 1 }
    }

    var statistics: RedisClientStatistics {
        var statistics = RedisClientStatistics()
        statistics.connectionsOpened = connectionsOpened.load(ordering: .relaxed)
        statistics.commandsSent = commandsSent.load(ordering: .relaxed)
        statistics.scriptReloads = scriptReloads.load(ordering: .relaxed)
        statistics.replicationTimeouts = replicationTimeouts.load(ordering: .relaxed)
        statistics.topologyRefreshes = topologyRefreshes.load(ordering: .relaxed)
        statistics.failovers = failovers.load(ordering: .relaxed)
        statistics.redirects = redirects.load(ordering: .relaxed)
        statistics.nodeErrors = nodeErrors.withLock { $0 }
        return statistics
    }
}
