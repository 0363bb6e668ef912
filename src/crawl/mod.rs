//! Crawl: fetch listings and the broker registry, wrap them untouched, and put them on the topics.
//!
//! Every crawler writes through one [`Emitter`], which serializes the envelopes of
//! [`crate::topics::envelope`], keys them (observations and sweeps by region, brokers by registration
//! number + person), counts them and optionally paces them (`--rate`). A crawler reports success only
//! after [`Emitter::finish`] has seen every record acknowledged by the broker.
//!
//! - [`http`]: the polite HTTP client (rate limit, retries with back-off, User-Agent) of live crawlers;
//! - [`zigbang`], [`dabang`]: the live platform crawlers;
//! - [`vworld`]: the VWORLD broker registry (CSV, EUC-KR or UTF-8, plain or zipped, file or URL);
//! - [`fixtures`]: the real payloads of `shared/fixtures/real` as observations;
//! - [`synthetic`]: the calibrated simulator, with its ground truth;
//! - [`calibration`]: the per-구/동 tables the simulator and the Dabang crawler rely on;
//! - [`schedule`]: `--every`: a live crawl repeated on a jittered schedule, failed runs retried.

pub mod calibration;
pub mod dabang;
pub mod fixtures;
pub mod http;
pub mod schedule;
pub mod synthetic;
pub mod vworld;
pub mod zigbang;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::kafka::{EventSink, ProduceError};
use crate::topics::TopicKind;

use crate::topics::envelope::{BrokerRecord, DLQ_SCHEMA, DlqEvent, Observation, SweepMarker, now};

