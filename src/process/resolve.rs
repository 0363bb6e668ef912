//! resolve: the same flat listed on Zigbang and Dabang (or twice on one site) becomes one canonical
//! listing.
//!
//! Blocking: only live listings of the same region, 법정동 and lease (전세 or 월세) are ever compared,
//! and of those only the ones in nearby map cells ([`CELL_M`] m squares, per coordinate precision):
//! two positions further apart than both platforms' jitter are never the same flat, so the cells
//! searched are those within that reach. Inside a cell each entry carries what the cheap hard gates
//! read (area, floor, rooms, position), so most candidates are ruled out without looking the listing
//! up. The work per input is therefore bounded by the density of listings around it, not by the size
//! of its 동 or of the world. The index is derived from the live listings and is not checkpointed.
//! Two listings are linked when the weighted [`Evidence`] clears the threshold after hard gates
//! (floor, layout, lease, distance within both platforms' jitter, broker numbers that disagree). A
//! canonical listing is a connected component of links, so the clustering is a function of the current
//! listings alone: a change that weakens a link splits the component again, and replaying in any order
//! gives the same clusters. The canonical id is derived from the component's founder — the member first
//! seen (ties by key) — so it is stable while that member stays and identical on every replay.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::{SourceKey, SourceListing};

use super::candidates::Candidates;
pub use super::candidates::MAX_AREA_GAP;
use super::fingerprint::{FixedHasher, mix};
use super::vecmap::{VecMap, VecSet};

/// Why two source listings were judged the same flat: each component in 0..=1 and the weighted score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Distance between the two positions, metres (None when one has no coordinates).
    pub distance_m: Option<f64>,
    /// |area difference|, m².
    pub area_gap_m2: f64,
    /// Component scores.
    pub distance: f64,
    /// Area agreement.
    pub area: f64,
    /// Deposit and rent agreement.
    pub price: f64,
    /// 관리비 agreement (0.5 when one is unknown).
    pub fee: f64,
    /// Floor agreement (1 exact, 0.5 level vs band).
    pub floor: f64,
    /// Broker agreement (0.5 when one is unnamed).
    pub broker: f64,
    /// Title token overlap (Jaccard of character bigrams).
    pub title: f64,
    /// Weighted total.
    pub score: f64,
}

/// The weights of the evidence (sum 1).
const WEIGHTS: [(&str, f64); 7] = [
    ("area", 0.26),
    ("price", 0.24),
    ("distance", 0.2),
    ("fee", 0.1),
    ("floor", 0.1),
    ("broker", 0.06),
    ("title", 0.04),
];

/// Weighs the evidence that `a` and `b` are the same flat; `None` when a hard gate rules it out.
pub fn evidence(a: &SourceListing, b: &SourceListing) -> Option<Evidence> {
    weigh(a, b, f64::NEG_INFINITY)
}

