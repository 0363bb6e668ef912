//! The production database (MySQL 8; MariaDB here): the serving schema the API reads.
//!
//! Schema: `migrations/mysql/` (sqlx migrations, run at start). Per batch, one transaction:
//! 1. lock the partition's progress row and check it holds the batch's starting position (the fence);
//! 2. keep the newest change per listing ([`change::newest_per_key`]), lock the stored versions of those
//!    listings (a live one's in `listings`, a deleted one's in `listing_deletions`) and keep the changes
//!    that are newer;
//! 3. delete what they replace (members, prices; listings for tombstones), upsert listings, insert
//!    members and prices, record deletions (and forget those a listing came back from);
//! 4. move the progress to the batch's end, and commit.
//!
//! InnoDB readers see the last committed batch (MVCC): a write never blocks the API's reads, and a
//! batch of 5,000 rows holds its row locks for tens of milliseconds. Group statistics (`region_stats`)
//! are recomputed from `listings` for the regions that changed, at most every `sink.stats_interval`
//! (and for every region at start), outside the batch transactions: they are derived, never lost.

pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection, MySql, MySqlPool, QueryBuilder, Row};

use super::SinkError;
use super::change::{self, Change, ListingRow};
use super::runner::{Batch, Destination};
use crate::config::{Config, DatabaseConfig};
use crate::topics::TopicKind;

/// The migrations of the serving schema, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// Rows per multi-row INSERT (MySQL allows 65,535 placeholders; a listing row has 59).
const CHUNK: usize = 500;

/// The columns of `listings`, in the order [`push_listing`] binds them.
const LISTING_COLUMNS: &str = "listing_id, region_code, gu, dong, bjd_code, lease, deposit, rent, fee, \
     rent_with_fee, monthly_cost, area_m2, area_pyeong, floor_kind, floor_level, floor_band, \
     building_floors, layout, building, direction, lat, lng, facility_mask, subway_m, \
     convenience_store_m, cafe_m, mart_m, restaurant_m, hospital_m, facilities, platform_mask, title, \
     image_url, first_seen, posted_at, updated_at, broker_status, broker_verified, \
     broker_registration, broker_person, broker_office, broker_reason, score_total, score_cost, \
     score_value, score_facilities, score_floor, score_direction, score_broker, score_freshness, \
     bait_risk, bait_warning, score_explanation, merge_explanation, version_clock, source_partition, \
     source_offset, value_sha256";

/// Platform bits of `platform_mask`.
pub fn platform_mask(platforms: &[String]) -> i64 {
    platforms
        .iter()
        .map(|p| match p.as_str() {
            "zigbang" => 1,
            "dabang" => 2,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// Connects (creating the database if it does not exist) and runs the migrations; creates or
/// updates the read-only user when `reader_user` is set.
pub async fn connect(db: &DatabaseConfig, max_connections: u32) -> Result<MySqlPool, SinkError> {
    use sqlx::migrate::MigrateDatabase;
    if !(db.url.starts_with("mysql://") || db.url.starts_with("mariadb://")) {
        return Err(SinkError::Other(format!(
            "mysql.url = {}: the MySQL sink writes to mysql:// or mariadb:// (not yet to SQLite)",
            crate::config::mask_url(&db.url)
        )));
    }
    if !MySql::database_exists(&db.url).await? {
        MySql::create_database(&db.url).await?;
    }
    let opts: MySqlConnectOptions = db.url.parse()?;
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(opts.charset("utf8mb4"))
        .await?;
    MIGRATOR.run(&pool).await?;
    if !db.reader_user.is_empty() {
        grant_reader(&pool, &db.reader_user, &db.reader_password).await?;
    }
    Ok(pool)
}

/// A SQL string literal (DDL takes no placeholders): quotes and backslashes escaped.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// `CREATE USER … ; GRANT SELECT ON <this database>.*` — the API's user can read, never write.
async fn grant_reader(pool: &MySqlPool, user: &str, password: &str) -> Result<(), SinkError> {
    let schema: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await?;
    let who = format!("{}@'%'", literal(user));
    let mut c = pool.acquire().await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE USER IF NOT EXISTS {who} IDENTIFIED BY {pw}; ALTER USER {who} IDENTIFIED BY {pw}; \
         GRANT SELECT ON `{schema}`.* TO {who}",
        pw = literal(password),
        schema = schema.replace('`', "")
    )))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The MySQL sink.
pub struct MysqlSink {
    pool: MySqlPool,
    listings_topic: String,
    /// Regions whose statistics are stale (None: all, at start).
    stale: Option<BTreeSet<String>>,
    stats_every: Duration,
    last_stats: Instant,
}

impl MysqlSink {
    /// Connects, migrates, and prepares to consume `listings.v1` of the configured namespace.
    pub async fn open(cfg: &Config) -> Result<Self, SinkError> {
        let pool = connect(&cfg.mysql, 4).await?;
        Ok(MysqlSink {
            pool,
            listings_topic: TopicKind::Listings.name(&cfg.kafka.namespace),
            stale: None,
            stats_every: cfg.sink.stats_interval,
            last_stats: Instant::now(),
        })
    }

    /// The pool (for tests and the benchmark).
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

impl Destination for MysqlSink {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn topics(&self) -> Vec<TopicKind> {
        vec![TopicKind::Listings]
    }

    async fn positions(&mut self) -> Result<BTreeMap<(TopicKind, i32), i64>, SinkError> {
        let rows = sqlx::query(
            "SELECT partition_id, next_offset FROM sink_progress WHERE sink = 'mysql' AND topic = ?",
        )
        .bind(&self.listings_topic)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    (TopicKind::Listings, r.get::<i32, _>(0)),
                    r.get::<i64, _>(1),
                )
            })
            .collect())
    }

    async fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        let regions = write_batch(&self.pool, &self.listings_topic, batch).await?;
        if let Some(stale) = &mut self.stale {
            stale.extend(regions);
        }
        Ok(())
    }

    async fn tick(&mut self, _idle: bool) -> Result<(), SinkError> {
        if self.last_stats.elapsed() >= self.stats_every
            && let Err(e) = self.refresh_stats().await
        {
            // Derived data: the rows are committed; the statistics catch up at the next refresh.
            tracing::warn!("group statistics not refreshed: {e}");
            self.last_stats = Instant::now();
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        self.refresh_stats().await
    }
}

