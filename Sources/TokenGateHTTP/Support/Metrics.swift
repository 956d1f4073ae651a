import Prometheus
import RedisClient

/// The service's Prometheus metrics (`GET /metrics`).
public final class Metrics: Sendable {
    /// The registry, for emitting.
    public let registry: PrometheusCollectorRegistry
    private let verifyDuration: DurationHistogram
    private let redisErrors: Counter
    /// Live sessions across all users (set when `/metrics` is scraped).
    private let liveSessions: Gauge

    /// Creates the metrics in a new registry.
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.verifyDuration = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "tokengate",
                metricName: "verify_duration",
                unitName: "seconds",
                helpText: "Time to authenticate a protected request: claims, signature and the Redis check"
            ),
            buckets: [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        )
        self.redisErrors = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "tokengate",
                metricName: "redis_errors",
                unitName: "total",
                helpText: "Redis commands that failed or timed out"
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

    func countRequest(route: String, status: Int) {
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("status", String(status))]).increment()
    }

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
        namespace: "tokengate",
        metricName: "http_requests",
        unitName: "total",
            helpText: "HTTP responses by route and status"
        )
    }

    func setLiveSessions(_ count: Int) { liveSessions.set(Double(count)) }

    func emit() -> [UInt8] { registry.emitToBuffer() }

    func recordVerify(_ duration: Duration) { verifyDuration.record(duration) }

    /// Counts one failed Redis command.
    public func countRedisError(_ error: RedisError) { redisErrors.increment() }
}
