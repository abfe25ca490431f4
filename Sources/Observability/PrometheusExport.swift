import Prometheus

/// `/metrics` in Prometheus text format.
public enum PrometheusExport {
    /// A metrics factory for `registry` whose histograms have buckets like kube-proxy's.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        // 1 ms doubling to about 16 s, as kube-proxy's sync duration.
        factory.durationHistogramBuckets[MetricName.syncDuration] = (0..<15).map { .microseconds(1000 << $0) }
        // Sub-second steps first, then seconds up to five minutes.
        factory.durationHistogramBuckets[MetricName.networkProgrammingDuration] =
            [.milliseconds(250), .milliseconds(500)] + [1, 2, 3, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300].map { .seconds($0) }
        return factory
    }

    public static func response(_ registry: PrometheusCollectorRegistry) -> HTTPResponse {
        HTTPResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: registry.emitToBuffer())
    }
}
