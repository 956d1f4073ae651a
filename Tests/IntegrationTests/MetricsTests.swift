import Testing

@testable import TokenGateHTTP

@Suite("metrics")
struct MetricsTests {
    @Test("the lock-free verify histogram renders cumulative buckets, sum and count as Prometheus does")
    func latencyHistogram() {
        let histogram = LatencyHistogram(
            name: "h_seconds",
            help: "help text",
            buckets: [.microseconds(250), .microseconds(100), .seconds(1)]
        )
        // A value on a bound counts in that bound's bucket (le: less than or equal).
        for value: Duration in [.microseconds(50), .microseconds(100), .microseconds(300), .seconds(2)] {
            histogram.record(value)
        }
        let text = String(decoding: histogram.rendered(), as: UTF8.self)
        #expect(
            text == """
                # HELP h_seconds help text
                # TYPE h_seconds histogram
                h_seconds_bucket{le="0.0001"} 2
                h_seconds_bucket{le="0.00025"} 2
                h_seconds_bucket{le="1.0"} 3
                h_seconds_bucket{le="+Inf"} 4
                h_seconds_sum 2.00045
                h_seconds_count 4

                """
        )
    }
}