impl MysqlSink {
    /// Recomputes the statistics of the regions written since the last refresh (all, the first time).
    async fn refresh_stats(&mut self) -> Result<(), SinkError> {
        if self.stale.as_ref().is_some_and(BTreeSet::is_empty) {
            return Ok(());
        }
        let regions = self.stale.replace(BTreeSet::new());
        if let Err(e) = stats::refresh(&self.pool, regions.clone()).await {
            // Still stale: try them again next time.
            match (&mut self.stale, regions) {
                (Some(now), Some(before)) => now.extend(before),
                (stale, None) => *stale = None,
                _ => {}
            }
            return Err(e);
        }
        self.last_stats = Instant::now();
        Ok(())
    }
}

/// Writes one batch in one transaction; returns the regions it touched.
pub async fn write_batch(
    pool: &MySqlPool,
    topic: &str,
    batch: Batch,
) -> Result<BTreeSet<String>, SinkError> {
    let mut tx = pool.begin().await?;
    // The progress row exists before it is locked, so two instances serialize on it.
    sqlx::query(
        "INSERT IGNORE INTO sink_progress (sink, topic, partition_id, next_offset, committed_at) \
         VALUES ('mysql', ?, ?, 0, UTC_TIMESTAMP(6))",
    )
    .bind(topic)
    .bind(batch.partition)
    .execute(&mut *tx)
    .await?;
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT next_offset FROM sink_progress WHERE sink = 'mysql' AND topic = ? AND partition_id = ? FOR UPDATE",
    )
    .bind(topic)
    .bind(batch.partition)
    .fetch_optional(&mut *tx)
    .await?;
    if stored.unwrap_or(0) != batch.from {
        return Err(SinkError::Fenced {
            topic: topic.to_string(),
            partition: batch.partition,
            stored: stored.unwrap_or(0),
            expected: batch.from,
        });
    }
    let after = batch.after();
    let changes = change::newest_per_key(batch.changes);
    let versions = stored_versions(&mut tx, &changes).await?;
    let winners: Vec<&Change> = changes
        .iter()
        .filter(|c| c.newer_than(versions.get(c.listing_id.as_str()).map(|v| (v.0, v.1))))
        .collect();
    let mut regions = BTreeSet::new();
    for c in &winners {
        if let Some(r) = &c.region {
            regions.insert(r.clone());
        }
    }
    // What the winners replace: children of live listings, live listings that ended, deletions undone.
    let was_live = |c: &Change| versions.get(c.listing_id.as_str()).is_some_and(|v| v.2);
    let was_deleted = |c: &Change| versions.get(c.listing_id.as_str()).is_some_and(|v| !v.2);
    let replaced: Vec<&str> = winners
        .iter()
        .filter(|c| was_live(c))
        .map(|c| c.listing_id.as_str())
        .collect();
    for table in ["listing_members", "listing_prices"] {
        delete_ids(&mut tx, table, &replaced).await?;
    }
    let ended: Vec<&Change> = winners
        .iter()
        .copied()
        .filter(|c| c.row.is_none())
        .collect();
    let ended_live: Vec<&str> = ended
        .iter()
        .filter(|c| was_live(c))
        .map(|c| c.listing_id.as_str())
        .collect();
    if !ended_live.is_empty() {
        // A tombstone without a region header: its region is the stored row's.
        for chunk in ended_live.chunks(CHUNK) {
            let mut q = QueryBuilder::<MySql>::new(
                "SELECT DISTINCT region_code FROM listings WHERE listing_id IN ",
            );
            q.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in q.build().fetch_all(&mut *tx).await? {
                regions.insert(r.get::<String, _>(0));
            }
        }
        delete_ids(&mut tx, "listings", &ended_live).await?;
    }
    let revived: Vec<&str> = winners
        .iter()
        .filter(|c| c.row.is_some() && was_deleted(c))
        .map(|c| c.listing_id.as_str())
        .collect();
    delete_ids(&mut tx, "listing_deletions", &revived).await?;
    let live: Vec<&ListingRow> = winners.iter().filter_map(|c| c.row.as_deref()).collect();
    // Each row's version columns: (clock, partition, offset) of the change that wrote it.
    let written: BTreeMap<&str, (i64, i32, i64)> = winners
        .iter()
        .map(|c| {
            (
                c.listing_id.as_str(),
                (c.clock.unwrap_or_default(), c.partition, c.offset),
            )
        })
        .collect();
    for chunk in live.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<MySql>::new(format!("INSERT INTO listings ({LISTING_COLUMNS}) "));
        q.push_values(chunk, |mut b, r| {
            let (clock, partition, offset) = written
                .get(r.listing_id.as_str())
                .copied()
                .unwrap_or_default();
            b.push_bind(&r.listing_id)
                .push_bind(&r.region_code)
                .push_bind(&r.gu)
                .push_bind(&r.dong)
                .push_bind(&r.bjd_code)
                .push_bind(&r.lease)
                .push_bind(r.deposit)
                .push_bind(r.rent)
                .push_bind(r.fee)
                .push_bind(r.rent_with_fee)
                .push_bind(r.monthly_cost)
                .push_bind(r.area_m2)
                .push_bind(r.area_pyeong)
                .push_bind(&r.floor_kind)
                .push_bind(r.floor_level)
                .push_bind(&r.floor_band)
                .push_bind(r.building_floors)
                .push_bind(&r.layout)
                .push_bind(&r.building)
                .push_bind(&r.direction)
                .push_bind(r.lat)
                .push_bind(r.lng)
                .push_bind(r.facility_mask());
            for f in change::FACILITIES {
                b.push_bind(r.facility(f));
            }
            b.push_bind(serde_json::to_string(&r.facilities).unwrap_or_default())
                .push_bind(platform_mask(&r.platforms))
                .push_bind(&r.title)
                .push_bind(&r.image_url)
                .push_bind(r.first_seen)
                .push_bind(&r.posted_at)
                .push_bind(&r.updated_at)
                .push_bind(&r.broker_status)
                .push_bind(r.broker_status == "verified")
                .push_bind(&r.broker_registration)
                .push_bind(&r.broker_person)
                .push_bind(&r.broker_office)
                .push_bind(&r.broker_reason)
                .push_bind(r.score_total);
            for c in r.components {
                b.push_bind(c);
            }
            b.push_bind(r.bait_risk)
                .push_bind(r.bait_warning)
                .push_bind(&r.score_explanation)
                .push_bind(&r.merge_explanation)
                .push_bind(clock)
                .push_bind(partition)
                .push_bind(offset)
                .push_bind(&r.value_sha256);
        });
        q.push(" ON DUPLICATE KEY UPDATE ");
        let updates: Vec<String> = LISTING_COLUMNS
            .split(',')
            .map(str::trim)
            .filter(|c| *c != "listing_id")
            .map(|c| format!("{c} = VALUES({c})"))
            .collect();
        q.push(updates.join(", "));
        q.build().execute(&mut *tx).await?;
    }
    let members: Vec<(&str, &change::MemberRow)> = live
        .iter()
        .flat_map(|r| r.members.iter().map(move |m| (r.listing_id.as_str(), m)))
        .collect();
    for chunk in members.chunks(CHUNK * 4) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO listing_members (listing_id, platform, source_listing_id, source, url, deposit, rent, fee, title, first_seen_at) ",
        );
        q.push_values(chunk, |mut b, (id, m)| {
            b.push_bind(*id)
                .push_bind(&m.platform)
                .push_bind(&m.source_listing_id)
                .push_bind(&m.source)
                .push_bind(&m.url)
                .push_bind(m.deposit)
                .push_bind(m.rent)
                .push_bind(m.fee)
                .push_bind(&m.title)
                .push_bind(&m.first_seen_at);
        });
        // The same source listing twice in one canonical listing would be a processor bug; the key
        // makes it one row rather than a failed batch.
        q.push(" ON DUPLICATE KEY UPDATE url = VALUES(url)");
        q.build().execute(&mut *tx).await?;
    }
    let prices: Vec<(&str, &change::PriceRow)> = live
        .iter()
        .flat_map(|r| r.prices.iter().map(move |p| (r.listing_id.as_str(), p)))
        .collect();
    for chunk in prices.chunks(CHUNK * 4) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO listing_prices (listing_id, seq, from_at, deposit, rent, fee) ",
        );
        q.push_values(chunk, |mut b, (id, p)| {
            b.push_bind(*id)
                .push_bind(p.seq)
                .push_bind(&p.from)
                .push_bind(p.deposit)
                .push_bind(p.rent)
                .push_bind(p.fee);
        });
        q.build().execute(&mut *tx).await?;
    }
    for chunk in ended.chunks(CHUNK * 4) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO listing_deletions (listing_id, version_clock, source_partition, source_offset) ",
        );
        q.push_values(chunk, |mut b, c| {
            let stored = versions.get(c.listing_id.as_str()).map(|v| (v.0, v.1));
            let (clock, offset) = c.version(stored);
            b.push_bind(&c.listing_id)
                .push_bind(clock)
                .push_bind(c.partition)
                .push_bind(offset);
        });
        q.push(
            " ON DUPLICATE KEY UPDATE version_clock = VALUES(version_clock), \
             source_partition = VALUES(source_partition), source_offset = VALUES(source_offset)",
        );
        q.build().execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO sink_progress (sink, topic, partition_id, next_offset, committed_at) VALUES ('mysql', ?, ?, ?, UTC_TIMESTAMP(6)) \
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset), committed_at = VALUES(committed_at)",
    )
    .bind(topic)
    .bind(batch.partition)
    .bind(after)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(regions)
}

