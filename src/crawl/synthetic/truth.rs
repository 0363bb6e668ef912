//! The simulator's ground truth, one JSON object per line: which source listings are the same flat,
//! when each flat was really taken, which are bait or junk, and whether its broker is licensed.
//!
//! ```json
//! {"flat_id":"F0000042","region_code":"11620","kind":"normal","broker_licensed":true,
//!  "taken_at":"2026-05-19T06:00:00+09:00","listings":[{"platform":"zigbang","source_listing_id":"45001234",
//!  "listed_from":"2026-05-01T06:00:00+09:00","listed_until":"2026-05-19T06:00:00+09:00"}, …]}
//! ```
//! `taken_at` and `listed_until` are `null` when they fall after the simulated days.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use time::Duration;
use time::format_description::well_known::Rfc3339;

use super::START;
use super::world::{FlatKind, World};
use crate::crawl::CrawlError;
use crate::crawl::calibration::Calibration;

/// Writes the truth file, creating its folder.
pub fn write(path: &Path, world: &World, cal: &Calibration) -> Result<(), CrawlError> {
    let io = |source| CrawlError::Read {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    let day = |d: u32| {
        (d < world.days).then(|| {
            (START + Duration::days(i64::from(d)) + Duration::hours(6))
                .format(&Rfc3339)
                .unwrap_or_default()
        })
    };
    for flat in &world.flats {
        let person = &world.people[flat.broker];
        let listings: Vec<_> = flat
            .episodes
            .iter()
            .filter(|e| e.from_day < world.days)
            .map(|e| {
                json!({
                    "platform": if e.platform == 0 { "zigbang" } else { "dabang" },
                    "source_listing_id": e.id,
                    "listed_from": day(e.from_day),
                    "listed_until": day(e.to_day),
                })
            })
            .collect();
        let line = json!({
            "flat_id": format!("F{:07}", flat.index),
            "region_code": flat.gu_code,
            "dong": cal.dong[flat.dong].dong,
            "kind": match flat.kind { FlatKind::Normal => "normal", FlatKind::Bait => "bait", FlatKind::Junk => "junk" },
            "broker_licensed": world.offices[person.office].licensed,
            "taken_at": flat.contract_day.and_then(day),
            "listings": listings,
        });
        writeln!(out, "{line}").map_err(io)?;
    }
    out.flush().map_err(io)
}
