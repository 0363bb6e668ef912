//! Each sink's epoch: the input positions it has made durable, read from the destination itself, with
//! the lag behind the topic's end and the time of the last commit (`roomstream status`; the API's
//! `/api/v1/status` serves the same).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::Serialize;

use super::{SinkError, SinkKind};
use crate::config::Config;
use crate::kafka::client_config;
use crate::topics::TopicKind;

/// One sink's durable position on one topic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkStatus {
    /// `mysql`, `s3`, `redshift`.
    pub sink: String,
    /// Topic suffix.
    pub topic: String,
    /// Next offset made durable, per partition.
    pub positions: BTreeMap<i32, i64>,
    /// Records between the positions and the topic's end, in all; `None` when the broker did not
    /// answer in time.
    pub lag: Option<i64>,
    /// Latest commit (UTC), if any.
    pub committed_at: Option<String>,
    /// Why the destination could not be read, if it could not.
    pub error: Option<String>,
}

/// Reads every sink's status (a destination that cannot be reached reports its error). The broker
/// and each destination are read side by side, each given `within`: a store that does not answer in
/// time reports that as its error, a broker that does not leaves the lag unknown — so a status call
/// answers within about `within` however slow a store is.
pub async fn collect(cfg: &Config, within: Duration) -> Vec<SinkStatus> {
    collect_some(cfg, &SinkKind::ALL, within).await
}

/// [`collect`] for some sinks only, touching only their destinations (`roomstream status --sink mysql`,
/// a sink container's health check).
pub async fn collect_some(cfg: &Config, kinds: &[SinkKind], within: Duration) -> Vec<SinkStatus> {
    let deadline = std::time::Instant::now() + within;
    let kafka = cfg.kafka.clone();
    let ends = tokio::task::spawn_blocking(move || end_offsets(&kafka, deadline));
    let reads = futures::future::join_all(kinds.iter().map(|&kind| async move {
        match tokio::time::timeout(within, read(cfg, kind)).await {
            Ok(read) => (kind, read.map_err(|e| e.to_string())),
            Err(_) => (
                kind,
                Err(format!(
                    "the destination did not answer within {}",
                    humantime::format_duration(within)
                )),
            ),
        }
    }));
    let (ends, reads) = tokio::join!(ends, reads);
    let ends = match ends {
        Ok(Ok(ends)) => Some(ends),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Could not read the topics' ends; sink lag unknown.");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "The topic-end probe failed; sink lag unknown.");
            None
        }
    };
    let mut out = Vec::new();
    for (kind, read) in reads {
        match read {
            Ok(rows) => {
                for (topic, (positions, committed_at)) in rows {
                    let lag = ends.as_ref().map(|ends| {
                        ends.get(&topic)
                            .map(|e| {
                                e.iter()
                                    .map(|(p, end)| {
                                        (end - positions.get(p).copied().unwrap_or(0)).max(0)
                                    })
                                    .sum()
                            })
                            .unwrap_or(0)
                    });
                    out.push(SinkStatus {
                        sink: kind.name().into(),
                        topic: topic.def().suffix.clone(),
                        positions,
                        lag,
                        committed_at,
                        error: None,
                    });
                }
            }
            Err(e) => out.push(SinkStatus {
                sink: kind.name().into(),
                topic: TopicKind::Listings.def().suffix.clone(),
                positions: BTreeMap::new(),
                lag: None,
                committed_at: None,
                error: Some(e),
            }),
        }
    }
    out
}

type Positions = BTreeMap<TopicKind, (BTreeMap<i32, i64>, Option<String>)>;

async fn read(cfg: &Config, kind: SinkKind) -> Result<Positions, SinkError> {
    let listings = TopicKind::Listings.name(&cfg.kafka.namespace);
    let mut out: Positions = BTreeMap::new();
    match kind {
        SinkKind::Mysql => {
            use crate::db::{Pool, Sql};
            let pool = Pool::connect(&cfg.mysql.url, true, 1).await?;
            let mut q = Sql::new(format!(
                "SELECT partition_id, next_offset, {} FROM sink_progress WHERE sink = 'mysql' AND topic = ",
                pool.backend().committed_at_text()
            ));
            q.push_bind(&listings);
            let rows = pool.fetch_all(&q).await;
            pool.close().await;
            out.insert(TopicKind::Listings, progress_of(rows?));
        }
        SinkKind::Redshift => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect(&cfg.postgres.url)
                .await?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT partition_id, next_offset, to_char(committed_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
                 FROM {}.sink_progress WHERE sink = 'redshift' AND topic = $1",
                cfg.sink.redshift_schema
            )))
            .bind(&listings)
            .fetch_all(&pool)
            .await?;
            out.insert(TopicKind::Listings, progress_of(rows));
        }
        SinkKind::S3 => {
            use futures::TryStreamExt;
            use object_store::ObjectStore;
            let (store, prefix) = crate::store::open(&cfg.store)?;
            let root = super::s3::layout::root(&prefix, &cfg.kafka.namespace);
            let mut topics = vec![TopicKind::Listings];
            if cfg.sink.archive {
                topics.extend([TopicKind::Observed, TopicKind::Sweeps, TopicKind::Dlq]);
            }
            for topic in topics {
                let e = out.entry(topic).or_default();
                for p in 0..topic.def().partitions {
                    let listed: Vec<object_store::ObjectMeta> = store
                        .list(Some(&super::s3::layout::commits_dir(&root, topic, p)))
                        .try_collect()
                        .await?;
                    for m in listed {
                        if let Some((_, last)) = m
                            .location
                            .filename()
                            .and_then(super::s3::layout::parse_commit)
                        {
                            let at = e.0.entry(p).or_default();
                            *at = (*at).max(last + 1);
                            let t = m.last_modified.to_rfc3339();
                            e.1 = e.1.take().max(Some(t));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// `(partition, next offset, committed at)` rows of a progress table → positions and the latest commit.
fn progress_of(rows: Vec<(i32, i64, Option<String>)>) -> (BTreeMap<i32, i64>, Option<String>) {
    let latest = rows.iter().filter_map(|r| r.2.clone()).max();
    (
        rows.into_iter().map(|(p, next, _)| (p, next)).collect(),
        latest,
    )
}

/// Each partition's end (high watermark) of the topics sinks read, asking until `deadline`.
fn end_offsets(
    kafka: &crate::config::KafkaConfig,
    deadline: std::time::Instant,
) -> Result<BTreeMap<TopicKind, BTreeMap<i32, i64>>, SinkError> {
    let probe: BaseConsumer = client_config(kafka).create()?;
    let mut out = BTreeMap::new();
    for topic in [
        TopicKind::Listings,
        TopicKind::Observed,
        TopicKind::Sweeps,
        TopicKind::Dlq,
    ] {
        let name = topic.name(&kafka.namespace);
        let mut e = BTreeMap::new();
        for p in 0..topic.def().partitions {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let (_, high) = probe.fetch_watermarks(&name, p, left.max(Duration::from_millis(1)))?;
            e.insert(p, high);
        }
        out.insert(topic, e);
    }
    Ok(out)
}
