//! The calibrated simulator: `roomstream crawl synthetic --listings N --days D --seed S [--rate EPS]`.
//!
//! It draws a world of flats and broker offices ([`world`]), then plays D days of crawling: each day,
//! region by region and platform by platform, every listing on the platform is observed in that
//! platform's own payload format ([`payload`]) and the region's sweep marker follows. The feed carries
//! what the real one does: flats on Zigbang, Dabang or both (about a third on both, under different ids
//! and titles), price changes (Dabang sometimes a day late), contracts (removals), relistings, partial
//! sweeps that miss listings that still exist, crawls that fail (no marker), QA/junk listings, bait
//! listings and unlicensed brokers. The registry comes first, on `brokers.v1`.
//!
//! Invariant: the same (listings, days, seed) gives the same events byte for byte (two ChaCha streams
//! seeded from the seed — one draws the world, one the crawl days — fixed iteration order, times
//! derived from the simulated day, never the wall clock). Floating-point maths (`ln`, `exp`, `cos`)
//! comes from the platform's libm, so "byte for byte" holds per platform, as tested on x86-64 Linux.
//! It also writes a ground-truth file ([`truth`]) for the evaluations of later issues.

pub mod payload;
pub mod truth;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use time::{Duration, OffsetDateTime, macros::datetime};

use super::calibration::Calibration;
use super::{CrawlError, Emitter};
use crate::region;
use crate::topics::envelope::{
    BROKER_SCHEMA, BrokerRecord, Observation, PayloadFormat, Platform, SWEEP_SCHEMA, Source,
    SweepMarker,
};
use crate::topics::keys::normalize_registration;
use world::{FlatKind, World, unit};

/// The first simulated day, 00:00 KST.
pub const START: OffsetDateTime = datetime!(2026-05-01 00:00:00 +9);
/// Probability that a region's crawl of one platform fails on a day (no sweep marker, half observed).
const CRAWL_FAILURE_RATE: f64 = 0.04;
/// Probability that a complete sweep still misses a listing that exists.
const MISS_RATE: f64 = 0.02;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SyntheticArgs {
    /// Flats in the world.
    pub listings: u32,
    /// Days to play.
    pub days: u32,
    /// Seed of every draw.
    pub seed: u64,
    /// Events per second to pace at (live mode), or as fast as the broker takes them.
    pub rate: Option<f64>,
    /// Where to write the ground truth (JSON lines), if anywhere.
    pub truth: Option<PathBuf>,
}

/// Live mode (`roomstream demo`): the same days, played region by region at a human pace.
#[derive(Debug, Clone)]
pub struct Live {
    /// Days before this one are drawn but not sent (a resumed demo continues where it stopped; the
    /// registry is not sent again either).
    pub first_day: u32,
    /// From this day on, wait `every` after each region's crawl (both platforms).
    pub paced_from: u32,
    /// The wait.
    pub every: std::time::Duration,
    /// Set to stop between two regions.
    pub stop: Arc<AtomicBool>,
    /// The first day not yet fully sent (updated as days complete), for resuming.
    pub next_day: Arc<AtomicU32>,
}

/// Runs the simulation into an emitter. Returns the world so callers can inspect it.
pub fn run(args: &SyntheticArgs, emitter: &mut Emitter<'_>) -> Result<World, CrawlError> {
    play(args, None, emitter)
}

/// [`run`] at a live pace from `live.paced_from`, starting at `live.first_day`, until `args.days` or
/// until `live.stop` is set.
pub fn run_live(
    args: &SyntheticArgs,
    live: &Live,
    emitter: &mut Emitter<'_>,
) -> Result<World, CrawlError> {
    play(args, Some(live), emitter)
}

