//! Dabang crawler: pages the v5 room list per region box, splitting any box that hits the result cap.
//!
//! Endpoint (docs/platforms.md §3): `GET /api/v5/room-list/category/one-two/bbox?bbox={…}&filters={…}&page=n`
//! with the `D-Api-Version: 5.0.0`, `D-App-Version: 1`, `D-Call-Type: web` headers →
//! `{"code":200,"result":{"roomList":[…],"total":…,"hasMore":…}}`. The API reports at most 10,000
//! results (`total: 10000` in the real sample), so one Seoul-wide box silently truncates; roomstream
//! lists one 구 box at a time and splits a box in four whenever its `total` reaches the cap.
//!
//! Each room becomes one `dabang.v5.room` observation. Its region comes from `dongName` (the nearest
//! Seoul 동 of that name to its jittered `randomLocation`), else [`region::UNKNOWN`]. A region gets a
//! sweep marker only if every page of its box (and sub-boxes) was fetched, each box gave as many
//! distinct rooms as its `total`, no box stayed at the cap after six splits, and none of its rooms was
//! rejected to the DLQ. Markers are sent after every region was listed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use super::calibration::{BBox, Calibration};
use super::http::{FetchError, PoliteClient};
use super::{CrawlError, Emitter};
use crate::config::Config;
use crate::region;
use crate::topics::envelope::{
    Observation, PayloadFormat, Platform, SWEEP_SCHEMA, Source, SweepMarker, now,
};

/// How many times a box may be split in four before the crawler gives up on completeness.
const MAX_SPLIT_DEPTH: u32 = 6;

/// What a Dabang crawl did, beyond the events it produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DabangOutcome {
    /// Pages fetched successfully.
    pub pages: u64,
    /// Boxes split because they reached the cap.
    pub splits: u64,
    /// Regions that got a sweep marker.
    pub regions_swept: Vec<String>,
    /// Regions left without one, with the first error.
    pub regions_incomplete: Vec<(String, String)>,
    /// HTTP requests sent, retries included.
    pub requests: u64,
}

/// The seed's filter, widened to 전세 (`LEASE`) as well as 월세: every floor kind, 원룸/투룸, agents and owners.
fn filters() -> Value {
    json!({
        "sellingTypeList": ["MONTHLY_RENT", "LEASE"],
        "depositRange": {"min": 0, "max": 999999},
        "priceRange": {"min": 0, "max": 999999},
        "isIncludeMaintenance": false,
        "pyeongRange": {"min": 0, "max": 999999},
        "roomFloorList": ["GROUND_FIRST", "GROUND_SECOND_OVER", "SEMI_BASEMENT", "ROOFTOP"],
        "roomTypeList": ["ONE_ROOM", "TWO_ROOM"],
        "dealTypeList": ["AGENT", "DIRECT"],
        "canParking": false, "isShortLease": false, "hasElevator": false, "hasPano": false,
        "isDivision": false, "isDuplex": false
    })
}

/// The region of a room: the Seoul 구 of the nearest 동 named `dongName` in the calibration table.
///
/// Limitation: the table holds the 244 법정동 that have Zigbang listings in the snapshot, not all of
/// Seoul's; a room in a missing 동 (서초구 내곡동, say) gets [`region::UNKNOWN`]. Coordinates alone are
/// not used, because Gyeonggi 동 just over the border (광명 하안동) would then land in Seoul.
pub fn room_region(cal: &Calibration, room: &Value) -> &'static str {
    let dong = room["dongName"].as_str().unwrap_or_default();
    let lat = room["randomLocation"]["lat"].as_f64().unwrap_or(0.0);
    let lng = room["randomLocation"]["lng"].as_f64().unwrap_or(0.0);
    cal.resolve_dong(dong, lat, lng)
        .and_then(|d| {
            region::SEOUL_GU
                .iter()
                .find(|(c, _)| *c == d.gu_code)
                .map(|(c, _)| *c)
        })
        .unwrap_or(region::UNKNOWN)
}

