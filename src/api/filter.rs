//! What a person asks for, as parameters of `/listings` and `/recommendations`, and the SQL `WHERE` it
//! becomes over the production `listings` table.
//!
//! Every filter of the seed's `getFilter` (docs/platforms.md §10) has one here: `place` (its free-text
//! `address`), `deposit_min/max`, `rent_min/max` with `include_fee` (its `include_maintenance_fee`),
//! `facility` (its `facilities[]`), `exclude_rooftop`/`exclude_semi_basement` (its `floor_options[]`).
//! Unlike the seed, unverified brokers are shown unless `verified_only` is asked for.

use crate::db::{Backend, Sql};

use super::directory::{Directory, PlaceSet};
use super::error::ApiError;
use super::params::{Params, truncate};

/// Parameters every listing query takes.
pub const FILTER_PARAMS: [&str; 20] = [
    "gu",
    "dong",
    "place",
    "deposit_min",
    "deposit_max",
    "rent_min",
    "rent_max",
    "include_fee",
    "area_min",
    "area_max",
    "room_type",
    "building",
    "lease",
    "exclude_semi_basement",
    "exclude_rooftop",
    "facility",
    "verified_only",
    "platform",
    "near",
    "radius_m",
];

/// Facilities a listing can be asked to have within [`FACILITY_RADIUS_M`]: (parameter value, its
/// Korean name as the seed's UI sent it, the column with the nearest distance in metres).
pub const FACILITIES: [(&str, &str, &str); 6] = [
    ("subway", "지하철", "subway_m"),
    ("convenience_store", "편의점", "convenience_store_m"),
    ("cafe", "카페", "cafe_m"),
    ("mart", "대형마트", "mart_m"),
    ("restaurant", "음식점", "restaurant_m"),
    ("hospital", "병원", "hospital_m"),
];

/// A required facility must be known within this distance, metres.
pub const FACILITY_RADIUS_M: i64 = 1000;

/// Room layouts: (value, Korean).
pub const ROOM_TYPES: [(&str, &str); 4] = [
    ("one_room", "원룸"),
    ("separated_one_room", "분리형"),
    ("duplex", "복층"),
    ("two_room", "투룸"),
];

/// Building types: (value, Korean).
pub const BUILDINGS: [(&str, &str); 4] = [
    ("one_room_house", "원룸주택"),
    ("villa", "빌라"),
    ("officetel", "오피스텔"),
    ("apartment", "아파트"),
];

/// Platforms: (value, Korean, bit of `listings.platform_mask` as the MySQL sink writes it).
pub const PLATFORMS: [(&str, &str, i64); 2] = [("zigbang", "직방", 1), ("dabang", "다방", 2)];

/// Money and area bounds accepted, so that a huge number is a 400, not an overflow.
const MAX_MANWON: u32 = 10_000_000;
const MAX_AREA_M2: f64 = 10_000.0;

/// The filters of one request, checked and resolved to codes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// 5-digit 시군구 codes (`gu`): any of them.
    pub gu: Vec<String>,
    /// `dong`: 10-digit 법정동 codes and the (구 code, 동 name) pairs of the names given.
    pub dong: Option<PlaceSet>,
    /// `place`, resolved to 구 and (구, 동) pairs.
    pub place: Option<PlaceSet>,
    /// Words of `dong`/`place` that matched no 구 or 동 (said in the response).
    pub unmatched: Vec<String>,
    /// 보증금 bounds, 만원.
    pub deposit: (Option<u32>, Option<u32>),
    /// 월세 bounds, 만원 (with 관리비 when `include_fee`).
    pub rent: (Option<f64>, Option<f64>),
    /// Rent bounds apply to 월세 + 관리비.
    pub include_fee: bool,
    /// 전용면적 bounds, m².
    pub area: (Option<f64>, Option<f64>),
    /// Layouts, any of.
    pub room_types: Vec<&'static str>,
    /// Building types, any of.
    pub buildings: Vec<&'static str>,
    /// `monthly` or `jeonse`.
    pub lease: Option<&'static str>,
    /// Leave out 반지하.
    pub exclude_semi_basement: bool,
    /// Leave out 옥탑.
    pub exclude_rooftop: bool,
    /// Distance columns that must be ≤ [`FACILITY_RADIUS_M`].
    pub facilities: Vec<&'static str>,
    /// Only listings whose broker is verified against the registry.
    pub verified_only: bool,
    /// Platform bits, any of.
    pub platform_bits: i64,
    /// (lat, lng, radius m).
    pub near: Option<(f64, f64, f64)>,
}