/// The stored versions `(clock, offset, live)` of the changes' listings — a live listing's row, or a
/// deleted one's record — locked until the commit.
async fn stored_versions(
    tx: &mut sqlx::Transaction<'_, MySql>,
    changes: &[Change],
) -> Result<BTreeMap<String, (i64, i64, bool)>, SinkError> {
    let mut out = BTreeMap::new();
    for (table, live) in [("listings", true), ("listing_deletions", false)] {
        for chunk in changes.chunks(CHUNK * 4) {
            let mut q = QueryBuilder::<MySql>::new(format!(
                "SELECT listing_id, version_clock, source_offset FROM {table} WHERE listing_id IN "
            ));
            q.push_tuples(chunk, |mut b, c| {
                b.push_bind(&c.listing_id);
            });
            q.push(" FOR UPDATE");
            for r in q.build().fetch_all(&mut **tx).await? {
                out.insert(
                    r.get::<String, _>(0),
                    (r.get::<i64, _>(1), r.get::<i64, _>(2), live),
                );
            }
        }
    }
    Ok(out)
}

async fn delete_ids(
    tx: &mut sqlx::Transaction<'_, MySql>,
    table: &str,
    ids: &[&str],
) -> Result<(), SinkError> {
    for chunk in ids.chunks(CHUNK * 4) {
        let mut q = QueryBuilder::<MySql>::new(format!("DELETE FROM {table} WHERE listing_id IN "));
        q.push_tuples(chunk, |mut b, id| {
            b.push_bind(*id);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// `(listing_id, version_clock, value_sha256)` of every row, for [`change::checksum`].
pub async fn contents(pool: &MySqlPool) -> Result<Vec<(String, i64, String)>, SinkError> {
    let rows = sqlx::query("SELECT listing_id, version_clock, value_sha256 FROM listings")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Checks that a connection can be made (readiness probes, `roomstream status`).
pub async fn ping(url: &str) -> Result<(), SinkError> {
    let mut c = sqlx::MySqlConnection::connect(url).await?;
    c.ping().await?;
    Ok(())
}
