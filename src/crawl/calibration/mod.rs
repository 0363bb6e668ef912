//! Calibration of the synthetic feed and the geography of Seoul's 동, derived from the real fixtures.
//!
//! Two small tables live in `data/calibration/` and are compiled in, so the simulator, the demo and the
//! Dabang crawler work where `../shared` does not exist:
//! - `seoul_gu.csv`: per 자치구, asking-price quantiles from the Zigbang Seoul snapshot (월세 rows: rent,
//!   deposit; all rows: area, 관리비 in 원; shares of 전세 and 오피스텔) beside the 2025 contract medians
//!   of the Seoul rent registry (OA-21276);
//! - `seoul_dong.csv`: per 법정동, the centroid and spread of its Zigbang listings' coordinates and the
//!   contract medians of the registry where it has the 동.
//!
//! `roomstream crawl calibrate --dir ../shared/fixtures/real` derives both from the fixtures again
//! ([`derive()`]); a test checks that the committed tables are exactly what it derives.

mod derive;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use derive::{CalibrationError, derive};

/// The compiled-in per-구 table.
const GU_CSV: &str = include_str!("../../../data/calibration/seoul_gu.csv");
/// The compiled-in per-동 table.
const DONG_CSV: &str = include_str!("../../../data/calibration/seoul_dong.csv");

/// The least a region's box reaches past its outermost 동 centroid: 0.02° ≈ 2.2 km north–south and
/// 1.8 km east–west in Seoul. A large 동 reaches 1.5 km from its listings' centroid (가산동's west edge
/// on the 안양천 is 0.014° from it), and a 동 with few listings has a tiny spread.
pub const REGION_MARGIN_DEG: f64 = 0.02;

/// The least a 동 footprint reaches from its centroid: 0.01° ≈ 1.1 km, the radius of a typical 동.
/// (The seed's 62 tiles still cover every footprint at this floor; at 0.015° 금천구's 가산동 would
/// poke out past the western tiles.)
pub const FOOTPRINT_MIN_DEG: f64 = 0.01;

/// Asking-price and contract statistics of one 자치구. Money in 만원 unless the name says 원.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuStats {
    /// 5-digit 시군구 code.
    pub gu_code: String,
    /// 자치구 name.
    pub gu: String,
    /// Zigbang snapshot rows in this 구.
    pub listings: u32,
    /// 월세 asking rent quantiles (만원).
    pub rent_p25: f64,
    /// Median 월세 asking rent (만원).
    pub rent_p50: f64,
    /// 75th percentile of 월세 asking rent (만원).
    pub rent_p75: f64,
    /// 월세 deposit quantiles (만원).
    pub deposit_p25: f64,
    /// Median 월세 deposit (만원).
    pub deposit_p50: f64,
    /// 75th percentile of 월세 deposit (만원).
    pub deposit_p75: f64,
    /// Share of 전세 rows (rent 0).
    pub jeonse_share: f64,
    /// Median 전세 deposit (만원).
    pub jeonse_deposit_p50: f64,
    /// Exclusive area quantiles (m²).
    pub area_p25: f64,
    /// Median exclusive area (m²).
    pub area_p50: f64,
    /// 75th percentile of exclusive area (m²).
    pub area_p75: f64,
    /// Median 관리비 (원, as the snapshot writes it).
    pub fee_won_p50: f64,
    /// Share of 오피스텔 rows.
    pub officetel_share: f64,
    /// Median contract rent of 2025 (만원; the registry).
    pub contract_rent_median: f64,
    /// Median contract deposit of 2025 (만원).
    pub contract_deposit_median: f64,
}

/// Geography and contract statistics of one 법정동.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DongStats {
    /// 5-digit 시군구 code of the 구 it lies in.
    pub gu_code: String,
    /// 법정동 name.
    pub dong: String,
    /// Zigbang snapshot rows in this 동 (a weight for the simulator).
    pub listings: u32,
    /// Mean latitude of its listings.
    pub lat: f64,
    /// Mean longitude of its listings.
    pub lng: f64,
    /// Standard deviation of latitude (degrees; at least 0.002).
    pub lat_sd: f64,
    /// Standard deviation of longitude (degrees; at least 0.002).
    pub lng_sd: f64,
    /// Median contract rent of 2025 in this 동 (만원), when the registry has ≥ 30 contracts.
    pub contract_rent_median: Option<f64>,
    /// Median contract deposit of 2025 (만원), same condition.
    pub contract_deposit_median: Option<f64>,
}