/// Looks `v` up in a table of (value, Korean, …) by either name.
fn pick<const N: usize, T: Copy>(
    field: &str,
    v: &str,
    table: &[T; N],
    names: impl Fn(T) -> (&'static str, &'static str),
) -> Result<T, ApiError> {
    table
        .iter()
        .copied()
        .find(|t| {
            let (en, ko) = names(*t);
            en == v || ko == v
        })
        .ok_or_else(|| {
            let all: Vec<&str> = table.iter().map(|t| names(*t).0).collect();
            ApiError::invalid(
                field,
                format!("`{}` is not one of {}", truncate(v), all.join(", ")),
            )
        })
}

impl Filters {
    /// Reads and checks the filter parameters; names are resolved against `dir`.
    pub fn parse(p: &Params, dir: &Directory) -> Result<Filters, ApiError> {
        let mut f = Filters::default();
        for g in p.all("gu") {
            f.gu.push(dir.gu_code(g).ok_or_else(|| {
                ApiError::invalid(
                    "gu",
                    format!(
                        "`{}` is not a 구 of Seoul (a name such as 마포구 or a code such as 11440)",
                        truncate(g)
                    ),
                )
            })?);
        }
        let dongs = p.all("dong");
        if !dongs.is_empty() {
            let mut set = PlaceSet::default();
            for d in dongs {
                if d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()) {
                    set.codes.insert(d.to_string());
                } else {
                    let found = dir.dongs_named(d);
                    if found.is_empty() {
                        f.unmatched.push(truncate(d));
                    }
                    set.dongs.extend(found);
                }
            }
            f.dong = Some(set);
        }
        if let Some(text) = p.one("place")? {
            let (set, unmatched) = dir.resolve_place(text);
            f.unmatched.extend(unmatched);
            f.place = Some(set);
        }
        let manwon = "a whole number of 만원";
        f.deposit = (
            p.number("deposit_min", 0, MAX_MANWON, manwon)?,
            p.number("deposit_max", 0, MAX_MANWON, manwon)?,
        );
        f.rent = (
            p.float("rent_min", 0.0, f64::from(MAX_MANWON), "만원")?,
            p.float("rent_max", 0.0, f64::from(MAX_MANWON), "만원")?,
        );
        f.include_fee = p.flag("include_fee")?;
        f.area = (
            p.float("area_min", 0.0, MAX_AREA_M2, "m²")?,
            p.float("area_max", 0.0, MAX_AREA_M2, "m²")?,
        );
        for (field, (lo, hi)) in [
            (
                "deposit_max",
                (f.deposit.0.map(f64::from), f.deposit.1.map(f64::from)),
            ),
            ("rent_max", f.rent),
            ("area_max", f.area),
        ] {
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > hi
            {
                return Err(ApiError::invalid(
                    field,
                    format!("{hi} is below the minimum {lo}"),
                ));
            }
        }
        for v in p.all("room_type") {
            f.room_types
                .push(pick("room_type", v, &ROOM_TYPES, |t| t)?.0);
        }
        for v in p.all("building") {
            f.buildings.push(pick("building", v, &BUILDINGS, |t| t)?.0);
        }
        f.lease = p
            .one("lease")?
            .map(|v| {
                pick(
                    "lease",
                    v,
                    &[("monthly", "월세"), ("jeonse", "전세")],
                    |t| t,
                )
            })
            .transpose()?
            .map(|t| t.0);
        f.exclude_semi_basement = p.flag("exclude_semi_basement")?;
        f.exclude_rooftop = p.flag("exclude_rooftop")?;
        for v in p.all("facility") {
            let col = pick("facility", v, &FACILITIES, |t| (t.0, t.1))?.2;
            if !f.facilities.contains(&col) {
                f.facilities.push(col);
            }
        }
        f.verified_only = p.flag("verified_only")?;
        for v in p.all("platform") {
            f.platform_bits |= pick("platform", v, &PLATFORMS, |t| (t.0, t.1))?.2;
        }
        let radius = p.float("radius_m", 50.0, 20_000.0, "a radius in metres")?;
        if let Some(near) = p.one("near")? {
            let bad = || {
                ApiError::invalid(
                    "near",
                    format!(
                        "`{}` is not `lat,lng` (e.g. 37.5665,126.978)",
                        truncate(near)
                    ),
                )
            };
            let (lat, lng) = near.split_once(',').ok_or_else(bad)?;
            let (lat, lng) = (
                lat.trim().parse::<f64>().map_err(|_| bad())?,
                lng.trim().parse::<f64>().map_err(|_| bad())?,
            );
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(bad());
            }
            f.near = Some((lat, lng, radius.unwrap_or(1000.0)));
        } else if radius.is_some() {
            return Err(ApiError::invalid("radius_m", "needs `near=lat,lng`"));
        }
        Ok(f)
    }

    /// Appends ` AND …` for every filter (the caller has opened the `WHERE`).
    pub fn push_where(&self, q: &mut Sql, backend: Backend) {
        if !self.gu.is_empty() {
            q.push(" AND region_code IN ");
            push_list(q, &self.gu);
        }
        for places in [&self.dong, &self.place].into_iter().flatten() {
            push_places(q, places);
        }
        if let Some(v) = self.deposit.0 {
            q.push(" AND deposit >= ").push_bind(v);
        }
        if let Some(v) = self.deposit.1 {
            q.push(" AND deposit <= ").push_bind(v);
        }
        let rent = if self.include_fee {
            "rent_with_fee"
        } else {
            "rent"
        };
        if let Some(v) = self.rent.0 {
            q.push(format_args!(" AND {rent} >= ")).push_bind(v);
        }
        if let Some(v) = self.rent.1 {
            q.push(format_args!(" AND {rent} <= ")).push_bind(v);
        }
        if let Some(v) = self.area.0 {
            q.push(" AND area_m2 >= ").push_bind(v);
        }
        if let Some(v) = self.area.1 {
            q.push(" AND area_m2 <= ").push_bind(v);
        }
        if !self.room_types.is_empty() {
            q.push(" AND layout IN ");
            push_list(q, &self.room_types);
        }
        if !self.buildings.is_empty() {
            q.push(" AND building IN ");
            push_list(q, &self.buildings);
        }
        if let Some(l) = self.lease {
            q.push(" AND lease = ").push_bind(l);
        }
        if self.exclude_semi_basement {
            q.push(" AND floor_kind <> 'semi_basement'");
        }
        if self.exclude_rooftop {
            q.push(" AND floor_kind <> 'rooftop'");
        }
        for col in &self.facilities {
            // A column name from FACILITIES, never user text.
            q.push(format_args!(" AND {col} <= {FACILITY_RADIUS_M}"));
        }
        if self.verified_only {
            q.push(" AND broker_verified");
        }
        if self.platform_bits != 0 {
            q.push(" AND (platform_mask & ")
                .push_bind(self.platform_bits)
                .push(") <> 0");
        }
        if let Some((lat, lng, r)) = self.near {
            // A bounding box the planner can narrow with, then the exact distance on the sphere.
            let dlat = r / 111_320.0;
            let dlng = r / (111_320.0 * lat.to_radians().cos().max(0.01));
            q.push(" AND lat BETWEEN ")
                .push_bind(lat - dlat)
                .push(" AND ")
                .push_bind(lat + dlat)
                .push(" AND lng BETWEEN ")
                .push_bind(lng - dlng)
                .push(" AND ")
                .push_bind(lng + dlng)
                .push(" AND ");
            backend.push_distance(q, lat, lng);
            q.push(" <= ").push_bind(r);
        }
    }
}

