//! Zigbang crawler: lists ids per geohash tile, fetches details in batches of ≤ 15, emits observations.
//!
//! Endpoints (docs/platforms.md §2, the 2025–26 API): `GET /house/property/v1/items/{kind}?geohash=…`
//! → `{"items":[{"id":…,"lat":…,"lng":…}]}`, then `POST /house/property/v1/items/list` with
//! `{"itemIds":[…]}` → `{"items":[{item_id, deposit, rent, manage_cost(원), addressOrigin, …}]}`.
//! Each detail item becomes one `zigbang.list` observation, keyed by the 구 of its `addressOrigin`.
//!
//! Completeness ([`coverage`]): a 구's listings lie in its 동's footprints (centroid ± three spreads, from
//! the calibration table). A 구 gets a sweep marker only if the configured tiles cover every footprint
//! (checked on a 3 × 3 grid of points per footprint; the seed's 62 tiles cover all 25 구) and every tile
//! touching a footprint was listed, and every detail batch holding one of those tiles' ids succeeded, for
//! every kind. A 구 the tiles do not fully cover is never swept (`regions_uncovered`); a failed tile or
//! batch leaves the 구 it touches without a marker (`regions_incomplete`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use url::Url;

use super::calibration::{BBox, Calibration};
use super::http::{FetchError, PoliteClient};
use super::{CrawlError, Emitter};
use crate::config::Config;
use crate::region;
use crate::topics::envelope::{
    Observation, PayloadFormat, Platform, SWEEP_SCHEMA, Source, SweepMarker, now,
};

/// The seed's 62 geohash tiles over Seoul (precision 5, four of precision 6).
pub const SEED_TILES: [&str; 62] = [
    "wydnp", "wydju", "wydjv", "wydjy", "wydjz", "wydjs", "wydjt", "wydjw", "wydjx", "wydjk",
    "wydjm", "wydjq", "wydjr", "wydjh", "wydjj", "wydjn", "wydjp", "wydhzx", "wydhzz", "wydhzw",
    "wydhzy", "wydq8", "wydq9", "wydqd", "wydqe", "wydqs", "wydq2", "wydq3", "wydq6", "wydq7",
    "wydqk", "wydq0", "wydq1", "wydq4", "wydq5", "wydqh", "wydmb", "wydmc", "wydmf", "wydmg",
    "wydmu", "wydmv", "wydmy", "wydm8", "wydm9", "wydmd", "wydme", "wydms", "wydmt", "wydmw",
    "wydm2", "wydm3", "wydm6", "wydm7", "wydmk", "wydmm", "wydm0", "wydm1", "wydm4", "wydm5",
    "wydmh", "wydmj",
];

/// What a Zigbang crawl did, beyond the events it produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZigbangOutcome {
    /// Tiles whose id list failed, as `kind/geohash`.
    pub tiles_failed: Vec<String>,
    /// Detail batches that failed.
    pub batches_failed: u32,
    /// Regions that got a sweep marker.
    pub regions_swept: Vec<String>,
    /// Covered regions left without a marker because something failed.
    pub regions_incomplete: Vec<String>,
    /// Regions the configured tiles only partly cover: never swept by this configuration.
    pub regions_uncovered: Vec<String>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
}

/// Decodes a geohash into its box; `None` for a character outside the geohash alphabet.
pub fn geohash_bbox(hash: &str) -> Option<BBox> {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (mut lat, mut lng) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
    let mut even = true;
    for c in hash.bytes() {
        let idx = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())?;
        for bit in (0..5).rev() {
            let on = idx & (1 << bit) != 0;
            let range = if even { &mut lng } else { &mut lat };
            let mid = (range.0 + range.1) / 2.0;
            if on {
                range.0 = mid;
            } else {
                range.1 = mid;
            }
            even = !even;
        }
    }
    Some(BBox {
        sw_lat: lat.0,
        sw_lng: lng.0,
        ne_lat: lat.1,
        ne_lng: lng.1,
    })
}

/// How a set of tiles covers Seoul's 구.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    /// 구 code → the tiles touching one of its 동 footprints, for 구 the tiles cover completely.
    pub covered: BTreeMap<String, BTreeSet<String>>,
    /// 구 touched by the tiles but not covered completely.
    pub partial: Vec<String>,
}