impl DongStats {
    /// Where this 동's listings are: its centroid ± three spreads, and at least ± [`FOOTPRINT_MIN_DEG`]
    /// (a 동 with few listings in the snapshot has a spread far smaller than the 동).
    pub fn footprint(&self) -> BBox {
        let dlat = (3.0 * self.lat_sd).max(FOOTPRINT_MIN_DEG);
        let dlng = (3.0 * self.lng_sd).max(FOOTPRINT_MIN_DEG);
        BBox {
            sw_lat: self.lat - dlat,
            sw_lng: self.lng - dlng,
            ne_lat: self.lat + dlat,
            ne_lng: self.lng + dlng,
        }
    }
}

/// A latitude/longitude box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// South-west corner latitude.
    pub sw_lat: f64,
    /// South-west corner longitude.
    pub sw_lng: f64,
    /// North-east corner latitude.
    pub ne_lat: f64,
    /// North-east corner longitude.
    pub ne_lng: f64,
}

impl BBox {
    /// Whether two boxes share any point.
    pub fn intersects(&self, other: &BBox) -> bool {
        self.sw_lat <= other.ne_lat
            && other.sw_lat <= self.ne_lat
            && self.sw_lng <= other.ne_lng
            && other.sw_lng <= self.ne_lng
    }

    /// A 3 × 3 grid of points over the box: corners, edge midpoints and centre.
    pub fn grid(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let lats = [self.sw_lat, (self.sw_lat + self.ne_lat) / 2.0, self.ne_lat];
        let lngs = [self.sw_lng, (self.sw_lng + self.ne_lng) / 2.0, self.ne_lng];
        lats.into_iter()
            .flat_map(move |lat| lngs.into_iter().map(move |lng| (lat, lng)))
    }

    /// The four quadrants, for splitting a query that hit a result cap.
    pub fn quadrants(&self) -> [BBox; 4] {
        let mid_lat = (self.sw_lat + self.ne_lat) / 2.0;
        let mid_lng = (self.sw_lng + self.ne_lng) / 2.0;
        [
            BBox {
                sw_lat: self.sw_lat,
                sw_lng: self.sw_lng,
                ne_lat: mid_lat,
                ne_lng: mid_lng,
            },
            BBox {
                sw_lat: self.sw_lat,
                sw_lng: mid_lng,
                ne_lat: mid_lat,
                ne_lng: self.ne_lng,
            },
            BBox {
                sw_lat: mid_lat,
                sw_lng: self.sw_lng,
                ne_lat: self.ne_lat,
                ne_lng: mid_lng,
            },
            BBox {
                sw_lat: mid_lat,
                sw_lng: mid_lng,
                ne_lat: self.ne_lat,
                ne_lng: self.ne_lng,
            },
        ]
    }

    /// Whether a point lies inside.
    pub fn contains(&self, lat: f64, lng: f64) -> bool {
        (self.sw_lat..=self.ne_lat).contains(&lat) && (self.sw_lng..=self.ne_lng).contains(&lng)
    }
}

/// Both tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// One row per 자치구, ordered by code.
    pub gu: Vec<GuStats>,
    /// One row per (구, 동), ordered by code then name.
    pub dong: Vec<DongStats>,
}

