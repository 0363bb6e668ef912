//! The SQL of the staging load and `MERGE`, in two dialects: PostgreSQL 15 (run here, against the real
//! server, by [`super::RedshiftSink`]) and Amazon Redshift (generated for production; **not run
//! against a live Redshift here** — its text is unit-tested below and shown by
//! `roomstream sink redshift --print-sql`).
//!
//! Redshift differs where it matters: it does not enforce keys (so duplicates must go before the
//! MERGE — both dialects deduplicate in the MERGE's source), its `MERGE` takes a single unconditioned
//! `WHEN MATCHED` clause (so the version guard is a join in the source, which also works on
//! PostgreSQL, so the two share it), it has no `INSERT … ON CONFLICT` (progress is a MERGE too), its
//! `TEXT` is `VARCHAR(256)`, and its staging table is loaded with `COPY … FORMAT AS PARQUET` from the
//! batch's Parquet file on S3 instead of bound INSERTs.

use crate::sink::table::{self, COLUMNS, Ty};

/// Which SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL 15+ (MERGE).
    Postgres,
    /// Amazon Redshift.
    Redshift,
}

fn sql_type(d: Dialect, ty: Ty) -> &'static str {
    match (d, ty) {
        (Dialect::Postgres, Ty::Text) => "TEXT",
        (Dialect::Redshift, Ty::Text) => "VARCHAR(4096)",
        (_, Ty::Int) => "BIGINT",
        (_, Ty::Float) => "DOUBLE PRECISION",
        (_, Ty::Bool) => "BOOLEAN",
        (Dialect::Postgres, Ty::Bytes) => "BYTEA",
        (Dialect::Redshift, Ty::Bytes) => "VARBYTE(1024000)",
    }
}

/// The analytics table (every listing's newest version; a deletion kept as a row with `live = false`,
/// its version and region, so a replayed older version cannot bring it back) and the progress table.
pub fn create_tables(d: Dialect, schema: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| {
            let not_null = matches!(
                *name,
                "listing_id" | "live" | "version_clock" | "source_partition" | "source_offset"
            );
            format!(
                "  {name} {}{}",
                sql_type(d, *ty),
                if not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    let (key, tail) = match d {
        Dialect::Postgres => ("  PRIMARY KEY (listing_id)", ""),
        // Declared, not enforced: Redshift uses it for planning only.
        Dialect::Redshift => (
            "  PRIMARY KEY (listing_id)",
            " DISTKEY (listing_id) SORTKEY (region_code, listing_id)",
        ),
    };
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};\n\
         CREATE TABLE IF NOT EXISTS {schema}.listings (\n{},\n{key}\n){tail};\n\
         CREATE TABLE IF NOT EXISTS {schema}.sink_progress (\n  sink VARCHAR(16) NOT NULL,\n  topic VARCHAR(200) NOT NULL,\n  \
         partition_id INTEGER NOT NULL,\n  next_offset BIGINT NOT NULL,\n  committed_at TIMESTAMP NOT NULL,\n  \
         PRIMARY KEY (sink, topic, partition_id)\n);\n",
        cols.join(",\n")
    )
}

/// A session-local staging table with the analytics table's columns, all nullable (a tombstone without
/// a clock has none yet).
pub fn create_staging(d: Dialect) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("{name} {}", sql_type(d, *ty)))
        .collect();
    let tail = match d {
        Dialect::Postgres => " ON COMMIT DROP",
        Dialect::Redshift => "",
    };
    format!(
        "CREATE TEMP TABLE listings_stage ({}){tail}",
        cols.join(", ")
    )
}

/// Redshift: load the staging table from the batch's Parquet file (written by the S3 sink's format).
pub fn copy_staging(s3_uri: &str, iam_role: &str) -> String {
    format!(
        "COPY listings_stage FROM '{}' IAM_ROLE '{}' FORMAT AS PARQUET;",
        s3_uri.replace('\'', "''"),
        iam_role.replace('\'', "''")
    )
}

