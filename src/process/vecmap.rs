//! Small sorted maps and sets kept in one vector: what the processor holds per listing (a listing's
//! links, a canonical listing's members, the listings that show one photo) has one to a few entries,
//! where a `BTreeMap` or `BTreeSet` allocates a node for eleven. They serialize exactly as the ordered
//! map and set they replace (a map, a sequence, in key order), so a checkpoint's bytes do not change.

use std::fmt;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, Serializer};

/// A set of a few keys, sorted.
#[derive(Clone, PartialEq, Eq)]
pub struct VecSet<K>(Vec<K>);

impl<K> Default for VecSet<K> {
    fn default() -> Self {
        VecSet(Vec::new())
    }
}

impl<K: Ord> VecSet<K> {
    /// Adds `k`; whether it was not there.
    pub fn insert(&mut self, k: K) -> bool {
        match self.0.binary_search(&k) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, k);
                true
            }
        }
    }

    /// Takes `k` out; whether it was there.
    pub fn remove(&mut self, k: &K) -> bool {
        match self.0.binary_search(k) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `k` is in.
    pub fn contains(&self, k: &K) -> bool {
        self.0.binary_search(k).is_ok()
    }
}

impl<K> VecSet<K> {
    /// The keys in order.
    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord> FromIterator<K> for VecSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        let mut v: Vec<K> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        v.shrink_to_fit();
        VecSet(v)
    }
}

impl<'a, K> IntoIterator for &'a VecSet<K> {
    type Item = &'a K;
    type IntoIter = std::slice::Iter<'a, K>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<K: fmt::Debug> fmt::Debug for VecSet<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(&self.0).finish()
    }
}

impl<K: Serialize> Serialize for VecSet<K> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(&self.0)
    }
}

impl<'de, K: Deserialize<'de> + Ord> Deserialize<'de> for VecSet<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<K>::deserialize(d)?.into_iter().collect())
    }
}

/// A map of a few keys, sorted by key.
#[derive(Clone, PartialEq)]
pub struct VecMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap(Vec::new())
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find(&self, k: &K) -> Result<usize, usize> {
        self.0.binary_search_by(|(x, _)| x.cmp(k))
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        self.find(k).ok().map(|at| &self.0[at].1)
    }

    /// Sets `k` to `v`; the value it had.
    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(at) => Some(std::mem::replace(&mut self.0[at].1, v)),
            Err(at) => {
                self.0.insert(at, (k, v));
                None
            }
        }
    }

    /// Takes `k` out; its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.find(k).ok().map(|at| self.0.remove(at).1)
    }

    /// Whether `k` is in.
    pub fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_ok()
    }
}

impl<K, V> VecMap<K, V> {
    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord, V> From<std::collections::BTreeMap<K, V>> for VecMap<K, V> {
    fn from(m: std::collections::BTreeMap<K, V>) -> Self {
        VecMap(m.into_iter().collect())
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for VecMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Serialize, V: Serialize> Serialize for VecMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> Deserialize<'de> for VecMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(std::collections::BTreeMap::<K, V>::deserialize(d)?.into())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Random operations on a VecMap and a VecSet against BTreeMap and BTreeSet: the same contents,
    /// and the same postcard bytes.
    #[test]
    fn they_behave_and_serialize_as_the_ordered_collections() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (mut m, mut bm) = (VecMap::default(), BTreeMap::new());
        let (mut s, mut bs) = (VecSet::default(), BTreeSet::new());
        for _ in 0..2000 {
            let k = rng.random_range(0..40u32).to_string();
            let v = rng.random_range(0..1000u32);
            match rng.random_range(0..3) {
                0 => assert_eq!(m.insert(k.clone(), v), bm.insert(k.clone(), v)),
                1 => assert_eq!(m.remove(&k), bm.remove(&k)),
                _ => assert_eq!(m.get(&k), bm.get(&k)),
            }
            match rng.random_range(0..3) {
                0 => assert_eq!(s.insert(k.clone()), bs.insert(k.clone())),
                1 => assert_eq!(s.remove(&k), bs.remove(&k)),
                _ => assert_eq!(s.contains(&k), bs.contains(&k)),
            }
            assert!(m.iter().eq(bm.iter()) && s.iter().eq(bs.iter()));
        }
        let bytes = postcard::to_allocvec(&m).expect("map");
        assert_eq!(bytes, postcard::to_allocvec(&bm).expect("btree map"));
        assert_eq!(
            postcard::from_bytes::<VecMap<String, u32>>(&bytes).expect("back"),
            m
        );
        let bytes = postcard::to_allocvec(&s).expect("set");
        assert_eq!(bytes, postcard::to_allocvec(&bs).expect("btree set"));
        assert_eq!(
            postcard::from_bytes::<VecSet<String>>(&bytes).expect("back"),
            s
        );
    }
}
