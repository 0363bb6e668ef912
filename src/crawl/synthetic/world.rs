//! The simulated world: flats, the broker offices that list them, and when each is on which platform.
//!
//! Everything is drawn up front from one seeded ChaCha stream, in a fixed order, so the same
//! (listings, days, seed) always gives the same world. Prices follow the calibration table: per-구
//! quantiles of Zigbang asking prices (log-normal with the inter-quartile spread), scaled per 동 by the
//! registry's contract medians and by area.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::crawl::calibration::{Calibration, DongStats, GuStats};
use crate::region;
use crate::topics::keys::normalize_registration;

/// Share of flats listed on both platforms (the rest split evenly between them).
const BOTH_SHARE: f64 = 1.0 / 3.0;
/// Share of flats that are bait (허위매물).
const BAIT_SHARE: f64 = 0.02;
/// Share of flats that are QA/junk listings.
const JUNK_SHARE: f64 = 0.002;
/// Share of normal flats relisted after their contract.
const RELIST_SHARE: f64 = 0.06;
/// Daily probability that a listed flat's price changes.
const PRICE_CHANGE_RATE: f64 = 0.03;
/// Mean days from listing to contract.
const MEAN_DAYS_LISTED: f64 = 21.0;
/// Share of broker offices that are not in the registry (unlicensed).
const UNLICENSED_OFFICE_SHARE: f64 = 0.08;

const SURNAMES: [&str; 12] = [
    "김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오",
];
const GIVEN: [&str; 20] = [
    "민준", "서연", "도윤", "지우", "하준", "서윤", "은우", "지민", "현우", "수빈", "영희", "철수",
    "석순", "미경", "정호", "윤아", "태희", "동현", "혜진", "상철",
];
const DIRECTIONS: [(&str, f64); 8] = [
    ("S", 0.30),
    ("SE", 0.15),
    ("SW", 0.12),
    ("E", 0.12),
    ("W", 0.10),
    ("NE", 0.07),
    ("NW", 0.06),
    ("N", 0.08),
];

/// A 0–1 draw.
pub fn unit(rng: &mut ChaCha8Rng) -> f64 {
    rng.random::<f64>()
}

/// A standard normal draw (Box–Muller), so the stream does not depend on a distribution crate.
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = unit(rng).max(1e-12);
    let u2 = unit(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median and log-spread.
pub fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

/// The log-spread that gives a log-normal the quartiles `p25`/`p75`.
fn sigma_of(p25: f64, p75: f64) -> f64 {
    if p25 > 0.0 && p75 > p25 {
        ((p75 / p25).ln() / 1.349).clamp(0.05, 1.2)
    } else {
        0.3
    }
}

/// What kind of flat it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatKind {
    /// A real flat.
    Normal,
    /// 허위매물: advertised far below the district's price, never really available, reposted under
    /// new ids, photos reused across addresses.
    Bait,
    /// A QA/test listing (진도군 맹골도리, rent 5,000,000).
    Junk,
}

/// Where in its building a flat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// Above ground, level n.
    Level(i32),
    /// 반지하.
    SemiBasement,
    /// 옥탑방.
    Rooftop,
}

/// One run of one listing on one platform: listed from `from_day` until `to_day` (exclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    /// 0 = Zigbang, 1 = Dabang.
    pub platform: u8,
    /// The platform's id of the listing.
    pub id: String,
    /// Dabang's running `seq`, or Zigbang's numeric id.
    pub seq: u64,
    /// First day it is listed.
    pub from_day: u32,
    /// First day it is no longer listed (may lie beyond the simulation).
    pub to_day: u32,
    /// Zigbang only: rendered as a v3 detail (true) or as a batch-list item (false).
    pub v3: bool,
}

