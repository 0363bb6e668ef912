//! The production database (MySQL 8; MariaDB here; SQLite in the demo): the serving schema the API
//! reads. The SQL is built once for both engines ([`crate::db`]); where they differ (upserts, row
//! locks, the time) the engine gives the fragment.
//!
//! Schema: `migrations/mysql/` or `migrations/sqlite/` (sqlx migrations, run at start). Per batch, one
//! transaction (SQLite: `BEGIN IMMEDIATE`, the whole file locked for it, in place of row locks):
//! 1. lock the partition's progress row and check it holds the batch's starting position (the fence);
//! 2. keep the newest change per listing ([`change::newest_per_key`]), lock the stored versions of those
//!    listings (a live one's in `listings`, a deleted one's in `listing_deletions`) and keep the changes
//!    that are newer;
//! 3. delete what they replace (members, prices; listings for tombstones), upsert listings, insert
//!    members and prices, record deletions (and forget those a listing came back from);
//! 4. move the progress to the batch's end, and commit.
//!
//! InnoDB readers see the last committed batch (MVCC): a write never blocks the API's reads, and a
//! batch of 5,000 rows holds its row locks for tens of milliseconds. SQLite in WAL mode gives readers
//! the same: the last committed batch, never blocked by the writer. Group statistics (`region_stats`)
//! are recomputed from `listings` for the regions that changed, at most every `sink.stats_interval`
//! (and for every region at start), outside the batch transactions: they are derived, never lost.

pub mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection, MySql, MySqlPool};

use super::SinkError;
use super::change::{self, Change, ListingRow};
use super::runner::{Batch, Destination};
use crate::config::{Config, DatabaseConfig};
use crate::db::{Backend, Pool, Sql, Tx};
use crate::topics::TopicKind;

