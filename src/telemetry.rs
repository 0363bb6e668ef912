//! Logging: `tracing` to stderr, filtered by `ROOMSTREAM_LOG` (e.g. `info`, `roomstream=debug`).
//!
//! Quiet by default (warnings only) so a command's own output — its report line — stays readable.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init() {
    let filter =
        EnvFilter::try_from_env("ROOMSTREAM_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
