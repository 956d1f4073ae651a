public import Prometheus
import RedisClient
import Synchronization

public import protocol CoreMetrics.MetricsFactory

/// The service's Prometheus metrics (`GET /metrics`).
public final class Metrics: Sendable {
    /// The registry, for emitting.
    public let registry: PrometheusCollectorRegistry
    /// The domain's counters (`DomainMetric`) in this registry: `SessionStore` and `AuthService`
    /// count through it.
    public let factory: any MetricsFactory
    private let verifyDuration: LatencyHistogram
    /// Live sessions across all users (set when `/metrics` is scraped).
    private let liveSessions: Gauge
    /// The generation of the signing keys and users in force (set when `/metrics` is scraped).
    private let generation: Gauge
    private let reloadFailures: Counter

    /// Creates the metrics in a new registry.
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.verifyDuration = LatencyHistogram(
            name: "tokengate_verify_duration_seconds",
            help: "Time to authenticate a protected request: claims, signature and the Redis check",
            buckets: [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
            ]
        )
        self.factory = RegistryFactory(registry: registry)
        func redisCounter(_ name: String, _ help: String, _ value: @escaping @Sendable (RedisClientStatistics) -> Int) -> RedisCounter {
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "tokengate", metricName: name, unitName: "total", helpText: help)
            )
            return RedisCounter(counter: counter, value: value)
        }
        self.redisCounters = [
            redisCounter("redis_commands", "Commands sent to Redis (a script is one command)") { $0.commandsSent },
            redisCounter("redis_script_reloads", "Scripts sent again with EVAL after NOSCRIPT (a restarted or newly promoted Redis)") {
                $0.scriptReloads
            },
            redisCounter("redis_replication_timeouts", "Writes answered 503 because fewer replicas than TOKENGATE_REDIS_WAIT confirmed them") {
                $0.replicationTimeouts
            },
            redisCounter("redis_topology_refreshes", "Times the Redis primary was looked up (Sentinel)") { $0.topologyRefreshes },
            redisCounter("redis_failovers", "Times the Redis primary changed address (a failover seen)") { $0.failovers },
            redisCounter("redis_redirects", "Redis Cluster commands sent on after MOVED or ASK") { $0.redirects },
        ]
        self.generation = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "tokengate",
                metricName: "config_generation",
                helpText: "Loads of the signing keys and users file in force: 1 at start, one more for every reload (SIGHUP)"
            )
        )
        self.reloadFailures = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "tokengate",
                metricName: "config_reload_failures",
                unitName: "total",
                helpText: "Reloads (SIGHUP) refused because a file could not be read or parsed; the files loaded before stay in force"
            )
        )
        self.liveSessions = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "tokengate",
                metricName: "live",
                unitName: "sessions",
                helpText: "Live sessions of all users, counted in Redis"
            )
        )
    }

    private struct RouteStatus: Hashable {
        let route: String
        let status: Int
    }
    private let requestCounters = Mutex<[RouteStatus: Counter]>([:])

    func countRequest(route: String, status: Int) {
        requestCounter(route: route, status: status).increment()
    }

    /// The counter of one route and status (callers on the hot path keep it, so that counting
    /// takes neither the lock nor a hash).
    func requestCounter(route: String, status: Int) -> Counter {
        let key = RouteStatus(route: route, status: status)
        if let counter = requestCounters.withLock({ $0[key] }) { return counter }
        let counter = registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("status", String(status))])
        requestCounters.withLock { $0[key] = counter }
        return counter
    }

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "tokengate",
            metricName: "http_requests",
            unitName: "total",
            helpText: "HTTP responses by route and status"
        )
    }

    /// A counter that follows one of the Redis client's own running totals.
    private struct RedisCounter: Sendable {
        let counter: Counter
        let value: @Sendable (RedisClientStatistics) -> Int
    }
    private let redisCounters: [RedisCounter]
    private let redisReported = Mutex([Int]())

    private static var nodeErrors: MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "tokengate",
            metricName: "redis_node_errors",
            unitName: "total",
            helpText: "Per Redis node: failed connects, lost connections (timeouts, resets) and replies saying it is no longer a primary"
        )
    }
    private let nodeErrorsReported = Mutex<[String: (counter: Counter, reported: Int)]>([:])

    /// Brings the `tokengate_redis_*_total` counters up to the client's own totals (called on scrape).
    func reportRedis(_ statistics: RedisClientStatistics) {
        nodeErrorsReported.withLock { reported in
            for (node, total) in statistics.nodeErrors {
                let entry = reported[node] ?? (registry.makeCounter(descriptor: Self.nodeErrors, labels: [("node", node)]), 0)
                if total > entry.reported { entry.counter.increment(by: Int64(total - entry.reported)) }
                reported[node] = (entry.counter, max(entry.reported, total))
            }
        }
        let totals = redisCounters.map { $0.value(statistics) }
        let deltas = redisReported.withLock { reported -> [Int] in
            if reported.isEmpty { reported = Array(repeating: 0, count: totals.count) }
            defer { reported = zip(reported, totals).map { max($0, $1) } }
            return zip(reported, totals).map { max(0, $1 - $0) }
        }
        for (redisCounter, delta) in zip(redisCounters, deltas) where delta > 0 {
            redisCounter.counter.increment(by: Int64(delta))
        }
    }

    private let liveSampled = Mutex<(at: ContinuousClock.Instant?, running: Bool)>((nil, false))

    /// Re-counts live sessions when the last count is older than `interval`, one counter at a time,
    /// so scraping `/metrics` often cannot load Redis with key-space scans.
    func refreshLiveSessions(every interval: Duration = .seconds(15), count: () async throws -> Int) async rethrows {
        let due = liveSampled.withLock { state -> Bool in
            guard !state.running, state.at.map({ ContinuousClock.now - $0 >= interval }) ?? true else { return false }
            state.running = true
            return true
        }
        guard due else { return }
        defer { liveSampled.withLock { $0 = (ContinuousClock.now, false) } }
        liveSessions.set(Double(try await count()))
    }

    func emit() -> [UInt8] { registry.emitToBuffer() + verifyDuration.rendered() }

    func recordVerify(_ duration: Duration) { verifyDuration.record(duration) }

    /// Counts a refused reload.
    public func countReloadFailure() { reloadFailures.increment() }

    func reportGeneration(_ value: Int) { generation.set(Double(value)) }
}

