//! Configuration: one TOML profile from `config/`, overridden key by key by `ROOMSTREAM_<SECTION>_<KEY>`.
//!
//! Layers, lowest first: the profile file (`--config FILE`; without it, `config/local.toml` as compiled
//! in), then environment variables. Sections are single words, so the first `_` after `ROOMSTREAM_`
//! separates section from key: `ROOMSTREAM_KAFKA_BROKERS` → `kafka.brokers`,
//! `ROOMSTREAM_ZIGBANG_MIN_INTERVAL` → `zigbang.min_interval`. Variables the harness owns are not config:
//! `ROOMSTREAM_CONFIG`, `ROOMSTREAM_LOG`, `ROOMSTREAM_SERVICES_DIR` (scripts) and `ROOMSTREAM_TEST_*`.
//!
//! On bad input: an unknown, missing or ill-typed key fails [`load`] with a message naming the key and
//! the layer it came from; [`Config::validate`] (`validate.rs`; the `[api]` section's own in `api.rs`)
//! then checks values (URLs, addresses, names) the same way. Tests: `tests.rs`.
//! Credentials never live in the files: they come from the environment (`ROOMSTREAM_MYSQL_URL` with a
//! password, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` for S3).

use std::path::{Path, PathBuf};
use std::time::Duration;

mod api;
mod validate;

pub use api::ApiConfig;

use figment::Figment;
use figment::providers::{Format, Toml};
use serde::{Deserialize, Serialize};

/// The compiled-in `local` profile, used when no `--config` is given.
pub const LOCAL_PROFILE: &str = include_str!("../../config/local.toml");

/// Environment variables with the `ROOMSTREAM_` prefix that are not configuration keys.
const NOT_CONFIG: [&str; 4] = ["CONFIG", "LOG", "SERVICES_DIR", "TEST_"];

/// A configuration that could not be loaded or is invalid. The message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is unknown, missing or of the wrong type (figment names key and source).
    #[error("configuration error: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A key has a value of the right type that cannot work.
    #[error("configuration error: key `{key}` = {value:?}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `kafka.brokers`.
        key: &'static str,
        /// The offending value (secrets masked).
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The profile file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The path given with `--config`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The whole configuration tree. Every section is required in every profile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Kafka-protocol broker and topic naming.
    pub kafka: KafkaConfig,
    /// The production database (MySQL; MariaDB here; SQLite in the demo).
    pub mysql: DatabaseConfig,
    /// The Redshift staging schema (PostgreSQL in tests).
    pub postgres: DatabaseConfig,
    /// The object store for Parquet files.
    pub store: StoreConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Settings shared by every live crawler.
    pub crawl: CrawlConfig,
    /// The Zigbang crawler.
    pub zigbang: ZigbangConfig,
    /// The Dabang crawler.
    pub dabang: DabangConfig,
    #[serde(default)]
    pub process: ProcessConfig,
    /// Scoring (part of the processor).
    #[serde(default)]
    pub score: ScoreConfig,
    /// The sinks (`roomstream sink mysql|s3|redshift`).
    #[serde(default)]
    pub sink: SinkConfig,
    /// How the processor and the sinks ride out an outage of the broker, a database or the store.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// `[retry]`: after a transient failure — the broker, a database or the object store unreachable — the
/// processor and the sinks wait and start again from what they made durable (checkpoints, stored
/// positions), reporting 503 on `/readyz` meanwhile.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// The first wait (e.g. `"500ms"`); each next one doubles…
    #[serde(with = "humantime_serde")]
    pub first: Duration,
    /// …up to this.
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// An outage longer than this ends the process with its error (for its supervisor to restart or
    /// page someone).
    #[serde(with = "humantime_serde")]
    pub give_up_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryConfig {
    /// As the backoff of [`crate::health::retrying`].
    pub fn backoff(&self) -> crate::health::Backoff {
        crate::health::Backoff {
            first: self.first,
            max: self.max,
            give_up_after: self.give_up_after,
        }
    }
}

