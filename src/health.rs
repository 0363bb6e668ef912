//! Riding out outages: readiness and retries shared by the processor and the sinks.
//!
//! When the broker, a database or the object store goes away, a stage's run fails with a *transient*
//! error ([`crate::process::runtime::ProcessError::is_transient`],
//! [`crate::sink::SinkError::is_transient`]). [`retrying`] then waits — doubling from `first` up to
//! `max` — and starts the run again from what it made durable: the processor from its checkpoints, a
//! sink from the positions its destination holds. That is exactly what a restart after a crash does,
//! which the kill tests prove loses and doubles nothing. An outage longer than `give_up_after` ends
//! the process with the error, for the supervisor (systemd, compose, Kubernetes) to see.
//!
//! While it lasts, [`Health`] says why, and [`router`]'s `/readyz` answers 503 with the reason;
//! `/healthz` answers 200 as long as the process runs. The processor serves both on
//! `process.metrics_listen`, a sink on `sink.ops_listen`.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Serialize;

/// What `/readyz` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The component (`process`, `sink-mysql`, …).
    pub component: &'static str,
    /// Working: connected and making progress.
    pub ready: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// Seconds in the current state.
    pub for_s: f64,
    /// Retries since the process started.
    pub retries: u64,
}

/// A component's readiness, set by its run and read by `/readyz`.
#[derive(Debug)]
pub struct Health {
    component: &'static str,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The run's own view: working.
    ready: bool,
    reason: Option<String>,
    since: Instant,
    retries: u64,
    /// Dependencies a watcher found down (`broker` → why), whatever the run is doing meanwhile.
    down: std::collections::BTreeMap<&'static str, String>,
}