/// The MERGE's source, as a table (Redshift merges from a table only): the newest staged version per
/// listing — clock, then offset; a tombstone without a clock takes the stored one — kept only if it is
/// newer than the stored version. Redshift enforces no keys, so this is also where duplicates go.
pub fn newest(d: Dialect, schema: &str) -> String {
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(n, _, _)| match *n {
            "version_clock" => {
                "COALESCE(st.version_clock, cur.version_clock, 0) AS version_clock".to_string()
            }
            n => format!("st.{n}"),
        })
        .collect();
    let tail = match d {
        Dialect::Postgres => " ON COMMIT DROP",
        Dialect::Redshift => "",
    };
    format!(
        "CREATE TEMP TABLE listings_newest{tail} AS\n\
         SELECT {names}\nFROM (\n  SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY st.listing_id \
         ORDER BY COALESCE(st.version_clock, cur.version_clock, 0) DESC, st.source_offset DESC) AS rn\n  \
         FROM listings_stage st LEFT JOIN {schema}.listings cur ON cur.listing_id = st.listing_id\n  \
         WHERE cur.listing_id IS NULL\n     \
         OR COALESCE(st.version_clock, cur.version_clock) > cur.version_clock\n     \
         OR (COALESCE(st.version_clock, cur.version_clock) = cur.version_clock AND st.source_offset > cur.source_offset)\n\
         ) ranked\nWHERE rn = 1",
        names = table::names(),
        cols = cols.join(", "),
    )
}

/// The MERGE of [`newest`] into the analytics table: every column replaced (Redshift: one
/// unconditioned `WHEN MATCHED`, no target alias). A deletion leaves `live = false`, its version and
/// region, and NULLs: what a deleted row holds must not depend on how the records were cut into
/// batches (the history is in the S3 change files).
pub fn merge(_d: Dialect, schema: &str) -> String {
    let set: Vec<String> = COLUMNS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| *n != "listing_id")
        .map(|c| match c {
            "region_code" => {
                format!("region_code = COALESCE(s.region_code, {schema}.listings.region_code)")
            }
            c => format!("{c} = s.{c}"),
        })
        .collect();
    let values: Vec<String> = COLUMNS.iter().map(|(n, _, _)| format!("s.{n}")).collect();
    format!(
        "MERGE INTO {schema}.listings USING listings_newest s ON {schema}.listings.listing_id = s.listing_id\n\
         WHEN MATCHED THEN UPDATE SET {set}\n\
         WHEN NOT MATCHED THEN INSERT ({all}) VALUES ({values})",
        set = set.join(", "),
        all = table::names(),
        values = values.join(", "),
    )
}

/// Moves a partition's progress; binds `$1` topic, `$2` partition, `$3` next offset (driver
/// placeholders in both dialects; Redshift has no `ON CONFLICT`, so there it is a DELETE and an INSERT).
pub fn progress(d: Dialect, schema: &str, sink: &str) -> String {
    match d {
        Dialect::Postgres => format!(
            "INSERT INTO {schema}.sink_progress (sink, topic, partition_id, next_offset, committed_at) \
             VALUES ('{sink}', $1, $2, $3, clock_timestamp() AT TIME ZONE 'UTC') \
             ON CONFLICT (sink, topic, partition_id) DO UPDATE SET next_offset = EXCLUDED.next_offset, \
             committed_at = EXCLUDED.committed_at"
        ),
        Dialect::Redshift => format!(
            "DELETE FROM {schema}.sink_progress WHERE sink = '{sink}' AND topic = $1 AND partition_id = $2;\n\
             INSERT INTO {schema}.sink_progress (sink, topic, partition_id, next_offset, committed_at) \
             VALUES ('{sink}', $1, $2, $3, GETDATE());"
        ),
    }
}