/// Which 구 a set of tiles covers completely, and through which tiles (see the module doc).
pub fn coverage(cal: &Calibration, tiles: &[String]) -> Coverage {
    let boxes: Vec<(&String, BBox)> = tiles
        .iter()
        .filter_map(|t| geohash_bbox(t).map(|b| (t, b)))
        .collect();
    let mut out = Coverage::default();
    for (code, _) in region::SEOUL_GU {
        let footprints: Vec<BBox> = cal.dongs_of(code).map(|d| d.footprint()).collect();
        let touching: BTreeSet<String> = boxes
            .iter()
            .filter(|(_, b)| footprints.iter().any(|f| f.intersects(b)))
            .map(|(t, _)| (*t).clone())
            .collect();
        if touching.is_empty() {
            continue;
        }
        let complete = footprints
            .iter()
            .flat_map(BBox::grid)
            .all(|(lat, lng)| boxes.iter().any(|(_, b)| b.contains(lat, lng)));
        if complete {
            out.covered.insert(code.to_string(), touching);
        } else {
            out.partial.push(code.to_string());
        }
    }
    out
}

/// The region of a `zigbang.list` item: its `addressOrigin` 시도 + 구, else [`region::UNKNOWN`].
pub fn item_region(item: &Value) -> &'static str {
    let origin = &item["addressOrigin"];
    let sido = origin["local1"]
        .as_str()
        .or(item["local1"].as_str())
        .unwrap_or_default();
    let gu = origin["local2"]
        .as_str()
        .or(item["local2"].as_str())
        .unwrap_or_default();
    region::code_for_address(sido, gu)
}