/// ` AND (region_code IN (…) OR bjd_code IN (…) OR (region_code = ? AND dong = ?) OR …)`, or
/// ` AND FALSE` when nothing was resolved. Equalities on the index `listings_dong_name` prefix, which
/// the range optimizer reads as ranges.
fn push_places(q: &mut Sql, p: &PlaceSet) {
    if p.is_empty() {
        q.push(" AND FALSE");
        return;
    }
    q.push(" AND (");
    let mut first = true;
    let mut or = |q: &mut Sql| {
        if !std::mem::take(&mut first) {
            q.push(" OR ");
        }
    };
    if !p.gus.is_empty() {
        or(q);
        q.push("region_code IN ");
        push_list(q, &p.gus);
    }
    if !p.codes.is_empty() {
        or(q);
        q.push("bjd_code IN ");
        push_list(q, &p.codes);
    }
    for (gu, dong) in &p.dongs {
        or(q);
        q.push("(region_code = ")
            .push_bind(gu.clone())
            .push(" AND dong = ")
            .push_bind(dong.clone())
            .push(")");
    }
    q.push(")");
}

/// `(?, ?, …)` with each value bound.
fn push_list<S: AsRef<str>>(q: &mut Sql, values: impl IntoIterator<Item = S>) {
    q.push_list(values.into_iter().map(|v| v.as_ref().to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        Directory::with_dongs(vec![
            ("11680".into(), "신사동".into()),
            ("11620".into(), "신사동".into()),
            ("11710".into(), "잠실동".into()),
            ("11710".into(), "잠실본동".into()),
            ("11215".into(), "군자동".into()),
        ])
    }

    fn parse(q: &str) -> Result<Filters, ApiError> {
        let p = Params::parse(Some(q), &FILTER_PARAMS)?;
        Filters::parse(&p, &dir())
    }

    fn sql(q: &str) -> String {
        let mut b = Sql::new("SELECT 1 FROM listings WHERE TRUE");
        parse(q).expect("valid").push_where(&mut b, Backend::Mysql);
        b.sql().to_string()
    }

    #[test]
    fn every_filter_becomes_a_bound_condition() {
        let s = sql(
            "gu=강남구&gu=11440&deposit_min=0&deposit_max=1000&rent_max=60&include_fee=true\
            &area_min=16.5&room_type=원룸&building=officetel&lease=월세&exclude_semi_basement=1\
            &exclude_rooftop=true&facility=지하철&facility=cafe&verified_only=true&platform=dabang\
            &near=37.5,127.0&radius_m=800",
        );
        for part in [
            "region_code IN (?, ?)",
            "deposit >= ?",
            "deposit <= ?",
            "rent_with_fee <= ?",
            "area_m2 >= ?",
            "layout IN (?)",
            "building IN (?)",
            "lease = ?",
            "floor_kind <> 'semi_basement'",
            "floor_kind <> 'rooftop'",
            "subway_m <= 1000",
            "cafe_m <= 1000",
            "broker_verified",
            "platform_mask & ?",
            "ST_Distance_Sphere",
        ] {
            assert!(s.contains(part), "missing {part} in {s}");
        }
        assert!(!s.contains("강남구"), "values are bound, not spliced: {s}");
    }

    #[test]
    fn places_resolve_to_codes_and_unknown_words_are_reported() {
        let f = parse("place=서울 잠실, 마포구&dong=신사동").expect("valid");
        let p = f.place.clone().expect("a place");
        assert_eq!(p.gus.into_iter().collect::<Vec<_>>(), vec!["11440"]);
        assert_eq!(p.dongs.len(), 2, "잠실동 and 잠실본동");
        assert_eq!(f.dong.expect("dongs").dongs.len(), 2, "신사동 is in two 구");
        let f = parse("place=강남구 신사동").expect("valid");
        let p = f.place.expect("a place");
        assert!(p.gus.is_empty());
        assert_eq!(
            p.dongs.into_iter().collect::<Vec<_>>(),
            vec![("11680".to_string(), "신사동".to_string())],
            "신사동 of 강남구 only"
        );
        let s = sql("place=마포구, 잠실&dong=1168010700");
        assert!(
            s.contains("AND (region_code IN (?) OR (region_code = ? AND dong = ?) OR (region_code = ? AND dong = ?))")
                && s.contains("AND (bjd_code IN (?))"),
            "{s}"
        );
        let f = parse("place=아틀란티스").expect("valid");
        assert_eq!(f.unmatched, vec!["아틀란티스"]);
        assert!(sql("place=아틀란티스").contains("AND FALSE"));
    }

    #[test]
    fn bad_filters_name_their_parameter() {
        for (q, field) in [
            ("gu=뉴욕구", "gu"),
            ("deposit_max=-1", "deposit_max"),
            ("deposit_max=99999999999", "deposit_max"),
            ("deposit_min=500&deposit_max=100", "deposit_max"),
            ("rent_max=NaN", "rent_max"),
            ("area_min=abc", "area_min"),
            ("room_type=castle", "room_type"),
            ("lease=weekly", "lease"),
            ("facility=sauna", "facility"),
            ("platform=naver", "platform"),
            ("near=37.5", "near"),
            ("near=91,127", "near"),
            ("radius_m=500", "radius_m"),
            ("near=37.5,127&radius_m=1", "radius_m"),
            ("verified_only=perhaps", "verified_only"),
        ] {
            match parse(q) {
                Err(ApiError::InvalidParameter { field: f, .. }) => assert_eq!(f, field, "{q}"),
                other => panic!("{q}: expected a 400 on {field}, got {other:?}"),
            }
        }
    }
}
