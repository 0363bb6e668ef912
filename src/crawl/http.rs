//! The polite HTTP client of the live crawlers: one request at a time per site, spaced by
//! `min_interval`, a User-Agent that says who we are, and retries with exponential back-off on 429,
//! 5xx, timeouts and connection errors (a `Retry-After` header wins over the back-off).
//!
//! On bad input: a body that is not the JSON we asked for is a [`FetchError::Malformed`], never a panic;
//! the caller decides what it makes incomplete (a region without a sweep marker).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use tokio::sync::Mutex;
use url::Url;

use crate::config::CrawlConfig;

/// The longest back-off or `Retry-After` we honour before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A request that failed for good.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The client could not be built (bad TLS set-up or header).
    #[error("cannot build HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    /// The server kept answering with an error status.
    #[error("{url}: HTTP {status} after {attempts} attempt(s)")]
    Status {
        /// The URL.
        url: String,
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection kept failing or timing out.
    #[error("{url}: {source} after {attempts} attempt(s)")]
    Transport {
        /// The URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The body is larger than `crawl.max_response_mib` (refused as it arrives, not retried).
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap, bytes.
        limit: u64,
    },
    /// The body is not the JSON shape the crawler expects.
    #[error("{url}: malformed body: {reason}")]
    Malformed {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A rate-limited, retrying JSON client for one site.
pub struct PoliteClient {
    client: reqwest::Client,
    min_interval: Duration,
    max_attempts: u32,
    backoff: Duration,
    max_body: u64,
    next_slot: Mutex<Instant>,
    requests: std::sync::atomic::AtomicU64,
}

impl PoliteClient {
    /// Builds a client with the crawl settings, the site's spacing and extra default headers.
    pub fn new(
        crawl: &CrawlConfig,
        min_interval: Duration,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, FetchError> {
        let mut map = HeaderMap::new();
        let ua = HeaderValue::from_str(&crawl.user_agent)
            .unwrap_or(HeaderValue::from_static("roomstream"));
        map.insert(USER_AGENT, ua);
        for (name, value) in headers {
            if let Ok(v) = HeaderValue::from_str(value) {
                map.insert(HeaderName::from_static(name), v);
            }
        }
        let client = reqwest::Client::builder()
            .default_headers(map)
            .timeout(crawl.request_timeout)
            .connect_timeout(crawl.request_timeout.min(Duration::from_secs(10)))
            .gzip(true)
            .build()
            .map_err(FetchError::Build)?;
        Ok(PoliteClient {
            client,
            min_interval,
            max_attempts: crawl.max_attempts,
            backoff: crawl.backoff,
            max_body: u64::from(crawl.max_response_mib) << 20,
            next_slot: Mutex::new(Instant::now()),
            requests: Default::default(),
        })
    }

    /// Requests sent so far, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// GETs `url` and parses the body as JSON.
    pub async fn get_json(&self, url: &Url) -> Result<serde_json::Value, FetchError> {
        let body = self.send(|| self.client.get(url.clone()), url).await?;
        parse_json(url, &body)
    }

    /// POSTs a JSON body to `url` and parses the answer as JSON.
    pub async fn post_json(
        &self,
        url: &Url,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, FetchError> {
        let body = self
            .send(|| self.client.post(url.clone()).json(body), url)
            .await?;
        parse_json(url, &body)
    }

    /// GETs `url` and returns the raw body.
    pub async fn get_bytes(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        self.send(|| self.client.get(url.clone()), url).await
    }

    /// Waits for this site's next slot, so that requests are at least `min_interval` apart.
    async fn wait_for_slot(&self) {
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now() + self.min_interval;
    }

    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<Vec<u8>, FetchError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_slot().await;
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let why = match build().send().await {
                Ok(resp) if resp.status().is_success() => match self.body(resp, url).await? {
                    Ok(b) => return Ok(b),
                    Err(source) => Retryable::Transport(source),
                },
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        Retryable::Status(status, retry_after)
                    } else {
                        return Err(FetchError::Status {
                            url: url.to_string(),
                            status: status.as_u16(),
                            attempts: attempt,
                        });
                    }
                }
                Err(source) => Retryable::Transport(source),
            };
            if attempt >= self.max_attempts {
                return Err(match why {
                    Retryable::Status(status, _) => FetchError::Status {
                        url: url.to_string(),
                        status: status.as_u16(),
                        attempts: attempt,
                    },
                    Retryable::Transport(source) => FetchError::Transport {
                        url: url.to_string(),
                        attempts: attempt,
                        source,
                    },
                });
            }
            let backoff = self
                .backoff
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            let wait = match &why {
                Retryable::Status(_, Some(after)) => (*after).min(MAX_BACKOFF),
                _ => backoff,
            };
            tracing::warn!(%url, attempt, wait_ms = wait.as_millis() as u64, reason = %why, "Request failed; retrying.");
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads a body chunk by chunk, refusing it once it passes the cap (announced or not). The outer
    /// error ends the request; the inner one is a transport error, which is retried.
    async fn body(
        &self,
        mut resp: reqwest::Response,
        url: &Url,
    ) -> Result<Result<Vec<u8>, reqwest::Error>, FetchError> {
        let too_large = || FetchError::TooLarge {
            url: url.to_string(),
            limit: self.max_body,
        };
        if resp.content_length().is_some_and(|n| n > self.max_body) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > self.max_body {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Ok(body)),
                Err(e) => return Ok(Err(e)),
            }
        }
    }
}

/// Why an attempt may be tried again.
enum Retryable {
    Status(StatusCode, Option<Duration>),
    Transport(reqwest::Error),
}

impl std::fmt::Display for Retryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retryable::Status(s, _) => write!(f, "HTTP {s}"),
            Retryable::Transport(e) => write!(f, "{e}"),
        }
    }
}

fn parse_json(url: &Url, body: &[u8]) -> Result<serde_json::Value, FetchError> {
    serde_json::from_slice(body).map_err(|e| FetchError::Malformed {
        url: url.to_string(),
        reason: e.to_string(),
    })
}