/// One flat.
#[derive(Debug, Clone)]
pub struct Flat {
    /// Index, also the ground-truth id `F{index:07}`.
    pub index: u32,
    /// Normal, bait or junk.
    pub kind: FlatKind,
    /// Its 구 (or [`region::UNKNOWN`] for junk).
    pub gu_code: &'static str,
    /// Index into the calibration 동 table.
    pub dong: usize,
    /// Exact coordinates.
    pub lat: f64,
    /// Exact coordinates.
    pub lng: f64,
    /// 지번 lot number, e.g. `593-3`.
    pub lot: String,
    /// 오피스텔 (true) or 원룸.
    pub officetel: bool,
    /// 오픈형원룸, 분리형원룸, 복층형원룸 or 투룸.
    pub room_type: &'static str,
    /// 전용면적, m².
    pub area: f64,
    /// Its floor.
    pub floor: Floor,
    /// Floors of the building.
    pub building_floors: i32,
    /// Direction of the main window (N, S, E, W, NE, NW, SE, SW).
    pub direction: &'static str,
    /// (day, deposit 만원, rent 만원) from listing on; rent 0 is 전세.
    pub prices: Vec<(u32, u32, u32)>,
    /// 관리비 in 만원; `None` when the listing does not say.
    pub fee: Option<f64>,
    /// Index of the broker person who lists it.
    pub broker: usize,
    /// Image set; bait flats share a few sets across addresses.
    pub images: u32,
    /// Metres to the nearest subway station, if any within 1.5 km.
    pub subway_m: Option<u32>,
    /// Metres to the nearest convenience store.
    pub store_m: Option<u32>,
    /// The day the flat was really taken (contract), if within the simulation.
    pub contract_day: Option<u32>,
    /// Its listings.
    pub episodes: Vec<Episode>,
    /// Dabang shows price changes a day late for some flats.
    pub dabang_lag: u32,
    /// Seed of its titles.
    pub title_seed: u32,
}

impl Flat {
    /// (deposit, rent) in 만원 as of a day.
    pub fn price_on(&self, day: u32) -> (u32, u32) {
        let mut p = (self.prices[0].1, self.prices[0].2);
        for &(d, dep, rent) in &self.prices {
            if d <= day {
                p = (dep, rent);
            }
        }
        p
    }
}

/// One person at one broker office.
#[derive(Debug, Clone)]
pub struct Person {
    /// Index of the office.
    pub office: usize,
    /// Name.
    pub name: String,
    /// 중개업자종별코드: 2 or 3 for licensed 공인중개사, 1 for others.
    pub kind_code: u32,
    /// 직위구분코드: 1 대표, 2 소속, 3 중개보조원.
    pub position_code: u32,
    /// 자격증번호.
    pub certificate: Option<String>,
}

/// One broker office.
#[derive(Debug, Clone)]
pub struct Office {
    /// 등록번호 as the registry writes it.
    pub registration_raw: String,
    /// 등록번호 as Zigbang shows it.
    pub registration_zigbang: String,
    /// Name of the office.
    pub name: String,
    /// Its 구.
    pub gu_code: &'static str,
    /// In the VWORLD registry?
    pub licensed: bool,
}

/// The whole simulated world.
pub struct World {
    /// Every flat, in index order.
    pub flats: Vec<Flat>,
    /// Every office.
    pub offices: Vec<Office>,
    /// Every person.
    pub people: Vec<Person>,
    /// Simulated days.
    pub days: u32,
}

fn pick_weighted(rng: &mut ChaCha8Rng, cumulative: &[f64]) -> usize {
    let total = cumulative.last().copied().unwrap_or(1.0);
    let x = unit(rng) * total;
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

fn static_gu(code: &str) -> &'static str {
    region::SEOUL_GU
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(c, _)| *c)
        .unwrap_or(region::UNKNOWN)
}

fn person_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}{}",
        SURNAMES[rng.random_range(0..SURNAMES.len())],
        GIVEN[rng.random_range(0..GIVEN.len())]
    )
}

