//! The fuzz targets' entry points ([`roomstream::fuzz`]) in every test run: each over its seed corpus —
//! the simulator's records and payloads, a registry file, published listings, and the real fixtures
//! where they are present — and over deterministic mutations of those seeds (bit flips, truncations,
//! splices, repeated and inserted bytes). None may panic. The seeds are also written to
//! `target/fuzz-seeds/<target>/`, where `scripts/fuzz.sh` starts libFuzzer from them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use roomstream::kafka::MemorySink;
use roomstream::topics::TopicKind;

/// Mutations per target in a test run.
const MUTATIONS: usize = 20_000;

/// The seeds of every target.
fn seeds() -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let mut sink = MemorySink::default();
    {
        let mut emitter = roomstream::crawl::Emitter::new(&mut sink, None);
        let args = roomstream::crawl::synthetic::SyntheticArgs {
            listings: 150,
            days: 2,
            seed: 5,
            rate: None,
            truth: None,
        };
        roomstream::crawl::synthetic::run(&args, &mut emitter).expect("feed");
        if let Some(dir) = crate::support::real_fixtures() {
            roomstream::crawl::fixtures::emit_all(&dir, &mut emitter).expect("fixtures");
        }
        emitter.finish().expect("finish");
    }
    let mut out: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut add = |t: &'static str, v: Vec<u8>| out.entry(t).or_default().push(v);
    let topic_byte = |t: TopicKind| match t {
        TopicKind::Observed => 0u8,
        TopicKind::Sweeps => 1,
        _ => 2,
    };
    let mut strings = std::collections::BTreeSet::new();
    for (i, (t, k, v)) in sink.records.iter().enumerate() {
        // Every fifth record of the simulator (all of the fixtures'), to keep the corpus small.
        if i % 5 != 0 && *t != TopicKind::Observed {
            continue;
        }
        let mut r = vec![topic_byte(*t)];
        r.extend_from_slice(k.as_bytes());
        r.push(b'\n');
        r.extend_from_slice(v);
        add("record", r);
        if *t == TopicKind::Observed
            && let Ok(obs) = serde_json::from_slice::<serde_json::Value>(v)
        {
            add("payload", obs["payload"].to_string().into_bytes());
            if let Some(fields) = obs["payload"].as_object() {
                for f in fields.values() {
                    if let Some(s) = f.as_str()
                        && strings.len() < 2000
                    {
                        strings.insert(s.to_string());
                    }
                }
            }
        }
    }
    for s in strings {
        add("fields", s.into_bytes());
    }
    let csv = crate::crawl_vworld::registry(40);
    add("registry", crate::crawl_vworld::zipped_euc_kr(&csv));
    add("registry", csv.into_bytes());
    for (_, _, value, _) in crate::sink::published_records().into_iter().take(300) {
        add("listing", value.unwrap_or_default());
    }
    out
}

/// One mutation of `seed` (another seed of the target for splices).
fn mutate(rng: &mut impl Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let n = v.len();
        match rng.random_range(0..6) {
            0 if n > 0 => {
                let i = rng.random_range(0..n);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if n > 0 => v.truncate(rng.random_range(0..n)),
            2 => {
                let i = rng.random_range(0..=n);
                let at = rng.random_range(0..=other.len());
                v.splice(i..i, other[at..].iter().take(64).copied());
            }
            3 if n > 0 => {
                let i = rng.random_range(0..n);
                let b = v[i];
                v.splice(i..i, std::iter::repeat_n(b, rng.random_range(1..500)));
            }
            4 => {
                let i = rng.random_range(0..=n);
                let junk: &[u8] = [
                    &b"\xff\xfe"[..],
                    b"\"",
                    b"{",
                    b"]",
                    b"-1e309",
                    b"\\u0000",
                    b"99999999999999999999",
                    b"\xed\xa0\x80",
                ][rng.random_range(0..8)];
                v.splice(i..i, junk.iter().copied());
            }
            _ if n > 1 => {
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                v.swap(a, b);
            }
            _ => {}
        }
    }
    v
}

#[test]
fn no_fuzz_target_panics_on_its_seeds_or_their_mutations() {
    let seeds = seeds();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-seeds");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for (name, target) in roomstream::fuzz::TARGETS {
        let corpus = seeds
            .get(name)
            .unwrap_or_else(|| panic!("no seeds for {name}"));
        assert!(!corpus.is_empty(), "{name}: seeds");
        let out = dir.join(name);
        let _ = std::fs::create_dir_all(&out);
        for (i, s) in corpus.iter().enumerate() {
            let _ = std::fs::write(out.join(format!("seed-{i:05}")), s);
            target(s);
        }
        for _ in 0..MUTATIONS {
            let a = &corpus[rng.random_range(0..corpus.len())];
            let b = &corpus[rng.random_range(0..corpus.len())];
            let m = mutate(&mut rng, a, b);
            let caught = std::panic::catch_unwind(|| target(&m));
            if caught.is_err() {
                let path = out.join("crash");
                let _ = std::fs::write(&path, &m);
                panic!(
                    "{name} panicked on {} bytes (written to {})",
                    m.len(),
                    path.display()
                );
            }
        }
        println!(
            "{name}: {} seeds + {MUTATIONS} mutations, no panic",
            corpus.len()
        );
    }
}