struct BoxCrawl<'c> {
    client: &'c PoliteClient,
    base: &'c Url,
    cap: u64,
    max_pages: u32,
    pages: u64,
    splits: u64,
}

impl BoxCrawl<'_> {
    fn page_url(&self, b: &BBox, page: u32) -> Result<Url, CrawlError> {
        let mut url = self
            .base
            .join("api/v5/room-list/category/one-two/bbox")
            .map_err(|e| CrawlError::Input {
                file: "dabang.base_url".into(),
                message: e.to_string(),
            })?;
        let bbox = json!({"sw": {"lat": b.sw_lat, "lng": b.sw_lng}, "ne": {"lat": b.ne_lat, "lng": b.ne_lng}});
        url.query_pairs_mut()
            .append_pair("bbox", &bbox.to_string())
            .append_pair("filters", &filters().to_string())
            .append_pair("page", &page.to_string())
            .append_pair("useMap", "naver")
            .append_pair("zoom", "14");
        Ok(url)
    }

    /// Every room of a box, in page order; splits the box when it reaches the cap.
    async fn rooms(&mut self, b: BBox, depth: u32) -> Result<Vec<Value>, CrawlError> {
        let mut rooms = Vec::new();
        let mut page = 1;
        loop {
            let url = self.page_url(&b, page)?;
            let body = self.client.get_json(&url).await?;
            let result = &body["result"];
            let Some(list) = result["roomList"].as_array() else {
                return Err(FetchError::Malformed {
                    url: url.to_string(),
                    reason: "no `result.roomList` array".into(),
                }
                .into());
            };
            self.pages += 1;
            // Without `total` neither the cap nor completeness can be checked.
            let Some(total) = result["total"].as_u64() else {
                return Err(FetchError::Malformed {
                    url: url.to_string(),
                    reason: "no `result.total`".into(),
                }
                .into());
            };
            let capped = total >= self.cap || page > self.max_pages;
            if capped {
                if depth >= MAX_SPLIT_DEPTH {
                    return Err(CrawlError::Input {
                        file: url.to_string(),
                        message: format!(
                            "box still reaches the {} cap after {depth} splits",
                            self.cap
                        ),
                    });
                }
                self.splits += 1;
                let mut all = Vec::new();
                for q in b.quadrants() {
                    all.extend(Box::pin(self.rooms(q, depth + 1)).await?);
                }
                return Ok(all);
            }
            rooms.extend(list.iter().cloned());
            if list.is_empty() || result["hasMore"].as_bool() == Some(false) {
                // Listings that move between pages while we page can be skipped: then fewer distinct
                // rooms than `total` came back, and the box does not count as listed.
                let distinct: BTreeSet<&str> =
                    rooms.iter().filter_map(|r| r["id"].as_str()).collect();
                if (distinct.len() as u64) < total {
                    return Err(CrawlError::Input {
                        file: url.to_string(),
                        message: format!(
                            "listed {} distinct rooms of the {total} reported",
                            distinct.len()
                        ),
                    });
                }
                return Ok(rooms);
            }
            page += 1;
        }
    }
}

