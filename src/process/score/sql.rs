//! DataFusion at the centre of scoring: `score_input` is a table whose rows are swapped in before each
//! run, so `queries/score.sql` is parsed, planned and optimized **once** per process and the same
//! physical plan executes every micro-batch and every full recompute (docs/prior-art.md §2a: planning
//! per Kafka poll costs milliseconds; a fresh session per query more).
//!
//! The table is a [`StreamingTable`] over one [`PartitionStream`] that hands out whatever batches the
//! [`Slot`] holds when the plan executes. One partition, no repartitioning: the plan is a chain of
//! projections, cheap to run again.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, collect};
use datafusion::prelude::{SessionConfig, SessionContext};

/// The built-in score query (`queries/score.sql`).
pub const SCORE_SQL: &str = include_str!("../../../queries/score.sql");
/// The built-in group aggregates query (`queries/group_stats.sql`).
pub const GROUP_STATS_SQL: &str = include_str!("../../../queries/group_stats.sql");

/// Rows per Arrow batch handed to the plan.
pub const BATCH_ROWS: usize = 8192;

/// Errors of the score query.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// DataFusion refused or failed the query.
    #[error("score query {file}: {source}")]
    DataFusion {
        /// Which query.
        file: String,
        /// Why.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// The query's output lacks a column the scorer needs.
    #[error("score query {file}: output column `{column}) missing or of another type")]
    Output {
        /// Which query.
        file: String,
        /// The column.
        column: String,
    },
    /// The query's output does not match its input: one row per input row, in order, with values
    /// where the scorer needs them.
    #[error("score query {file}: {problem}")]
    Rows {
        /// Which query.
        file: String,
        /// What is wrong.
        problem: String,
    },
    /// The query file could not be read.
    #[error("reading {file}: {source}")]
    Read {
        /// Which file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One `score_input` row.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    /// Canonical id.
    pub listing_id: String,
    /// 시군구 code.
    pub gu: String,
    /// 법정동 key ('' unknown).
    pub dong: String,
    /// Monthly cost.
    pub monthly_cost: f64,
    /// Per m².
    pub cost_m2: Option<f64>,
    /// The model's monthly cost.
    pub fair_cost: Option<f64>,
    /// Floor kind.
    pub floor_kind: &'static str,
    /// Storey.
    pub floor_level: Option<i32>,
    /// S … N.
    pub direction: Option<String>,
    /// Metres.
    pub subway_m: Option<i32>,
    /// Metres.
    pub store_m: Option<i32>,
    /// verified / unverified / unknown.
    pub broker_status: String,
    /// Age band.
    pub age_band: i32,
    /// Photo reuse (capped).
    pub photo_reuse: i32,
}

/// One output row of `score.sql`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRow {
    /// Canonical id.
    pub listing_id: String,
    /// The components.
    pub components: super::Components,
    /// Weighted total.
    pub total: f64,
    /// Bait risk 0–100.
    pub bait_risk: f64,
    /// Asking / fair (None before the model is fitted).
    pub price_ratio: Option<f64>,
    /// Evidence flags: price, photos, broker, stale.
    pub evidence: [bool; 4],
}

/// The input schema.
pub fn input_schema() -> SchemaRef {
    let f = |n: &str, t: DataType, null: bool| Field::new(n, t, null);
    Arc::new(Schema::new(vec![
        f("listing_id", DataType::Utf8, false),
        f("gu", DataType::Utf8, false),
        f("dong", DataType::Utf8, false),
        f("monthly_cost", DataType::Float64, false),
        f("cost_m2", DataType::Float64, true),
        f("fair_cost", DataType::Float64, true),
        f("floor_kind", DataType::Utf8, false),
        f("floor_level", DataType::Int32, true),
        f("direction", DataType::Utf8, true),
        f("subway_m", DataType::Int32, true),
        f("store_m", DataType::Int32, true),
        f("broker_status", DataType::Utf8, false),
        f("age_band", DataType::Int32, false),
        f("photo_reuse", DataType::Int32, false),
    ]))
}

