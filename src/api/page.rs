//! Keyset pagination: results come in a total order (sort key, then listing id), and a page's cursor is
//! the last (key, id) it showed, so the next page starts right after it — no offsets, no duplicates and
//! no gaps while the data stands still, and each page costs the same however deep.
//!
//! A cursor is opaque to clients: base64url of `{"s": sort, "d": descending, "v": key, "id": id}`. One
//! made for another sort or order is refused (400), as is anything that does not decode.

use crate::db::Sql;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::params::Params;

/// Results per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 20;
/// Results per page at most.
pub const MAX_LIMIT: u32 = 100;

/// What the results are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Score, best first.
    Score,
    /// Monthly cost, cheapest first.
    Cost,
    /// First seen, newest first.
    Newest,
    /// 전용면적, largest first.
    Area,
    /// A person's rank score (`/recommendations`), best first.
    Rank,
}

impl Sort {
    /// The `sort` values `/listings` takes.
    pub const LISTING_SORTS: [&'static str; 4] = ["score", "cost", "newest", "area"];

    fn name(self) -> &'static str {
        match self {
            Sort::Score => "score",
            Sort::Cost => "cost",
            Sort::Newest => "newest",
            Sort::Area => "area",
            Sort::Rank => "rank",
        }
    }

    /// The SQL of the key (a column, or the rank expression's alias).
    pub fn key_sql(self) -> &'static str {
        match self {
            Sort::Score => "score_total",
            Sort::Cost => "monthly_cost",
            Sort::Newest => "first_seen",
            Sort::Area => "area_m2",
            Sort::Rank => "rank_score",
        }
    }

    fn nullable(self) -> bool {
        matches!(self, Sort::Cost | Sort::Area)
    }

    fn descending_by_default(self) -> bool {
        !matches!(self, Sort::Cost)
    }
}

/// A position in a sort: the last row shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    s: String,
    d: bool,
    /// The sort key of the last row (null for a row without one).
    v: Option<serde_json::Number>,
    id: String,
}

/// Sort, direction, page size and where to start.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// Order.
    pub sort: Sort,
    /// Descending.
    pub descending: bool,
    /// Rows per page.
    pub limit: u32,
    /// Start after this row.
    pub after: Option<(Option<serde_json::Number>, String)>,
}

impl PageRequest {
    /// Reads `sort` (when `sorts` is not empty; else `fixed`), `order`, `limit` and `cursor`.
    pub fn parse(p: &Params, fixed: Sort, sorts: &[&str]) -> Result<PageRequest, ApiError> {
        let sort = match p.one("sort")? {
            None => fixed,
            Some(v) => match (v, sorts.contains(&v)) {
                ("score", true) => Sort::Score,
                ("cost", true) => Sort::Cost,
                ("newest", true) => Sort::Newest,
                ("area", true) => Sort::Area,
                _ => {
                    return Err(ApiError::invalid(
                        "sort",
                        format!(
                            "`{}` is not one of {}",
                            super::params::truncate(v),
                            sorts.join(", ")
                        ),
                    ));
                }
            },
        };
        let descending = match p.one("order")? {
            None => sort.descending_by_default(),
            Some("desc") => true,
            Some("asc") => false,
            Some(v) => {
                return Err(ApiError::invalid(
                    "order",
                    format!("`{}` is not asc or desc", super::params::truncate(v)),
                ));
            }
        };
        let limit = p
            .number("limit", 1, MAX_LIMIT, "a page size")?
            .unwrap_or(DEFAULT_LIMIT);
        let after = match p.one("cursor")? {
            None => None,
            Some(raw) => {
                let bad = |why: &str| ApiError::invalid("cursor", why.to_string());
                let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| {
                    bad("not a cursor this API made: pass `next_cursor` back as it is")
                })?;
                let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| {
                    bad("not a cursor this API made: pass `next_cursor` back as it is")
                })?;
                if c.s != sort.name() || c.d != descending {
                    return Err(bad(
                        "made for another sort or order: start again without it",
                    ));
                }
                if c.id.is_empty() || c.id.len() > 40 {
                    return Err(bad("not a cursor this API made"));
                }
                if c.v.is_none() && !sort.nullable() {
                    return Err(bad("not a cursor this API made"));
                }
                Some((c.v, c.id))
            }
        };
        Ok(PageRequest {
            sort,
            descending,
            limit,
            after,
        })
    }

    /// Appends ` AND <after the cursor>` (the caller has opened the `WHERE`). NULL keys sort as the
    /// smallest (MySQL's order), so they come last in a descending sort and first in an ascending one.
    pub fn push_after(&self, q: &mut Sql) {
        let Some((v, id)) = &self.after else {
            return;
        };
        let key = self.sort.key_sql();
        let (cmp, id_cmp) = if self.descending {
            ("<", "<")
        } else {
            (">", ">")
        };
        match v {
            Some(v) => {
                q.push(format_args!(" AND ({key} {cmp} "));
                push_number(q, v);
                q.push(format_args!(" OR ({key} = "));
                push_number(q, v);
                q.push(format_args!(" AND listing_id {id_cmp} "))
                    .push_bind(id.clone())
                    .push(")");
                if self.descending && self.sort.nullable() {
                    q.push(format_args!(" OR {key} IS NULL"));
                }
                q.push(")");
            }
            None => {
                q.push(format_args!(
                    " AND (({key} IS NULL AND listing_id {id_cmp} "
                ))
                .push_bind(id.clone())
                .push(")");
                if !self.descending {
                    q.push(format_args!(" OR {key} IS NOT NULL"));
                }
                q.push(")");
            }
        }
    }

    /// ` ORDER BY <key> <dir>, listing_id <dir> LIMIT <limit + 1>` (one more row tells whether there
    /// is a next page).
    pub fn push_order(&self, q: &mut Sql) {
        let dir = if self.descending { "DESC" } else { "ASC" };
        q.push(format_args!(
            " ORDER BY {key} {dir}, listing_id {dir} LIMIT {n}",
            key = self.sort.key_sql(),
            n = self.limit + 1
        ));
    }

    /// The cursor after a row with this key and id.
    pub fn cursor_after(&self, key: Option<serde_json::Number>, id: &str) -> String {
        let c = Cursor {
            s: self.sort.name().into(),
            d: self.descending,
            v: key,
            id: id.into(),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default())
    }
}