fn play(
    args: &SyntheticArgs,
    live: Option<&Live>,
    emitter: &mut Emitter<'_>,
) -> Result<World, CrawlError> {
    let cal = Calibration::embedded();
    let world = world::build(cal, args.listings, args.days, args.seed);
    if let Some(path) = &args.truth {
        truth::write(path, &world, cal)?;
    }
    let first_day = live.map_or(0, |l| l.first_day);
    if first_day == 0 {
        emit_registry(&world, emitter)?;
    }
    let by_region = regions(&world);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x5eed_da75);
    for day in 0..args.days {
        // Days already sent are still drawn, so that the days after them are the same.
        let send = day >= first_day;
        let day_start = START + Duration::days(i64::from(day)) + Duration::hours(6);
        let mut tick: i64 = 0;
        for (region, flats) in &by_region {
            for platform in [0u8, 1u8] {
                let crawl_id = format!(
                    "synthetic-s{}-d{day:03}-{}",
                    args.seed,
                    ["zigbang", "dabang"][platform as usize]
                );
                let started_at = day_start + Duration::seconds(tick / 20);
                let failed = *region != region::UNKNOWN && unit(&mut rng) < CRAWL_FAILURE_RATE;
                let mut seen = 0u64;
                for &fi in flats {
                    let flat = &world.flats[fi];
                    for ep in flat
                        .episodes
                        .iter()
                        .filter(|e| e.platform == platform && e.from_day <= day && day < e.to_day)
                    {
                        let skip = if failed {
                            unit(&mut rng) < 0.5
                        } else {
                            unit(&mut rng) < MISS_RATE
                        };
                        if skip {
                            continue;
                        }
                        let at = day_start + Duration::seconds(tick / 20);
                        tick += 1;
                        if send {
                            let obs = observation(&world, cal, fi, ep, day, at, &crawl_id);
                            emitter.observation(&obs)?;
                        }
                        seen += 1;
                    }
                }
                if !failed && *region != region::UNKNOWN {
                    tick += 1;
                    if !send {
                        continue;
                    }
                    emitter.sweep(&SweepMarker {
                        schema: SWEEP_SCHEMA.into(),
                        source: Source::Synthetic,
                        platform: if platform == 0 {
                            Platform::Zigbang
                        } else {
                            Platform::Dabang
                        },
                        region_code: (*region).into(),
                        crawl_id,
                        started_at,
                        ended_at: day_start + Duration::seconds(tick / 20),
                        listings_seen: seen,
                    })?;
                }
            }
            if let Some(l) = live.filter(|_| send) {
                let until = std::time::Instant::now()
                    + if day >= l.paced_from {
                        l.every
                    } else {
                        std::time::Duration::ZERO
                    };
                loop {
                    if l.stop.load(Ordering::Relaxed) {
                        return Ok(world);
                    }
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(std::time::Duration::from_millis(100)));
                }
            }
        }
        if let Some(l) = live.filter(|_| send) {
            l.next_day.store(day + 1, Ordering::Relaxed);
            if l.stop.load(Ordering::Relaxed) {
                return Ok(world);
            }
        }
    }
    Ok(world)
}

/// Expected number of events, for the progress bar (an estimate: misses and failures vary).
pub fn estimate_events(args: &SyntheticArgs) -> u64 {
    let per_day = f64::from(args.listings) * (1.0 + 1.0 / 3.0) * 0.8;
    (per_day * f64::from(args.days)) as u64
        + u64::from(args.listings / 20)
        + 52 * u64::from(args.days)
}

/// Region code → flat indices, in code order (the unknown region last, as its code sorts first).
fn regions(world: &World) -> Vec<(&'static str, Vec<usize>)> {
    let mut out: Vec<(&'static str, Vec<usize>)> = region::SEOUL_GU
        .iter()
        .map(|(c, _)| (*c, Vec::new()))
        .collect();
    out.push((region::UNKNOWN, Vec::new()));
    for (i, f) in world.flats.iter().enumerate() {
        if let Some(slot) = out.iter_mut().find(|(c, _)| *c == f.gu_code) {
            slot.1.push(i);
        }
    }
    out
}

fn observation(
    world: &World,
    cal: &Calibration,
    fi: usize,
    ep: &world::Episode,
    day: u32,
    at: OffsetDateTime,
    crawl_id: &str,
) -> Observation {
    let flat = &world.flats[fi];
    let listed = START
        + Duration::days(i64::from(ep.from_day))
        + Duration::hours(9)
        + Duration::minutes(i64::from(flat.title_seed % 600));
    let last_change = flat
        .prices
        .iter()
        .rev()
        .find(|p| p.0 <= day)
        .map_or(ep.from_day, |p| p.0.max(ep.from_day));
    let updated = START
        + Duration::days(i64::from(last_change))
        + Duration::hours(9)
        + Duration::minutes(i64::from(flat.title_seed % 600));
    let (platform, format, payload) = match (ep.platform, ep.v3) {
        (0, true) => (
            Platform::Zigbang,
            PayloadFormat::ZigbangV3Item,
            payload::zigbang_v3(world, cal, flat, ep, day, &kst_string(updated)),
        ),
        (0, false) => (
            Platform::Zigbang,
            PayloadFormat::ZigbangList,
            payload::zigbang_list(
                cal,
                flat,
                ep,
                day,
                &listed
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            ),
        ),
        _ => (
            Platform::Dabang,
            PayloadFormat::DabangV5Room,
            payload::dabang_room(cal, flat, ep, day),
        ),
    };
    Observation::new(
        Source::Synthetic,
        platform,
        ep.id.clone(),
        at,
        crawl_id,
        flat.gu_code,
        format,
        payload,
    )
}

/// `2025-11-15 12:46:09`, as Zigbang writes times (KST, no zone).
fn kst_string(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).unwrap_or_default()
}

