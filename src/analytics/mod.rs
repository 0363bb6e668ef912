//! analytics: SQL over the S3 sink's Parquet, for analysts — the end of the flow, after [`crate::sink`].
//!
//! [`Analytics::open`] finds the sink's files in the configured object store (`store.url`,
//! `store.endpoint`; [`crate::store`]) under `<prefix>/<namespace>/` and registers them with DataFusion:
//!
//! | table | rows |
//! |---|---|
//! | `listings` | the live listings of the snapshot (the newest complete one, or epoch N) |
//! | `snapshot` | the same files unfiltered: deleted listings too, as `live = false` |
//! | `changes` | every version of every listing committed up to the snapshot's positions, deletions included, with `changed_at` |
//! | `change_rows` | the same files as they are |
//! | `regions` | Seoul's 25 구: `region_code`, `gu` ([`crate::region::SEOUL_GU`]) |
//!
//! Columns are those of [`crate::sink::table::COLUMNS`]; the views that fill `gu` from the region code
//! and add times are SQL files (`queries/analytics/tables/`). A query is read-only (no DDL, DML or
//! `SET`).
//!
//! This reads only what the sink publishes for readers — [`crate::sink::s3::layout`]'s names, the
//! snapshot [`Manifest`], commit-marker names and [`crate::sink::table::COLUMNS`] — never its writing
//! internals; which files count is decided in [`source`].
//!
//! - [`source`] — snapshot and change-file selection, Parquet files as table partitions;
//! - [`queries`] — the built-in SQL (`queries/analytics/`);
//! - [`format`] — an answer as a table, CSV or JSON;
//! - [`report`] and [`chart`] — SVG charts of the built-in questions and an `index.html`.

pub mod chart;
pub mod format;
pub mod queries;
pub mod report;
pub mod source;

use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{SessionConfig, SessionContext};
use object_store::ObjectStore;
use object_store::path::Path;

use crate::config::Config;
use crate::sink::s3::layout;
use crate::sink::s3::layout::Manifest;

/// What can go wrong between the object store and an answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The object store.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The object store's configuration.
    #[error(transparent)]
    StoreConfig(#[from] crate::store::StoreError),
    /// A manifest that is not one.
    #[error("snapshot manifest {path}: {reason}")]
    Manifest {
        /// Its path.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// No snapshot has its manifest yet.
    #[error(
        "no complete snapshot under {root} (one is complete once its _manifest.json is written): run the S3 sink (`roomstream sink s3`), which writes one every sink.snapshot_interval and when it stops"
    )]
    NoSnapshot {
        /// Where snapshots would be.
        root: String,
    },
    /// `--snapshot N` names an epoch without a manifest.
    #[error(
        "snapshot epoch {epoch} does not exist or is incomplete (no _manifest.json); complete epochs: {complete:?}"
    )]
    NoSuchEpoch {
        /// The epoch asked for.
        epoch: u64,
        /// The epochs that could be read.
        complete: Vec<u64>,
    },
    /// The query: SQL DataFusion refused, or a failure while running it. (Said once: DataFusion's own
    /// message repeats its cause, so it is not chained as a source.)
    #[error("query: {}", reason(.0))]
    Query(DataFusionError),
    /// Registering the tables (a view's SQL, a schema).
    #[error("registering the analytics tables: {}", reason(.0))]
    Setup(DataFusionError),
    /// An answer lacks a column a chart needs, or has it in a type that is not text or a number.
    #[error("column `{column}`: {reason}")]
    Column {
        /// The column.
        column: String,
        /// What is wrong.
        reason: String,
    },
    /// Drawing a chart.
    #[error("chart {name}: {reason}")]
    Chart {
        /// Which chart.
        name: String,
        /// Why.
        reason: String,
    },
    /// Writing an answer (CSV, JSON, a table).
    #[error("writing the answer: {0}")]
    Output(#[from] datafusion::arrow::error::ArrowError),
    /// Writing a report file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// DataFusion's reason without its wrapping: a parser error as the parser says it.
fn reason(e: &DataFusionError) -> String {
    match e.find_root() {
        DataFusionError::SQL(p, _) => p.to_string(),
        root => root.to_string(),
    }
}

/// A DataFusion session over one snapshot of the S3 sink and the changes up to it.
pub struct Analytics {
    ctx: SessionContext,
    manifest: Manifest,
    change_files: usize,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("epoch", &self.manifest.epoch)
            .field("change_files", &self.change_files)
            .finish()
    }
}