impl Health {
    /// Not ready yet ("starting").
    pub fn new(component: &'static str) -> Health {
        Health {
            component,
            inner: Mutex::new(Inner {
                ready: false,
                reason: Some("starting".into()),
                since: Instant::now(),
                retries: 0,
                down: Default::default(),
            }),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Working (cheap when it already was).
    pub fn set_ready(&self) {
        let mut i = self.inner();
        if !i.ready {
            if let Some(why) = i.reason.take() {
                tracing::info!(component = self.component, was = %why, "ready");
            }
            i.ready = true;
            i.since = Instant::now();
        }
    }

    /// Not working, and why.
    pub fn set_unready(&self, reason: impl Into<String>) {
        let mut i = self.inner();
        if i.ready {
            i.since = Instant::now();
        }
        i.ready = false;
        i.reason = Some(reason.into());
    }

    /// Marks a dependency down (`Some(why)`) or up (`None`), as a watcher sees it
    /// ([`crate::kafka::watch_broker`]): while any is down the component is not ready, even when its
    /// run is blocked and cannot tell.
    pub fn set_dependency(&self, name: &'static str, down: Option<String>) {
        let mut i = self.inner();
        match down {
            Some(why) => {
                if i.down.insert(name, why).is_none() {
                    tracing::warn!(component = self.component, dependency = name, "down");
                }
            }
            None => {
                if i.down.remove(name).is_some() {
                    tracing::info!(component = self.component, dependency = name, "up again");
                }
            }
        }
    }

    /// Whether its run says it is working (dependencies aside).
    pub fn is_ready(&self) -> bool {
        self.inner().ready
    }

    /// The current status: ready when the run works and no dependency is down.
    pub fn status(&self) -> Status {
        let i = self.inner();
        let down = i.down.values().next().cloned();
        Status {
            component: self.component,
            ready: i.ready && down.is_none(),
            reason: down.or_else(|| i.reason.clone()),
            for_s: (i.since.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            retries: i.retries,
        }
    }

    fn count_retry(&self) {
        self.inner().retries += 1;
    }
}

/// `/healthz` (200 while the process runs) and `/readyz` (200 when ready, else 503 with the reason).
pub fn router(health: Arc<Health>) -> axum::Router {
    use axum::routing::get;
    let h = health.clone();
    axum::Router::new()
        .route(
            "/healthz",
            get(move || {
                let s = h.status();
                async move { axum::Json(serde_json::json!({"status": "ok", "component": s.component})) }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let s = health.status();
                async move {
                    let code = if s.ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    (code, axum::Json(s))
                }
            }),
        )
}

/// Serves [`router`] (and `extra` routes, such as `/metrics`) on `addr` until the process ends;
/// `key` names the setting in the error when the address cannot be bound.
pub async fn serve(
    addr: &str,
    key: &str,
    health: Arc<Health>,
    extra: axum::Router,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({key}): {e}"))?;
    let app = router(health).merge(extra);
    let forever = std::future::pending::<()>();
    tokio::spawn(crate::http::serve(
        listener,
        app,
        crate::http::OPS_HEADER_TIMEOUT,
        forever,
    ));
    Ok(())
}

/// How to retry a run after a transient failure.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait (the waits double up to it).
    pub max: Duration,
    /// An outage longer than this ends the process with its error.
    pub give_up_after: Duration,
}

impl Backoff {
    /// The wait before retry `n` (1-based): `first`, doubling, at most `max`.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(20));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// Runs `attempt` until it succeeds or fails for good; after a transient failure (per `transient`),
/// waits ([`Backoff::delay`]) with `health` unready and tries again. Returns `Ok(None)` when `stop` is
/// set during a wait, and the error when it is not transient or the outage outlasted
/// `give_up_after`. The failures of one outage count as one: a run that made progress (set `health`
/// ready) since the last failure starts a new outage.
pub async fn retrying<T, E, F, Fut>(
    what: &str,
    health: &Health,
    backoff: Backoff,
    stop: &AtomicBool,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<Option<T>, E>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut outage: Option<(Instant, u32)> = None;
    loop {
        let e = match attempt().await {
            Ok(v) => return Ok(Some(v)),
            Err(e) => e,
        };
        if health.is_ready() {
            outage = None; // it recovered in between: a new outage
        }
        let (since, failures) = outage.get_or_insert((Instant::now(), 0));
        *failures += 1;
        if !transient(&e)
            || since.elapsed() >= backoff.give_up_after
            || stop.load(Ordering::Relaxed)
        {
            health.set_unready(format!("{what} failed: {e}"));
            return Err(e);
        }
        let wait = backoff.delay(*failures);
        health.set_unready(format!(
            "{what}: {e} (retry {failures} in {:.1} s; failing since {:.0} s)",
            wait.as_secs_f64(),
            since.elapsed().as_secs_f64()
        ));
        health.count_retry();
        tracing::warn!(what, error = %e, retry = *failures, wait_s = wait.as_secs_f64(), "transient failure; retrying");
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Backoff {
        Backoff {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            give_up_after: Duration::from_secs(5),
        }
    }

    #[test]
    fn the_waits_double_up_to_the_cap() {
        let b = Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            give_up_after: Duration::from_secs(600),
        };
        let waits: Vec<u128> = (1..=9).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[tokio::test]
    async fn transient_failures_are_retried_unready_until_it_works() {
        let health = Health::new("test");
        let stop = AtomicBool::new(false);
        let mut calls = 0;
        let mut seen = Vec::new();
        let out: Result<Option<u32>, String> = retrying(
            "run",
            &health,
            quick(),
            &stop,
            |e: &String| e.starts_with("down"),
            || {
                calls += 1;
                seen.push(health.status());
                let n = calls;
                async move {
                    if n < 4 {
                        Err(format!("down {n}"))
                    } else {
                        Ok(n)
                    }
                }
            },
        )
        .await;
        assert_eq!(out, Ok(Some(4)));
        assert!(!seen[0].ready && seen[0].reason.as_deref() == Some("starting"));
        let reason = seen[3].reason.clone().unwrap_or_default();
        assert!(
            reason.contains("down 3") && reason.contains("retry 3"),
            "{reason}"
        );
        assert_eq!(health.status().retries, 3);
        health.set_ready();
        assert!(health.status().ready && health.status().reason.is_none());
    }

    #[tokio::test]
    async fn a_lasting_error_is_returned_and_a_stop_ends_the_wait() {
        let health = Health::new("test");
        let stop = Arc::new(AtomicBool::new(false));
        let fatal: Result<Option<()>, String> = retrying(
            "run",
            &health,
            quick(),
            &stop,
            |_| false,
            || async { Err("bad".to_string()) },
        )
        .await;
        assert_eq!(fatal, Err("bad".into()));
        let reason = health.status().reason.unwrap_or_default();
        assert!(reason.contains("run failed: bad"), "{reason}");
        // An outage longer than `give_up_after` ends with its error.
        let short = Backoff {
            give_up_after: Duration::from_millis(30),
            ..quick()
        };
        let t = Instant::now();
        let gave_up: Result<Option<()>, String> = retrying(
            "run",
            &health,
            short,
            &stop,
            |_| true,
            || async { Err("down".to_string()) },
        )
        .await;
        assert_eq!(gave_up, Err("down".into()));
        assert!(t.elapsed() >= Duration::from_millis(30));
        // A stop during a long wait ends it at once, with nothing to return.
        let long = Backoff {
            first: Duration::from_secs(60),
            max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(600),
        };
        let s2 = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s2.store(true, Ordering::Relaxed);
        });
        let t = Instant::now();
        let stopped: Result<Option<()>, String> = retrying(
            "run",
            &health,
            long,
            &stop,
            |_| true,
            || async { Err("down".to_string()) },
        )
        .await;
        assert_eq!(stopped, Ok(None));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}
