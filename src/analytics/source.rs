//! What analytics reads of the S3 sink's published layout: which snapshot, which change files, and
//! the Parquet in them as DataFusion tables.
//!
//! Only the layout the sink publishes for readers is used ([`layout`]'s names, the snapshot
//! [`Manifest`], the columns of [`table::COLUMNS`]): a snapshot counts once its `_manifest.json`
//! exists, and only the files its manifest lists are read; a change file counts once its batch's
//! commit marker exists (the file `part-<p>-<first>-<last>.parquet` of a committed range
//! `<first>-<last>` of partition p), so a batch that died half-written is never read.
//!
//! Files are read when a query runs, not when the tables are registered: a query over `listings`
//! never fetches a change file.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::AnalyticsError;
use crate::sink::s3::layout;
use crate::sink::s3::layout::Manifest;
use crate::sink::table;
use crate::topics::TopicKind;

/// Rows per Arrow batch read from a file.
const BATCH_ROWS: usize = 8192;
/// Files of one partition fetched ahead of the one being decoded.
const FETCH_AHEAD: usize = 8;

/// The Arrow schema of the listing table ([`table::COLUMNS`]): every column nullable, as the sink
/// writes them (a deletion has NULL in all but its key, version and region).
pub fn listing_schema() -> SchemaRef {
    table::arrow_schema(table::COLUMNS)
}

/// The epochs under `snapshots/`, ascending, whether complete or not.
pub async fn epochs(store: &Arc<dyn ObjectStore>, root: &Path) -> Result<Vec<u64>, AnalyticsError> {
    Ok(layout::snapshot_epochs(store, root).await?)
}

/// Reads epoch `n`'s manifest; `None` when it has none (never written, or died before its manifest).
async fn read_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    n: u64,
) -> Result<Option<Manifest>, AnalyticsError> {
    let path = layout::manifest(root, n);
    let bytes = match store.get(&path).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AnalyticsError::Manifest {
            path: path.to_string(),
            reason: e.to_string(),
        })
}

/// The snapshot to read: epoch `wanted`, or the newest complete one.
pub async fn select_manifest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    wanted: Option<u64>,
) -> Result<Manifest, AnalyticsError> {
    let all = epochs(store, root).await?;
    if let Some(n) = wanted {
        if let Some(m) = read_manifest(store, root, n).await? {
            return Ok(m);
        }
        let mut complete = Vec::new();
        for e in all {
            if read_manifest(store, root, e).await?.is_some() {
                complete.push(e);
            }
        }
        return Err(AnalyticsError::NoSuchEpoch { epoch: n, complete });
    }
    for e in all.into_iter().rev() {
        if let Some(m) = read_manifest(store, root, e).await? {
            return Ok(m);
        }
    }
    Err(AnalyticsError::NoSnapshot {
        root: layout::snapshots(root).to_string(),
    })
}

/// Parses a change file's name, `part-<p>-<first>-<last>.parquet`.
fn parse_data_file(name: &str) -> Option<(i32, i64, i64)> {
    let mut it = name
        .strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .splitn(3, '-');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    ))
}

/// The change files (`changes/region=…/part-…`) of every batch committed before `positions` (the
/// next offset of each `listings.v1` partition; `None`: every committed batch), sorted by path.
pub async fn committed_changes(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    positions: Option<&BTreeMap<i32, i64>>,
) -> Result<Vec<Path>, AnalyticsError> {
    let topic = TopicKind::Listings;
    let mut committed: BTreeSet<(i32, i64, i64)> = BTreeSet::new();
    for p in 0..topic.def().partitions {
        let until = match positions {
            Some(pos) => pos.get(&p).copied().unwrap_or(0),
            None => i64::MAX,
        };
        let markers: Vec<object_store::ObjectMeta> = store
            .list(Some(&layout::commits_dir(root, topic, p)))
            .try_collect()
            .await?;
        committed.extend(
            markers
                .iter()
                .filter_map(|m| m.location.filename().and_then(layout::parse_commit))
                .filter(|&(_, last)| last < until)
                .map(|(first, last)| (p, first, last)),
        );
    }
    let files: Vec<object_store::ObjectMeta> = store
        .list(Some(&layout::data_dir(root, topic)))
        .try_collect()
        .await?;
    let mut out: Vec<Path> = files
        .into_iter()
        .filter(|m| {
            m.location
                .filename()
                .and_then(parse_data_file)
                .is_some_and(|k| committed.contains(&k))
        })
        .map(|m| m.location)
        .collect();
    out.sort();
    Ok(out)
}

