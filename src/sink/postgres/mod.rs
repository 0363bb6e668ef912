//! The Redshift staging schema (PostgreSQL 15 here): the analytics table of every listing's newest
//! version, deletions kept as rows with `live = false` (the version guard needs them).
//!
//! Per batch, one transaction: check the partition's stored position (the fence), load the batch into a
//! session-local staging table, `MERGE` the newest staged version of each listing into
//! `<schema>.listings` when it is newer than the stored one, move the progress; commit. The SQL is
//! [`dialect`]'s, which also writes the production Redshift variant (COPY from Parquet on S3).

pub mod dialect;

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder, Row};

use self::dialect::Dialect;
use super::SinkError;
use super::change::Change;
use super::runner::{Batch, Destination};
use super::table::{self, Value};
use crate::config::{Config, DatabaseConfig};
use crate::topics::TopicKind;

/// Rows per INSERT into the staging table (PostgreSQL allows 65,535 parameters; a row has 52).
const CHUNK: usize = 1000;

/// Connects (creating the database if needed), creates the schema and tables, and the read-only user
/// when `reader_user` is set.
pub async fn connect(db: &DatabaseConfig, schema: &str) -> Result<PgPool, SinkError> {
    use sqlx::migrate::MigrateDatabase;
    if !Postgres::database_exists(&db.url).await? {
        Postgres::create_database(&db.url).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(4)
        // Short: with the database down, a write fails within seconds and the sink says so
        // (`/readyz`) while it retries the run ([`crate::health`]), instead of hanging in the pool.
        .acquire_timeout(Duration::from_secs(5))
        .connect(&db.url)
        .await?;
    // Two sinks starting at once may race on CREATE … IF NOT EXISTS: serialize with an advisory lock.
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(7355608)")
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(dialect::create_tables(
        Dialect::Postgres,
        schema,
    )))
    .execute(&mut *tx)
    .await?;
    if !db.reader_user.is_empty() {
        let user = &db.reader_user;
        let pw = db.reader_password.replace('\'', "''");
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{user}') THEN \
             CREATE ROLE {user} LOGIN; END IF; END $$;\n\
             ALTER ROLE {user} PASSWORD '{pw}';\n\
             GRANT USAGE ON SCHEMA {schema} TO {user};\n\
             GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {user};\n\
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {user};"
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(pool)
}

/// The Redshift-staging sink.
pub struct RedshiftSink {
    pool: PgPool,
    schema: String,
    listings_topic: String,
    merge_sql: String,
    progress_sql: String,
}

impl RedshiftSink {
    /// Connects and prepares to consume `listings.v1`.
    pub async fn open(cfg: &Config) -> Result<Self, SinkError> {
        let schema = cfg.sink.redshift_schema.clone();
        let pool = connect(&cfg.postgres, &schema).await?;
        Ok(RedshiftSink {
            merge_sql: format!(
                "{};\n{}",
                dialect::newest(Dialect::Postgres, &schema),
                dialect::merge(Dialect::Postgres, &schema)
            ),
            progress_sql: dialect::progress(Dialect::Postgres, &schema, "redshift"),
            listings_topic: TopicKind::Listings.name(&cfg.kafka.namespace),
            schema,
            pool,
        })
    }

    /// The pool (tests, benchmark).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl Destination for RedshiftSink {
    fn name(&self) -> &'static str {
        "redshift"
    }

    fn topics(&self) -> Vec<TopicKind> {
        vec![TopicKind::Listings]
    }

    async fn positions(&mut self) -> Result<BTreeMap<(TopicKind, i32), i64>, SinkError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT partition_id, next_offset FROM {}.sink_progress WHERE sink = 'redshift' AND topic = $1",
            self.schema
        )))
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
        let mut tx = self.pool.begin().await?;
        // The progress row exists before it is locked, so two instances serialize on it.
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {}.sink_progress (sink, topic, partition_id, next_offset, committed_at) \
             VALUES ('redshift', $1, $2, 0, now()) ON CONFLICT DO NOTHING",
            self.schema
        )))
        .bind(&self.listings_topic)
        .bind(batch.partition)
        .execute(&mut *tx)
        .await?;
        let stored: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT next_offset FROM {}.sink_progress WHERE sink = 'redshift' AND topic = $1 AND partition_id = $2 FOR UPDATE",
            self.schema
        )))
        .bind(&self.listings_topic)
        .bind(batch.partition)
        .fetch_optional(&mut *tx)
        .await?;
        if stored.unwrap_or(0) != batch.from {
            return Err(SinkError::Fenced {
                topic: self.listings_topic.clone(),
                partition: batch.partition,
                stored: stored.unwrap_or(0),
                expected: batch.from,
            });
        }
        let after = batch.after();
        if !batch.changes.is_empty() {
            sqlx::raw_sql(AssertSqlSafe(dialect::create_staging(Dialect::Postgres)))
                .execute(&mut *tx)
                .await?;
            stage(&mut tx, &batch.changes).await?;
            sqlx::raw_sql(AssertSqlSafe(self.merge_sql.clone()))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(AssertSqlSafe(self.progress_sql.clone()))
            .bind(&self.listings_topic)
            .bind(batch.partition)
            .bind(after)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// INSERTs the changes into `listings_stage`.
async fn stage(
    tx: &mut sqlx::Transaction<'_, Postgres>,
    changes: &[Change],
) -> Result<(), SinkError> {
    for chunk in changes.chunks(CHUNK) {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "INSERT INTO listings_stage ({}) ",
            table::names()
        ));
        q.push_values(chunk, |mut b, c| {
            for v in table::row(c) {
                match v {
                    Value::Null => b.push("NULL"),
                    Value::Text(s) => b.push_bind(s),
                    Value::Int(i) => b.push_bind(i),
                    Value::Float(f) => b.push_bind(f),
                    Value::Bool(x) => b.push_bind(x),
                    Value::Bytes(x) => b.push_bind(x),
                };
            }
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// `(listing_id, version_clock, value_sha256)` of every live row, for the content checksum.
pub async fn contents(
    pool: &PgPool,
    schema: &str,
) -> Result<Vec<(String, i64, String)>, SinkError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT listing_id, version_clock, value_sha256 FROM {schema}.listings WHERE live"
    )))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
