//! Fingerprints: the fixed hash every digest in the state is built with, the digests themselves, and
//! the borrowed envelope that lets [`super::engine`] recognize a re-sighting without parsing its payload.
//!
//! Digests live in checkpoints and decide what is republished, so the hash must never change with a
//! compiler or library release — hence not `std`'s hasher.

use super::detect::SourceState;
use super::model::SourceListing;

/// A hasher with fixed keys (the FxHash mix): the same on every run and build, and fast on short keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedHasher(u64);

impl std::hash::Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = mix(self.0, bytes);
    }
}

/// Bump when `normalize` changes what it makes of a payload: raw digests stored under another version
/// no longer match, so a restored state re-parses re-sighted payloads instead of keeping the old reading.
pub const NORMALIZE_VERSION: u64 = 1;

/// The envelope of an observation with the payload left as raw bytes: enough to recognize a re-sighting
/// without parsing (or even validating) the payload.
pub struct Envelope<'a> {
    /// Every field but the payload.
    pub head: Head,
    /// The payload's bytes, not validated.
    pub payload: &'a [u8],
}

/// Every envelope field but the payload.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    #[allow(dead_code)]
    schema: serde::de::IgnoredAny,
    pub source: crate::topics::envelope::Source,
    pub platform: crate::topics::envelope::Platform,
    pub source_listing_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: time::OffsetDateTime,
    pub crawl_id: String,
    pub region_code: String,
    pub payload_format: crate::topics::envelope::PayloadFormat,
}

impl<'a> Envelope<'a> {
    /// Splits `{…head…,"payload":<payload>}` — the layout `Observation` serializes to, payload last.
    /// The byte sequence `,"payload":` cannot occur inside a JSON string (its quote would be escaped),
    /// so its first occurrence is the key; the head is then parsed strictly. Anything else (another
    /// field order, bad JSON) returns `None` and takes the full path, which validates everything.
    pub fn split(v: &'a [u8]) -> Option<Envelope<'a>> {
        const KEY: &[u8] = b",\"payload\":";
        let at = v.windows(KEY.len()).position(|w| w == KEY)?;
        let end = v.iter().rposition(|b| !b.is_ascii_whitespace())?;
        if v[end] != b'}' {
            return None;
        }
        let payload = v.get(at + KEY.len()..end)?.trim_ascii();
        let mut head = Vec::with_capacity(at + 1);
        head.extend_from_slice(v.get(..at)?);
        head.push(b'}');
        let head: Head = serde_json::from_slice(&head).ok()?;
        Some(Envelope { head, payload })
    }
}

impl Envelope<'_> {
    /// Digest of what normalize reads: the payload bytes, format, region, platform and id.
    pub fn raw_digest(&self) -> u64 {
        let parts: [&[u8]; 5] = [
            self.payload,
            self.head.payload_format.as_str().as_bytes(),
            self.head.region_code.as_bytes(),
            self.head.platform.as_str().as_bytes(),
            self.head.source_listing_id.as_bytes(),
        ];
        parts
            .iter()
            .fold(NORMALIZE_VERSION, |h, p| mix(mix(h, p), &[0xff]))
    }

    /// The envelope checks that do not depend on the payload (see `Observation::contract_violation`).
    pub fn fits(&self) -> bool {
        let h = &self.head;
        !h.crawl_id.is_empty() && h.crawl_id.len() <= 128
    }
}

/// The parts of a source state that show in the canonical listing — content digest, first sighting,
/// liveness and price steps — folded into one number (not `last_seen`, which moves on every sighting:
/// an unchanged listing must not be republished).
pub fn view_key(s: &SourceState) -> u64 {
    let mut h = mix(0xcbf2_9ce4_8422_2325, &s.content_digest.to_le_bytes());
    h = mix(h, s.source.as_str().as_bytes());
    h = mix(h, s.region_key.as_bytes());
    h = mix(h, &s.first_seen.to_le_bytes());
    h = mix(h, &[u8::from(s.alive)]);
    for r in &s.history {
        h = mix(h, &r.from.to_le_bytes());
        h = mix(h, &r.deposit.to_le_bytes());
        h = mix(h, &r.rent.to_le_bytes());
        h = mix(h, &r.fee.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    }
    h
}

/// A fixed, fast, non-cryptographic hash step (the FxHash mix, eight bytes at a time). Digests built
/// with it live in the state, so it must never change with a compiler or library release — hence not
/// `std`'s hasher.
pub fn mix(mut h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K)
}

/// Digest of the listing's postcard bytes (see [`mix`]).
pub fn digest_of(l: &SourceListing) -> u64 {
    mix(
        0xcbf2_9ce4_8422_2325,
        &postcard::to_allocvec(l).unwrap_or_default(),
    )
}
