import CoreMetrics
import Prometheus
import TokenGate

/// swift-metrics over the registry, for the domain's counters: a `DomainMetric` gets its help
/// text; everything else is made as `PrometheusMetricsFactory` makes it.
struct RegistryFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private var prometheus: PrometheusMetricsFactory { PrometheusMetricsFactory(registry: registry) }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let metric = DomainMetric(rawValue: label) else { return prometheus.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(
            descriptor: MetricNameDescriptor(metricName: metric.label, unitName: "", helpText: metric.help),
            labels: dimensions
        )
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        prometheus.makeTimer(label: label, dimensions: dimensions)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }
}