/// Gives a batch read from a file exactly `schema`'s columns, by name: a column the file lacks (written
/// before it was added) reads as NULL, one of another type is cast, one the schema lacks is dropped.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => cast(c, f.data_type()).map_err(DataFusionError::from),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<_, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// One partition of a table: some Parquet files of the store, read in order when the plan runs.
#[derive(Debug)]
pub struct ParquetFiles {
    store: Arc<dyn ObjectStore>,
    files: Vec<Path>,
    schema: SchemaRef,
}

impl ParquetFiles {
    /// `files` dealt round-robin into `n` partitions (at least one, possibly empty).
    pub fn partitions(
        store: &Arc<dyn ObjectStore>,
        files: &[Path],
        schema: &SchemaRef,
        n: usize,
    ) -> Vec<Arc<dyn PartitionStream>> {
        let n = n.clamp(1, files.len().max(1));
        (0..n)
            .map(|i| {
                Arc::new(ParquetFiles {
                    store: store.clone(),
                    files: files.iter().skip(i).step_by(n).cloned().collect(),
                    schema: schema.clone(),
                }) as Arc<dyn PartitionStream>
            })
            .collect()
    }
}

/// Decodes one Parquet file into batches of `schema`.
fn decode(
    bytes: impl parquet::file::reader::ChunkReader + 'static,
    schema: &SchemaRef,
    path: &Path,
) -> Result<Vec<RecordBatch>, DataFusionError> {
    let named = |e: parquet::errors::ParquetError| {
        DataFusionError::External(format!("reading {path}: {e}").into())
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(named)?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(named)?;
    reader
        .map(|b| conform(&b?, schema))
        .collect::<Result<Vec<_>, _>>()
}

impl PartitionStream for ParquetFiles {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let store = self.store.clone();
        let schema = self.schema.clone();
        // Up to FETCH_AHEAD files in flight, decoded in order: a store's latency per object is paid
        // once per window, not once per file.
        let stream = futures::stream::iter(self.files.clone())
            .map(move |path| {
                let (store, schema) = (store.clone(), schema.clone());
                async move {
                    let bytes = store
                        .get(&path)
                        .await
                        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
                        .bytes()
                        .await
                        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
                    decode(bytes, &schema, &path)
                }
            })
            .buffered(FETCH_AHEAD)
            .map_ok(|batches| futures::stream::iter(batches.into_iter().map(Ok)))
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn change_file_names_parse_as_the_layout_writes_them() {
        let root = layout::root(&Path::from("lake"), "ns");
        let path = layout::data_file(&root, TopicKind::Listings, "region=11620", 3, 100, 199);
        assert_eq!(
            path.filename().and_then(parse_data_file),
            Some((3, 100, 199))
        );
        for name in [
            "part-3-100.parquet",
            "part-a-1-2.parquet",
            "x-1-2-3.parquet",
            "part-1-2-3.json",
        ] {
            assert_eq!(parse_data_file(name), None, "{name}");
        }
    }

    #[test]
    fn a_batch_is_conformed_to_the_table_by_name() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("listing_id", DataType::Utf8, true),
            Field::new("deposit", DataType::Int64, true),
            Field::new("added_later", DataType::Float64, true),
        ]));
        let old = RecordBatch::try_from_iter(vec![
            (
                "deposit",
                Arc::new(Int32Array::from(vec![500, 1000])) as ArrayRef,
            ),
            (
                "dropped",
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            ),
            (
                "listing_id",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ])
        .expect("a batch");
        let b = conform(&old, &schema).expect("conformed");
        assert_eq!(b.schema(), schema);
        assert_eq!(
            b.column(1).data_type(),
            &DataType::Int64,
            "cast to the table's type"
        );
        assert_eq!(
            b.column(2).null_count(),
            2,
            "a column the file lacks reads as NULL"
        );
        assert_eq!(listing_schema().fields().len(), table::COLUMNS.len());
    }
}
