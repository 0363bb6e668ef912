//! The API's Prometheus metrics (`GET /metrics`, text exposition format):
//! `roomstream_api_requests_total{route,status}`, `roomstream_api_request_duration_seconds{route}`
//! (histogram), `roomstream_api_db_connections{state}`, and each sink's epoch as read by `/status`:
//! `roomstream_sink_lag_records{sink,topic}` (the signal to scale sinks on) and
//! `roomstream_sink_last_commit_age_seconds{sink,topic}`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters and histograms, shared by the middleware and the endpoint.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

impl ApiMetrics {
    /// Records one request by its route template (`/api/v1/listings/{id}`), status and duration.
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_string()).or_default();
            let s = took.as_secs_f64();
            for (i, le) in BUCKETS.iter().enumerate() {
                if s <= *le {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += s;
        }
    }

    /// The exposition text; `extra` is appended (gauges read at scrape time).
    pub fn render(&self, extra: &str) -> String {
        let mut out = String::new();
        out.push_str("# HELP roomstream_api_requests_total Requests answered, by route template and status.\n");
        out.push_str("# TYPE roomstream_api_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "roomstream_api_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP roomstream_api_request_duration_seconds Time to answer, by route template.\n",
        );
        out.push_str("# TYPE roomstream_api_request_duration_seconds histogram\n");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                let r = escape(route);
                for (le, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        out,
                        "roomstream_api_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    out,
                    "roomstream_api_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "roomstream_api_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "roomstream_api_request_duration_seconds_count{{route=\"{r}\"}} {}",
                    h.count
                );
            }
        }
        out.push_str(extra);
        out
    }
}

/// A label value with `\`, `"` and newlines escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = ApiMetrics::default();
        m.observe("/api/v1/listings", 200, Duration::from_micros(800));
        m.observe("/api/v1/listings", 200, Duration::from_millis(30));
        m.observe("/api/v1/listings", 400, Duration::from_micros(100));
        let text = m.render("");
        assert!(text.contains(
            "roomstream_api_requests_total{route=\"/api/v1/listings\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "roomstream_api_requests_total{route=\"/api/v1/listings\",status=\"400\"} 1"
        ));
        assert!(text.contains("roomstream_api_request_duration_seconds_bucket{route=\"/api/v1/listings\",le=\"0.001\"} 2"));
        assert!(text.contains("roomstream_api_request_duration_seconds_bucket{route=\"/api/v1/listings\",le=\"0.05\"} 3"));
        assert!(text.contains(
            "roomstream_api_request_duration_seconds_count{route=\"/api/v1/listings\"} 3"
        ));
    }
}