/// Why a crawl failed.
#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    /// Producing to the broker failed; nothing is reported as done.
    #[error(transparent)]
    Produce(#[from] ProduceError),
    /// An envelope could not be encoded (a bug: envelopes are plain data).
    #[error("cannot encode event: {0}")]
    Encode(#[from] serde_json::Error),
    /// A live source failed for good (after retries).
    #[error(transparent)]
    Fetch(#[from] http::FetchError),
    /// An input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An input file's content is unusable.
    #[error("{file}: {message}")]
    Input {
        /// The file (or URL).
        file: String,
        /// What is wrong, naming the row or column.
        message: String,
    },
}

/// What one crawl produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrawlReport {
    /// Observations produced.
    pub observations: u64,
    /// Sweep markers produced.
    pub sweeps: u64,
    /// Broker records produced.
    pub brokers: u64,
    /// Input rows rejected to the DLQ, with their reason.
    pub dlq: u64,
    /// Value bytes produced.
    pub bytes: u64,
    /// Observations per region code.
    pub per_region: BTreeMap<String, u64>,
    /// Wall time from the first event to the last acknowledgement.
    pub elapsed: Duration,
}

impl CrawlReport {
    /// Events of every kind.
    pub fn events(&self) -> u64 {
        self.observations + self.sweeps + self.brokers + self.dlq
    }

    /// Events per second, acknowledgements included.
    pub fn rate(&self) -> f64 {
        self.events() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Mean value size in bytes.
    pub fn mean_event_bytes(&self) -> f64 {
        self.bytes as f64 / self.events().max(1) as f64
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        format!(
            "produced {} events ({} observations, {} sweeps, {} brokers, {} to the DLQ; {:.0} bytes mean) in {:.2} s: {:.0} events/s",
            self.events(),
            self.observations,
            self.sweeps,
            self.brokers,
            self.dlq,
            self.mean_event_bytes(),
            self.elapsed.as_secs_f64(),
            self.rate()
        )
    }
}

/// The typed, counting, optionally paced front of an [`EventSink`].
pub struct Emitter<'a> {
    sink: &'a mut dyn EventSink,
    report: CrawlReport,
    /// When the first event was sent: the produce rate and the pacing count from here.
    started: Option<Instant>,
    /// Events per second to pace at, if any.
    rate: Option<f64>,
    progress: ProgressBar,
}

impl<'a> Emitter<'a> {
    /// Wraps a sink. `rate` paces output to that many events per second.
    pub fn new(sink: &'a mut dyn EventSink, rate: Option<f64>) -> Self {
        Emitter {
            sink,
            report: CrawlReport::default(),
            started: None,
            rate,
            progress: ProgressBar::hidden(),
        }
    }

    /// Shows a progress bar of `total` expected events when stderr is a terminal.
    pub fn with_progress(mut self, total: u64, label: &'static str) -> Self {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(label);
            self.progress = bar;
        }
        self
    }

    /// Produces one observation, keyed by its region, and returns `true` — or, if it would break the
    /// topic's contract ([`Observation::contract_violation`]), a DLQ event with reason
    /// `contract_violation` instead, and returns `false`: the caller must then not count the listing
    /// as seen (its region's sweep would claim a listing the topic does not have).
    pub fn observation(&mut self, obs: &Observation) -> Result<bool, CrawlError> {
        if let Some(why) = obs.contract_violation() {
            tracing::warn!(id = %obs.source_listing_id, error = %why, "Observation rejected to the DLQ.");
            let stage = format!("crawl.{}", obs.source.as_str());
            self.reject(
                &stage,
                "contract_violation",
                why,
                Some(obs.region_code.clone()),
                serde_json::to_value(obs)?,
            )?;
            return Ok(false);
        }
        let value = serde_json::to_vec(obs)?;
        self.send(TopicKind::Observed, &obs.region_code, &value)?;
        self.report.observations += 1;
        *self
            .report
            .per_region
            .entry(obs.region_code.clone())
            .or_default() += 1;
        Ok(true)
    }

    /// Produces one sweep marker, keyed by its region (after every observation it closes).
    pub fn sweep(&mut self, sweep: &SweepMarker) -> Result<(), CrawlError> {
        let value = serde_json::to_vec(sweep)?;
        self.send(TopicKind::Sweeps, &sweep.region_code, &value)?;
        self.report.sweeps += 1;
        Ok(())
    }

    /// Produces one broker record, keyed by registration number + person.
    pub fn broker(&mut self, broker: &BrokerRecord) -> Result<(), CrawlError> {
        let value = serde_json::to_vec(broker)?;
        self.send(TopicKind::Brokers, &broker.key(), &value)?;
        self.report.brokers += 1;
        Ok(())
    }

    /// Produces one rejected input row to the DLQ, keyed by its original key.
    pub fn dlq(&mut self, event: &DlqEvent) -> Result<(), CrawlError> {
        let value = serde_json::to_vec(event)?;
        self.send(
            TopicKind::Dlq,
            event.key.as_deref().unwrap_or_default(),
            &value,
        )?;
        self.report.dlq += 1;
        Ok(())
    }

    /// Produces a DLQ event for input that cannot become an event: `stage` (`crawl.vworld`), a short
    /// `reason` (`missing_field`), the detail, the key it would have had, and the input itself.
    pub fn reject(
        &mut self,
        stage: &str,
        reason: &str,
        error: String,
        key: Option<String>,
        value: serde_json::Value,
    ) -> Result<(), CrawlError> {
        self.dlq(&DlqEvent {
            schema: DLQ_SCHEMA.into(),
            stage: stage.into(),
            reason: reason.into(),
            error,
            topic: None,
            partition: None,
            offset: None,
            key,
            value,
            value_base64: None,
            rejected_at: now(),
        })
    }

    /// Events queued so far.
    pub fn events(&self) -> u64 {
        self.report.events()
    }

    fn send(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> Result<(), CrawlError> {
        let started = *self.started.get_or_insert_with(Instant::now);
        if let Some(rate) = self.rate {
            let due = started + Duration::from_secs_f64(self.report.events() as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        self.sink.send(topic, key, value)?;
        self.report.bytes += value.len() as u64;
        self.progress.inc(1);
        Ok(())
    }

    /// Waits for every acknowledgement and returns the report.
    pub fn finish(mut self) -> Result<CrawlReport, CrawlError> {
        self.sink.finish()?;
        self.progress.finish_and_clear();
        self.report.elapsed = self.started.map(|s| s.elapsed()).unwrap_or_default();
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::kafka::MemorySink;
    use crate::topics::envelope::{PayloadFormat, Platform, Source};

    fn room(payload: serde_json::Value) -> Observation {
        let at = datetime!(2026-05-01 06:00:00 +9);
        Observation::new(
            Source::Dabang,
            Platform::Dabang,
            "r1",
            at,
            "c1",
            "11620",
            PayloadFormat::DabangV5Room,
            payload,
        )
    }

    #[test]
    fn an_observation_that_breaks_the_contract_goes_to_the_dlq_with_its_reason() {
        let mut sink = MemorySink::default();
        let mut emitter = Emitter::new(&mut sink, None);
        let ok = json!({"id": "r1", "priceTitle": "500/40", "roomDesc": "2층", "rent": null});
        assert!(
            emitter.observation(&room(ok)).expect("ok"),
            "null is a value, as in the schema"
        );
        let lacking = json!({"id": "r2", "roomDesc": "2층"});
        assert!(
            !emitter
                .observation(&room(lacking))
                .expect("rejected, not failed")
        );
        emitter
            .observation(&room(json!(["not", "an", "object"])))
            .expect("rejected, not failed");
        let report = emitter.finish().expect("finish");
        assert_eq!((report.observations, report.dlq), (1, 2));

        let dlq = sink.values(TopicKind::Dlq);
        assert_eq!(dlq[0]["reason"], "contract_violation");
        assert_eq!(dlq[0]["stage"], "crawl.dabang");
        assert!(
            dlq[0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("lacks priceTitle")),
            "{}",
            dlq[0]
        );
        assert_eq!(
            dlq[0]["value"]["payload"]["id"], "r2",
            "the rejected event is kept whole"
        );
        assert_eq!(sink.keys(TopicKind::Dlq), ["11620", "11620"]);
    }
}
