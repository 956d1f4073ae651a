import CoreMetrics

/// What the domain counts, through swift-metrics: the embedding application gives the counters a
/// backend by passing a `MetricsFactory` (the HTTP layer's Prometheus registry) to `SessionStore`
/// and `AuthService`; without one they count into `MetricsSystem.factory`.
public enum DomainMetric: String, CaseIterable, Sendable {
    case redisErrors = "tokengate_redis_errors_total"
    case tokenReplays = "tokengate_token_replays_total"

    /// The metric's name, as exported.
    public var label: String { rawValue }

    /// One line of help (Prometheus's `# HELP`).
    public var help: String {
        switch self {
        case .redisErrors: "Redis commands that failed or timed out"
        case .tokenReplays: "Rotated-out tokens used after their grace window (each ended its session)"
        }
    }

    /// The counter, from `factory`.
    func counter(_ factory: any MetricsFactory) -> Counter {
        Counter(label: label, factory: factory)
    }
}