impl Calibration {
    /// The compiled-in tables.
    ///
    /// # Panics
    /// If the committed CSVs do not parse: a build-time contract checked by the unit tests.
    pub fn embedded() -> &'static Calibration {
        static CAL: OnceLock<Calibration> = OnceLock::new();
        CAL.get_or_init(|| match Calibration::from_csv(GU_CSV, DONG_CSV) {
            Ok(c) => c,
            Err(e) => panic!("data/calibration is not valid: {e}"),
        })
    }

    /// Parses the two tables.
    pub fn from_csv(gu_csv: &str, dong_csv: &str) -> Result<Calibration, csv::Error> {
        let gu = csv::Reader::from_reader(gu_csv.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()?;
        let dong = csv::Reader::from_reader(dong_csv.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()?;
        Ok(Calibration { gu, dong })
    }

    /// Renders the two tables as CSV, numbers with fixed decimals so that the output is stable.
    pub fn to_csv(&self) -> (String, String) {
        fn write<T: Serialize>(rows: &[T]) -> String {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in rows {
                let _ = w.serialize(r);
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        (write(&self.gu), write(&self.dong))
    }

    /// The statistics of one 구 by code.
    pub fn gu(&self, code: &str) -> Option<&GuStats> {
        self.gu.iter().find(|g| g.gu_code == code)
    }

    /// The 동 of one 구.
    pub fn dongs_of<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a DongStats> + 'a {
        self.dong.iter().filter(move |d| d.gu_code == code)
    }

    /// The 동 called `name` nearest to (lat, lng): 동 names repeat across 구 (신정동, 신사동…), so the
    /// coordinates break ties. `None` if no Seoul 동 has that name.
    pub fn resolve_dong(&self, name: &str, lat: f64, lng: f64) -> Option<&DongStats> {
        let name = name.trim();
        self.dong.iter().filter(|d| d.dong == name).min_by(|a, b| {
            let da = (a.lat - lat).powi(2) + (a.lng - lng).powi(2);
            let db = (b.lat - lat).powi(2) + (b.lng - lng).powi(2);
            da.total_cmp(&db)
        })
    }

    /// The box around a 구's 동 centroids, widened by three spreads of each 동's listings and at least
    /// [`REGION_MARGIN_DEG`], so that it reaches the 구's edge even where a 동 has few listings. Boxes of
    /// neighbouring 구 overlap; crawlers de-duplicate by id, so overlap costs requests, not correctness.
    /// The box is only as good as the 동 table: a 동 with no listings in the snapshot is not in it.
    pub fn region_bbox(&self, code: &str) -> Option<BBox> {
        let mut it = self.dongs_of(code).peekable();
        it.peek()?;
        let mut b = BBox {
            sw_lat: f64::MAX,
            sw_lng: f64::MAX,
            ne_lat: f64::MIN,
            ne_lng: f64::MIN,
        };
        for d in it {
            let (dlat, dlng) = (
                (3.0 * d.lat_sd).max(REGION_MARGIN_DEG),
                (3.0 * d.lng_sd).max(REGION_MARGIN_DEG),
            );
            b.sw_lat = b.sw_lat.min(d.lat - dlat);
            b.sw_lng = b.sw_lng.min(d.lng - dlng);
            b.ne_lat = b.ne_lat.max(d.lat + dlat);
            b.ne_lng = b.ne_lng.max(d.lng + dlng);
        }
        Some(b)
    }

    /// 동 names per 구 code, for lookups by name.
    pub fn dong_names(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for d in &self.dong {
            m.entry(d.gu_code.as_str())
                .or_default()
                .push(d.dong.as_str());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tables_cover_all_25_gu_with_plausible_figures() {
        let cal = Calibration::embedded();
        assert_eq!(cal.gu.len(), 25);
        for g in &cal.gu {
            assert!(
                crate::region::gu_name(&g.gu_code) == Some(g.gu.as_str()),
                "{}",
                g.gu
            );
            assert!(
                g.rent_p25 <= g.rent_p50 && g.rent_p50 <= g.rent_p75,
                "{}",
                g.gu
            );
            assert!(
                (20.0..200.0).contains(&g.rent_p50),
                "{} rent {}",
                g.gu,
                g.rent_p50
            );
            assert!(
                (10.0..80.0).contains(&g.area_p50),
                "{} area {}",
                g.gu,
                g.area_p50
            );
            assert!(
                cal.dongs_of(&g.gu_code).count() >= 2,
                "{} has too few 동",
                g.gu
            );
            assert!(cal.region_bbox(&g.gu_code).is_some());
        }
        assert!(cal.dong.len() > 150);
    }

    #[test]
    fn dong_names_resolve_to_the_nearest_gu() {
        let cal = Calibration::embedded();
        let d = cal
            .resolve_dong("천호동", 37.5465, 127.1276)
            .expect("천호동 is in Seoul");
        assert_eq!(d.gu_code, "11740");
        assert!(
            cal.resolve_dong("인계동", 37.2754, 127.0277).is_none(),
            "수원 is not Seoul"
        );
    }

    #[test]
    fn the_committed_tables_are_exactly_what_the_fixtures_derive() {
        let Some(dir) = crate::crawl::fixtures::real_fixtures_dir() else {
            eprintln!(
                "SKIP: real fixtures not found (set ROOMSTREAM_TEST_FIXTURES); committed tables not re-derived"
            );
            return;
        };
        let derived = derive(&dir).expect("fixtures derive");
        let (gu, dong) = derived.to_csv();
        assert_eq!(
            gu, GU_CSV,
            "data/calibration/seoul_gu.csv is stale: run `roomstream crawl calibrate`"
        );
        assert_eq!(
            dong, DONG_CSV,
            "data/calibration/seoul_dong.csv is stale: run `roomstream crawl calibrate`"
        );
    }

    #[test]
    fn csv_round_trips() {
        let cal = Calibration::embedded();
        let (g, d) = cal.to_csv();
        assert_eq!(&Calibration::from_csv(&g, &d).expect("parses"), cal);
    }
}