/// A query's answer: its schema and rows.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The columns.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl Analytics {
    /// Opens the configured store's sink output for namespace `kafka.namespace`, at snapshot `epoch`
    /// (the newest complete one when `None`).
    pub async fn open(cfg: &Config, epoch: Option<u64>) -> Result<Self, AnalyticsError> {
        let (store, prefix) = crate::store::open(&cfg.store)?;
        Self::open_at(store, &layout::root(&prefix, &cfg.kafka.namespace), epoch).await
    }

    /// Opens the sink output under `root` (`<prefix>/<namespace>`) of `store`.
    pub async fn open_at(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        epoch: Option<u64>,
    ) -> Result<Self, AnalyticsError> {
        let manifest = source::select_manifest(&store, root, epoch).await?;
        let changes = source::committed_changes(&store, root, Some(&manifest.positions)).await?;
        let snapshot: Vec<Path> = manifest
            .files
            .values()
            .map(|(path, _)| Path::from(path.as_str()))
            .collect();
        let config = SessionConfig::new().with_information_schema(true);
        let partitions = config.target_partitions();
        let ctx = SessionContext::new_with_config(config);
        let schema = source::listing_schema();
        for (name, files) in [("snapshot", &snapshot), ("change_rows", &changes)] {
            let table = StreamingTable::try_new(
                schema.clone(),
                source::ParquetFiles::partitions(&store, files, &schema, partitions),
            )
            .map_err(AnalyticsError::Setup)?;
            ctx.register_table(name, Arc::new(table))
                .map_err(AnalyticsError::Setup)?;
        }
        ctx.register_table("regions", regions().map_err(AnalyticsError::Setup)?)
            .map_err(AnalyticsError::Setup)?;
        for (name, sql) in [
            ("listings", queries::LISTINGS_VIEW),
            ("changes", queries::CHANGES_VIEW),
        ] {
            let view = ctx.sql(sql).await.map_err(AnalyticsError::Setup)?;
            ctx.register_table(name, view.into_view())
                .map_err(AnalyticsError::Setup)?;
        }
        Ok(Analytics {
            ctx,
            manifest,
            change_files: changes.len(),
        })
    }

    /// The snapshot's manifest (epoch, positions, files, live rows).
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// How many change files `changes` reads.
    pub fn change_files(&self) -> usize {
        self.change_files
    }

    /// Runs one read-only statement.
    pub async fn sql(&self, sql: &str) -> Result<Answer, AnalyticsError> {
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = self
            .ctx
            .sql_with_options(sql, options)
            .await
            .map_err(AnalyticsError::Query)?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(AnalyticsError::Query)?;
        Ok(Answer { schema, batches })
    }
}

/// The table `regions`: (region_code, gu) of Seoul's 25 구.
fn regions() -> Result<Arc<MemTable>, DataFusionError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("region_code", DataType::Utf8, false),
        Field::new("gu", DataType::Utf8, false),
    ]));
    let (codes, names): (Vec<&str>, Vec<&str>) = crate::region::SEOUL_GU.iter().copied().unzip();
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(codes)),
            Arc::new(StringArray::from(names)),
        ],
    )?;
    Ok(Arc::new(MemTable::try_new(schema, vec![vec![batch]])?))
}

impl Answer {
    /// Rows in all.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    fn column(&self, name: &str, to: &DataType) -> Result<Vec<Arc<dyn Array>>, AnalyticsError> {
        let i = self
            .schema
            .index_of(name)
            .map_err(|_| AnalyticsError::Column {
                column: name.into(),
                reason: format!(
                    "not in the answer (columns: {})",
                    self.schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        self.batches
            .iter()
            .map(|b| {
                cast(b.column(i), to).map_err(|e| AnalyticsError::Column {
                    column: name.into(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// A column as text, row by row (NULL → `None`; numbers and times as arrow displays them).
    pub fn strings(&self, name: &str) -> Result<Vec<Option<String>>, AnalyticsError> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name, &DataType::Utf8)? {
            let s =
                a.as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| AnalyticsError::Column {
                        column: name.into(),
                        reason: "not text".into(),
                    })?;
            out.extend(s.iter().map(|v| v.map(str::to_string)));
        }
        Ok(out)
    }

    /// A column as numbers, row by row (NULL → `None`).
    pub fn floats(&self, name: &str) -> Result<Vec<Option<f64>>, AnalyticsError> {
        let mut out = Vec::with_capacity(self.rows());
        for a in self.column(name, &DataType::Float64)? {
            let f = a
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Float64Array>()
                .ok_or_else(|| AnalyticsError::Column {
                    column: name.into(),
                    reason: "not a number".into(),
                })?;
            out.extend(f.iter());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