fn make_offices(rng: &mut ChaCha8Rng, cal: &Calibration, n: usize) -> (Vec<Office>, Vec<Person>) {
    let mut offices = Vec::with_capacity(n);
    let mut people = Vec::new();
    for i in 0..n {
        let gu = &cal.gu[i % cal.gu.len()];
        let licensed = unit(rng) >= UNLICENSED_OFFICE_SHARE;
        let (raw, zig) = if unit(rng) < 0.35 {
            let office = 92_000_000 + rng.random_range(0..900_000u32);
            let serial = rng.random_range(1..9999u32);
            (
                format!("가-{office}-공인{serial}"),
                format!("{office}-{serial}"),
            )
        } else {
            let year = 2008 + rng.random_range(0..17u32);
            let serial = rng.random_range(1..2000u32);
            let s = format!("{}-{year}-{serial:05}", gu.gu_code);
            (s.clone(), s)
        };
        debug_assert_eq!(normalize_registration(&raw), normalize_registration(&zig));
        let dong = gu.gu.trim_end_matches('구');
        offices.push(Office {
            registration_raw: raw,
            registration_zigbang: zig,
            name: format!(
                "{dong}{}공인중개사사무소",
                ["행복", "으뜸", "하나", "미래", "믿음", "정직"][i % 6]
            ),
            gu_code: static_gu(&gu.gu_code),
            licensed,
        });
        let staff = 1 + rng.random_range(0..3usize);
        for s in 0..staff {
            let (kind_code, position_code, certificate) = match s {
                0 => (
                    if unit(rng) < 0.7 { 2 } else { 3 },
                    1,
                    Some(format!(
                        "{}-{:05}",
                        2000 + rng.random_range(0..24u32),
                        rng.random_range(1..99999u32)
                    )),
                ),
                1 => (
                    2,
                    2,
                    Some(format!(
                        "{}-{:05}",
                        2000 + rng.random_range(0..24u32),
                        rng.random_range(1..99999u32)
                    )),
                ),
                _ => (1, 3, None),
            };
            people.push(Person {
                office: i,
                name: person_name(rng),
                kind_code,
                position_code,
                certificate,
            });
        }
    }
    (offices, people)
}

fn draw_floor(rng: &mut ChaCha8Rng, officetel: bool) -> (Floor, i32) {
    let building = if officetel {
        8 + rng.random_range(0..13)
    } else {
        3 + rng.random_range(0..4)
    };
    let u = unit(rng);
    let floor = if !officetel && u < 0.05 {
        Floor::SemiBasement
    } else if !officetel && u < 0.06 {
        Floor::Rooftop
    } else {
        Floor::Level(1 + rng.random_range(0..building))
    };
    (floor, building)
}

/// What a flat's price depends on besides its 구, 동 and area (hedonic effects of the size seen in
/// Seoul studies of one-room rents: 반지하 about a quarter cheaper, 옥탑 and the ground floor a little,
/// 오피스텔 dearer, farther from the subway cheaper).
struct Hedonic {
    floor: Floor,
    officetel: bool,
    room_type: &'static str,
    subway_m: Option<u32>,
}

impl Hedonic {
    fn factor(&self) -> f64 {
        let floor = match self.floor {
            Floor::SemiBasement => 0.75,
            Floor::Rooftop => 0.85,
            Floor::Level(1) => 0.95,
            Floor::Level(_) => 1.0,
        };
        let building = if self.officetel { 1.15 } else { 1.0 };
        let layout = match self.room_type {
            "분리형원룸" => 1.05,
            "복층형원룸" => 1.1,
            _ => 1.0,
        };
        let subway = self
            .subway_m
            .map_or(0.93, |m| (f64::from(m.max(60)) / 550.0).powf(-0.08));
        floor * building * layout * subway
    }
}

/// 전월세 전환율: a landlord trades 만원 of deposit for rent at about this yearly rate.
const CONVERSION_RATE: f64 = 0.06;

