//! Place names → keys: Seoul's 25 구 (fixed) and the (구, 동) pairs that have listings (from
//! `listings`, reloaded at most every [`Directory::MAX_AGE`]), so that `gu=마포구`, `dong=신사동` and
//! the free text `place=서울 잠실, 마포구` become indexed lookups. A 동 is keyed by its 구's code and its
//! name, not its 법정동 code: half the listings (Zigbang's) carry the name only.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Pool, Sql};
use tokio::sync::RwLock;

use crate::region::SEOUL_GU;

/// Words of a place that name no region ("서울 마포구" means 마포구).
const IGNORED: [&str; 4] = ["서울", "서울시", "서울특별시", "seoul"];

/// A (시군구 code, 동 name) pair: how a 동 is keyed.
pub type DongKey = (String, String);

/// Where a filter lets listings be: any of these 구, 법정동 codes or (구, 동) pairs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlaceSet {
    /// 5-digit 시군구 codes.
    pub gus: BTreeSet<String>,
    /// 10-digit 법정동 codes.
    pub codes: BTreeSet<String>,
    /// (구, 동) pairs.
    pub dongs: BTreeSet<DongKey>,
}

impl PlaceSet {
    /// Nothing resolved: the filter matches no listing.
    pub fn is_empty(&self) -> bool {
        self.gus.is_empty() && self.codes.is_empty() && self.dongs.is_empty()
    }
}

/// The region names the API resolves.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// (시군구 code, 동 name).
    dongs: Vec<DongKey>,
}

impl Directory {
    /// How stale the (구, 동) list may get: a 동's first listing is found by name this much later.
    pub const MAX_AGE: Duration = Duration::from_secs(30);

    /// A directory over these (시군구 code, 동 name) pairs (tests; [`DirectoryCache`] loads the real
    /// one).
    pub fn with_dongs(dongs: Vec<DongKey>) -> Directory {
        Directory { dongs }
    }

    /// The 시군구 code of a 구 given by code or name (`마포구`, `11440`, also `마포`), or the unknown
    /// region `00000`.
    pub fn gu_code(&self, v: &str) -> Option<String> {
        if v == crate::region::UNKNOWN {
            return Some(v.into());
        }
        SEOUL_GU
            .iter()
            .find(|(code, name)| *code == v || *name == v || name.strip_suffix('구') == Some(v))
            .map(|(code, _)| code.to_string())
    }

    /// The (구 code, 동 name) pairs of a 동 name (several 구 can have a 동 of the same name).
    pub fn dongs_named(&self, name: &str) -> Vec<DongKey> {
        self.dongs
            .iter()
            .filter(|(_, n)| n == name)
            .cloned()
            .collect()
    }

    /// Free text → the places it names, and the words that matched nothing. Comma-separated parts are
    /// alternatives; the words of one part all apply (`강남구 신사동` is 신사동 of 강남구). A word
    /// matches a 구 or 동 whose name contains it (`잠실` → 잠실동, 잠실본동).
    pub fn resolve_place(&self, text: &str) -> (PlaceSet, Vec<String>) {
        let (mut found, mut unmatched) = (PlaceSet::default(), Vec::new());
        for part in text.split(',') {
            let mut gu_set: Option<BTreeSet<String>> = None;
            let mut dong_set: Option<BTreeSet<DongKey>> = None;
            let mut ok = true;
            for word in part.split_whitespace() {
                if IGNORED.contains(&word.to_lowercase().as_str()) {
                    continue;
                }
                let g: BTreeSet<String> = SEOUL_GU
                    .iter()
                    .filter(|(code, name)| *code == word || name.contains(word))
                    .map(|(code, _)| code.to_string())
                    .collect();
                if !g.is_empty() {
                    gu_set = Some(match gu_set {
                        Some(s) => s.intersection(&g).cloned().collect(),
                        None => g,
                    });
                    continue;
                }
                let d: BTreeSet<DongKey> = self
                    .dongs
                    .iter()
                    .filter(|(_, name)| name.contains(word))
                    .cloned()
                    .collect();
                if d.is_empty() {
                    unmatched.push(super::params::truncate(word));
                    ok = false;
                    continue;
                }
                dong_set = Some(match dong_set {
                    Some(s) => s.intersection(&d).cloned().collect(),
                    None => d,
                });
            }
            if !ok {
                continue;
            }
            match (gu_set, dong_set) {
                (Some(g), Some(d)) => found
                    .dongs
                    .extend(d.into_iter().filter(|(gu, _)| g.contains(gu))),
                (None, Some(d)) => found.dongs.extend(d),
                (Some(g), None) => found.gus.extend(g),
                (None, None) => {}
            }
        }
        (found, unmatched)
    }
}

/// The directory, loaded from the database on first use and again once older than
/// [`Directory::MAX_AGE`]; a failed reload keeps the old one.
#[derive(Debug, Default)]
pub struct DirectoryCache {
    slot: RwLock<Option<(Instant, Arc<Directory>)>>,
}

impl DirectoryCache {
    /// The current directory.
    pub async fn get(&self, pool: &Pool) -> Result<Arc<Directory>, sqlx::Error> {
        if let Some((at, dir)) = &*self.slot.read().await
            && at.elapsed() < Directory::MAX_AGE
        {
            return Ok(dir.clone());
        }
        let mut slot = self.slot.write().await;
        if let Some((at, dir)) = &*slot
            && at.elapsed() < Directory::MAX_AGE
        {
            return Ok(dir.clone());
        }
        match pool
            .fetch_all::<(String, String)>(&Sql::new(
                "SELECT DISTINCT region_code, dong FROM listings WHERE dong IS NOT NULL",
            ))
            .await
        {
            Ok(rows) => {
                let dir = Arc::new(Directory::with_dongs(rows));
                *slot = Some((Instant::now(), dir.clone()));
                Ok(dir)
            }
            Err(e) => match &*slot {
                Some((_, old)) => {
                    tracing::warn!(error = %e, "Keeping the old 법정동 directory.");
                    Ok(old.clone())
                }
                None => Err(e),
            },
        }
    }
}
