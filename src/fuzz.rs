//! Entry points for fuzzing: each takes arbitrary bytes and must never panic, however malformed they
//! are. `fuzz/` (cargo fuzz, libFuzzer) builds one target per function; `tests/it/fuzz.rs` runs the
//! same functions over the seed corpus and its mutations in every test run.
//!
//! They cover every parser of outside input: the observation envelope and each platform's payload
//! (through the processor's engine, as records arrive from Kafka), the field parsers, VWORLD's
//! registry files, and the sinks' decoding of `listings.v1`.

use std::cell::RefCell;

use crate::process::engine::{Engine, Position};
use crate::topics::envelope::PayloadFormat;

thread_local! {
    /// One engine per thread, reused: inputs that parse accumulate as state, as in a real run.
    static ENGINE: RefCell<Engine> = RefCell::new({
        let mut e = Engine::new(Default::default(), Default::default());
        e.own_empty(crate::topics::TopicKind::Observed.def().partitions);
        e
    });
}

/// A record of `observed.v1`, `sweeps.v1` or `brokers.v1` (the first byte picks the topic, the next
/// up to 40 bytes up to a `\n` are the key, the rest the value), through the processor's engine: the
/// envelope, the payload and every stage behind them. Bad input must land in the DLQ output.
pub fn record(data: &[u8]) {
    let Some((&topic, rest)) = data.split_first() else {
        return;
    };
    let (key, value) = match rest.iter().take(41).position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    ENGINE.with(|e| {
        let mut e = e.borrow_mut();
        let mut out = Vec::new();
        let partition = i32::from(topic % 8);
        let at = Position {
            topic: "fuzz",
            partition,
            offset: 0,
        };
        let (k, v) = (Some(key), (!value.is_empty()).then_some(value));
        match topic % 3 {
            0 => e.observe(at, k, v, &mut out),
            1 => e.sweep(at, k, v, &mut out),
            _ => e.broker(at, k, v, &mut out),
        }
        // Scoring runs on what parsed, as the processor's micro-batches would.
        if e.pending() >= 64 {
            let _ = e.flush(&mut out);
        }
    });
}

/// A platform payload (JSON) in every payload format, wrapped in a valid envelope and normalized.
pub fn payload(data: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    for format in [
        PayloadFormat::ZigbangList,
        PayloadFormat::ZigbangV3Item,
        PayloadFormat::ZigbangDailyCsv,
        PayloadFormat::ZigbangSnapshotCsv,
        PayloadFormat::DabangV5Room,
    ] {
        let platform = if format == PayloadFormat::DabangV5Room {
            "dabang"
        } else {
            "zigbang"
        };
        let envelope = serde_json::json!({
            "schema": crate::topics::envelope::OBSERVATION_SCHEMA,
            "source": if platform == "dabang" { "dabang" } else { "zigbang" },
            "platform": platform,
            "source_listing_id": "1",
            "observed_at": "2026-11-01T09:00:00+09:00",
            "crawl_id": "fuzz",
            "region_code": "11620",
            "payload_format": format.as_str(),
            "payload": payload,
        });
        if let Ok(obs) = serde_json::from_value(envelope) {
            let _ = crate::process::normalize::normalize(&obs);
        }
    }
}

/// Text through every field parser (prices in 만원, 관리비, floors, directions, times).
pub fn fields(data: &[u8]) {
    use crate::process::normalize::fields as f;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = f::parse_man(text);
    let _ = f::parse_price_title(text);
    let _ = f::parse_fee_text(text);
    let _ = f::parse_floor(text);
    let _ = f::parse_direction(text);
    let _ = f::parse_time(text);
    let _ = f::fee_value(Some(&serde_json::Value::String(text.to_string())));
    let _ = crate::topics::keys::normalize_registration(text);
}

/// A VWORLD registry download (zip, CSV in EUC-KR or UTF-8), decoded and emitted as broker records.
pub fn registry(data: &[u8]) {
    let mut sink = crate::kafka::MemorySink::default();
    let mut emitter = crate::crawl::Emitter::new(&mut sink, None);
    let at = time::OffsetDateTime::UNIX_EPOCH;
    let _ = crate::crawl::vworld::emit_registry("fuzz.zip", data, at, &mut emitter);
}

/// A `listings.v1` record as every sink decodes it (value bytes; a tombstone when empty).
pub fn listing(data: &[u8]) {
    let value = (!data.is_empty()).then_some(data);
    let _ = crate::sink::change::decode(0, 0, Some(b"L0"), value, (Some(1), None));
}

/// Every entry point by name (the fuzz targets' names).
pub const TARGETS: [(&str, fn(&[u8])); 5] = [
    ("record", record),
    ("payload", payload),
    ("fields", fields),
    ("registry", registry),
    ("listing", listing),
];