fn draw_price(
    rng: &mut ChaCha8Rng,
    gu: &GuStats,
    dong: &DongStats,
    area: f64,
    hedonic: &Hedonic,
    bait: bool,
) -> (u32, u32) {
    // A 동 is dearer or cheaper than its 구 as the registry's contract medians say (bounded, since a
    // 동 median rests on as few as 30 contracts).
    let ratio = |d: Option<f64>, g: f64| match d {
        Some(d) if g > 0.0 => (d / g).clamp(0.75, 1.35),
        _ => 1.0,
    };
    let dong_factor = ratio(dong.contract_rent_median, gu.contract_rent_median);
    let deposit_factor = ratio(dong.contract_deposit_median, gu.contract_deposit_median);
    let area_factor = (area / gu.area_p50.max(1.0)).powf(0.5).clamp(0.6, 1.8) * hedonic.factor();
    if bait {
        let rent = (gu.rent_p50 * 0.45 * area_factor).round().max(15.0);
        return (100 * rng.random_range(1..4u32), rent as u32);
    }
    if unit(rng) < gu.jeonse_share {
        let dep = lognormal(rng, gu.jeonse_deposit_p50 * dong_factor * area_factor, 0.35)
            .clamp(3000.0, 60000.0);
        return ((dep / 500.0).round() as u32 * 500, 0);
    }
    // The real inter-quartile spread of asking rents is mostly the spread of what the flats are (rent
    // grows about as √area; type, floor, 동): only the rest is noise around this flat's price — at
    // least 0.15 and (an assumption) at most 0.30 in ln units: a flat's asking rent is rarely a third
    // off what its features say.
    let spread = sigma_of(gu.rent_p25, gu.rent_p75);
    let explained = 0.5 * sigma_of(gu.area_p25.max(1.0), gu.area_p75.max(2.0));
    let noise = (spread * spread - explained * explained)
        .max(0.0)
        .sqrt()
        .clamp(0.15, 0.30);
    let rent = lognormal(rng, gu.rent_p50 * dong_factor * area_factor, noise);
    let typical_deposit = (gu.deposit_p50 * deposit_factor).max(100.0);
    let deposit = lognormal(
        rng,
        typical_deposit,
        sigma_of(gu.deposit_p25.max(100.0), gu.deposit_p75.max(200.0)),
    );
    // A larger deposit buys a lower rent (and a smaller one costs more), at the conversion rate.
    let rent = rent - (deposit - typical_deposit) * CONVERSION_RATE / 12.0;
    (
        ((deposit / 100.0).round().max(1.0) as u32) * 100,
        rent.round().clamp(15.0, 400.0) as u32,
    )
}

