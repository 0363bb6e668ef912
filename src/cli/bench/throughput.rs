//! Scenario `throughput`: events per second through normalize → detect → resolve → verify → score →
//! publish.
//!
//! 1. **The core alone**, one thread, on the feed in memory (best of three passes, each on a fresh
//!    engine), beside the floor any consumer of these events pays: decoding each event's JSON and
//!    nothing else, on the same thread and data.
//! 2. **The whole processor** from the real broker — group join, fetch, checkpoints to the object
//!    store, publishing to `listings.v1` with delivery confirmed — in replay mode until idle, beside a
//!    do-nothing rdkafka consumer reading the same topics to their ends.
//! 3. **Memory behind a flood**: a consumer with the processor's settings, assigned the whole feed and
//!    not polled for 5 s, grows only to its queue bound (`kafka.consumer_buffer_kib`), not with the feed.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use super::feed::{self, Core, Record};
use super::report::{Better, Figure, Report};
use super::{Ctx, fresh_namespace};
use crate::config::Config;
use crate::kafka::{EventSink, KafkaSink, client_config};
use crate::process::metrics::Metrics;
use crate::process::runtime::{self, RunOptions};
use crate::topics::TopicKind;

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let (listings, days) = ctx.size.pick((500, 5), (20_000, 14), (50_000, 14));
    let seed = 7;
    let records = feed::synthetic(listings, days, seed)?;
    let (inputs, mean) = feed::inputs_and_mean_size(&records);
    let mut report = Report::new(
        "throughput",
        format!(
            "simulator: {listings} flats × {days} days (seed {seed}) = {inputs} observations and sweep markers, mean event {mean:.0} bytes; micro-batches of {} listings",
            ctx.cfg.score.batch_rows
        ),
        &ctx.machine,
    );

    // (1) The core alone vs decoding only.
    let decode = best_of(3, || decode_pass(&records));
    let mut best: Option<(f64, Core)> = None;
    for _ in 0..3 {
        let started = Instant::now();
        let mut core = Core::new(&ctx.cfg)?;
        for (t, k, v) in &records {
            core.feed(*t, k, v)?;
        }
        core.finish()?;
        let secs = started.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|b| secs < b.0) {
            best = Some((secs, core));
        }
    }
    let Some((secs, core)) = best else {
        bail!("no pass ran")
    };
    let n = records.len() as f64;
    report.push(
        Figure::new("core, 1 thread", n / secs, "events/s", Better::Higher)
            .vs("JSON decode only", n / decode)
            .target(250_000.0)
            .headline(),
    );
    let (sources, canonical) = core.listings();
    let f = core.engine.flushed;
    report.push(Figure::new(
        "listings published per input",
        core.published as f64 / n,
        "",
        Better::Lower,
    ));
    report.push(Figure::new(
        "listings rescored per input",
        f.scored as f64 / n,
        "",
        Better::Lower,
    ));
    report.push(Figure::new(
        "state per source listing (checkpoint)",
        core.state_bytes() as f64 / sources.max(1) as f64,
        "bytes",
        Better::Lower,
    ));
    report.note(format!(
        "{sources} live source listings, {canonical} canonical; {} rescorings without a change of their own (age bands, fair-cost grid crossings)",
        f.knock_on
    ));
    drop(core);

    // (2) From the broker.
    let cfg = fresh_namespace(&ctx.cfg, "throughput");
    crate::topics::admin::apply(&cfg.kafka).await?;
    let produced = Instant::now();
    {
        let mut sink = KafkaSink::new(&cfg.kafka)?;
        for (topic, key, value) in &records {
            sink.send(*topic, key, value)?;
        }
        sink.finish()?;
    }
    let produce_rate = n / produced.elapsed().as_secs_f64();
    drop(records);
    let c = cfg.clone();
    let (plain, waiting) = tokio::task::spawn_blocking(move || plain_consume(&c)).await??;
    let plain_rate = inputs as f64 / plain.as_secs_f64();
    let c = cfg.clone();
    let grown = tokio::task::spawn_blocking(move || flood_memory(&c)).await??;
    let engine = super::super::process::make_engine(&cfg, Arc::new(Metrics::default()))?;
    let opts = RunOptions {
        exit_when_idle: true,
        replay: true,
        progress: false,
    };
    let c = cfg.clone();
    let started = Instant::now();
    let summary = tokio::task::spawn_blocking(move || {
        runtime::run(
            &c,
            &opts,
            engine,
            Arc::new(Metrics::default()),
            Arc::new(AtomicBool::new(false)),
            &crate::health::Health::new("bench"),
        )
    })
    .await??;
    let secs = started.elapsed().as_secs_f64();
    report.push(
        Figure::new(
            "whole processor from the broker",
            summary.inputs as f64 / secs,
            "events/s",
            Better::Higher,
        )
        .vs("do-nothing rdkafka consumer", plain_rate)
        .target_ratio(0.5)
        .headline(),
    );
    report.push(Figure::new(
        "produce rate (confirmed)",
        produce_rate,
        "events/s",
        Better::Higher,
    ));
    let bound = f64::from(cfg.kafka.consumer_buffer_kib) / 1024.0;
    report.push(
        Figure::new(
            "consumer memory behind a flood (resident growth)",
            grown as f64 / MIB,
            "MiB",
            Better::Lower,
        )
        .target(bound * 1.5),
    );
    report.note(format!(
        "flood: a consumer with the processor's settings (kafka.consumer_buffer_kib = {bound:.0} MiB) assigned {:.0} MiB of waiting events and not polled for {} s grew by {:.1} MiB",
        waiting as f64 / MIB,
        FLOOD_WAIT.as_secs(),
        grown as f64 / MIB
    ));
    report.note(format!(
        "the whole processor's time includes the group join, {} checkpoints ({} bytes) and publishing {} records with delivery confirmed",
        summary.checkpoints, summary.checkpoint_bytes, summary.published
    ));
    super::drop_namespace(&cfg).await;
    Ok(report)
}