/// Arrow batches of input rows.
pub fn to_batches(rows: &[InputRow]) -> Vec<RecordBatch> {
    let schema = input_schema();
    rows.chunks(BATCH_ROWS)
        .map(|c| {
            let s = |g: &dyn Fn(&InputRow) -> &str| -> ArrayRef {
                Arc::new(StringArray::from_iter_values(c.iter().map(g)))
            };
            let cols: Vec<ArrayRef> = vec![
                s(&|r| &r.listing_id),
                s(&|r| &r.gu),
                s(&|r| &r.dong),
                Arc::new(Float64Array::from_iter_values(
                    c.iter().map(|r| r.monthly_cost),
                )),
                Arc::new(Float64Array::from_iter(c.iter().map(|r| r.cost_m2))),
                Arc::new(Float64Array::from_iter(c.iter().map(|r| r.fair_cost))),
                s(&|r| r.floor_kind),
                Arc::new(Int32Array::from_iter(c.iter().map(|r| r.floor_level))),
                Arc::new(StringArray::from_iter(
                    c.iter().map(|r| r.direction.as_deref()),
                )),
                Arc::new(Int32Array::from_iter(c.iter().map(|r| r.subway_m))),
                Arc::new(Int32Array::from_iter(c.iter().map(|r| r.store_m))),
                s(&|r| &r.broker_status),
                Arc::new(Int32Array::from_iter_values(c.iter().map(|r| r.age_band))),
                Arc::new(Int32Array::from_iter_values(
                    c.iter().map(|r| r.photo_reuse),
                )),
            ];
            RecordBatch::try_new(schema.clone(), cols).expect("columns match the schema")
        })
        .collect()
}

/// The columns `score.sql` must return, with their types.
const SCORE_OUTPUT: [(&str, &DataType); 15] = [
    ("listing_id", &DataType::Utf8),
    ("cost", &DataType::Float64),
    ("value", &DataType::Float64),
    ("facilities", &DataType::Float64),
    ("floor", &DataType::Float64),
    ("direction", &DataType::Float64),
    ("broker", &DataType::Float64),
    ("freshness", &DataType::Float64),
    ("total", &DataType::Float64),
    ("bait_risk", &DataType::Float64),
    ("price_ratio", &DataType::Float64),
    ("ev_price", &DataType::Boolean),
    ("ev_photos", &DataType::Boolean),
    ("ev_broker", &DataType::Boolean),
    ("ev_stale", &DataType::Boolean),
];

/// Where the rows of the next run wait.
#[derive(Debug, Default)]
pub struct Slot(Mutex<Vec<RecordBatch>>);

#[derive(Debug)]
struct SlotStream {
    schema: SchemaRef,
    slot: Arc<Slot>,
}

impl PartitionStream for SlotStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let batches = self
            .slot
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ))
    }
}

/// A query over `score_input`, planned once.
pub struct Query {
    name: String,
    ctx: SessionContext,
    plan: Arc<dyn ExecutionPlan>,
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Query").field("name", &self.name).finish()
    }
}

impl Query {
    /// Parses and plans `sql` (called `name` in errors) against `score_input`.
    pub fn plan(name: &str, sql: &str) -> Result<Query, SqlError> {
        let err = |source| SqlError::DataFusion {
            file: name.to_string(),
            source,
        };
        let config = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(BATCH_ROWS);
        let ctx = SessionContext::new_with_config(config);
        let slot = Arc::new(Slot::default());
        let schema = input_schema();
        let table = StreamingTable::try_new(
            schema.clone(),
            vec![Arc::new(SlotStream {
                schema,
                slot: slot.clone(),
            })],
        )
        .map_err(err)?;
        ctx.register_table("score_input", Arc::new(table))
            .map_err(err)?;
        let plan = block_on(async {
            let df = ctx.sql(sql).await?;
            df.create_physical_plan().await
        })
        .map_err(err)?;
        Ok(Query {
            name: name.to_string(),
            ctx,
            plan,
            slot,
        })
    }

