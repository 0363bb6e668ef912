//! The resolver's candidate index: which live listings an updated listing must be compared with.
//!
//! A listing can only be linked to one of the same block — region, 법정동 and lease — whose area is
//! within [`MAX_AREA_GAP`] m², whose floor and room count are compatible, and whose position is within
//! both platforms' jitter of its own ([`evidence`](super::resolve::evidence) gates on all of these).
//! The index keeps each live listing with an area in a map cell of [`CELL_M`] metres, split by the
//! precision of its coordinates, and each entry carries the gated fields. A query visits only the
//! cells within reach — reach = its own tolerance plus the partner class's — and checks the gates on
//! the entries before anyone looks a listing up. So the candidates of an input are bounded by the
//! density of listings around it (a building and its street), not by the size of its 동, and the index
//! returns exactly the listings that pass the cheap gates: the clustering is the same as comparing with
//! the whole block.
//!
//! The index is derived from the live listings; a restore rebuilds it ([`Candidates::insert`] for
//! each), so checkpoints do not carry it.

use std::collections::{BTreeSet, HashMap};

use super::fingerprint::{FixedHasher, mix};
use super::model::{Floor, Lease, Location, Precision, SourceKey, SourceListing};

/// Listings whose areas differ by more than this (m²) are never the same flat.
pub const MAX_AREA_GAP: f64 = 1.0;

/// The side of a map cell, metres. Smaller cells visit more of them per query; larger ones hold more
/// listings that are out of reach. 150 m: an exact position reaches 1 cell around it for exact partners
/// (60 m), 2 for jittered ones (250 m); a jittered one 2 and 3 (440 m).
pub const CELL_M: f64 = 150.0;

/// Positions at latitudes beyond this are not placed in cells (they are compared with their whole
/// block): a cell is sized in degrees of longitude for this latitude, where a degree is shortest, so
/// that nearer the equator it spans at least [`CELL_M`] metres. Korea lies between 33° and 39°.
const MAX_LAT: f64 = 45.0;

/// Metres per degree of latitude, as [`Location::distance_m`] computes it.
const M_PER_DEG: f64 = 6_371_000.0 * std::f64::consts::PI / 180.0;

/// Blocking key: a fixed hash of region, 법정동 (empty when unknown) and lease. Two blocks that
/// collide only compare a few more candidates: the gates check the fields themselves.
pub type Block = u64;

/// The block of a listing.
pub fn block_of(l: &SourceListing) -> Block {
    let h = mix(0, l.region_code.as_bytes());
    let h = mix(h, l.dong.as_deref().unwrap_or_default().as_bytes());
    mix(h, &[u8::from(l.lease == Lease::Jeonse)])
}

/// Where in a block an entry sits: its precision class and cell, or nowhere in particular.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Place {
    /// In cell (x, y) of the grid of its precision.
    Cell(Precision, i32, i32),
    /// No usable position: compared with the whole block (the distance is then neutral evidence).
    Anywhere,
}

/// A live listing as the index holds it: the fields the cheap gates read.
#[derive(Debug, Clone)]
struct Entry {
    key: SourceKey,
    /// Area in 1/100 m².
    area: i64,
    floor: Floor,
    rooms: Option<u8>,
    location: Option<Location>,
}

impl Entry {
    fn of(l: &SourceListing) -> Option<Entry> {
        Some(Entry {
            key: l.key.clone(),
            area: (l.area_m2? * 100.0).round() as i64,
            floor: l.floor,
            rooms: l.layout.rooms(),
            location: l.location,
        })
    }

    /// The cheap hard gates of `evidence`, with the same arithmetic: area (in the index's 1/100 m²),
    /// floor, rooms and distance. Region, 법정동 and lease are the block's.
    fn may_match(&self, other: &Entry) -> bool {
        let gap = (MAX_AREA_GAP * 100.0) as i64;
        if (self.area - other.area).abs() > gap || !self.floor.compatible(other.floor) {
            return false;
        }
        if let (Some(x), Some(y)) = (self.rooms, other.rooms)
            && x != y
        {
            return false;
        }
        match (&self.location, &other.location) {
            (Some(x), Some(y)) => {
                x.distance_m(y) <= x.precision.tolerance_m() + y.precision.tolerance_m()
            }
            _ => true,
        }
    }
}

type Hasher = std::hash::BuildHasherDefault<FixedHasher>;

/// The candidate index of one partition.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// (block, place) → the live listings there.
    cells: HashMap<(Block, Place), Vec<Entry>, Hasher>,
    /// Block → its places that hold entries (a listing without a position visits them all).
    places: HashMap<Block, BTreeSet<Place>, Hasher>,
    /// Where each indexed listing sits.
    placed: HashMap<SourceKey, (Block, Place), Hasher>,
}

/// The cell of a position, or `None` when it is not usable for cells.
fn cell(at: &Location) -> Option<(i32, i32)> {
    if !(at.lat.is_finite() && at.lng.is_finite()) || at.lat.abs() > MAX_LAT {
        return None;
    }
    let lat_deg = CELL_M / M_PER_DEG;
    let lng_deg = CELL_M / (M_PER_DEG * MAX_LAT.to_radians().cos());
    let (x, y) = ((at.lng / lng_deg).floor(), (at.lat / lat_deg).floor());
    let fits = |v: f64| v.abs() < f64::from(i32::MAX / 2);
    (fits(x) && fits(y)).then_some((x as i32, y as i32))
}

fn place_of(e: &Entry) -> Place {
    match e
        .location
        .as_ref()
        .and_then(|at| cell(at).map(|c| (at.precision, c)))
    {
        Some((p, (x, y))) => Place::Cell(p, x, y),
        None => Place::Anywhere,
    }
}

