//! A query's answer as text: an aligned table for people (arrow's pretty printer), CSV with a header
//! or a JSON array of objects for programs (arrow's writers). Strings are UTF-8 as stored (Korean
//! names included); NULL is an empty cell in the table and CSV and `null` in JSON; timestamps are
//! RFC 3339 with their offset.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json;
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;

/// How `roomstream query` prints its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table with a header.
    #[default]
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
}

/// Writes the rows of `batches` (all of `schema`) to `out` in `format`; an empty answer is still a
/// header (table, CSV) or `[]` (JSON).
pub fn write(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    mut out: impl Write,
) -> Result<(), ArrowError> {
    match format {
        Format::Table => {
            let table = pretty_format_batches_with_schema(schema.clone(), batches)?;
            writeln!(out, "{table}")?;
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
            if batches.is_empty() {
                w.write(&RecordBatch::new_empty(schema.clone()))?;
            }
            for b in batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, json::writer::JsonArray>(&mut out);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// [`write`] into a string.
pub fn to_string(
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<String, ArrowError> {
    let mut buf = Vec::new();
    write(format, schema, batches, &mut buf)?;
    String::from_utf8(buf).map_err(|e| ArrowError::ExternalError(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn answer() -> (SchemaRef, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("district", DataType::Utf8, true),
            Field::new("property_count", DataType::Int64, true),
            Field::new("share", DataType::Float64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("관악구"),
                Some("a, \"b\""),
                None,
            ])),
            Arc::new(Int64Array::from(vec![Some(12), None, Some(3)])),
            Arc::new(Float64Array::from(vec![Some(0.5), Some(0.25), None])),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("a batch");
        (schema, vec![batch])
    }

    #[test]
    fn csv_has_a_header_quotes_and_empty_nulls() {
        let (schema, batches) = answer();
        let text = to_string(Format::Csv, &schema, &batches).expect("csv");
        assert_eq!(
            text,
            "district,property_count,share\n관악구,12,0.5\n\"a, \"\"b\"\"\",,0.25\n,3,\n"
        );
        let empty = to_string(Format::Csv, &schema, &[]).expect("csv");
        assert_eq!(
            empty, "district,property_count,share\n",
            "an empty answer keeps its header"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_with_explicit_nulls() {
        let (schema, batches) = answer();
        let text = to_string(Format::Json, &schema, &batches).expect("json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            v,
            serde_json::json!([
                {"district": "관악구", "property_count": 12, "share": 0.5},
                {"district": "a, \"b\"", "property_count": null, "share": 0.25},
                {"district": null, "property_count": 3, "share": null},
            ])
        );
        assert_eq!(
            to_string(Format::Json, &schema, &[]).expect("json").trim(),
            "[]"
        );
    }

    #[test]
    fn a_table_is_aligned_with_its_header_even_when_empty() {
        let (schema, batches) = answer();
        let text = to_string(Format::Table, &schema, &batches).expect("table");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains("district") && lines[1].contains("share"),
            "{text}"
        );
        assert!(lines.iter().any(|l| l.contains("| 관악구")), "{text}");
        assert_eq!(
            lines.len(),
            7,
            "border, header, border, three rows, border: {text}"
        );
        let empty = to_string(Format::Table, &schema, &[]).expect("table");
        assert!(empty.contains("property_count"), "{empty}");
    }
}