/// Crawls the given regions (every Seoul 구 when empty) and emits observations, then a sweep marker
/// per completely listed region. Fails only if producing fails.
pub async fn crawl(
    cfg: &Config,
    regions: &[String],
    crawl_id: &str,
    emitter: &mut Emitter<'_>,
) -> Result<DabangOutcome, CrawlError> {
    let dc = &cfg.dabang;
    let headers = [
        ("d-api-version", "5.0.0"),
        ("d-app-version", "1"),
        ("d-call-type", "web"),
    ];
    let client = PoliteClient::new(&cfg.crawl, dc.min_interval, &headers)?;
    let base = Url::parse(&dc.base_url).map_err(|e| CrawlError::Input {
        file: "dabang.base_url".into(),
        message: e.to_string(),
    })?;
    let cal = Calibration::embedded();
    let regions: Vec<String> = if regions.is_empty() {
        region::SEOUL_GU
            .iter()
            .map(|(c, _)| c.to_string())
            .collect()
    } else {
        regions.to_vec()
    };
    let mut crawler = BoxCrawl {
        client: &client,
        base: &base,
        cap: dc.result_cap,
        max_pages: dc.max_pages,
        pages: 0,
        splits: 0,
    };
    let mut outcome = DabangOutcome::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut rejected_regions: BTreeSet<String> = BTreeSet::new();
    // (region, started, ended) of the regions whose boxes were listed completely, in crawl order.
    let mut listed: Vec<(String, OffsetDateTime, OffsetDateTime)> = Vec::new();

    for code in &regions {
        let Some(bbox) = cal.region_bbox(code) else {
            outcome
                .regions_incomplete
                .push((code.clone(), "not a Seoul 구 code".into()));
            continue;
        };
        let started = now();
        let rooms = match crawler.rooms(bbox, 0).await {
            Ok(rooms) => rooms,
            Err(CrawlError::Produce(e)) => return Err(CrawlError::Produce(e)),
            Err(e) => {
                tracing::warn!(region = code, error = %e, "Dabang region incomplete; no sweep marker.");
                outcome
                    .regions_incomplete
                    .push((code.clone(), e.to_string()));
                continue;
            }
        };
        for room in rooms {
            let id = room["id"].as_str().unwrap_or_default().to_string();
            if !id.is_empty() && !seen.insert(id.clone()) {
                continue;
            }
            let region = room_region(cal, &room);
            let obs = Observation::new(
                Source::Dabang,
                Platform::Dabang,
                id,
                now(),
                crawl_id,
                region,
                PayloadFormat::DabangV5Room,
                room,
            );
            if emitter.observation(&obs)? {
                *counts.entry(region).or_default() += 1;
            } else {
                // Rejected to the DLQ: neither this box's region nor the room's own is complete.
                rejected_regions.insert(code.clone());
                rejected_regions.insert(region.to_string());
            }
        }
        listed.push((code.clone(), started, now()));
    }
    // Markers last: a room of an already-listed region can still turn up in a later region's box, and
    // a marker must follow every observation it counts.
    for (code, started_at, ended_at) in listed {
        if rejected_regions.contains(&code) {
            outcome
                .regions_incomplete
                .push((code, "a room was rejected to the DLQ".into()));
            continue;
        }
        emitter.sweep(&SweepMarker {
            schema: SWEEP_SCHEMA.into(),
            source: Source::Dabang,
            platform: Platform::Dabang,
            region_code: code.clone(),
            crawl_id: crawl_id.into(),
            started_at,
            ended_at,
            listings_seen: counts.get(code.as_str()).copied().unwrap_or(0),
        })?;
        outcome.regions_swept.push(code);
    }
    outcome.pages = crawler.pages;
    outcome.splits = crawler.splits;
    outcome.requests = client.requests();
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_keyed_by_the_nearest_seoul_dong_of_their_name() {
        let cal = Calibration::embedded();
        let room = json!({"id": "a", "dongName": "천호동", "randomLocation": {"lat": 37.5465, "lng": 127.1276}});
        assert_eq!(room_region(cal, &room), "11740");
        let room = json!({"id": "b", "dongName": "인계동", "randomLocation": {"lat": 37.27, "lng": 127.02}});
        assert_eq!(room_region(cal, &room), region::UNKNOWN);
    }

    #[test]
    fn quadrants_tile_the_box() {
        let b = BBox {
            sw_lat: 37.0,
            sw_lng: 127.0,
            ne_lat: 37.2,
            ne_lng: 127.4,
        };
        let q = b.quadrants();
        assert!(q.iter().all(|x| x.ne_lat - x.sw_lat - 0.1 < 1e-9));
        assert!(q.iter().filter(|x| x.contains(37.05, 127.05)).count() == 1);
    }
}
