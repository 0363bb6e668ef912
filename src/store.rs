//! The object store named by `[store]`: `s3://bucket/prefix` over the S3 protocol (AWS, MinIO, s3s-fs;
//! credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`) or `file:///dir`. Shared by the
//! processor's checkpoints and the S3 sink; owned by neither.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use crate::config::StoreConfig;

/// A `[store]` URL that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("object store `{url}`: {reason}")]
pub struct StoreError {
    /// The URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// A request is retried for at most ~5 s (3 retries, 100 ms doubling to 2 s) — enough for a blip —
/// instead of object_store's default 10 retries over up to 3 minutes: a longer outage fails the
/// request soon, so that the processor or the sink reports it (`/readyz`) and retries the run with
/// its own backoff (`[retry]`, [`crate::health`]).
fn quick_retries() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: std::time::Duration::from_millis(100),
            max_backoff: std::time::Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(5),
    }
}

/// Opens the object store named by `[store]` and returns it with the prefix inside it.
pub fn open(cfg: &StoreConfig) -> Result<(Arc<dyn ObjectStore>, ObjectPath), StoreError> {
    let bad = |reason: String| StoreError {
        url: cfg.url.clone(),
        reason,
    };
    let url = url::Url::parse(&cfg.url).map_err(|e| bad(e.to_string()))?;
    match url.scheme() {
        "s3" => {
            let bucket = url.host_str().ok_or_else(|| bad("no bucket".into()))?;
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_retry(quick_retries())
                .with_bucket_name(bucket)
                .with_region(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()));
            if !cfg.endpoint.is_empty() {
                b = b
                    .with_endpoint(&cfg.endpoint)
                    .with_allow_http(cfg.endpoint.starts_with("http://"));
            }
            let store = b.build().map_err(|e| bad(e.to_string()))?;
            Ok((
                Arc::new(store),
                ObjectPath::from(url.path().trim_matches('/')),
            ))
        }
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|_| bad("not a local path".into()))?;
            std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
            let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| bad(e.to_string()))?;
            Ok((Arc::new(store), ObjectPath::from("")))
        }
        other => Err(bad(format!(
            "scheme `{other}` is not supported (use s3:// or file://)"
        ))),
    }
}
