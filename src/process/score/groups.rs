//! Per-시군구 and per-법정동 aggregates — count, median monthly cost, median cost per m² — kept exact
//! under inserts *and* deletions: each group holds its values as a sorted multiset, so a median is a
//! lookup, and removing a listing restores exactly what the group was without it. (A running median
//! estimate, or a sum of floats, would drift from the batch answer; this cannot.)

use std::collections::HashMap;

/// Values kept sorted (by `total_cmp`), duplicates allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Multiset(Vec<f64>);

impl Multiset {
    /// Adds a value.
    pub fn insert(&mut self, v: f64) {
        let at = self.0.partition_point(|x| x.total_cmp(&v).is_lt());
        self.0.insert(at, v);
    }

    /// Removes one copy of a value; false if it was not there.
    pub fn remove(&mut self, v: f64) -> bool {
        let at = self.0.partition_point(|x| x.total_cmp(&v).is_lt());
        if self.0.get(at).is_some_and(|x| x.total_cmp(&v).is_eq()) {
            self.0.remove(at);
            true
        } else {
            false
        }
    }

    /// A multiset of the given values (sorted once: a bulk load, not n inserts).
    pub fn from_values(mut v: Vec<f64>) -> Multiset {
        v.sort_by(f64::total_cmp);
        Multiset(v)
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The median (the mean of the two middle values for an even count), as SQL's `median` gives it.
    pub fn median(&self) -> Option<f64> {
        let n = self.0.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.0[n / 2]),
            _ => Some((self.0[n / 2 - 1] + self.0[n / 2]) / 2.0),
        }
    }
}

/// One group's values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Monthly costs of its listings.
    pub cost: Multiset,
    /// Monthly costs per m² (listings with a known area).
    pub cost_m2: Multiset,
}

/// The aggregates of one partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Groups {
    /// By 시군구 code.
    pub gu: HashMap<String, Group>,
    /// By 법정동 key.
    pub dong: HashMap<String, Group>,
}

/// A group's figures, as the API and `queries/group_stats.sql` give them.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// `gu` or `dong`.
    pub level: &'static str,
    /// The group key.
    pub group: String,
    /// Listings.
    pub listings: usize,
    /// Median monthly cost.
    pub median_cost: Option<f64>,
    /// Median monthly cost per m².
    pub median_cost_m2: Option<f64>,
}

impl Groups {
    /// Adds (`add`) or removes a listing's values.
    pub fn apply(&mut self, gu: &str, dong: &str, cost: f64, cost_m2: Option<f64>, add: bool) {
        let one = |g: &mut Group| {
            if add {
                g.cost.insert(cost);
                if let Some(c) = cost_m2 {
                    g.cost_m2.insert(c);
                }
            } else {
                g.cost.remove(cost);
                if let Some(c) = cost_m2 {
                    g.cost_m2.remove(c);
                }
            }
        };
        one(self.gu.entry(gu.to_string()).or_default());
        if !dong.is_empty() {
            one(self.dong.entry(dong.to_string()).or_default());
        }
        if !add {
            if self.gu.get(gu).is_some_and(|g| g.cost.is_empty()) {
                self.gu.remove(gu);
            }
            if self.dong.get(dong).is_some_and(|g| g.cost.is_empty()) {
                self.dong.remove(dong);
            }
        }
    }

    /// The aggregates of a whole set of (gu, dong, cost, cost per m²) at once.
    pub fn build<'a>(rows: impl Iterator<Item = (&'a str, &'a str, f64, Option<f64>)>) -> Groups {
        type Raw = HashMap<String, (Vec<f64>, Vec<f64>)>;
        let (mut gu, mut dong): (Raw, Raw) = Default::default();
        for (g, d, cost, m2) in rows {
            let push = |map: &mut Raw, key: &str| {
                let e = map.entry(key.to_string()).or_default();
                e.0.push(cost);
                e.1.extend(m2);
            };
            push(&mut gu, g);
            if !d.is_empty() {
                push(&mut dong, d);
            }
        }
        let done = |raw: Raw| {
            raw.into_iter()
                .map(|(k, (c, m))| {
                    (
                        k,
                        Group {
                            cost: Multiset::from_values(c),
                            cost_m2: Multiset::from_values(m),
                        },
                    )
                })
                .collect()
        };
        Groups {
            gu: done(gu),
            dong: done(dong),
        }
    }

    /// Every group's figures, sorted by (level, group).
    pub fn stats(&self) -> Vec<GroupStats> {
        let mut out: Vec<GroupStats> = [("dong", &self.dong), ("gu", &self.gu)]
            .into_iter()
            .flat_map(|(level, map)| {
                map.iter().map(move |(k, g)| GroupStats {
                    level,
                    group: k.clone(),
                    listings: g.cost.len(),
                    median_cost: g.cost.median(),
                    median_cost_m2: g.cost_m2.median(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.level, &a.group).cmp(&(b.level, &b.group)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_survive_deletions_exactly() {
        let mut m = Multiset::default();
        for v in [5.0, 1.0, 3.0, 3.0, 9.0] {
            m.insert(v);
        }
        assert_eq!(m.median(), Some(3.0));
        assert!(m.remove(9.0));
        assert!(!m.remove(4.0), "absent values are not removed");
        assert_eq!(m.median(), Some(3.0));
        assert!(m.remove(1.0));
        assert_eq!(m.median(), Some(3.0));
        assert!(m.remove(3.0));
        assert_eq!(
            m.median(),
            Some(4.0),
            "even count: the mean of the two middle values"
        );
        let mut g = Groups::default();
        g.apply("11620", "a", 50.0, Some(2.0), true);
        g.apply("11620", "a", 50.0, Some(2.0), false);
        assert!(
            g.gu.is_empty() && g.dong.is_empty(),
            "an emptied group is gone"
        );
    }
}