/// An id from a list or detail item, whichever spelling the API used.
fn item_id(item: &Value) -> Option<String> {
    ["item_id", "id", "itemId"]
        .iter()
        .find_map(|k| match &item[*k] {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
}

fn items_of(url: &Url, body: &Value) -> Result<Vec<Value>, FetchError> {
    body["items"]
        .as_array()
        .cloned()
        .ok_or_else(|| FetchError::Malformed {
            url: url.to_string(),
            reason: "no `items` array".into(),
        })
}

/// Crawls every configured kind and tile once and emits observations, then sweep markers for complete
/// regions. Fails only if producing fails; fetch failures make regions incomplete instead.
pub async fn crawl(
    cfg: &Config,
    crawl_id: &str,
    emitter: &mut Emitter<'_>,
) -> Result<ZigbangOutcome, CrawlError> {
    let zc = &cfg.zigbang;
    let client = PoliteClient::new(&cfg.crawl, zc.min_interval, &[])?;
    let base = Url::parse(&zc.base_url).map_err(|e| CrawlError::Input {
        file: "zigbang.base_url".into(),
        message: e.to_string(),
    })?;
    let tiles: Vec<String> = if zc.geohashes.is_empty() {
        SEED_TILES.iter().map(|s| s.to_string()).collect()
    } else {
        zc.geohashes.clone()
    };
    let cal = Calibration::embedded();
    let started = now();
    let mut outcome = ZigbangOutcome::default();

    // Which regions the tiles cover completely, and which tiles each depends on.
    let coverage = coverage(cal, &tiles);
    outcome.regions_uncovered = coverage.partial.clone();
    let mut failed_tiles: BTreeSet<String> = BTreeSet::new();
    let mut rejected_regions: BTreeSet<&'static str> = BTreeSet::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();

    for kind in &zc.kinds {
        // 1. Ids per tile.
        let mut ids_by_tile: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for tile in &tiles {
            let mut url = base
                .join(&format!("house/property/v1/items/{kind}"))
                .map_err(|e| CrawlError::Input {
                    file: "zigbang.kinds".into(),
                    message: e.to_string(),
                })?;
            url.query_pairs_mut()
                .append_pair("geohash", tile)
                .append_pair("depositMin", "0")
                .append_pair("rentMin", "0")
                .append_pair("salesPriceMin", "0");
            match client.get_json(&url).await.and_then(|b| items_of(&url, &b)) {
                Ok(items) => {
                    ids_by_tile.insert(tile.clone(), items.iter().filter_map(item_id).collect());
                }
                Err(e) => {
                    tracing::warn!(kind, tile, error = %e, "Zigbang tile failed; its regions get no sweep marker.");
                    outcome.tiles_failed.push(format!("{kind}/{tile}"));
                    failed_tiles.insert(tile.clone());
                }
            }
        }
        // 2. Details in batches, each id once per kind.
        let mut tiles_of_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (tile, ids) in &ids_by_tile {
            for id in ids {
                tiles_of_id
                    .entry(id.clone())
                    .or_default()
                    .insert(tile.clone());
            }
        }
        let ids: Vec<&String> = tiles_of_id
            .keys()
            .filter(|id| !seen.contains(*id))
            .collect();
        let list_url =
            base.join("house/property/v1/items/list")
                .map_err(|e| CrawlError::Input {
                    file: "zigbang.base_url".into(),
                    message: e.to_string(),
                })?;
        for batch in ids.chunks(zc.batch_size) {
            let body = json!({ "itemIds": batch.iter().map(|id| id.parse::<u64>().map(Value::from).unwrap_or(Value::from(id.as_str()))).collect::<Vec<_>>() });
            let items = match client
                .post_json(&list_url, &body)
                .await
                .and_then(|b| items_of(&list_url, &b))
            {
                Ok(items) => items,
                Err(e) => {
                    tracing::warn!(kind, ids = batch.len(), error = %e, "Zigbang detail batch failed; its tiles' regions get no sweep marker.");
                    outcome.batches_failed += 1;
                    for id in batch {
                        failed_tiles.extend(tiles_of_id[*id].iter().cloned());
                    }
                    continue;
                }
            };
            for item in items {
                let id = item_id(&item);
                if id.as_ref().is_some_and(|id| seen.contains(id)) {
                    continue;
                }
                let region = item_region(&item);
                let obs = Observation::new(
                    Source::Zigbang,
                    Platform::Zigbang,
                    id.clone().unwrap_or_default(),
                    now(),
                    crawl_id,
                    region,
                    PayloadFormat::ZigbangList,
                    item,
                );
                if emitter.observation(&obs)? {
                    *counts.entry(region).or_default() += 1;
                } else {
                    // Rejected to the DLQ: the topic lacks a listing that exists, so neither its own
                    // region nor those of its tiles (the whole batch's, without an id) are complete.
                    rejected_regions.insert(region);
                    let ids: Vec<&String> = match &id {
                        Some(id) => vec![id],
                        None => batch.to_vec(),
                    };
                    for id in ids {
                        failed_tiles.extend(tiles_of_id.get(id).into_iter().flatten().cloned());
                    }
                }
                if let Some(id) = id {
                    seen.insert(id);
                }
            }
        }
    }

    // 3. Sweep markers for the regions whose every covering tile and batch succeeded.
    let ended = now();
    for (region, tiles) in &coverage.covered {
        if tiles.iter().any(|t| failed_tiles.contains(t))
            || rejected_regions.contains(region.as_str())
        {
            outcome.regions_incomplete.push(region.clone());
            continue;
        }
        emitter.sweep(&SweepMarker {
            schema: SWEEP_SCHEMA.into(),
            source: Source::Zigbang,
            platform: Platform::Zigbang,
            region_code: region.clone(),
            crawl_id: crawl_id.into(),
            started_at: started,
            ended_at: ended,
            listings_seen: counts.get(region.as_str()).copied().unwrap_or(0),
        })?;
        outcome.regions_swept.push(region.clone());
    }
    outcome.requests = client.requests();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geohash_decodes_to_the_right_box() {
        // wydm9 lies over 용산구 and 중구: 37.529–37.573 N, 126.958–127.002 E.
        let b = geohash_bbox("wydm9").expect("valid");
        assert!(b.contains(37.55, 126.98), "{b:?}");
        assert!(!b.contains(37.56, 126.93), "{b:?}");
        assert!(
            (b.ne_lat - b.sw_lat - 0.0439).abs() < 0.001,
            "precision-5 tiles are 0.044° high"
        );
        assert!(geohash_bbox("wyd!").is_none());
    }

    #[test]
    fn the_seed_tiles_cover_every_seoul_gu_and_fewer_tiles_cover_fewer() {
        let cal = Calibration::embedded();
        let seed: Vec<String> = SEED_TILES.iter().map(|s| s.to_string()).collect();
        let all = coverage(cal, &seed);
        assert!(all.partial.is_empty(), "{:?}", all.partial);
        for (code, name) in region::SEOUL_GU {
            assert!(
                all.covered.contains_key(code as &str),
                "{name} is not covered by the seed tiles"
            );
        }
        // One tile over 용산/중구 covers no 구 completely: every 구 it touches is partial.
        let one = coverage(cal, &["wydm9".to_string()]);
        assert!(one.covered.is_empty(), "{:?}", one.covered.keys());
        assert!(
            one.partial.contains(&"11170".to_string()),
            "{:?}",
            one.partial
        );
    }

    #[test]
    fn items_are_keyed_by_their_address_origin() {
        let item = json!({"item_id": 1, "addressOrigin": {"local1": "서울시", "local2": "관악구"}});
        assert_eq!(item_region(&item), "11620");
        let item = json!({"item_id": 2, "addressOrigin": {"local1": "경기도", "local2": "하남시"}});
        assert_eq!(item_region(&item), region::UNKNOWN);
        assert_eq!(item_id(&json!({"id": 46674601})), Some("46674601".into()));
    }
}