/// `[kafka]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Prefix of every topic and consumer-group name (`<namespace>.observed.v1`). Default `roomstream`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Replication factor for `topics apply` (1 on a single broker).
    #[serde(default = "default_replication")]
    pub replication_factor: i32,
    /// Producer compression: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: String,
    /// How long the producer waits to fill a batch.
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// How long a message may wait for delivery before the produce fails.
    #[serde(default = "default_message_timeout", with = "humantime_serde")]
    pub message_timeout: Duration,
    /// What a consumer may hold fetched but not yet handed over, KiB (librdkafka's
    /// `queued.max.messages.kbytes`; a fetch is never larger). Bounds the processor's and the sinks'
    /// memory when the topics hold far more than they can take at once (a flood, a replay).
    #[serde(default = "default_consumer_buffer_kib")]
    pub consumer_buffer_kib: u32,
}

/// `[mysql]` and `[postgres]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL (`mysql://…`, `sqlite://…`, `postgres://…`) of the sink, which owns the schema.
    /// Put passwords in the environment variable, never in a profile file.
    pub url: String,
    /// A read-only user the migrations create (and grant `SELECT` on the schema) for the API; empty
    /// for none. Its password comes from `reader_password`.
    #[serde(default)]
    pub reader_user: String,
    /// The read-only user's password: set it with `ROOMSTREAM_MYSQL_READER_PASSWORD` (or
    /// `ROOMSTREAM_POSTGRES_READER_PASSWORD`), never in a file.
    #[serde(default)]
    pub reader_password: String,
}

/// `[store]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Where Parquet goes: `s3://bucket/prefix` or `file:///absolute/path`.
    pub url: String,
    /// S3-protocol endpoint (MinIO, s3s-fs); empty for AWS itself or a `file://` store.
    #[serde(default)]
    pub endpoint: String,
}

/// `[crawl]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlConfig {
    /// The User-Agent every crawler sends.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// Timeout of one HTTP request.
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts per request before a page counts as failed (429, 5xx, timeouts are retried).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First back-off after a failed attempt; doubles each time, capped at 60 s, `Retry-After` wins.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub backoff: Duration,
    /// Largest response body accepted, in MiB (1..=4096): a bigger one is refused as it arrives,
    /// without retry, so a broken or hostile server cannot fill the crawler's memory. VWORLD's
    /// registry download is the largest body a crawler asks for.
    #[serde(default = "default_max_response_mib")]
    pub max_response_mib: u32,
}

/// `[zigbang]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZigbangConfig {
    /// API root, `https://apis.zigbang.com`.
    pub base_url: String,
    /// Minimum time between two requests (the polite rate limit).
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// Listing kinds to crawl: path segments of `/house/property/v1/items/{kind}`.
    pub kinds: Vec<String>,
    /// Geohash tiles to list (the seed's 62 tiles over Seoul when empty).
    #[serde(default)]
    pub geohashes: Vec<String>,
    /// Ids per batch-detail request (the API caps it at 15).
    pub batch_size: usize,
}

/// `[dabang]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DabangConfig {
    /// Site root, `https://www.dabangapp.com`.
    pub base_url: String,
    /// Minimum time between two requests.
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// The API's result cap; a bbox whose `total` reaches it is split in four and listed again.
    pub result_cap: u64,
    /// Most pages fetched for one bbox before it is split.
    pub max_pages: u32,
}

