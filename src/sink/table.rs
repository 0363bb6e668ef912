//! The flat "listing change" table shared by the analytics stores: the columns of the Parquet change
//! files and snapshots on S3 and of the Redshift staging/analytics tables, declared once so that the
//! three cannot drift apart (Redshift's `COPY … FORMAT AS PARQUET` maps columns by position).
//!
//! A row is a version of a listing: `live = false` for a deletion, whose other columns are NULL but
//! for the key, the version and (when known) the region.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::change::{self, Change};

/// The Arrow schema of a column list (of the Parquet files; every column nullable, as the sink writes
/// them: a deletion has NULL in all but its key, version and region).
pub fn arrow_schema(columns: &[(&str, Ty, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, ty, _)| {
                let t = match ty {
                    Ty::Text => DataType::Utf8,
                    Ty::Int => DataType::Int64,
                    Ty::Float => DataType::Float64,
                    Ty::Bool => DataType::Boolean,
                    Ty::Bytes => DataType::Binary,
                };
                Field::new(*name, t, true)
            })
            .collect::<Vec<_>>(),
    ))
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// UTF-8 text.
    Text,
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// Boolean.
    Bool,
    /// Raw bytes (archived payloads, kept verbatim).
    Bytes,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Boolean.
    Bool(bool),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Value::Null, Value::Float)
    }
}

/// The columns: name, type, and whether a live row always has a value.
pub const COLUMNS: &[(&str, Ty, bool)] = &[
    ("listing_id", Ty::Text, true),
    ("live", Ty::Bool, true),
    ("version_clock", Ty::Int, false),
    ("source_partition", Ty::Int, true),
    ("source_offset", Ty::Int, true),
    ("region_code", Ty::Text, false),
    ("gu", Ty::Text, false),
    ("dong", Ty::Text, false),
    ("bjd_code", Ty::Text, false),
    ("lease", Ty::Text, false),
    ("deposit", Ty::Int, false),
    ("rent", Ty::Int, false),
    ("fee", Ty::Float, false),
    ("rent_with_fee", Ty::Float, false),
    ("monthly_cost", Ty::Float, false),
    ("area_m2", Ty::Float, false),
    ("area_pyeong", Ty::Float, false),
    ("floor_kind", Ty::Text, false),
    ("floor_level", Ty::Int, false),
    ("floor_band", Ty::Text, false),
    ("building_floors", Ty::Int, false),
    ("layout", Ty::Text, false),
    ("building", Ty::Text, false),
    ("direction", Ty::Text, false),
    ("lat", Ty::Float, false),
    ("lng", Ty::Float, false),
    ("facility_mask", Ty::Int, false),
    ("subway_m", Ty::Int, false),
    ("convenience_store_m", Ty::Int, false),
    ("cafe_m", Ty::Int, false),
    ("mart_m", Ty::Int, false),
    ("restaurant_m", Ty::Int, false),
    ("hospital_m", Ty::Int, false),
    ("platforms", Ty::Text, false),
    ("members", Ty::Int, false),
    ("title", Ty::Text, false),
    ("first_seen", Ty::Int, false),
    ("broker_status", Ty::Text, false),
    ("broker_registration", Ty::Text, false),
    ("broker_person", Ty::Text, false),
    ("broker_office", Ty::Text, false),
    ("score_total", Ty::Float, false),
    ("score_cost", Ty::Float, false),
    ("score_value", Ty::Float, false),
    ("score_facilities", Ty::Float, false),
    ("score_floor", Ty::Float, false),
    ("score_direction", Ty::Float, false),
    ("score_broker", Ty::Float, false),
    ("score_freshness", Ty::Float, false),
    ("bait_risk", Ty::Float, false),
    ("bait_warning", Ty::Bool, false),
    ("value_sha256", Ty::Text, false),
];

/// Index of a column by name.
pub fn index(name: &str) -> Option<usize> {
    COLUMNS.iter().position(|(n, _, _)| *n == name)
}

/// The comma-separated column names.
pub fn names() -> String {
    COLUMNS
        .iter()
        .map(|(n, _, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A change as a row of [`COLUMNS`].
pub fn row(c: &Change) -> Vec<Value> {
    let head = [
        Value::Text(c.listing_id.clone()),
        Value::Bool(c.row.is_some()),
        c.clock.into(),
        Value::Int(i64::from(c.partition)),
        Value::Int(c.offset),
        c.region.clone().into(),
    ];
    let Some(r) = c.row.as_deref() else {
        let mut v = head.to_vec();
        v.resize(COLUMNS.len(), Value::Null);
        return v;
    };
    let mut v = head.to_vec();
    v.extend([
        r.gu.clone().into(),
        r.dong.clone().into(),
        r.bjd_code.clone().into(),
        Value::Text(r.lease.clone()),
        Value::Int(r.deposit),
        Value::Int(r.rent),
        r.fee.into(),
        Value::Float(r.rent_with_fee),
        r.monthly_cost.into(),
        r.area_m2.into(),
        r.area_pyeong.into(),
        Value::Text(r.floor_kind.clone()),
        r.floor_level.into(),
        r.floor_band.clone().into(),
        r.building_floors.into(),
        Value::Text(r.layout.clone()),
        Value::Text(r.building.clone()),
        r.direction.clone().into(),
        r.lat.into(),
        r.lng.into(),
        Value::Int(r.facility_mask()),
    ]);
    for f in change::FACILITIES {
        v.push(r.facility(f).into());
    }
    v.extend([
        Value::Text(r.platforms.join(",")),
        Value::Int(r.members.len() as i64),
        Value::Text(r.title.clone()),
        Value::Int(r.first_seen),
        Value::Text(r.broker_status.clone()),
        r.broker_registration.clone().into(),
        r.broker_person.clone().into(),
        r.broker_office.clone().into(),
        Value::Float(r.score_total),
    ]);
    for comp in r.components {
        v.push(comp.into());
    }
    v.extend([
        Value::Float(r.bait_risk),
        Value::Bool(r.bait_warning),
        Value::Text(r.value_sha256.clone()),
    ]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_the_columns() {
        let t = Change {
            listing_id: "L1".into(),
            partition: 2,
            offset: 9,
            clock: Some(4),
            region: None,
            row: None,
        };
        let r = row(&t);
        assert_eq!(r.len(), COLUMNS.len());
        assert_eq!(r[1], Value::Bool(false));
        assert_eq!(r[index("region_code").unwrap_or(0)], Value::Null);
        for (i, (name, ty, _)) in COLUMNS.iter().enumerate() {
            assert!(
                matches!(
                    (&r[i], ty),
                    (Value::Null, _)
                        | (Value::Text(_), Ty::Text)
                        | (Value::Int(_), Ty::Int)
                        | (Value::Bool(_), Ty::Bool)
                ),
                "{name}"
            );
        }
    }
}