/// The registry of licensed offices on `brokers.v1`: every person of every licensed office.
fn emit_registry(world: &World, emitter: &mut Emitter<'_>) -> Result<(), CrawlError> {
    for person in &world.people {
        let office = &world.offices[person.office];
        if !office.licensed {
            continue;
        }
        emitter.broker(&BrokerRecord {
            schema: BROKER_SCHEMA.into(),
            source: "synthetic".into(),
            registration_number: normalize_registration(&office.registration_raw),
            registration_number_raw: office.registration_raw.clone(),
            person_name: person.name.clone(),
            office_name: Some(office.name.clone()),
            broker_kind_code: Some(person.kind_code),
            position_code: Some(person.position_code),
            certificate_number: person.certificate.clone(),
            region_code: Some(office.gu_code.into()),
            observed_at: START,
        })?;
    }
    Ok(())
}

/// Counts of the world's flats by kind, for the command's summary.
pub fn describe(world: &World) -> String {
    let count = |k: FlatKind| world.flats.iter().filter(|f| f.kind == k).count();
    let both = world
        .flats
        .iter()
        .filter(|f| {
            f.episodes.iter().any(|e| e.platform == 0) && f.episodes.iter().any(|e| e.platform == 1)
        })
        .count();
    format!(
        "world: {} flats ({} on both platforms, {} bait, {} junk), {} broker offices ({} unlicensed)",
        world.flats.len(),
        both,
        count(FlatKind::Bait),
        count(FlatKind::Junk),
        world.offices.len(),
        world.offices.iter().filter(|o| !o.licensed).count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::MemorySink;
    use crate::topics::TopicKind;

    fn simulate(listings: u32, days: u32, seed: u64) -> (MemorySink, World) {
        let mut sink = MemorySink::default();
        let args = SyntheticArgs {
            listings,
            days,
            seed,
            rate: None,
            truth: None,
        };
        let world = run(&args, &mut Emitter::new(&mut sink, None)).expect("simulates");
        (sink, world)
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
        let (a, _) = simulate(600, 3, 7);
        let (b, _) = simulate(600, 3, 7);
        let (c, _) = simulate(600, 3, 8);
        assert_eq!(a.records, b.records);
        assert_ne!(a.records, c.records);
    }

    #[test]
    fn the_feed_has_the_mix_the_issue_asks_for() {
        let (sink, world) = simulate(3000, 10, 42);
        let flats = world.flats.len() as f64;
        let both = world
            .flats
            .iter()
            .filter(|f| {
                f.episodes.iter().any(|e| e.platform == 0)
                    && f.episodes.iter().any(|e| e.platform == 1)
            })
            .count() as f64;
        assert!(
            (0.25..0.40).contains(&(both / flats)),
            "share on both platforms {}",
            both / flats
        );
        assert!(
            world
                .flats
                .iter()
                .any(|f| f.kind == FlatKind::Bait && f.episodes.len() >= 2),
            "bait is reposted"
        );
        assert!(world.flats.iter().any(|f| f.kind == FlatKind::Junk));
        assert!(
            world.flats.iter().any(|f| f.prices.len() > 1),
            "prices change"
        );
        assert!(
            world.flats.iter().any(|f| f.contract_day.is_some()),
            "flats are taken"
        );
        assert!(
            world.offices.iter().any(|o| !o.licensed),
            "some brokers are unlicensed"
        );

        let obs = sink.values(TopicKind::Observed);
        let formats: std::collections::BTreeSet<&str> = obs
            .iter()
            .filter_map(|o| o["payload_format"].as_str())
            .collect();
        assert_eq!(
            formats.into_iter().collect::<Vec<_>>(),
            vec!["dabang.v5.room", "zigbang.list", "zigbang.v3.item"]
        );
        assert!(obs.iter().any(|o| {
            o["payload"]["priceTitle"]
                .as_str()
                .is_some_and(|t| t.contains('억'))
        }));
        assert!(
            obs.iter()
                .all(|o| o["region_code"].as_str().is_some_and(region::is_valid))
        );
        // Keys are region codes, and observations of one region share their key.
        assert!(
            sink.keys(TopicKind::Observed)
                .iter()
                .zip(&obs)
                .all(|(k, o)| o["region_code"] == *k)
        );
        // Some complete sweeps and some failed crawls over 10 days × 25 regions × 2 platforms.
        let sweeps = sink.values(TopicKind::Sweeps).len();
        assert!((400..500).contains(&sweeps), "sweeps {sweeps}");
        assert!(!sink.values(TopicKind::Brokers).is_empty());
    }
}