/// `[process]`: the processor (`roomstream process`, `replay`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Write checkpoints at least this often (e.g. `"10s"`).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// …or after this many inputs, whichever comes first.
    pub checkpoint_events: u64,
    /// K: a listing absent from K consecutive complete sweeps of its region is removed (≥ 1).
    pub removal_sweeps: usize,
    /// Price changes kept per source listing (≥ 1).
    pub history_len: usize,
    /// Evidence score (0–1) two source listings need to be merged as one flat.
    pub merge_threshold: f64,
    /// Address of the processor's `/metrics`, `/healthz` and `/readyz` (503 while it retries after an
    /// outage); empty for none.
    pub metrics_listen: String,
    /// Consumer group of the processors; empty for `<namespace>.process`. The group only spreads
    /// partitions over instances — state and positions live in the checkpoints — so a new group
    /// resumes where the old one stopped.
    pub group: String,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            checkpoint_interval: Duration::from_secs(10),
            checkpoint_events: 200_000,
            removal_sweeps: 2,
            history_len: 16,
            merge_threshold: 0.72,
            metrics_listen: String::new(),
            group: String::new(),
        }
    }
}

/// `[score]`: how the processor scores listings (`queries/score.sql`, the fair-rent model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// Yearly opportunity cost of the deposit in the monthly cost (0.05 = 5 %/year, the seed's rate).
    pub deposit_rate: f64,
    /// Grid step, in ln units, of the fair monthly costs scores use (0.05 ≈ 5 %): a refit rescores a
    /// listing only when its fair cost crosses a grid line; 0 = exact (every refit rescores nearly
    /// everything).
    pub epsilon: f64,
    /// Score and publish a micro-batch once this many listings wait (≥ 1)…
    pub batch_rows: usize,
    /// …or this long after the first one started waiting.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// A folder to read `score.sql` from instead of the built-in copy of `queries/`; empty for the
    /// built-in one. To change the formula: stop the processors, set this, run `roomstream rescore
    /// --full`, start the processors with it.
    pub queries: String,
}

/// `[sink]`: how the sinks batch and when the S3 sink writes snapshots.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Records per batch: one transaction (MySQL, PostgreSQL) or one set of files (S3) (≥ 1)…
    pub batch_rows: usize,
    /// …or this long after its first record arrived, whichever comes first.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
    /// MySQL: the group statistics of regions that changed are recomputed at most this often.
    #[serde(with = "humantime_serde")]
    pub stats_interval: Duration,
    /// S3: a full snapshot (`snapshots/epoch=<n>/`) at least this often when listings changed, and
    /// whenever a run with `--exit-when-idle` ends.
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// S3: also archive `observed.v1` and `sweeps.v1` (the raw zone) and `dlq.v1` as Parquet.
    pub archive: bool,
    /// PostgreSQL: the schema of the staging and analytics tables.
    pub redshift_schema: String,
    /// Consumer group of a sink; empty for `<namespace>.sink-<name>`. The group only spreads partitions
    /// over instances — progress lives in the destination — so a new group resumes where the old one
    /// stopped.
    pub group: String,
    /// Address of the sink's `/healthz` and `/readyz` (503 while it retries after an outage); empty
    /// for none. `roomstream run` serves none (its API has its own).
    pub ops_listen: String,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            batch_rows: 5000,
            linger: Duration::from_millis(500),
            stats_interval: Duration::from_secs(5),
            snapshot_interval: Duration::from_secs(600),
            archive: true,
            redshift_schema: "roomstream".into(),
            group: String::new(),
            ops_listen: String::new(),
        }
    }
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            deposit_rate: 0.05,
            epsilon: 0.05,
            batch_rows: 4096,
            linger: Duration::from_millis(200),
            queries: String::new(),
        }
    }
}

