//! What the service counts, for Prometheus (`GET /metrics`): requests by
//! route and status, latency, the queue, batch sizes, audio processed and
//! how much faster than real time it went.

use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// One unit of a gauge (a request in flight, an open connection), held
/// until dropped, however its holder ends.
pub struct Held(IntGauge);

impl Held {
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Every metric hark exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and HTTP status.
    pub requests: IntCounterVec,
    /// Time from request to response, by route.
    pub request_seconds: HistogramVec,
    /// Requests received and not yet answered.
    pub requests_in_flight: IntGauge,
    /// TCP connections open.
    pub connections: IntGauge,
    /// Seconds of audio queued or running in the acoustic model.
    pub queue_audio_seconds: Gauge,
    /// Utterances (or chunks of long ones) waiting for a worker.
    pub queue_jobs: IntGauge,
    /// Utterances or chunks per batch run through the network.
    pub batch_size: Histogram,
    /// Seconds of audio transcribed.
    pub audio_seconds: prometheus::Counter,
    /// Processing time over audio duration, per transcribed request.
    pub real_time_factor: Histogram,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("hark".into()), None).expect("a valid prefix");
        let requests = IntCounterVec::new(Opts::new("requests_total", "Requests answered, by route and status"), &["route", "status"])
            .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Time from request to response")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["route"],
        )
        .expect("valid metric");
        let requests_in_flight = IntGauge::new("requests_in_flight", "Requests received and not yet answered").expect("valid metric");
        let connections = IntGauge::new("connections", "TCP connections open").expect("valid metric");
        let queue_audio_seconds = Gauge::new("queue_audio_seconds", "Seconds of audio queued or running").expect("valid metric");
        let queue_jobs = IntGauge::new("queue_jobs", "Utterances or chunks waiting for a worker").expect("valid metric");
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("batch_size", "Utterances or chunks per network batch").buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )
        .expect("valid metric");
        let audio_seconds = prometheus::Counter::new("audio_seconds_total", "Seconds of audio transcribed").expect("valid metric");
        let real_time_factor = Histogram::with_opts(
            HistogramOpts::new("real_time_factor", "Processing time over audio duration, per request")
                .buckets(vec![0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]),
        )
        .expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_seconds.clone()),
            Box::new(requests_in_flight.clone()),
            Box::new(connections.clone()),
            Box::new(queue_audio_seconds.clone()),
            Box::new(queue_jobs.clone()),
            Box::new(batch_size.clone()),
            Box::new(audio_seconds.clone()),
            Box::new(real_time_factor.clone()),
        ] {
            registry.register(metric).expect("metric names are unique");
        }
        Self {
            registry,
            requests,
            request_seconds,
            requests_in_flight,
            connections,
            queue_audio_seconds,
            queue_jobs,
            batch_size,
            audio_seconds,
            real_time_factor,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out).expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
