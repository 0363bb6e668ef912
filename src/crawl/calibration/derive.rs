//! Derives the calibration tables from the real fixtures (`roomstream crawl calibrate`).
//!
//! Inputs, from `shared/fixtures/real`: the Zigbang Seoul snapshot (listing level: prices, areas,
//! coordinates, addresses) and the two Seoul rent-registry summaries (contract medians per 구 and 동).
//! Rows outside Seoul's 25 구 are skipped. Figures are rounded (2 decimals for money and area, 6 for
//! coordinates, 4 for shares) so that the committed CSVs are stable and exactly reproducible.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{Calibration, DongStats, GuStats};
use crate::region;

/// The snapshot file name inside the fixture folder.
pub const SNAPSHOT_FILE: &str = "zigbang_seoul_listings_20251128_sample.csv";
/// The per-구 registry summary.
pub const GU_SUMMARY_FILE: &str = "seoul_monthly_rent_2025_summary_by_gu.csv";
/// The per-동 registry summary.
pub const DONG_SUMMARY_FILE: &str = "seoul_monthly_rent_2025_summary_by_dong.csv";

/// The fixtures could not be read or lack what the derivation needs.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// A file is missing or unreadable.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A row does not parse.
    #[error("{file}: {source}")]
    Csv {
        /// The file.
        file: String,
        /// The CSV error (with its line).
        source: csv::Error,
    },
    /// A 구 has no 월세 rows to take quantiles of.
    #[error("{gu}: no rows to derive {what} from")]
    Empty {
        /// The 구.
        gu: String,
        /// The statistic.
        what: &'static str,
    },
}

#[derive(Deserialize)]
struct SnapshotRow {
    deposit: f64,
    rent: f64,
    size_m2: f64,
    service_type: String,
    manage_cost: Option<f64>,
    lat: f64,
    lng: f64,
    local1: String,
    local2: String,
    local3: String,
}

#[derive(Deserialize)]
struct SummaryRow {
    #[serde(
        alias = "\u{feff}gu",
        alias = "\u{feff}dong",
        alias = "gu",
        alias = "dong"
    )]
    name: String,
    rent_median: f64,
    deposit_median: f64,
    reliable: String,
}

fn read(dir: &Path, file: &str) -> Result<String, CalibrationError> {
    std::fs::read_to_string(dir.join(file)).map_err(|source| CalibrationError::Read {
        file: file.into(),
        source,
    })
}

fn rows<T: for<'de> Deserialize<'de>>(text: &str, file: &str) -> Result<Vec<T>, CalibrationError> {
    csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|source| CalibrationError::Csv {
            file: file.into(),
            source,
        })
}

/// Linear-interpolated quantile (type 7) of an unsorted sample.
fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len().max(1) as f64).sqrt()
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// Derives both tables from the fixture folder.
pub fn derive(dir: &Path) -> Result<Calibration, CalibrationError> {
    let snapshot: Vec<SnapshotRow> = rows(&read(dir, SNAPSHOT_FILE)?, SNAPSHOT_FILE)?;
    let gu_summary: Vec<SummaryRow> = rows(&read(dir, GU_SUMMARY_FILE)?, GU_SUMMARY_FILE)?;
    let dong_summary: Vec<SummaryRow> = rows(&read(dir, DONG_SUMMARY_FILE)?, DONG_SUMMARY_FILE)?;

    let mut by_gu: BTreeMap<&str, Vec<&SnapshotRow>> = BTreeMap::new();
    let mut by_dong: BTreeMap<(&str, &str), Vec<&SnapshotRow>> = BTreeMap::new();
    for r in &snapshot {
        let code = region::code_for_address(&r.local1, &r.local2);
        if code == region::UNKNOWN || r.local3.trim().is_empty() {
            continue;
        }
        by_gu.entry(code).or_default().push(r);
        by_dong.entry((code, r.local3.trim())).or_default().push(r);
    }

    let mut gu = Vec::new();
    for (code, name) in region::SEOUL_GU {
        let rs = by_gu.get(code).map(Vec::as_slice).unwrap_or_default();
        let monthly: Vec<&&SnapshotRow> = rs.iter().filter(|r| r.rent > 0.0).collect();
        let jeonse: Vec<f64> = rs
            .iter()
            .filter(|r| r.rent <= 0.0)
            .map(|r| r.deposit)
            .collect();
        let rents: Vec<f64> = monthly.iter().map(|r| r.rent).collect();
        let deposits: Vec<f64> = monthly.iter().map(|r| r.deposit).collect();
        let areas: Vec<f64> = rs.iter().map(|r| r.size_m2).collect();
        let fees: Vec<f64> = rs.iter().filter_map(|r| r.manage_cost).collect();
        let q = |v: &[f64], p: f64, what: &'static str| {
            quantile(v, p)
                .map(|x| round(x, 2))
                .ok_or(CalibrationError::Empty {
                    gu: name.into(),
                    what,
                })
        };
        let summary = gu_summary.iter().find(|s| s.name.trim() == name);
        let n = rs.len().max(1) as f64;
        gu.push(GuStats {
            gu_code: code.into(),
            gu: name.into(),
            listings: rs.len() as u32,
            rent_p25: q(&rents, 0.25, "rent")?,
            rent_p50: q(&rents, 0.5, "rent")?,
            rent_p75: q(&rents, 0.75, "rent")?,
            deposit_p25: q(&deposits, 0.25, "deposit")?,
            deposit_p50: q(&deposits, 0.5, "deposit")?,
            deposit_p75: q(&deposits, 0.75, "deposit")?,
            jeonse_share: round(jeonse.len() as f64 / n, 4),
            jeonse_deposit_p50: quantile(&jeonse, 0.5)
                .map(|x| round(x, 2))
                .unwrap_or(20000.0),
            area_p25: q(&areas, 0.25, "area")?,
            area_p50: q(&areas, 0.5, "area")?,
            area_p75: q(&areas, 0.75, "area")?,
            fee_won_p50: q(&fees, 0.5, "fee")?,
            officetel_share: round(
                rs.iter().filter(|r| r.service_type == "오피스텔").count() as f64 / n,
                4,
            ),
            contract_rent_median: summary.map(|s| round(s.rent_median, 2)).unwrap_or(0.0),
            contract_deposit_median: summary.map(|s| round(s.deposit_median, 2)).unwrap_or(0.0),
        });
    }

    let dong = by_dong
        .iter()
        .map(|((code, name), rs)| {
            let lats: Vec<f64> = rs.iter().map(|r| r.lat).collect();
            let lngs: Vec<f64> = rs.iter().map(|r| r.lng).collect();
            let summary = dong_summary
                .iter()
                .find(|s| s.name.trim() == *name && s.reliable.eq_ignore_ascii_case("true"));
            DongStats {
                gu_code: (*code).into(),
                dong: (*name).into(),
                listings: rs.len() as u32,
                lat: round(mean(&lats), 6),
                lng: round(mean(&lngs), 6),
                lat_sd: round(sd(&lats).max(0.002), 6),
                lng_sd: round(sd(&lngs).max(0.002), 6),
                contract_rent_median: summary.map(|s| round(s.rent_median, 2)),
                contract_deposit_median: summary.map(|s| round(s.deposit_median, 2)),
            }
        })
        .collect();
    Ok(Calibration { gu, dong })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.25), Some(2.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
