//! Rows of [`Value`]s to Parquet bytes and back. Files are deterministic — the same rows give the same
//! bytes (fixed writer settings, no timestamps inside) — so a replay that rewrites an object writes
//! exactly what was there.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, BooleanArray, BooleanBuilder, Float64Array,
    Float64Builder, Int64Array, Int64Builder, RecordBatch, StringArray, StringBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::sink::SinkError;
use crate::sink::table::{Ty, Value, arrow_schema as schema};

fn wrong(name: &str, v: &Value) -> SinkError {
    SinkError::Other(format!("column {name}: value {v:?} of the wrong type"))
}

/// Encodes rows (each in `columns` order) as one Parquet file (Snappy, one row group per 65,536 rows).
pub fn encode(columns: &[(&str, Ty, bool)], rows: &[Vec<Value>]) -> Result<Vec<u8>, SinkError> {
    let schema = schema(columns);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, (name, ty, _)) in columns.iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null));
        let array: ArrayRef = match ty {
            Ty::Text => {
                let mut b = StringBuilder::new();
                for v in cells {
                    match v {
                        Value::Text(s) => b.append_value(s),
                        Value::Null => b.append_null(),
                        other => return Err(wrong(name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Int => {
                let mut b = Int64Builder::new();
                for v in cells {
                    match v {
                        Value::Int(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(wrong(name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Float => {
                let mut b = Float64Builder::new();
                for v in cells {
                    match v {
                        Value::Float(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(wrong(name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Bool => {
                let mut b = BooleanBuilder::new();
                for v in cells {
                    match v {
                        Value::Bool(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(wrong(name, other)),
                    }
                }
                Arc::new(b.finish())
            }
            Ty::Bytes => {
                let mut b = BinaryBuilder::new();
                for v in cells {
                    match v {
                        Value::Bytes(x) => b.append_value(x),
                        Value::Null => b.append_null(),
                        other => return Err(wrong(name, other)),
                    }
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by("roomstream".into())
        .set_max_row_group_row_count(Some(65_536))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    w.write(&batch)?;
    w.close()?;
    Ok(out)
}

/// Decodes `columns` of a file written by [`encode`] (matched by name; a missing column reads as NULL,
/// so files written before a column was added still read). Only those columns are read: a prefix of
/// the table's columns decodes just that.
pub fn decode(
    columns: &[(&str, Ty, bool)],
    bytes: impl parquet::file::reader::ChunkReader + 'static,
) -> Result<Vec<Vec<Value>>, SinkError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let wanted: Vec<usize> = builder
        .schema()
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| columns.iter().any(|(name, _, _)| f.name() == name))
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), wanted);
    let reader = builder.with_projection(mask).build()?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let cols: Vec<Option<&ArrayRef>> = columns
            .iter()
            .map(|(name, _, _)| batch.column_by_name(name))
            .collect();
        for i in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(columns.len());
            for (c, (_, ty, _)) in cols.iter().zip(columns) {
                row.push(match c {
                    Some(a) if !a.is_null(i) => cell(a, *ty, i),
                    _ => Value::Null,
                });
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

fn cell(a: &ArrayRef, ty: Ty, i: usize) -> Value {
    let any = a.as_any();
    match ty {
        Ty::Text => any
            .downcast_ref::<StringArray>()
            .map_or(Value::Null, |x| Value::Text(x.value(i).to_string())),
        Ty::Int => any
            .downcast_ref::<Int64Array>()
            .map_or(Value::Null, |x| Value::Int(x.value(i))),
        Ty::Float => any
            .downcast_ref::<Float64Array>()
            .map_or(Value::Null, |x| Value::Float(x.value(i))),
        Ty::Bool => any
            .downcast_ref::<BooleanArray>()
            .map_or(Value::Null, |x| Value::Bool(x.value(i))),
        Ty::Bytes => any
            .downcast_ref::<BinaryArray>()
            .map_or(Value::Null, |x| Value::Bytes(x.value(i).to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[(&str, Ty, bool)] = &[
        ("id", Ty::Text, true),
        ("n", Ty::Int, false),
        ("x", Ty::Float, false),
        ("ok", Ty::Bool, false),
        ("raw", Ty::Bytes, false),
    ];

    #[test]
    fn round_trips_and_is_deterministic() -> Result<(), SinkError> {
        let rows = vec![
            vec![
                Value::Text("a".into()),
                Value::Int(3),
                Value::Float(1.5),
                Value::Bool(true),
                Value::Bytes(vec![0xff, 0, 1]),
            ],
            vec![
                Value::Text("b".into()),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ];
        let a = encode(COLS, &rows)?;
        let b = encode(COLS, &rows)?;
        assert_eq!(a, b, "the same rows give the same bytes");
        let back = decode(COLS, bytes_of(a))?;
        assert_eq!(back, rows);
        assert!(
            encode(COLS, &[vec![Value::Int(1)]]).is_err(),
            "a wrong type is an error"
        );
        Ok(())
    }

    fn bytes_of(v: Vec<u8>) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        std::io::Write::write_all(&mut f, &v).unwrap_or_else(|e| panic!("{e}"));
        f
    }
}