    /// Plans `score.sql` and checks, before any row is scored, that its output has every column the
    /// scorer reads, with its type.
    pub fn plan_score(name: &str, sql: &str) -> Result<Query, SqlError> {
        let q = Query::plan(name, sql)?;
        let schema = q.plan.schema();
        for (column, want) in SCORE_OUTPUT {
            let ok = schema
                .field_with_name(column)
                .is_ok_and(|f| f.data_type() == want);
            if !ok {
                return Err(SqlError::Output {
                    file: name.to_string(),
                    column: format!("{column}` ({want}"),
                });
            }
        }
        Ok(q)
    }

    /// Runs the plan over `rows`.
    pub fn run(&self, rows: &[InputRow]) -> Result<Vec<RecordBatch>, SqlError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        *self
            .slot
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = to_batches(rows);
        let out = block_on(collect(self.plan.clone(), self.ctx.task_ctx())).map_err(|source| {
            SqlError::DataFusion {
                file: self.name.clone(),
                source,
            }
        });
        self.slot
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        out
    }

    /// Runs `score.sql` and reads its output: exactly one row per input row, in input order (the
    /// query is a projection; a query that filters, reorders or leaves a required value NULL is an
    /// error naming its file, never a silently unpublished listing).
    pub fn score(&self, rows: &[InputRow]) -> Result<Vec<OutputRow>, SqlError> {
        let batches = self.run(rows)?;
        let problem = |problem: String| SqlError::Rows {
            file: self.name.clone(),
            problem,
        };
        let mut out = Vec::with_capacity(rows.len());
        for b in &batches {
            let missing = |c: &str| SqlError::Output {
                file: self.name.clone(),
                column: format!("{c}`"),
            };
            let f64s = |c: &str| {
                b.column_by_name(c)
                    .and_then(|a| a.as_any().downcast_ref::<Float64Array>())
                    .ok_or_else(|| missing(c))
            };
            let bools = |c: &str| {
                b.column_by_name(c)
                    .and_then(|a| a.as_any().downcast_ref::<BooleanArray>())
                    .ok_or_else(|| missing(c))
            };
            let ids = b
                .column_by_name("listing_id")
                .and_then(|a| a.as_any().downcast_ref::<StringArray>())
                .ok_or_else(|| missing("listing_id"))?;
            let (cost, value, facilities, floor, direction, broker, freshness, total, bait, ratio) = (
                f64s("cost")?,
                f64s("value")?,
                f64s("facilities")?,
                f64s("floor")?,
                f64s("direction")?,
                f64s("broker")?,
                f64s("freshness")?,
                f64s("total")?,
                f64s("bait_risk")?,
                f64s("price_ratio")?,
            );
            let ev = [
                bools("ev_price")?,
                bools("ev_photos")?,
                bools("ev_broker")?,
                bools("ev_stale")?,
            ];
            let opt = |a: &Float64Array, i: usize| (!a.is_null(i)).then(|| a.value(i));
            for i in 0..b.num_rows() {
                let id = ids.value(i);
                let required = |a: &Float64Array, c: &str| {
                    opt(a, i).ok_or_else(|| problem(format!("`{c}` is NULL for listing {id}")))
                };
                let expected = rows.get(out.len()).map(|r| r.listing_id.as_str());
                if expected != Some(id) {
                    return Err(problem(format!(
                        "output row {} is listing {id}, input row {} was {:?}: return one row per input row, in input order",
                        out.len(),
                        out.len(),
                        expected
                    )));
                }
                out.push(OutputRow {
                    listing_id: id.to_string(),
                    components: super::Components {
                        cost: required(cost, "cost")?,
                        value: opt(value, i),
                        facilities: opt(facilities, i),
                        floor: opt(floor, i),
                        direction: opt(direction, i),
                        broker: opt(broker, i),
                        freshness: required(freshness, "freshness")?,
                    },
                    total: required(total, "total")?,
                    bait_risk: required(bait, "bait_risk")?,
                    price_ratio: opt(ratio, i),
                    evidence: ev.map(|a| !a.is_null(i) && a.value(i)),
                });
            }
        }
        if out.len() != rows.len() {
            return Err(problem(format!(
                "{} output rows for {} input rows: return one row per input row",
                out.len(),
                rows.len()
            )));
        }
        Ok(out)
    }
}