/// The whole per-batch script of a dialect, as an operator would run it (for `--print-sql`).
pub fn batch_script(d: Dialect, schema: &str, s3_uri: &str, iam_role: &str) -> String {
    let load = match d {
        Dialect::Postgres => {
            "-- (rows are INSERTed into listings_stage with bound parameters)".to_string()
        }
        Dialect::Redshift => copy_staging(s3_uri, iam_role),
    };
    let cleanup = match d {
        Dialect::Postgres => "",
        Dialect::Redshift => "DROP TABLE listings_newest;\nDROP TABLE listings_stage;\n",
    };
    format!(
        "BEGIN;\n-- fence: the stored position must equal the batch's starting position\n\
         SELECT next_offset FROM {schema}.sink_progress WHERE sink = 'redshift' AND topic = $1 AND partition_id = $2 FOR UPDATE;\n\
         {};\n{load}\n{};\n{};\n{}\n{cleanup}COMMIT;\n",
        create_staging(d),
        newest(d, schema),
        merge(d, schema),
        progress(d, schema, "redshift")
            .trim_end_matches(';')
            .to_string()
            + ";",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redshift_ddl_has_no_postgres_only_syntax() {
        let ddl = create_tables(Dialect::Redshift, "rs");
        assert!(ddl.contains("DISTKEY (listing_id) SORTKEY (region_code, listing_id)"));
        assert!(ddl.contains("title VARCHAR(4096)"));
        assert!(
            !ddl.contains(" TEXT"),
            "Redshift TEXT is VARCHAR(256): {ddl}"
        );
        let pg = create_tables(Dialect::Postgres, "rs");
        assert!(pg.contains("title TEXT") && !pg.contains("DISTKEY"));
    }

    #[test]
    fn redshift_loads_staging_from_parquet_and_merges_unconditionally() {
        let copy = copy_staging(
            "s3://bucket/redshift/part-3-0-99.parquet",
            "arn:aws:iam::1:role/r",
        );
        assert_eq!(
            copy,
            "COPY listings_stage FROM 's3://bucket/redshift/part-3-0-99.parquet' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET;"
        );
        let m = merge(Dialect::Redshift, "rs");
        // Redshift's MERGE: a table as its source, no target alias, one unconditioned WHEN MATCHED.
        assert!(m.starts_with("MERGE INTO rs.listings USING listings_newest s ON rs.listings.listing_id = s.listing_id"));
        assert_eq!(m.matches("WHEN MATCHED THEN UPDATE").count(), 1);
        assert!(!m.contains("WHEN MATCHED AND") && !m.contains("USING ("));
        let n = newest(Dialect::Redshift, "rs");
        assert!(n.starts_with("CREATE TEMP TABLE listings_newest AS"));
        assert!(n.contains("ROW_NUMBER() OVER (PARTITION BY st.listing_id"));
        assert!(n.contains("st.source_offset > cur.source_offset"));
        assert!(
            !n.contains("DISTINCT ON") && !n.contains("ON COMMIT DROP"),
            "PostgreSQL-only"
        );
        let p = progress(Dialect::Redshift, "rs", "redshift");
        assert!(p.starts_with("DELETE FROM rs.sink_progress") && !p.contains("ON CONFLICT"));
        let stage = create_staging(Dialect::Redshift);
        assert!(
            stage.contains("version_clock BIGINT,") && !stage.contains("NOT NULL"),
            "{stage}"
        );
        let script = batch_script(Dialect::Redshift, "rs", "s3://b/k.parquet", "arn:r");
        assert!(script.starts_with("BEGIN;") && script.ends_with("COMMIT;\n"));
        assert!(script.contains("DROP TABLE listings_stage;"));
    }

    #[test]
    fn every_column_is_merged() {
        let m = merge(Dialect::Postgres, "rs") + &newest(Dialect::Postgres, "rs");
        for (name, _, _) in COLUMNS {
            assert!(
                m.contains(&format!("s.{name}")),
                "{name} missing from the MERGE"
            );
        }
    }
}