/// Draws the world.
pub fn build(cal: &Calibration, listings: u32, days: u32, seed: u64) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (offices, people) = make_offices(&mut rng, cal, (listings as usize / 40).clamp(25, 20_000));
    let licensed_people: Vec<usize> = (0..people.len())
        .filter(|&p| offices[people[p].office].licensed)
        .collect();
    let unlicensed_people: Vec<usize> = (0..people.len())
        .filter(|&p| !offices[people[p].office].licensed)
        .collect();
    let mut cumulative = Vec::with_capacity(cal.dong.len());
    let mut acc = 0.0;
    for d in &cal.dong {
        acc += f64::from(d.listings.max(1));
        cumulative.push(acc);
    }
    let mut next_zigbang: u64 = 45_000_000;
    let mut next_dabang: u64 = 51_000_000;
    let horizon = days.max(1);
    let mut flats = Vec::with_capacity(listings as usize);
    for index in 0..listings {
        let u = unit(&mut rng);
        let kind = if u < JUNK_SHARE {
            FlatKind::Junk
        } else if u < JUNK_SHARE + BAIT_SHARE {
            FlatKind::Bait
        } else {
            FlatKind::Normal
        };
        let dong_idx = pick_weighted(&mut rng, &cumulative);
        let dong = &cal.dong[dong_idx];
        let gu = cal.gu(&dong.gu_code).unwrap_or(&cal.gu[0]);
        let officetel = unit(&mut rng) < gu.officetel_share;
        let area =
            lognormal(&mut rng, gu.area_p50, sigma_of(gu.area_p25, gu.area_p75)).clamp(12.0, 85.0);
        let area = (area * 100.0).round() / 100.0;
        let room_type = match (officetel, area) {
            (_, a) if a >= 40.0 => "투룸",
            (true, _) => "오픈형원룸",
            (false, _) => {
                ["오픈형원룸", "오픈형원룸", "분리형원룸", "복층형원룸"][rng.random_range(0..4)]
            }
        };
        let (floor, building_floors) = draw_floor(&mut rng, officetel);
        let mut dir_acc = 0.0;
        let x = unit(&mut rng);
        let direction = DIRECTIONS
            .iter()
            .find(|(_, w)| {
                dir_acc += w;
                x < dir_acc
            })
            .map_or("S", |(d, _)| *d);
        let subway_m = (unit(&mut rng) < 0.85)
            .then(|| lognormal(&mut rng, 550.0, 0.5).clamp(60.0, 1500.0) as u32);
        let store_m = (unit(&mut rng) < 0.95)
            .then(|| lognormal(&mut rng, 120.0, 0.7).clamp(0.0, 900.0) as u32);
        let hedonic = Hedonic {
            floor,
            officetel,
            room_type,
            subway_m,
        };
        let (mut deposit, mut rent) =
            draw_price(&mut rng, gu, dong, area, &hedonic, kind == FlatKind::Bait);
        if kind == FlatKind::Junk {
            (deposit, rent) = (1, 5_000_000);
        }
        let fee = match unit(&mut rng) {
            f if f < 0.10 => None,
            f if f < 0.15 => Some(0.0),
            _ => Some(
                (lognormal(&mut rng, gu.fee_won_p50.max(10_000.0), 0.35) / 10_000.0 * 10.0).round()
                    / 10.0,
            ),
        };
        // Bait is mostly posted by unlicensed brokers; 3 % of the rest are too.
        let unlicensed = !unlicensed_people.is_empty()
            && ((kind == FlatKind::Bait && unit(&mut rng) < 0.7) || unit(&mut rng) < 0.03);
        let broker = if unlicensed {
            unlicensed_people[rng.random_range(0..unlicensed_people.len())]
        } else {
            licensed_people[rng.random_range(0..licensed_people.len())]
        };
        // When it is listed and taken.
        let listed_day = if unit(&mut rng) < 0.7 {
            0
        } else {
            rng.random_range(0..horizon)
        };
        let stay = (-(unit(&mut rng).max(1e-9)).ln() * MEAN_DAYS_LISTED)
            .ceil()
            .max(1.0) as u32;
        let taken = listed_day + stay;
        let contract_day = (kind == FlatKind::Normal && taken < horizon).then_some(taken);
        let mut prices = vec![(listed_day, deposit, rent)];
        if kind == FlatKind::Normal {
            for day in listed_day + 1..taken.min(horizon) {
                if unit(&mut rng) < PRICE_CHANGE_RATE {
                    let (d0, r0) = (prices[prices.len() - 1].1, prices[prices.len() - 1].2);
                    let change = if r0 > 0 && unit(&mut rng) < 0.8 {
                        (
                            d0,
                            (r0 as i64 + [-5, -3, -2, 2, 3, 5][rng.random_range(0..6)]).max(10)
                                as u32,
                        )
                    } else {
                        (
                            (d0 as i64 + [-500, -100, 100, 500][rng.random_range(0..4)]).max(100)
                                as u32,
                            r0,
                        )
                    };
                    prices.push((day, change.0, change.1));
                }
            }
        }
        // On which platforms, under which ids, when.
        let pu = unit(&mut rng);
        let platforms: &[u8] = match kind {
            FlatKind::Junk => &[0],
            FlatKind::Bait => {
                if pu < 0.4 {
                    &[0]
                } else {
                    &[1]
                }
            }
            FlatKind::Normal => {
                if pu < BOTH_SHARE {
                    &[0, 1]
                } else if pu < (1.0 + BOTH_SHARE) / 2.0 {
                    &[0]
                } else {
                    &[1]
                }
            }
        };
        let dabang_lag = u32::from(unit(&mut rng) < 0.3);
        let mut episodes = Vec::new();
        let mut new_episode = |rng: &mut ChaCha8Rng, platform: u8, from_day: u32, to_day: u32| {
            let (id, seq) = if platform == 0 {
                next_zigbang += rng.random_range(1..40u64);
                (next_zigbang.to_string(), next_zigbang)
            } else {
                next_dabang += rng.random_range(1..40u64);
                (
                    format!(
                        "{:08x}{:016x}",
                        0x6880_0000u64 + next_dabang % 0x0100_0000,
                        rng.random::<u64>()
                    ),
                    next_dabang,
                )
            };
            Episode {
                platform,
                id,
                seq,
                from_day,
                to_day,
                v3: platform == 0 && unit(rng) < 0.75,
            }
        };
        for &p in platforms {
            let lag = if p == 1 { rng.random_range(0..2u32) } else { 0 };
            match kind {
                FlatKind::Bait => {
                    // Reposted under a new id every 2–4 days, for as long as the scam runs.
                    let mut from = listed_day;
                    while from < taken.min(horizon) + 10 && from < horizon {
                        let to = from + 2 + rng.random_range(0..3u32);
                        episodes.push(new_episode(&mut rng, p, from, to));
                        from = to + rng.random_range(0..2u32);
                    }
                }
                _ => episodes.push(new_episode(
                    &mut rng,
                    p,
                    listed_day + lag,
                    if kind == FlatKind::Junk {
                        u32::MAX
                    } else {
                        taken + lag
                    },
                )),
            }
        }
        if kind == FlatKind::Normal && unit(&mut rng) < RELIST_SHARE {
            let back = taken + 3 + rng.random_range(0..8u32);
            let same_id = unit(&mut rng) < 0.5;
            for e in episodes.clone() {
                let mut again = if same_id {
                    Episode {
                        from_day: back,
                        to_day: back + 14,
                        ..e
                    }
                } else {
                    new_episode(&mut rng, e.platform, back, back + 14)
                };
                again.v3 = e.v3;
                episodes.push(again);
            }
        }
        let (mut lat, mut lng) = (
            dong.lat + normal(&mut rng) * dong.lat_sd * 0.6,
            dong.lng + normal(&mut rng) * dong.lng_sd * 0.6,
        );
        let gu_code = if kind == FlatKind::Junk {
            (lat, lng) = (34.2265, 125.9363);
            region::UNKNOWN
        } else {
            static_gu(&dong.gu_code)
        };
        let images = if kind == FlatKind::Bait {
            rng.random_range(0..5u32)
        } else {
            1000 + index
        };
        flats.push(Flat {
            index,
            kind,
            gu_code,
            dong: dong_idx,
            lat: (lat * 1e7).round() / 1e7,
            lng: (lng * 1e7).round() / 1e7,
            lot: format!(
                "{}-{}",
                1 + rng.random_range(0..1500u32),
                1 + rng.random_range(0..40u32)
            ),
            officetel,
            room_type,
            area,
            floor,
            building_floors,
            direction,
            prices,
            fee,
            broker,
            images,
            subway_m,
            store_m,
            contract_day,
            episodes,
            dabang_lag,
            title_seed: rng.random::<u32>(),
        });
    }
    World {
        flats,
        offices,
        people,
        days,
    }
}