/// [`evidence`], or `None` as soon as its score cannot reach `at_least` (the title, the one costly
/// component and the last in the sum, is then not compared at all).
fn weigh(a: &SourceListing, b: &SourceListing, at_least: f64) -> Option<Evidence> {
    if a.region_code != b.region_code || a.lease != b.lease {
        return None;
    }
    if let (Some(x), Some(y)) = (&a.dong, &b.dong)
        && x != y
    {
        return None;
    }
    if !a.floor.compatible(b.floor) {
        return None;
    }
    if let (Some(x), Some(y)) = (a.layout.rooms(), b.layout.rooms())
        && x != y
    {
        return None;
    }
    let area_gap = (a.area_m2? - b.area_m2?).abs();
    if area_gap > MAX_AREA_GAP {
        return None;
    }
    let (distance_m, distance) = match (&a.location, &b.location) {
        (Some(x), Some(y)) => {
            let d = x.distance_m(y);
            let tol = x.precision.tolerance_m() + y.precision.tolerance_m();
            if d > tol {
                return None;
            }
            (Some(d), 1.0 - 0.5 * d / tol)
        }
        _ => (None, 0.5),
    };
    let broker = match (&a.broker, &b.broker) {
        (Some(x), Some(y)) if x.registration_number == y.registration_number => 1.0,
        (Some(_), Some(_)) => return None,
        _ => 0.5,
    };
    let area = if area_gap <= 0.05 {
        1.0
    } else if area_gap <= 0.3 {
        0.6
    } else {
        0.2
    };
    let price = if a.deposit == b.deposit && a.rent == b.rent {
        1.0
    } else if near(a.deposit, b.deposit, 0.25) && near(a.rent, b.rent, 0.12) {
        // A price change that one platform shows a day later.
        0.5
    } else {
        0.0
    };
    let fee = match (a.fee, b.fee) {
        (Some(x), Some(y)) if (x - y).abs() <= 0.15 => 1.0,
        (Some(x), Some(y)) if (x - y).abs() <= 1.0 => 0.5,
        (Some(_), Some(_)) => 0.0,
        _ => 0.5,
    };
    let floor = if a.floor == b.floor { 1.0 } else { 0.5 };
    // The score is the weighted sum in WEIGHTS' order with the title last, so the sum of the others
    // plus the title's weight bounds it (rounding is monotonic): below `at_least`, stop here.
    let others = [area, price, distance, fee, floor, broker];
    let bound = others
        .iter()
        .zip(WEIGHTS)
        .map(|(p, (_, w))| p * w)
        .sum::<f64>()
        + WEIGHTS[6].1;
    if round3(bound) < at_least {
        return None;
    }
    let title = jaccard(&a.title, &b.title);
    let parts = [area, price, distance, fee, floor, broker, title];
    let score = parts
        .iter()
        .zip(WEIGHTS)
        .map(|(p, (_, w))| p * w)
        .sum::<f64>();
    Some(Evidence {
        distance_m: distance_m.map(|d| (d * 10.0).round() / 10.0),
        area_gap_m2: (area_gap * 100.0).round() / 100.0,
        distance: round3(distance),
        area,
        price,
        fee,
        floor,
        broker,
        title: round3(title),
        score: round3(score),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn near(a: u32, b: u32, rel: f64) -> bool {
    let (a, b) = (f64::from(a), f64::from(b));
    (a - b).abs() <= rel * a.max(b).max(1.0)
}

/// Jaccard similarity of the sets of character bigrams (letters and digits only) of two titles.
/// Bigrams are packed into `u64`s, sorted and deduplicated, and the sets met by one merge: the same
/// value as with ordered sets of char pairs, without a tree node per bigram (this ran for every
/// candidate pair and was ≈ 8 % of a replay's time).
fn jaccard(a: &str, b: &str) -> f64 {
    let grams = |s: &str| -> Vec<u64> {
        let cs: Vec<char> = s.chars().filter(|c| c.is_alphanumeric()).collect();
        let mut g: Vec<u64> = cs
            .windows(2)
            .map(|w| (u64::from(u32::from(w[0])) << 32) | u64::from(u32::from(w[1])))
            .collect();
        g.sort_unstable();
        g.dedup();
        g
    };
    let (x, y) = (grams(a), grams(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut both) = (0, 0, 0usize);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    both as f64 / (x.len() + y.len() - both) as f64
}

/// The canonical id of a component founded by `founder` in `partition`: `L` and 16 hex digits of the
/// SHA-256 of both. The partition is part of it because each partition publishes its listings with
/// clocks of its own, which do not compare with another's: a flat that moves into a region another
/// partition owns (its observations re-geocoded) becomes a listing of that partition, under another
/// id, while its old partition ends the one it held. Were the id the same, the old partition's
/// tombstone and the new one's upsert would share a key of `listings.v1`, and the sinks' rule (the
/// newest clock wins) and the topic's compaction (the last record wins) could disagree about it.
pub fn canonical_id(partition: i32, founder: &SourceKey) -> String {
    let digest = Sha256::digest(format!("{partition}/{founder}").as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("L{hex}")
}

/// The clustering of one partition's live source listings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Clusters {
    /// Every live listing with an area, by block and map cell: derived from the live listings, so not
    /// checkpointed — a restore rebuilds it ([`Clusters::reindex`]).
    #[serde(skip)]
    index: Candidates,
    /// Pairs (hashed) of live listings whose link the evidence took away: a link that comes back is a
    /// flap. Run-time only, for the metric.
    #[serde(skip)]
    unlinked: std::collections::HashSet<u64, std::hash::BuildHasherDefault<FixedHasher>>,
    /// Links, both directions.
    edges: BTreeMap<SourceKey, VecMap<SourceKey, Evidence>>,
    /// Source listing → canonical id.
    pub of: BTreeMap<SourceKey, String>,
    /// Canonical id → members.
    pub members: BTreeMap<String, VecSet<SourceKey>>,
}

/// Lost links remembered for the flap count, at most (8 bytes each, and the table's slack).
const MAX_UNLINKED: usize = 1 << 20;

/// Two clusterings are equal when their links and components are: the candidate index is derived.
impl PartialEq for Clusters {
    fn eq(&self, other: &Self) -> bool {
        (&self.edges, &self.of, &self.members) == (&other.edges, &other.of, &other.members)
    }
}

/// What a call to [`Clusters::update`] changed.
#[derive(Debug, Default)]
pub struct Touched {
    /// Canonical ids whose members or evidence may have changed (they exist now).
    pub live: BTreeSet<String>,
    /// Canonical ids that no longer exist.
    pub ended: BTreeSet<String>,
    /// Components that split.
    pub splits: u64,
    /// Components that merged.
    pub merges: u64,
    /// Links that came back after evidence had taken them away, both listings live all along.
    pub flaps: u64,
}

impl Clusters {
    /// Re-links `key` after its listing changed (`listing` None: it is no longer live) and recomputes
    /// the components around it. `first_seen` and `lookup` give the other listings' data.
    pub fn update<'a>(
        &mut self,
        partition: i32,
        key: &SourceKey,
        listing: Option<&SourceListing>,
        lookup: &dyn Fn(&SourceKey) -> Option<(&'a SourceListing, i64)>,
        threshold: f64,
        touched: &mut Touched,
    ) {
        // Unlink.
        let mut affected: BTreeSet<SourceKey> = BTreeSet::new();
        affected.insert(key.clone());
        let old = self.edges.remove(key).unwrap_or_default();
        for other in old.keys() {
            if let Some(e) = self.edges.get_mut(other) {
                e.remove(key);
                if e.is_empty() {
                    self.edges.remove(other);
                }
            }
            affected.insert(other.clone());
        }
        self.index.remove(key);
        // Re-link.
        if let Some(l) = listing {
            for other in self.index.near(l) {
                let Some((ol, _)) = lookup(&other) else {
                    continue;
                };
                if let Some(ev) = weigh(l, ol, threshold).filter(|e| e.score >= threshold) {
                    self.edges
                        .entry(key.clone())
                        .or_default()
                        .insert(other.clone(), ev.clone());
                    self.edges
                        .entry(other.clone())
                        .or_default()
                        .insert(key.clone(), ev);
                    affected.insert(other);
                }
            }
            self.index.insert(l);
        }
        self.count_flaps(key, listing.is_some(), &old, lookup, touched);
        // The components the affected listings were in (old neighbours' and new neighbours' alike): each
        // is recomputed below, or ends.
        let old_components: BTreeSet<String> = affected
            .iter()
            .filter_map(|k| self.of.get(k).cloned())
            .collect();
        // Recompute the components that contain an affected listing.
        let mut seen: BTreeSet<SourceKey> = BTreeSet::new();
        let mut new_components = 0u64;
        for start in &affected {
            if seen.contains(start) {
                continue;
            }
            let live = start == key && listing.is_some() || start != key && lookup(start).is_some();
            if !live {
                seen.insert(start.clone());
                continue;
            }
            let mut component = BTreeSet::new();
            let mut stack = vec![start.clone()];
            while let Some(k) = stack.pop() {
                if !component.insert(k.clone()) {
                    continue;
                }
                if let Some(e) = self.edges.get(&k) {
                    stack.extend(e.keys().filter(|n| !component.contains(*n)).cloned());
                }
            }
            let founder = component
                .iter()
                .min_by_key(|k| (lookup(k).map_or(i64::MAX, |(_, first)| first), (*k).clone()))
                .cloned()
                .unwrap_or_else(|| start.clone());
            let id = canonical_id(partition, &founder);
            let previous: BTreeSet<&String> =
                component.iter().filter_map(|k| self.of.get(k)).collect();
            if previous.len() > 1 {
                touched.merges += 1;
            }
            for k in &component {
                self.of.insert(k.clone(), id.clone());
            }
            self.members
                .insert(id.clone(), component.iter().cloned().collect());
            seen.extend(component);
            touched.live.insert(id);
            new_components += 1;
        }
        if listing.is_none() {
            self.of.remove(key);
        }
        // Old components: drop the ids no listing points to any more, trim the rest.
        for id in old_components {
            let still: VecSet<SourceKey> = self
                .members
                .get(&id)
                .map(|m| {
                    m.iter()
                        .filter(|k| self.of.get(*k) == Some(&id))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            if still.is_empty() {
                self.members.remove(&id);
                if !touched.live.contains(&id) {
                    touched.ended.insert(id);
                }
            } else {
                self.members.insert(id.clone(), still);
                touched.live.insert(id);
            }
        }
        if new_components > 1 {
            touched.splits += new_components - 1;
        }
    }

    /// Counts the links `key` regained that evidence had taken away while both listings stayed live
    /// (a flap: linked, unlinked, linked again), and remembers the ones it lost now.
    fn count_flaps<'a>(
        &mut self,
        key: &SourceKey,
        live: bool,
        old: &VecMap<SourceKey, Evidence>,
        lookup: &dyn Fn(&SourceKey) -> Option<(&'a SourceListing, i64)>,
        touched: &mut Touched,
    ) {
        let pair = |a: &SourceKey, b: &SourceKey| {
            let (x, y) = if a < b { (a, b) } else { (b, a) };
            let h = mix(mix(0, x.to_string().as_bytes()), y.to_string().as_bytes());
            mix(h, &[0xfe])
        };
        let now = self.edges.get(key);
        for other in now.into_iter().flat_map(|e| e.keys()) {
            if !old.contains_key(other) && self.unlinked.remove(&pair(key, other)) {
                touched.flaps += 1;
            }
        }
        if live {
            for other in old.keys() {
                if !now.is_some_and(|e| e.contains_key(other)) && lookup(other).is_some() {
                    if self.unlinked.len() >= MAX_UNLINKED {
                        // Links that never came back: forget them rather than grow without bound
                        // (the metric may then miss a flap of a very old link).
                        self.unlinked.clear();
                    }
                    self.unlinked.insert(pair(key, other));
                }
            }
        }
    }

    /// The links among a component's members (each once).
    pub fn links(&self, id: &str) -> Vec<(&SourceKey, &SourceKey, &Evidence)> {
        let Some(members) = self.members.get(id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in members {
            if let Some(e) = self.edges.get(a) {
                out.extend(e.iter().filter(|(b, _)| a < *b).map(|(b, ev)| (a, b, ev)));
            }
        }
        out
    }

    /// A clustering from its links and components (a checkpoint migration); the candidate index is
    /// rebuilt when a partition is owned ([`Clusters::reindex`]).
    pub fn from_parts(
        edges: BTreeMap<SourceKey, VecMap<SourceKey, Evidence>>,
        of: BTreeMap<SourceKey, String>,
        members: BTreeMap<String, VecSet<SourceKey>>,
    ) -> Clusters {
        Clusters {
            index: Candidates::default(),
            unlinked: Default::default(),
            edges,
            of,
            members,
        }
    }

    /// Rebuilds the candidate index from the live listings (after a restore: it is not checkpointed).
    /// Whether a listing is in it, and where, depends only on the listing, so this equals the index
    /// the updates built.
    pub fn reindex<'a>(&mut self, live: impl IntoIterator<Item = &'a SourceListing>) {
        self.index = Candidates::default();
        for l in live {
            self.index.insert(l);
        }
    }

    /// Rebuilds nothing but checks that every live member has a component: for tests.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no canonical listings.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_similarity_is_the_jaccard_of_bigram_sets() {
        let reference = |a: &str, b: &str| -> f64 {
            let grams = |s: &str| -> BTreeSet<(char, char)> {
                let cs: Vec<char> = s.chars().filter(|c| c.is_alphanumeric()).collect();
                cs.windows(2).map(|w| (w[0], w[1])).collect()
            };
            let (x, y) = (grams(a), grams(b));
            if x.is_empty() || y.is_empty() {
                return 0.0;
            }
            x.intersection(&y).count() as f64 / x.union(&y).count() as f64
        };
        let titles = [
            "신축 풀옵션 원룸, 역세권 5분",
            "역세권 풀옵션 원룸",
            "풀옵션풀옵션 원룸 원룸!!",
            "",
            "a",
            "Sunny 1.5룸 near 신림역 (no fee)",
        ];
        for a in titles {
            for b in titles {
                assert_eq!(jaccard(a, b), reference(a, b), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(jaccard(titles[0], titles[0]), 1.0);
    }
    use crate::process::model::{Floor, Layout, Location, Precision};
    use crate::topics::envelope::Platform;

    fn flat(
        platform: Platform,
        id: &str,
        area: f64,
        lat: f64,
        precision: Precision,
    ) -> SourceListing {
        SourceListing {
            fee: Some(7.0),
            area_m2: Some(area),
            floor: Floor::Level(2),
            layout: Layout::OneRoom,
            region_code: "11620".into(),
            dong: Some("신림동".into()),
            location: Some(Location {
                lat,
                lng: 126.93,
                precision,
            }),
            title: "신림 원룸".into(),
            ..SourceListing::new(
                SourceKey {
                    platform,
                    id: id.into(),
                },
                "",
                1000,
                50,
            )
        }
    }

    #[test]
    fn the_same_flat_merges_and_splits_again_when_the_evidence_goes() {
        let z = flat(Platform::Zigbang, "1", 19.81, 37.4800, Precision::Exact);
        let d = flat(Platform::Dabang, "a", 19.81, 37.4809, Precision::Jittered);
        let other = flat(Platform::Dabang, "b", 19.9, 37.4900, Precision::Jittered);
        let mut data: BTreeMap<SourceKey, (SourceListing, i64)> = BTreeMap::new();
        for (l, first) in [(z.clone(), 1), (d.clone(), 2), (other.clone(), 3)] {
            data.insert(l.key.clone(), (l, first));
        }
        let mut c = Clusters::default();
        for k in data.keys().cloned().collect::<Vec<_>>() {
            let snapshot = data.clone();
            let lookup = |k: &SourceKey| snapshot.get(k).map(|(l, f)| (l, *f));
            let mut t = Touched::default();
            c.update(0, &k, Some(&data[&k].0), &lookup, 0.72, &mut t);
        }
        assert_eq!(
            c.of[&z.key], c.of[&d.key],
            "Zigbang and Dabang listings of one flat merge"
        );
        assert_eq!(
            c.of[&z.key],
            canonical_id(0, &z.key),
            "the id comes from the first-seen member"
        );
        assert_ne!(c.of[&other.key], c.of[&z.key], "a flat 1 km away does not");
        let ev = &c.links(&c.of[&z.key])[0].2;
        assert!(
            ev.score >= 0.72 && ev.area == 1.0 && ev.distance_m.is_some_and(|m| m < 120.0),
            "{ev:?}"
        );

        // The Dabang listing's area is corrected to another flat's: the merge comes apart.
        let mut moved = d.clone();
        moved.area_m2 = Some(24.0);
        data.insert(d.key.clone(), (moved.clone(), 2));
        let snapshot = data.clone();
        let lookup = |k: &SourceKey| snapshot.get(k).map(|(l, f)| (l, *f));
        let mut t = Touched::default();
        c.update(0, &d.key, Some(&moved), &lookup, 0.72, &mut t);
        assert_ne!(c.of[&z.key], c.of[&d.key]);
        assert_eq!(c.of[&d.key], canonical_id(0, &d.key));
        assert!(
            t.live.contains(&canonical_id(0, &z.key)) && t.live.contains(&canonical_id(0, &d.key)),
            "{t:?}"
        );
        assert_eq!(c.len(), 3);
    }

    /// A link that the evidence takes away and gives back, both listings live, is one flap; a link
    /// lost because a listing left the market is not.
    #[test]
    fn a_link_that_comes_back_is_a_flap() {
        let z = flat(Platform::Zigbang, "1", 19.81, 37.4800, Precision::Exact);
        let d = flat(Platform::Dabang, "a", 19.81, 37.4809, Precision::Jittered);
        let mut data: BTreeMap<SourceKey, (SourceListing, i64)> = BTreeMap::new();
        data.insert(z.key.clone(), (z.clone(), 1));
        data.insert(d.key.clone(), (d.clone(), 2));
        fn put(
            c: &mut Clusters,
            data: &BTreeMap<SourceKey, (SourceListing, i64)>,
            key: &SourceKey,
        ) -> u64 {
            let lookup = |k: &SourceKey| data.get(k).map(|(l, f)| (l, *f));
            let mut t = Touched::default();
            c.update(0, key, data.get(key).map(|(l, _)| l), &lookup, 0.72, &mut t);
            t.flaps
        }
        let mut c = Clusters::default();
        let mut flaps = put(&mut c, &data, &z.key) + put(&mut c, &data, &d.key);
        assert_eq!(c.of[&z.key], c.of[&d.key]);
        // Dabang's copy jumps to another price: the link goes, both stay live.
        let mut far = d.clone();
        far.deposit = 5000;
        far.rent = 20;
        data.insert(d.key.clone(), (far, 2));
        flaps += put(&mut c, &data, &d.key);
        assert_ne!(c.of[&z.key], c.of[&d.key]);
        // …and back: the link returns, a flap.
        data.insert(d.key.clone(), (d.clone(), 2));
        flaps += put(&mut c, &data, &d.key);
        assert_eq!(c.of[&z.key], c.of[&d.key]);
        // Dabang's copy leaves the market and comes back: no flap.
        let gone = data.remove(&d.key);
        flaps += put(&mut c, &data, &d.key);
        data.insert(d.key.clone(), gone.expect("there"));
        flaps += put(&mut c, &data, &d.key);
        assert_eq!(c.of[&z.key], c.of[&d.key]);
        assert_eq!(flaps, 1);
    }
}