use datafusion::arrow::array::Array;

/// Runs a DataFusion future to completion on this thread. The plans here are single-partition
/// projections and aggregations: nothing in them spawns tasks or waits on I/O. `unconstrained`: when
/// the caller is itself a tokio task, DataFusion's streams would otherwise spend the task's
/// cooperative budget and then wait, forever, for a scheduler that this executor never returns to.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(tokio::task::unconstrained(f))
}

/// Loads a query: from `dir/<file>` when a folder is configured, else the built-in copy.
pub fn load(dir: &str, file: &str, builtin: &str) -> Result<(String, String), SqlError> {
    if dir.is_empty() {
        return Ok((format!("queries/{file}"), builtin.to_string()));
    }
    let path = std::path::Path::new(dir).join(file);
    let sql = std::fs::read_to_string(&path).map_err(|source| SqlError::Read {
        file: path.display().to_string(),
        source,
    })?;
    Ok((path.display().to_string(), sql))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn input(id: &str, cost: f64) -> InputRow {
        InputRow {
            listing_id: id.into(),
            gu: "11620".into(),
            dong: "1162010100".into(),
            monthly_cost: cost,
            cost_m2: Some(cost / 20.0),
            fair_cost: Some(60.0),
            floor_kind: "level",
            floor_level: Some(3),
            direction: Some("S".into()),
            subway_m: Some(250),
            store_m: None,
            broker_status: "verified".into(),
            age_band: 0,
            photo_reuse: 0,
        }
    }

    #[test]
    fn one_plan_scores_batch_after_batch() {
        let q = Query::plan_score("score.sql", SCORE_SQL).expect("plans");
        let a = q.score(&[input("a", 60.0)]).expect("runs");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].components.cost, 50.0, "at 60만원");
        assert_eq!(a[0].components.value, Some(50.0), "at the fair cost");
        assert_eq!(
            a[0].components.facilities,
            Some(100.0),
            "subway 250 m; store unknown, not zero"
        );
        let rows: Vec<InputRow> = (0..20_000)
            .map(|i| input(&format!("L{i}"), 30.0 + f64::from(i % 60)))
            .collect();
        let b = q.score(&rows).expect("runs again");
        assert_eq!(b.len(), 20_000);
        assert_eq!(b[30].listing_id, "L30");
        assert_eq!(
            b[30],
            q.score(&rows[30..31]).expect("runs")[0],
            "a row scores the same alone or in a batch"
        );
        let cheap = q
            .score(&[InputRow {
                photo_reuse: 2,
                broker_status: "unverified".into(),
                ..input("x", 25.0)
            }])
            .expect("runs");
        assert!(
            cheap[0].bait_risk >= 50.0 && cheap[0].evidence == [true, true, true, false],
            "{cheap:?}"
        );
    }

    #[test]
    fn a_bad_query_fails_naming_its_file() {
        let e =
            Query::plan_score("broken.sql", "SELECT nope FROM score_input").expect_err("refused");
        assert!(e.to_string().contains("broken.sql"), "{e}");
        let e = Query::plan_score("short.sql", &SCORE_SQL.replace(",\n  ev_stale\n", "\n"))
            .expect_err("a missing output column is refused at plan time");
        assert!(e.to_string().contains("ev_stale"), "{e}");
        let filtered = format!("SELECT * FROM ({}) WHERE listing_id <> 'b'", SCORE_SQL);
        let q = Query::plan_score("filtered.sql", &filtered).expect("plans");
        let e = q
            .score(&[input("a", 60.0), input("b", 20.0)])
            .expect_err("a filtered row is an error, not a lost listing");
        assert!(e.to_string().contains("filtered.sql"), "{e}");
    }
}