/// The best (shortest) of `n` timings, seconds.
pub fn best_of(n: u32, mut f: impl FnMut() -> f64) -> f64 {
    (0..n.max(1)).map(|_| f()).fold(f64::INFINITY, f64::min)
}

/// Seconds to decode every record's JSON into nothing (the floor of any consumer of the events).
pub fn decode_pass(records: &[Record]) -> f64 {
    let started = Instant::now();
    for (_, _, v) in records {
        let _ = std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(v));
    }
    started.elapsed().as_secs_f64()
}

/// A consumer that commits nothing, in group `<namespace>.<group>` (the baselines' do-nothing reader).
pub fn plain_consumer(cfg: &Config, group: &str) -> anyhow::Result<BaseConsumer> {
    Ok(client_config(&cfg.kafka)
        .set("group.id", format!("{}.{group}", cfg.kafka.namespace))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?)
}

const MIB: f64 = 1024.0 * 1024.0;

/// How long the flooded consumer is left unpolled.
const FLOOD_WAIT: Duration = Duration::from_secs(5);

/// A consumer that falls behind a flood: built with the processor's and sinks' settings
/// ([`crate::kafka::consumer_config`]), assigned observed+sweeps from their starts and then not polled
/// for [`FLOOD_WAIT`], so librdkafka prefetches until its queue bound (`queued.max.messages.kbytes`).
/// Returns the growth of this process's resident memory, bytes.
fn flood_memory(cfg: &Config) -> anyhow::Result<u64> {
    let ns = &cfg.kafka.namespace;
    let before = super::report::rss().unwrap_or(0);
    let consumer: BaseConsumer =
        crate::kafka::consumer_config(&cfg.kafka, &format!("{ns}.flood")).create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for t in [TopicKind::Observed, TopicKind::Sweeps] {
        for p in 0..t.def().partitions {
            tpl.add_partition_offset(&t.name(ns), p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    std::thread::sleep(FLOOD_WAIT);
    let grown = super::report::rss().unwrap_or(0).saturating_sub(before);
    drop(consumer);
    Ok(grown)
}

/// Reads observed+sweeps of a namespace to their ends with a consumer that does nothing else;
/// returns the time it took and the bytes it read (keys and values).
fn plain_consume(cfg: &Config) -> anyhow::Result<(Duration, u64)> {
    let ns = &cfg.kafka.namespace;
    let consumer = plain_consumer(cfg, "plain")?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut remaining = 0i64;
    for t in [TopicKind::Observed, TopicKind::Sweeps] {
        let name = t.name(ns);
        for p in 0..t.def().partitions {
            let (lo, hi) = consumer.fetch_watermarks(&name, p, Duration::from_secs(10))?;
            remaining += hi - lo;
            tpl.add_partition_offset(&name, p, Offset::Beginning)?;
        }
    }
    let started = Instant::now();
    consumer.assign(&tpl)?;
    let mut bytes = 0u64;
    while remaining > 0 {
        // Tansu can take a while to answer the first fetch after a large produce.
        match consumer.poll(Duration::from_secs(60)) {
            Some(Ok(m)) => {
                remaining -= 1;
                bytes += (m.payload_len() + m.key().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {
                bail!("the plain consumer received nothing for 60 s with {remaining} records left")
            }
        }
    }
    Ok((started.elapsed(), bytes))
}