/// Binds a JSON number as the integer or double it is.
fn push_number(q: &mut Sql, v: &serde_json::Number) {
    if let Some(i) = v.as_i64() {
        q.push_bind(i);
    } else {
        q.push_bind(v.as_f64().unwrap_or(0.0));
    }
}

/// A JSON number of a float key (None for NaN, which the columns never hold).
pub fn float_key(v: Option<f64>) -> Option<serde_json::Number> {
    v.and_then(serde_json::Number::from_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> Result<PageRequest, ApiError> {
        let p = Params::parse(Some(q), &["sort", "order", "limit", "cursor"])?;
        PageRequest::parse(&p, Sort::Score, &Sort::LISTING_SORTS)
    }

    #[test]
    fn cursors_round_trip_and_refuse_another_sort() {
        let r = req("sort=cost&limit=5").expect("valid");
        assert_eq!((r.sort, r.descending, r.limit), (Sort::Cost, false, 5));
        let c = r.cursor_after(float_key(Some(61.25)), "L00ab");
        let next = req(&format!("sort=cost&limit=5&cursor={c}")).expect("its own cursor");
        assert_eq!(
            next.after,
            Some((float_key(Some(61.25)), "L00ab".to_string()))
        );
        let mut q = Sql::new("SELECT 1 FROM listings WHERE TRUE");
        next.push_after(&mut q);
        next.push_order(&mut q);
        assert_eq!(
            q.sql(),
            "SELECT 1 FROM listings WHERE TRUE AND (monthly_cost > ? OR (monthly_cost = ? AND listing_id > ?)) \
             ORDER BY monthly_cost ASC, listing_id ASC LIMIT 6"
        );
        for bad in [
            format!("sort=score&cursor={c}"),
            format!("sort=cost&order=desc&cursor={c}"),
            "cursor=!!!".to_string(),
            "cursor=e30".to_string(),
            "limit=0".into(),
            "limit=101".into(),
            "sort=price".into(),
            "order=up".into(),
        ] {
            assert!(req(&bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn null_keys_come_last_in_a_descending_sort() {
        let r = req("sort=area").expect("valid");
        let c = r.cursor_after(None, "L9");
        let next = req(&format!("sort=area&cursor={c}")).expect("valid");
        let mut q = Sql::new("WHERE TRUE");
        next.push_after(&mut q);
        assert_eq!(
            q.sql(),
            "WHERE TRUE AND ((area_m2 IS NULL AND listing_id < ?))"
        );
    }
}
