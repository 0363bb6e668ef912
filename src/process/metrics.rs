//! The processor's Prometheus metrics, rendered in the text exposition format at `GET /metrics`.
//!
//! `roomstream_process_events_total{outcome}` (new, changed, unchanged, removed, relisted, sweep),
//! `roomstream_process_changed_fields_total{field}`, `roomstream_process_published_total{kind}`
//! (upsert, tombstone, suppressed), `roomstream_process_dlq_total{reason}`, merges, splits, flaps,
//! `roomstream_process_scored_total{cause}` (own: the listing changed; knock_on: its fair cost, photo
//! evidence or age band moved),
//! `roomstream_process_consumer_lag{topic,partition}` and `roomstream_process_checkpoint_age_seconds`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Counters and gauges, shared by the loop and the HTTP endpoint.
#[derive(Debug)]
pub struct Metrics {
    labelled: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Components that merged.
    pub merges: AtomicU64,
    /// Components that split.
    pub splits: AtomicU64,
    /// Links that came back after evidence had taken them away (merge, split, merge again).
    pub flaps: AtomicU64,
    lag: Mutex<BTreeMap<(String, i32), i64>>,
    last_checkpoint: Mutex<Option<Instant>>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            labelled: Mutex::default(),
            merges: AtomicU64::new(0),
            splits: AtomicU64::new(0),
            flaps: AtomicU64::new(0),
            lag: Mutex::default(),
            last_checkpoint: Mutex::default(),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    fn add(&self, family: &'static str, label: &str) {
        if let Ok(mut m) = self.labelled.lock() {
            *m.entry((family, label.to_string())).or_default() += 1;
        }
    }

    /// Counts an input by outcome.
    pub fn event(&self, outcome: &str) {
        self.add("events", outcome);
    }

    /// Counts a changed field.
    pub fn changed_field(&self, field: &str) {
        self.add("changed_fields", field);
    }

    /// Counts listings scored in a flush: `n` in all, `knock_on` of them because a reference moved.
    pub fn scored(&self, n: u64, knock_on: u64) {
        if let Ok(mut m) = self.labelled.lock() {
            *m.entry(("scored", "own".into())).or_default() += n.saturating_sub(knock_on);
            *m.entry(("scored", "knock_on".into())).or_default() += knock_on.min(n);
        }
    }

    /// Counts a publish decision.
    pub fn published(&self, kind: &str) {
        self.add("published", kind);
    }

    /// Counts a DLQ event.
    pub fn dlq(&self, reason: &str) {
        self.add("dlq", reason);
    }

    /// Sets the lag of one input partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        if let Ok(mut m) = self.lag.lock() {
            m.insert((topic.to_string(), partition), lag.max(0));
        }
    }

    /// Forgets the lag of partitions no longer owned.
    pub fn clear_lag(&self) {
        if let Ok(mut m) = self.lag.lock() {
            m.clear();
        }
    }

    /// Records a completed checkpoint.
    pub fn checkpointed(&self) {
        if let Ok(mut c) = self.last_checkpoint.lock() {
            *c = Some(Instant::now());
        }
    }

    /// One counter's value (for tests and summaries).
    pub fn get(&self, family: &str, label: &str) -> u64 {
        self.labelled
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((f, l), _)| *f == family && l == label)
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The sum of a family.
    pub fn total(&self, family: &str) -> u64 {
        self.labelled
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((f, _), _)| *f == family)
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let families = [
            (
                "events",
                "outcome",
                "Inputs by what they did to a source listing.",
            ),
            (
                "changed_fields",
                "field",
                "Changed source listings by field.",
            ),
            ("published", "kind", "Canonical listing publish decisions."),
            ("scored", "cause", "Listings scored, by why."),
            ("dlq", "reason", "Events sent to the DLQ."),
        ];
        let labelled = self.labelled.lock().map(|m| m.clone()).unwrap_or_default();
        for (family, label, help) in families {
            let name = format!("roomstream_process_{family}_total");
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for ((f, l), v) in &labelled {
                if *f == family {
                    out.push_str(&format!("{name}{{{label}=\"{l}\"}} {v}\n"));
                }
            }
        }
        for (name, v, help) in [
            ("merges", &self.merges, "Components that merged."),
            ("splits", &self.splits, "Components that split."),
            (
                "flaps",
                &self.flaps,
                "Links that came back after the evidence had taken them away.",
            ),
        ] {
            out.push_str(&format!(
                "# HELP roomstream_process_{name}_total {help}\n# TYPE roomstream_process_{name}_total counter\nroomstream_process_{name}_total {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP roomstream_process_consumer_lag Records behind the end of each input partition.\n# TYPE roomstream_process_consumer_lag gauge\n");
        for ((t, p), lag) in self.lag.lock().map(|m| m.clone()).unwrap_or_default() {
            out.push_str(&format!(
                "roomstream_process_consumer_lag{{topic=\"{t}\",partition=\"{p}\"}} {lag}\n"
            ));
        }
        let age = self
            .last_checkpoint
            .lock()
            .ok()
            .and_then(|c| *c)
            .map_or(self.started.elapsed(), |c| c.elapsed());
        out.push_str(&format!(
            "# HELP roomstream_process_checkpoint_age_seconds Seconds since the last checkpoint (since start if none).\n# TYPE roomstream_process_checkpoint_age_seconds gauge\nroomstream_process_checkpoint_age_seconds {:.3}\n",
            age.as_secs_f64()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_every_family() {
        let m = Metrics::default();
        m.event("new");
        m.event("new");
        m.dlq("implausible");
        m.set_lag("ns.observed.v1", 3, 42);
        let text = m.render();
        assert!(
            text.contains("roomstream_process_events_total{outcome=\"new\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("roomstream_process_dlq_total{reason=\"implausible\"} 1\n"));
        assert!(text.contains(
            "roomstream_process_consumer_lag{topic=\"ns.observed.v1\",partition=\"3\"} 42\n"
        ));
        assert!(text.contains("# TYPE roomstream_process_checkpoint_age_seconds gauge"));
        assert_eq!(m.get("events", "new"), 2);
    }
}