/// A histogram of durations whose recording takes no lock: one atomic counter per bucket.
/// (swift-prometheus's histogram takes a lock for every value, which the event loops answering
/// the hot path would contend for.) Rendered in the Prometheus text format like its histograms.
final class LatencyHistogram: Sendable {
    private final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    private let name: String
    private let help: String
    private let bounds: [Duration]
    /// One per bound, and one past the last (`+Inf`); each counts the values of its bucket only.
    private let cells: [Cell]
    private let sumNanoseconds = Atomic<Int>(0)

    init(name: String, help: String, buckets: [Duration]) {
        self.name = name
        self.help = help
        self.bounds = buckets.sorted()
        self.cells = (0...buckets.count).map { _ in Cell() }
    }

    func record(_ duration: Duration) {
        let index = bounds.firstIndex { duration <= $0 } ?? bounds.count
        cells[index].value.add(1, ordering: .relaxed)
        let (seconds, attoseconds) = duration.components
        sumNanoseconds.add(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000), ordering: .relaxed)
    }

    /// `# HELP`, `# TYPE`, the cumulative buckets, `_sum` (seconds) and `_count`.
    func rendered() -> [UInt8] {
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cumulative = 0
        for (bound, cell) in zip(bounds, cells) {
            cumulative += cell.value.load(ordering: .relaxed)
            text += "\(name)_bucket{le=\"\(Self.seconds(bound))\"} \(cumulative)\n"
        }
        cumulative += cells[bounds.count].value.load(ordering: .relaxed)
        text += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n"
        text += "\(name)_sum \(Double(sumNanoseconds.load(ordering: .relaxed)) / 1e9)\n"
        text += "\(name)_count \(cumulative)\n"
        return Array(text.utf8)
    }

    private static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