fn default_namespace() -> String {
    "roomstream".into()
}
fn default_replication() -> i32 {
    1
}
fn default_compression() -> String {
    "lz4".into()
}
fn default_linger() -> Duration {
    Duration::from_millis(20)
}
fn default_consumer_buffer_kib() -> u32 {
    32 * 1024
}
fn default_message_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_user_agent() -> String {
    concat!(
        "roomstream/",
        env!("CARGO_PKG_VERSION"),
        " (+https://github.com/roomstream)"
    )
    .into()
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_attempts() -> u32 {
    5
}
fn default_max_response_mib() -> u32 {
    256
}
fn default_backoff() -> Duration {
    Duration::from_millis(500)
}

/// Loads a profile (or the compiled-in `local` one) and applies `ROOMSTREAM_…` overrides from the
/// process environment, then validates.
pub fn load(profile: Option<&Path>) -> Result<Config, ConfigError> {
    load_with_env(profile, std::env::vars())
}

/// [`load`] with an explicit environment, for tests.
pub fn load_with_env(
    profile: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let mut figment = match profile {
        Some(path) => {
            if !path.is_file() {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
            Figment::from(Toml::file_exact(path))
        }
        None => Figment::from(Toml::string(LOCAL_PROFILE)),
    };
    figment = figment.merge(EnvOverrides::from_vars(env));
    let cfg: Config = figment
        .extract_lossy()
        .map_err(|e| ConfigError::Load(Box::new(e)))?;
    cfg.validate()?;
    Ok(cfg)
}

/// The `ROOMSTREAM_<SECTION>_<KEY>` variables as a figment provider, so that errors name the variable.
struct EnvOverrides(Vec<(String, String, String)>);

impl EnvOverrides {
    /// Keeps the configuration variables: (variable, dotted key, value).
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut kept: Vec<(String, String, String)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix("ROOMSTREAM_")?;
                let harness = NOT_CONFIG
                    .iter()
                    .any(|p| rest == *p || (p.ends_with('_') && rest.starts_with(p)));
                let key = rest.to_ascii_lowercase().replacen('_', ".", 1);
                (!harness).then_some((name, key, value))
            })
            .collect();
        kept.sort();
        EnvOverrides(kept)
    }
}

impl figment::Provider for EnvOverrides {
    fn metadata(&self) -> figment::Metadata {
        // Errors then read `for key "zigbang.batch_size (ROOMSTREAM_ZIGBANG_BATCH_SIZE)"`.
        figment::Metadata::named("environment variable").interpolater(|_, keys| {
            format!(
                "{} (ROOMSTREAM_{})",
                keys.join("."),
                keys.join("_").to_ascii_uppercase()
            )
        })
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        let mut dict = figment::value::Dict::new();
        for (_, key, value) in &self.0 {
            // Arrays and tables are parsed (`["wydm9","wydmd"]`); everything else stays a string, and
            // `extract_lossy` turns "16" into 16 where the key is a number — so a numeric-looking
            // namespace such as `2024` stays the string it is.
            let trimmed = value.trim_start();
            let parsed: figment::value::Value =
                if trimmed.starts_with('[') || trimmed.starts_with('{') {
                    value.parse().unwrap_or_else(|_| value.as_str().into())
                } else {
                    value.as_str().into()
                };
            let nested = figment::util::nest(key, parsed)
                .into_dict()
                .unwrap_or_default();
            dict = merge_dicts(dict, nested);
        }
        Ok(figment::Profile::Default.collect(dict))
    }
}

/// Merges `b` into `a`, section by section.
fn merge_dicts(mut a: figment::value::Dict, b: figment::value::Dict) -> figment::value::Dict {
    for (k, v) in b {
        match (a.remove(&k), v) {
            (Some(figment::value::Value::Dict(_, old)), figment::value::Value::Dict(tag, new)) => {
                a.insert(k, figment::value::Value::Dict(tag, merge_dicts(old, new)));
            }
            (_, v) => {
                a.insert(k, v);
            }
        }
    }
    a
}

impl Config {
    /// The effective configuration as TOML, passwords in URLs masked (`roomstream config check`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.mysql.url = mask_url(&shown.mysql.url);
        shown.postgres.url = mask_url(&shown.postgres.url);
        for db in [&mut shown.mysql, &mut shown.postgres] {
            if !db.reader_password.is_empty() {
                db.reader_password = "****".into();
            }
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Replaces the password of a URL with `***`.
pub fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests;
