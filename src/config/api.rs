//! `[api]`: where `roomstream serve` listens, and the limits it keeps.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Address the public API and the web page listen on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// A separate, private address for the operator endpoints (`/metrics`, `/api/v1/status`), e.g.
    /// `127.0.0.1:9464`; empty serves them on `listen` too.
    #[serde(default)]
    pub ops_listen: String,
    /// A request that takes longer is answered `503` with a JSON error (and its database statement
    /// is cut off at the same time).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser (CORS), e.g. `["https://roomstream.kr"]`;
    /// `["*"]` for any; empty for none (the bundled page is same-origin and needs none).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Connections to the production database, at most.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Search and recommendation answers kept until the MySQL sink's next commit (0: none).
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Requests handled at once, at most (1..=100000); one more is answered `503` with a JSON error
    /// and `Retry-After: 1` at once instead of queueing behind the others (load shedding).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Time a client has to send a request's headers (1s..=5m); a connection that takes longer
    /// (a slow-loris client) is closed, so idle sockets cannot pile up.
    #[serde(default = "default_header_timeout", with = "humantime_serde")]
    pub header_timeout: Duration,
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_max_in_flight() -> usize {
    1024
}

fn default_cache_entries() -> usize {
    10_000
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_connections() -> u32 {
    16
}

impl ApiConfig {
    /// Checks the values (no I/O).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &'static str, value: &str, reason: &str| ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "api.listen",
                &self.listen,
                "expected ip:port, e.g. 127.0.0.1:8080",
            ));
        }
        if !self.ops_listen.is_empty() && self.ops_listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                "api.ops_listen",
                &self.ops_listen,
                "expected ip:port, e.g. 127.0.0.1:9464, or empty",
            ));
        }
        if self.request_timeout.is_zero() || self.request_timeout > Duration::from_secs(300) {
            return Err(invalid(
                "api.request_timeout",
                &humantime::format_duration(self.request_timeout).to_string(),
                "between 1ms and 5m",
            ));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.header_timeout) {
            return Err(invalid(
                "api.header_timeout",
                &humantime::format_duration(self.header_timeout).to_string(),
                "between 1s and 5m",
            ));
        }
        if !(1..=100_000).contains(&self.max_in_flight) {
            return Err(invalid(
                "api.max_in_flight",
                &self.max_in_flight.to_string(),
                "between 1 and 100000",
            ));
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err(invalid(
                "api.max_connections",
                &self.max_connections.to_string(),
                "between 1 and 1000",
            ));
        }
        for origin in &self.cors_origins {
            let ok = origin == "*"
                || url::Url::parse(origin).is_ok_and(|u| {
                    u.scheme().starts_with("http") && u.path() == "/" && !origin.ends_with('/')
                });
            if !ok {
                return Err(invalid(
                    "api.cors_origins",
                    origin,
                    "an origin such as https://example.com (scheme and host, no path), or *",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> ApiConfig {
        ApiConfig {
            listen: "127.0.0.1:8080".into(),
            ops_listen: String::new(),
            request_timeout: default_request_timeout(),
            cors_origins: vec![],
            max_connections: 16,
            cache_entries: 10,
            max_in_flight: 8,
            header_timeout: default_header_timeout(),
        }
    }

    #[test]
    fn bad_api_values_name_their_key() {
        assert!(api().validate().is_ok());
        type Spoil = fn(&mut ApiConfig);
        let cases: [(Spoil, &str); 5] = [
            (|a| a.listen = "localhost".into(), "api.listen"),
            (|a| a.ops_listen = "9464".into(), "api.ops_listen"),
            (
                |a| a.request_timeout = Duration::ZERO,
                "api.request_timeout",
            ),
            (|a| a.max_connections = 0, "api.max_connections"),
            (
                |a| a.cors_origins = vec!["https://x.kr/path".into()],
                "api.cors_origins",
            ),
        ];
        for (bad, key) in cases {
            let mut a = api();
            bad(&mut a);
            let err = a.validate().expect_err(key).to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
        let mut a = api();
        a.cors_origins = vec!["*".into(), "https://roomstream.kr".into()];
        assert!(a.validate().is_ok());
    }
}