/// The migrations of the serving schema, compiled in.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");
/// The same schema for SQLite (the demo's production database).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
/// updates the read-only user when `reader_user` is set. A `sqlite:` URL opens (or creates) that file
/// instead, with one connection: SQLite has one writer, and no users (the API opens it read-only).
pub async fn connect(db: &DatabaseConfig, max_connections: u32) -> Result<Pool, SinkError> {
    use sqlx::migrate::MigrateDatabase;
    match Backend::of(&db.url).map_err(|e| SinkError::Other(format!("mysql.url: {e}")))? {
        Backend::Sqlite => {
            let pool = crate::db::sqlite_pool(&db.url, false, 1).await?;
            SQLITE_MIGRATOR.run(&pool).await?;
            return Ok(Pool::Sqlite(pool));
        }
        Backend::Mysql => {}
    }
    if !MySql::database_exists(&db.url).await? {
        MySql::create_database(&db.url).await?;
    }
    let opts: MySqlConnectOptions = db.url.parse()?;
    let pool = MySqlPoolOptions::new()
        .max_connections(max_connections)
        // Short: with the database down, a write fails within seconds and the sink says so
        // (`/readyz`) while it retries the run ([`crate::health`]), instead of hanging in the pool.
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts.charset("utf8mb4"))
        .await?;
    MIGRATOR.run(&pool).await?;
    if !db.reader_user.is_empty() {
        grant_reader(&pool, &db.reader_user, &db.reader_password).await?;
    }
    Ok(Pool::Mysql(pool))
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
    pool: Pool,
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
    pub fn pool(&self) -> &Pool {
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
        let mut q = Sql::new(
            "SELECT partition_id, next_offset FROM sink_progress WHERE sink = 'mysql' AND topic = ",
        );
        q.push_bind(&self.listings_topic);
        let rows: Vec<(i32, i64)> = self.pool.fetch_all(&q).await?;
        Ok(rows
            .into_iter()
            .map(|(p, next)| ((TopicKind::Listings, p), next))
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
    pool: &Pool,
    topic: &str,
    batch: Batch,
) -> Result<BTreeSet<String>, SinkError> {
    let backend = pool.backend();
    let mut tx = pool.begin().await?;
    // The progress row exists before it is locked, so two instances serialize on it.
    let mut q = Sql::new(format!(
        "{} sink_progress (sink, topic, partition_id, next_offset, committed_at) VALUES ('mysql', ",
        backend.insert_ignore()
    ));
    q.push_bind(topic)
        .push(", ")
        .push_bind(batch.partition)
        .push(format_args!(", 0, {})", backend.now()));
    tx.execute(&q).await?;
    let mut q = Sql::new("SELECT next_offset FROM sink_progress WHERE sink = 'mysql' AND topic = ");
    q.push_bind(topic)
        .push(" AND partition_id = ")
        .push_bind(batch.partition)
        .push(backend.for_update());
    let stored: Option<i64> = tx.fetch_optional::<(i64,)>(&q).await?.map(|r| r.0);
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
    let versions = stored_versions(&mut tx, backend, &changes).await?;
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
            let mut q = Sql::new("SELECT DISTINCT region_code FROM listings WHERE listing_id IN ");
            q.push_list(chunk.iter().copied());
            for (r,) in tx.fetch_all::<(String,)>(&q).await? {
                regions.insert(r);
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
        let mut q = Sql::new(format!("INSERT INTO listings ({LISTING_COLUMNS}) "));
        q.push_values(chunk, |b, r| {
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
        let updates: Vec<&str> = LISTING_COLUMNS
            .split(',')
            .map(str::trim)
            .filter(|c| *c != "listing_id")
            .collect();
        q.push(backend.upsert_tail("listing_id", &updates));
        tx.execute(&q).await?;
    }
    let members: Vec<(&str, &change::MemberRow)> = live
        .iter()
        .flat_map(|r| r.members.iter().map(move |m| (r.listing_id.as_str(), m)))
        .collect();
    for chunk in members.chunks(CHUNK * 4) {
        let mut q = Sql::new(
            "INSERT INTO listing_members (listing_id, platform, source_listing_id, source, url, deposit, rent, fee, title, first_seen_at) ",
        );
        q.push_values(chunk, |b, (id, m)| {
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
        q.push(backend.upsert_tail("listing_id, platform, source_listing_id", &["url"]));
        tx.execute(&q).await?;
    }
    let prices: Vec<(&str, &change::PriceRow)> = live
        .iter()
        .flat_map(|r| r.prices.iter().map(move |p| (r.listing_id.as_str(), p)))
        .collect();
    for chunk in prices.chunks(CHUNK * 4) {
        let mut q =
            Sql::new("INSERT INTO listing_prices (listing_id, seq, from_at, deposit, rent, fee) ");
        q.push_values(chunk, |b, (id, p)| {
            b.push_bind(*id)
                .push_bind(p.seq)
                .push_bind(&p.from)
                .push_bind(p.deposit)
                .push_bind(p.rent)
                .push_bind(p.fee);
        });
        tx.execute(&q).await?;
    }
    for chunk in ended.chunks(CHUNK * 4) {
        let mut q = Sql::new(
            "INSERT INTO listing_deletions (listing_id, version_clock, source_partition, source_offset) ",
        );
        q.push_values(chunk, |b, c| {
            let stored = versions.get(c.listing_id.as_str()).map(|v| (v.0, v.1));
            let (clock, offset) = c.version(stored);
            b.push_bind(&c.listing_id)
                .push_bind(clock)
                .push_bind(c.partition)
                .push_bind(offset);
        });
        q.push(backend.upsert_tail(
            "listing_id",
            &["version_clock", "source_partition", "source_offset"],
        ));
        tx.execute(&q).await?;
    }
    let mut q = Sql::new(
        "INSERT INTO sink_progress (sink, topic, partition_id, next_offset, committed_at) VALUES ('mysql', ",
    );
    q.push_bind(topic)
        .push(", ")
        .push_bind(batch.partition)
        .push(", ")
        .push_bind(after)
        .push(format_args!(", {})", backend.now()))
        .push(backend.upsert_tail(
            "sink, topic, partition_id",
            &["next_offset", "committed_at"],
        ));
    tx.execute(&q).await?;
    tx.commit().await?;
    Ok(regions)
}

/// The stored versions `(clock, offset, live)` of the changes' listings — a live listing's row, or a
/// deleted one's record — locked until the commit.
async fn stored_versions(
    tx: &mut Tx,
    backend: Backend,
    changes: &[Change],
) -> Result<BTreeMap<String, (i64, i64, bool)>, SinkError> {
    let mut out = BTreeMap::new();
    for (table, live) in [("listings", true), ("listing_deletions", false)] {
        for chunk in changes.chunks(CHUNK * 4) {
            let mut q = Sql::new(format!(
                "SELECT listing_id, version_clock, source_offset FROM {table} WHERE listing_id IN "
            ));
            q.push_list(chunk.iter().map(|c| c.listing_id.as_str()));
            q.push(backend.for_update());
            for (id, clock, offset) in tx.fetch_all::<(String, i64, i64)>(&q).await? {
                out.insert(id, (clock, offset, live));
            }
        }
    }
    Ok(out)
}

async fn delete_ids(tx: &mut Tx, table: &str, ids: &[&str]) -> Result<(), SinkError> {
    for chunk in ids.chunks(CHUNK * 4) {
        let mut q = Sql::new(format!("DELETE FROM {table} WHERE listing_id IN "));
        q.push_list(chunk.iter().copied());
        tx.execute(&q).await?;
    }
    Ok(())
}

/// `(listing_id, version_clock, value_sha256)` of every row, for [`change::checksum`].
pub async fn contents(pool: &Pool) -> Result<Vec<(String, i64, String)>, SinkError> {
    Ok(pool
        .fetch_all(&Sql::new(
            "SELECT listing_id, version_clock, value_sha256 FROM listings",
        ))
        .await?)
}

/// Checks that a connection can be made (readiness probes, `roomstream status`).
pub async fn ping(url: &str) -> Result<(), SinkError> {
    if Backend::of(url) == Ok(Backend::Sqlite) {
        let mut c =
            sqlx::SqliteConnection::connect_with(&crate::db::sqlite_options(url, true)?).await?;
        c.ping().await?;
        return Ok(());
    }
    let mut c = sqlx::MySqlConnection::connect(url).await?;
    c.ping().await?;
    Ok(())
}