/// How many cells around its own a position of precision `own` must search for partners of
/// precision `other`: two positions within reach r metres lie in cells at most ⌊r / CELL_M⌋ + 1 apart.
fn reach(own: Precision, other: Precision) -> i32 {
    let r = own.tolerance_m() + other.tolerance_m();
    (r / CELL_M).floor() as i32 + 1
}

impl Candidates {
    /// Places a live listing (one without an area is never a candidate, and finds none).
    pub fn insert(&mut self, l: &SourceListing) {
        self.remove(&l.key);
        let Some(entry) = Entry::of(l) else {
            return;
        };
        let block = block_of(l);
        let place = place_of(&entry);
        self.placed.insert(entry.key.clone(), (block, place));
        self.places.entry(block).or_default().insert(place);
        self.cells.entry((block, place)).or_default().push(entry);
    }

    /// Takes a listing out, if it is in.
    pub fn remove(&mut self, key: &SourceKey) {
        let Some((block, place)) = self.placed.remove(key) else {
            return;
        };
        if let Some(entries) = self.cells.get_mut(&(block, place)) {
            if let Some(i) = entries.iter().position(|e| &e.key == key) {
                entries.swap_remove(i);
            }
            if entries.is_empty() {
                self.cells.remove(&(block, place));
                if let Some(places) = self.places.get_mut(&block) {
                    places.remove(&place);
                    if places.is_empty() {
                        self.places.remove(&block);
                    }
                }
            }
        }
    }

    /// The indexed listings `l` may be the same flat as by the cheap gates (itself excluded).
    pub fn near(&self, l: &SourceListing) -> Vec<SourceKey> {
        let mut out = Vec::new();
        let Some(me) = Entry::of(l) else {
            return out;
        };
        let block = block_of(l);
        let mut visit = |place: Place| {
            for e in self.cells.get(&(block, place)).into_iter().flatten() {
                if me.may_match(e) && e.key != me.key {
                    out.push(e.key.clone());
                }
            }
        };
        match place_of(&me) {
            Place::Anywhere => {
                for place in self.places.get(&block).into_iter().flatten() {
                    visit(*place);
                }
            }
            Place::Cell(own, x, y) => {
                visit(Place::Anywhere);
                for other in [Precision::Exact, Precision::Jittered] {
                    let r = reach(own, other);
                    for dx in -r..=r {
                        for dy in -r..=r {
                            visit(Place::Cell(other, x + dx, y + dy));
                        }
                    }
                }
            }
        }
        out
    }

    /// Listings indexed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.placed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::model::Layout;
    use crate::topics::envelope::Platform;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_listing(rng: &mut ChaCha8Rng, i: u32) -> SourceListing {
        let floors = [
            Floor::Level(1),
            Floor::Level(2),
            Floor::Level(3),
            Floor::Band(crate::process::model::FloorBand::Mid),
            Floor::SemiBasement,
            Floor::Rooftop,
            Floor::Unknown,
        ];
        let mut l = SourceListing::new(
            SourceKey {
                platform: if rng.random_bool(0.5) {
                    Platform::Zigbang
                } else {
                    Platform::Dabang
                },
                id: i.to_string(),
            },
            "",
            1000,
            if rng.random_bool(0.8) { 50 } else { 0 },
        );
        l.region_code = "11620".into();
        l.dong = [Some("신림동".to_string()), Some("봉천동".into()), None][rng.random_range(0..3)]
            .clone();
        l.area_m2 = rng.random_bool(0.95).then(|| rng.random_range(18.0..24.0));
        l.floor = floors[rng.random_range(0..floors.len())];
        l.layout = [Layout::OneRoom, Layout::TwoRoom, Layout::Unknown][rng.random_range(0..3)];
        l.location = rng.random_bool(0.9).then(|| Location {
            // About 2 km × 2 km, so that some pairs are within reach and most are not.
            lat: 37.48 + rng.random_range(0.0..0.018),
            lng: 126.93 + rng.random_range(0.0..0.023),
            precision: if rng.random_bool(0.5) {
                Precision::Exact
            } else {
                Precision::Jittered
            },
        });
        l
    }

    /// Over random listings (some without an area, a position or a 법정동; every floor and precision),
    /// inserted, moved and removed: a query returns exactly the listings of the same block that pass the
    /// cheap gates — the cells never hide a pair within reach.
    #[test]
    fn a_query_finds_exactly_the_block_members_that_pass_the_gates() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut live: HashMap<SourceKey, SourceListing> = HashMap::new();
        let mut index = Candidates::default();
        for step in 0..3000u32 {
            let i = rng.random_range(0..1500u32);
            let l = random_listing(&mut rng, i);
            if rng.random_bool(0.15) {
                live.remove(&l.key);
                index.remove(&l.key);
            } else {
                index.insert(&l);
                live.insert(l.key.clone(), l);
            }
            if step % 10 != 0 {
                continue;
            }
            let probe = random_listing(&mut rng, 100_000 + step);
            let mut found = index.near(&probe);
            found.sort();
            let mut expected: Vec<SourceKey> = match Entry::of(&probe) {
                None => Vec::new(),
                Some(me) => live
                    .values()
                    .filter(|o| block_of(o) == block_of(&probe))
                    .filter_map(Entry::of)
                    .filter(|o| me.may_match(o))
                    .map(|o| o.key)
                    .collect(),
            };
            expected.sort();
            assert_eq!(found, expected, "step {step}: {probe:?}");
        }
        assert_eq!(
            index.len(),
            live.values().filter(|l| l.area_m2.is_some()).count()
        );
    }
}
