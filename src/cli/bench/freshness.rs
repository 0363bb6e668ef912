//! Scenario `freshness`: how long after a crawler produces an event a person sees it through the API,
//! at a steady crawl rate.
//!
//! The whole pipeline runs in this process on the real broker and the real MySQL — the processor
//! (`process`), the MySQL sink and the API — while a producer thread plays the simulator's feed at a
//! steady rate (5,000 events/s). Probes: every flat's first sighting after a warm-up, a few per
//! second; a new flat's canonical id is known in advance (the id of its founder), so a poller asks
//! `GET /api/v1/listings/{id}` every 20 ms until it answers 200, and the probe's freshness is that
//! moment minus the moment the event was handed to the producer. A first sighting that joins a
//! listing founded earlier (the same flat on the other platform) never gets an id of its own: after
//! the run, the sink's `listing_members` tells which probes those were, and they are left out and
//! counted. Baseline: the broker alone — the same probe events received by a do-nothing consumer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;

use super::report::{Better, Figure, Report, percentile};
use super::{Ctx, feed, fresh_namespace};
use crate::kafka::{EventSink, KafkaSink};
use crate::process::model::SourceKey;
use crate::process::resolve::canonical_id;
use crate::sink::SinkKind;
use crate::topics::TopicKind;
use crate::topics::envelope::Platform;

/// Events per second the producer keeps to.
const RATE: f64 = 5000.0;
/// Probes per second at most.
const PROBES_PER_S: f64 = 5.0;
/// A probe not visible after this long is given up (and checked after the run).
const GIVE_UP: Duration = Duration::from_secs(30);

/// The part of an observation a probe needs.
#[derive(serde::Deserialize)]
struct Sighting {
    platform: Platform,
    source_listing_id: String,
}

struct Probe {
    platform: Platform,
    source_id: String,
    id: String,
    produced: Instant,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let (flats, days, secs) = ctx
        .size
        .pick((1_000, 5, 8), (20_000, 14, 40), (60_000, 14, 120));
    let warmup = Duration::from_secs(ctx.size.pick(2, 10, 20));
    // A debug build (the smoke run in the tests) cannot keep 5,000 events/s.
    let rate = ctx.size.pick(300.0, RATE, RATE);
    let cfg = fresh_namespace(&ctx.cfg, "freshness");
    crate::topics::admin::apply(&cfg.kafka).await?;
    let records = feed::synthetic(flats, days, 3)?;
    let stop = Arc::new(AtomicBool::new(false));

