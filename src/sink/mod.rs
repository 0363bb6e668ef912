//! sink: the processor's changelog (`listings.v1`) into the stores people and analysts read.
//!
//! Three destinations, each its own consumer group (`<namespace>.sink-<name>`) and each storing its
//! progress *inside the destination* (the Kafka Connect model), so one slow or broken store never
//! stalls the others and a crash at any point loses nothing and doubles nothing:
//!
//! - [`mysql`] — the production database the API serves: batched upserts behind a version guard,
//!   deletions for tombstones, members, price history and group statistics; the next offset of each
//!   partition committed in the same transaction as the rows;
//! - [`postgres`] — the Redshift staging schema (PostgreSQL here): a staging table per batch,
//!   deduplicated, `MERGE`d into the analytics table behind the same guard, progress in the same
//!   transaction; [`postgres::dialect`] also writes the production Redshift variant;
//! - [`s3`] — Parquet in the object store: change files named by their positions, periodic snapshots
//!   with a manifest written last, the DLQ, and the raw zone (an archive of `observed.v1` and
//!   `sweeps.v1` that `replay --from-archive` rebuilds the state from).
//!
//! The order of a listing's versions is `(version.clock, offset in listings.v1)`: the clock comes from
//! the processor's input positions (a tombstone carries it in a header), the offset orders two
//! publications of the same inputs (a restart's reconcile). A row changes only if the incoming
//! version is newer, so a replay, a re-delivery or a zombie instance never regresses it.
//!
//! [`runner`] is the one consumer loop every destination plugs into ([`runner::Destination`]);
//! [`change`] is the sinks' typed reading of `listings.v1` — the topic's contract, not the
//! processor's types; [`status`] reads every destination's progress for `roomstream status`.

pub mod change;
pub mod mysql;
pub mod postgres;
pub mod runner;
pub mod s3;
pub mod status;
pub mod table;

/// What can go wrong in a sink. Every variant names the destination's side of the problem.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The broker.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Producing to the DLQ.
    #[error(transparent)]
    Produce(#[from] crate::kafka::ProduceError),
    /// A database.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The object store.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The object store's configuration.
    #[error(transparent)]
    StoreConfig(#[from] crate::store::StoreError),
    /// Writing or reading Parquet.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Building Arrow arrays.
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Another instance wrote this partition since we read its position (a rebalance we have not
    /// seen yet): the batch is dropped and the partition re-read from the stored position.
    #[error(
        "partition {partition} of {topic} was written by another instance (stored next offset {stored}, expected {expected})"
    )]
    Fenced {
        /// Topic name.
        topic: String,
        /// Partition.
        partition: i32,
        /// What the destination holds.
        stored: i64,
        /// What this instance expected.
        expected: i64,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl SinkError {
    /// Whether running the sink again later may succeed: the broker, the database's connection or
    /// the object store (an outage), a fence (another instance moved on) — not a migration, a
    /// configuration, or Parquet and Arrow (a bug retrying cannot fix).
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Kafka(_)
            | SinkError::Produce(_)
            | SinkError::Store(_)
            | SinkError::Fenced { .. }
            | SinkError::Other(_) => true,
            SinkError::Database(e) => crate::db::is_transient(e),
            SinkError::Migrate(_)
            | SinkError::StoreConfig(_)
            | SinkError::Parquet(_)
            | SinkError::Arrow(_) => false,
        }
    }
}

/// Which destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum SinkKind {
    /// The production database (MySQL; MariaDB here).
    Mysql,
    /// Parquet in the object store.
    S3,
    /// The Redshift staging schema (PostgreSQL here).
    Redshift,
}

impl SinkKind {
    /// Every sink, in the order `roomstream run` starts them.
    pub const ALL: [SinkKind; 3] = [SinkKind::Mysql, SinkKind::S3, SinkKind::Redshift];

    /// Its name in groups, progress rows, metrics and `roomstream status`.
    pub fn name(self) -> &'static str {
        match self {
            SinkKind::Mysql => "mysql",
            SinkKind::S3 => "s3",
            SinkKind::Redshift => "redshift",
        }
    }

    /// Its name in health reports: `sink-mysql`, `sink-s3`, `sink-redshift`.
    pub fn component(self) -> &'static str {
        match self {
            SinkKind::Mysql => "sink-mysql",
            SinkKind::S3 => "sink-s3",
            SinkKind::Redshift => "sink-redshift",
        }
    }
}