    // The pipeline: processor, MySQL sink, API.
    let process = {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        tokio::spawn(async move {
            super::super::process::run_until(
                &cfg,
                super::super::process::ProcessArgs::live(false),
                false,
                stop,
            )
            .await
        })
    };
    let sink = {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        let opts = crate::sink::runner::RunOptions {
            exit_when_idle: false,
            replay: false,
        };
        tokio::spawn(async move {
            let health = std::sync::Arc::new(crate::health::Health::new("sink-mysql"));
            super::super::sink::run_one(&cfg, SinkKind::Mysql, opts, stop, health).await
        })
    };
    // The API needs the sink's tables: wait for them.
    let api = loop {
        if process.is_finished() || sink.is_finished() {
            anyhow::bail!("the processor or the sink stopped before the run");
        }
        if let Ok(api) = crate::api::spawn_loopback(&cfg).await {
            if ready(&api.base).await {
                break api;
            }
            let _ = api.stop().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // The baseline consumer: the probes' arrival at a do-nothing consumer of observed.v1.
    let probes: Arc<Mutex<HashMap<(Platform, String), Instant>>> = Arc::default();
    let arrivals: Arc<Mutex<Vec<f64>>> = Arc::default();
    let baseline = {
        let (cfg, stop, probes, arrivals) =
            (cfg.clone(), stop.clone(), probes.clone(), arrivals.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let ns = &cfg.kafka.namespace;
            let consumer = super::throughput::plain_consumer(&cfg, "freshness-baseline")?;
            let mut tpl = rdkafka::TopicPartitionList::new();
            let name = TopicKind::Observed.name(ns);
            for p in 0..TopicKind::Observed.def().partitions {
                tpl.add_partition_offset(&name, p, Offset::Beginning)?;
            }
            consumer.assign(&tpl)?;
            while !stop.load(Ordering::Relaxed) {
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = m?;
                let Some(s) = m
                    .payload()
                    .and_then(|v| serde_json::from_slice::<Sighting>(v).ok())
                else {
                    continue;
                };
                let sent = probes
                    .lock()
                    .ok()
                    .and_then(|p| p.get(&(s.platform, s.source_listing_id)).copied());
                if let (Some(sent), Ok(mut a)) = (sent, arrivals.lock()) {
                    a.push(sent.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok(())
        })
    };

    // The producer: the feed at a steady rate; probes chosen among first sightings after the warm-up.
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<Probe>();
    let producer = {
        let (cfg, probes) = (cfg.clone(), probes.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, f64)> {
            let mut sink = KafkaSink::new(&cfg.kafka)?;
            let mut seen: std::collections::HashSet<(Platform, String)> = Default::default();
            let started = Instant::now();
            let mut next_probe = warmup;
            let mut sent = 0u64;
            for (topic, key, value) in &records {
                let due = Duration::from_secs_f64(sent as f64 / rate);
                let elapsed = started.elapsed();
                if elapsed.as_secs() >= secs {
                    break;
                }
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                }
                let mut probe = None;
                if *topic == TopicKind::Observed
                    && let Ok(s) = serde_json::from_slice::<Sighting>(value)
                    && seen.insert((s.platform, s.source_listing_id.clone()))
                    && started.elapsed() >= next_probe
                {
                    next_probe = started.elapsed() + Duration::from_secs_f64(1.0 / PROBES_PER_S);
                    let id = canonical_id(
                        super::feed::partition_of(key),
                        &SourceKey {
                            platform: s.platform,
                            id: s.source_listing_id.clone(),
                        },
                    );
                    probe = Some((s, id));
                }
                let produced = Instant::now();
                if let Some((s, _)) = &probe
                    && let Ok(mut p) = probes.lock()
                {
                    p.insert((s.platform, s.source_listing_id.clone()), produced);
                }
                sink.send(*topic, key, value)?;
                if let Some((s, id)) = probe {
                    let _ = ptx.send(Probe {
                        platform: s.platform,
                        source_id: s.source_listing_id,
                        id,
                        produced,
                    });
                }
                sent += 1;
            }
            let rate = sent as f64 / started.elapsed().as_secs_f64();
            sink.finish()?;
            Ok((sent, rate))
        })
    };

    // The poller: each pending probe's detail every 20 ms until it answers.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut pending: Vec<Probe> = Vec::new();
    let mut seen_ms: Vec<f64> = Vec::new();
    let mut given_up: Vec<Probe> = Vec::new();
    let mut producing = true;
    let mut produced = None;
    let mut producer = Some(producer);
    while producing || !pending.is_empty() {
        while let Ok(p) = prx.try_recv() {
            pending.push(p);
        }
        if producing && producer.as_ref().is_some_and(|p| p.is_finished()) {
            producing = false;
            if let Some(p) = producer.take() {
                produced = Some(p.await??);
            }
            while let Ok(p) = prx.try_recv() {
                pending.push(p);
            }
        }
        let answers = futures::future::join_all(pending.iter().map(|p| {
            client
                .get(format!("{}/api/v1/listings/{}", api.base, p.id))
                .send()
        }))
        .await;
        let now = Instant::now();
        let mut keep = Vec::new();
        for (p, a) in pending.drain(..).zip(answers) {
            if a.is_ok_and(|r| r.status() == reqwest::StatusCode::OK) {
                seen_ms.push((now - p.produced).as_secs_f64() * 1e3);
            } else if now - p.produced > GIVE_UP {
                given_up.push(p);
            } else {
                keep.push(p);
            }
        }
        pending = keep;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, rate) = produced.context("the producer did not report")?;

    // Which given-up probes joined a listing founded earlier (left out), which were simply late.
    let pool = sqlx::MySqlPool::connect(&cfg.mysql.url).await?;
    let (mut merged, mut late) = (0usize, 0usize);
    for p in &given_up {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT listing_id FROM listing_members WHERE platform = ? AND source_listing_id = ?",
        )
        .bind(p.platform.as_str())
        .bind(&p.source_id)
        .fetch_optional(&pool)
        .await?;
        match owner {
            Some(o) if o != p.id => merged += 1,
            _ => {
                late += 1;
                seen_ms.push(GIVE_UP.as_secs_f64() * 1e3);
            }
        }
    }
    pool.close().await;
    stop.store(true, Ordering::Relaxed);
    let _ = api.stop().await;
    process.await??;
    sink.await??;
    baseline.await??;
    super::drop_namespace(&cfg).await;

    seen_ms.sort_by(f64::total_cmp);
    let mut broker = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    broker.sort_by(f64::total_cmp);
    let mut report = Report::new(
        "freshness",
        format!(
            "simulator {flats} flats × {days} days played at {rate:.0} events/s for {secs} s ({sent} events, {rate:.0}/s kept); {} probes after a {} s warm-up; processor, MySQL sink, API, Tansu and MariaDB share the cores; score.linger {} ms, sink.linger {} ms",
            seen_ms.len(),
            warmup.as_secs(),
            ctx.cfg.score.linger.as_millis(),
            ctx.cfg.sink.linger.as_millis()
        ),
        &ctx.machine,
    );
    report.push(
        Figure::new(
            "produce → visible through the API, p50",
            percentile(&seen_ms, 50.0),
            "ms",
            Better::Lower,
        )
        .vs(
            "produce → a do-nothing consumer, p50",
            percentile(&broker, 50.0),
        ),
    );
    report.push(
        Figure::new(
            "produce → visible through the API, p99",
            percentile(&seen_ms, 99.0),
            "ms",
            Better::Lower,
        )
        .vs(
            "produce → a do-nothing consumer, p99",
            percentile(&broker, 99.0),
        )
        .target(500.0)
        .headline(),
    );
    report.push(
        Figure::new("steady produce rate kept", rate, "events/s", Better::Higher).vs("asked", rate),
    );
    report.note(format!(
        "{} probes measured, {merged} left out (they joined a listing founded earlier), {late} not visible within {} s (counted at {} s)",
        seen_ms.len(),
        GIVE_UP.as_secs(),
        GIVE_UP.as_secs()
    ));
    Ok(report)
}

/// Whether the API answers `/readyz` with 200 (its database migrated).
async fn ready(base: &str) -> bool {
    reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status().is_success())
}
