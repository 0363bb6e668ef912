//! The benchmarks' input: the calibrated simulator's feed (`crawl synthetic`), held in memory or
//! spooled to one file per input partition, and [`Core`] — the processor's engine driven the way its
//! Kafka loop drives it (inputs at their partitions' positions, a micro-batch flushed every
//! `score.batch_rows` listings), without a broker.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::crawl::synthetic::{self, SyntheticArgs};
use crate::kafka::{Delivered, EventSink, MemorySink, ProduceError};
use crate::process::engine::{Engine, Output, Position};
use crate::process::metrics::Metrics;
use crate::topics::TopicKind;

/// One input record: topic, key, value.
pub type Record = (TopicKind, String, Vec<u8>);

/// The simulator's feed of `listings` flats over `days` days, in memory.
pub fn synthetic(listings: u32, days: u32, seed: u64) -> anyhow::Result<Vec<Record>> {
    let mut mem = MemorySink::default();
    play(listings, days, seed, None, &mut mem)?;
    Ok(mem.records)
}

fn play(
    listings: u32,
    days: u32,
    seed: u64,
    truth: Option<PathBuf>,
    sink: &mut dyn EventSink,
) -> anyhow::Result<()> {
    let mut emitter = crate::crawl::Emitter::new(sink, None);
    let args = SyntheticArgs {
        listings,
        days,
        seed,
        rate: None,
        truth,
    };
    synthetic::run(&args, &mut emitter)?;
    emitter.finish()?;
    Ok(())
}

/// Observations and sweep markers in a feed (the registry aside), and their mean value size.
pub fn inputs_and_mean_size(records: &[Record]) -> (usize, f64) {
    let inputs: Vec<&Record> = records
        .iter()
        .filter(|r| r.0 != TopicKind::Brokers)
        .collect();
    let bytes: usize = inputs.iter().map(|r| r.2.len()).sum();
    (inputs.len(), bytes as f64 / inputs.len().max(1) as f64)
}

/// The input partition of a key, as the producer places it.
pub fn partition_of(key: &str) -> i32 {
    let partitions = TopicKind::Observed.def().partitions;
    crate::topics::keys::murmur2_partition(key.as_bytes(), partitions as u32) as i32
}

/// A `listings.v1` record as the processor published it.
#[derive(Debug, Clone)]
pub struct Published {
    pub key: String,
    /// JSON, or None for a tombstone.
    pub value: Option<Vec<u8>>,
    /// A tombstone's headers: the clock and region of the deletion.
    pub ended: (Option<i64>, Option<String>),
}

/// The processor's engine fed in memory, as its Kafka loop feeds it.
pub struct Core {
    pub engine: Engine,
    /// Next offset per (partition, topic).
    offsets: std::collections::HashMap<(i32, u8), i64>,
    out: Vec<Output>,
    batch_rows: usize,
    /// `listings.v1` records published (values and tombstones).
    pub published: u64,
    /// Inputs fed (observations, sweeps, registry records).
    pub inputs: u64,
    /// Keep the published records (the day-of-changes scenario writes them to a database).
    pub keep: bool,
    /// The published records, when kept.
    pub kept: Vec<Published>,
}

impl Core {
    /// An engine owning every input partition, from empty states, live: each micro-batch is scored
    /// and published as it fills.
    pub fn new(cfg: &Config) -> anyhow::Result<Core> {
        Core::owning(cfg, false)
    }

    /// An engine owning every input partition, from empty states, catching up as `roomstream replay`
    /// does: nothing is scored or published until [`Core::reconcile`].
    pub fn replaying(cfg: &Config) -> anyhow::Result<Core> {
        Core::owning(cfg, true)
    }

    fn owning(cfg: &Config, catching_up: bool) -> anyhow::Result<Core> {
        let mut engine = super::super::process::make_engine(cfg, Arc::new(Metrics::default()))?;
        for p in 0..TopicKind::Observed.def().partitions {
            engine.own(
                crate::process::engine::PartitionState {
                    partition: p,
                    ..Default::default()
                },
                catching_up,
            );
        }
        Ok(Core {
            engine,
            offsets: Default::default(),
            out: Vec::new(),
            batch_rows: cfg.score.batch_rows,
            published: 0,
            inputs: 0,
            keep: false,
            kept: Vec::new(),
        })
    }

    /// Feeds one record; flushes a micro-batch when `score.batch_rows` listings wait.
    pub fn feed(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let partition = if topic == TopicKind::Brokers {
            0
        } else {
            partition_of(key)
        };
        let offset = self.offsets.entry((partition, topic as u8)).or_insert(0);
        let at = Position {
            topic: "bench",
            partition,
            offset: *offset,
        };
        *offset += 1;
        self.inputs += 1;
        let (k, v) = (Some(key.as_bytes()), Some(value));
        match topic {
            TopicKind::Observed => self.engine.observe(at, k, v, &mut self.out),
            TopicKind::Sweeps => self.engine.sweep(at, k, v, &mut self.out),
            _ => self.engine.broker(at, k, v, &mut self.out),
        }
        if self.engine.pending() >= self.batch_rows {
            self.engine.flush(&mut self.out)?;
        }
        self.drain();
        Ok(())
    }

    /// Releases every held sweep and flushes what waits (the end of the input).
    pub fn finish(&mut self) -> anyhow::Result<()> {
        let parts: Vec<i32> = self.engine.parts.keys().copied().collect();
        for p in parts {
            self.engine.release_sweeps(p);
        }
        self.engine.flush(&mut self.out)?;
        self.drain();
        Ok(())
    }

    /// Ends a replay's catch-up: applies the held sweeps and reconciles every partition with an empty
    /// `listings.v1` (the worst case: every listing is scored and published).
    pub fn reconcile(&mut self) -> anyhow::Result<()> {
        let parts: Vec<i32> = self.engine.parts.keys().copied().collect();
        for p in parts {
            self.engine.release_sweeps(p);
            self.engine
                .reconcile(p, std::collections::BTreeMap::new(), &mut self.out)?;
            self.drain();
        }
        Ok(())
    }

    fn drain(&mut self) {
        for o in self.out.drain(..) {
            if let Output::Listing { key, value, ended } = o {
                self.published += 1;
                if self.keep {
                    let ended = ended.map_or((None, None), |e| (Some(e.clock), e.region));
                    self.kept.push(Published { key, value, ended });
                }
            }
        }
    }

    /// Live source listings and canonical listings in the state.
    pub fn listings(&self) -> (usize, usize) {
        let parts = self.engine.parts.values();
        let sources = parts.clone().map(|p| p.state.sources.len()).sum();
        let canonical = parts.map(|p| p.live.rows.len()).sum();
        (sources, canonical)
    }

    /// Bytes of the state as checkpoints store it (postcard, every partition).
    pub fn state_bytes(&self) -> usize {
        self.engine
            .parts
            .values()
            .map(|p| postcard::to_allocvec(&p.state).map_or(0, |v| v.len()))
            .sum()
    }
}

/// A feed spooled to one file per input partition (`p00.bin` …) and one for the registry
/// (`brokers.bin`), each record `[topic u8][key len u32][key][value len u32][value]`: read back in
/// the order it was produced within each partition, as a consumer of that partition would.
pub struct Spool {
    pub dir: PathBuf,
}

impl Spool {
    /// The spooled feed of these parameters under `root`, written first if it is not there yet
    /// (a `complete` file marks a finished spool). Returns it and whether it was written now.
    pub fn open_or_write(
        root: &Path,
        listings: u32,
        days: u32,
        seed: u64,
    ) -> anyhow::Result<(Spool, bool)> {
        let dir = root.join(format!("feed-{listings}x{days}-s{seed}-v2"));
        if dir.join("complete").exists() {
            return Ok((Spool { dir }, false));
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut writer = SpoolWriter::new(&dir)?;
        play(
            listings,
            days,
            seed,
            Some(dir.join("truth.jsonl")),
            &mut writer,
        )?;
        writer.close()?;
        std::fs::write(dir.join("complete"), b"")?;
        Ok((Spool { dir }, true))
    }

    /// The registry's file.
    pub fn brokers(&self) -> PathBuf {
        self.dir.join("brokers.bin")
    }

    /// The simulator's ground truth of the feed (`crawl synthetic --truth`).
    pub fn truth(&self) -> PathBuf {
        self.dir.join("truth.jsonl")
    }

    /// The file of input partition `p`.
    pub fn partition(&self, p: i32) -> PathBuf {
        self.dir.join(format!("p{p:02}.bin"))
    }
}

struct SpoolWriter {
    files: Vec<BufWriter<File>>,
    brokers: BufWriter<File>,
    error: Option<std::io::Error>,
    records: u64,
    bytes: u64,
}

impl SpoolWriter {
    fn new(dir: &Path) -> anyhow::Result<SpoolWriter> {
        let partitions = TopicKind::Observed.def().partitions;
        let open = |name: String| -> anyhow::Result<BufWriter<File>> {
            Ok(BufWriter::with_capacity(
                1 << 20,
                File::create(dir.join(name))?,
            ))
        };
        Ok(SpoolWriter {
            files: (0..partitions)
                .map(|p| open(format!("p{p:02}.bin")))
                .collect::<anyhow::Result<_>>()?,
            brokers: open("brokers.bin".into())?,
            error: None,
            records: 0,
            bytes: 0,
        })
    }

    fn close(mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e.into());
        }
        for f in self.files.iter_mut().chain([&mut self.brokers]) {
            f.flush()?;
        }
        Ok(())
    }
}

impl EventSink for SpoolWriter {
    fn send(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> Result<(), ProduceError> {
        let file = if topic == TopicKind::Brokers {
            &mut self.brokers
        } else {
            &mut self.files[partition_of(key) as usize]
        };
        let written = write_record(file, topic, key.as_bytes(), value);
        if let Err(e) = written {
            self.error.get_or_insert(e);
        }
        self.records += 1;
        self.bytes += value.len() as u64;
        Ok(())
    }

    fn tombstone(
        &mut self,
        _topic: TopicKind,
        _key: &str,
        _headers: &[(&str, &str)],
    ) -> Result<(), ProduceError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<Delivered, ProduceError> {
        match &self.error {
            Some(e) => Err(ProduceError::Undelivered {
                sent: self.records,
                failed: self.records,
                first_error: e.to_string(),
            }),
            None => Ok(Delivered {
                records: self.records,
                bytes: self.bytes,
            }),
        }
    }
}

fn write_record(
    w: &mut impl Write,
    topic: TopicKind,
    key: &[u8],
    value: &[u8],
) -> std::io::Result<()> {
    let t: u8 = match topic {
        TopicKind::Observed => 0,
        TopicKind::Sweeps => 1,
        _ => 2,
    };
    w.write_all(&[t])?;
    w.write_all(&(key.len() as u32).to_le_bytes())?;
    w.write_all(key)?;
    w.write_all(&(value.len() as u32).to_le_bytes())?;
    w.write_all(value)
}

/// Reads a spool file record by record into reused buffers.
pub struct SpoolReader {
    r: BufReader<File>,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl SpoolReader {
    pub fn open(path: &Path) -> anyhow::Result<SpoolReader> {
        Ok(SpoolReader {
            r: BufReader::with_capacity(
                1 << 20,
                File::open(path).with_context(|| format!("opening {}", path.display()))?,
            ),
            key: Vec::new(),
            value: Vec::new(),
        })
    }

    /// The next record's topic (its key and value in `self.key`, `self.value`), or None at the end.
    pub fn next(&mut self) -> anyhow::Result<Option<TopicKind>> {
        let mut t = [0u8; 1];
        match self.r.read_exact(&mut t) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        read_field(&mut self.r, &mut self.key)?;
        read_field(&mut self.r, &mut self.value)?;
        Ok(Some(match t[0] {
            0 => TopicKind::Observed,
            1 => TopicKind::Sweeps,
            _ => TopicKind::Brokers,
        }))
    }
}

fn read_field(r: &mut impl Read, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_reads_back_each_partitions_records_in_order() {
        let dir = std::env::temp_dir().join(format!("roomstream-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut w = SpoolWriter::new(&dir).expect("writer");
        let keys = ["11620", "11680", "11440", "11620"];
        for (i, k) in keys.iter().enumerate() {
            w.send(TopicKind::Observed, k, format!("v{i}").as_bytes())
                .expect("sent");
        }
        w.send(TopicKind::Brokers, "b1", b"reg").expect("sent");
        assert_eq!(w.finish().expect("finished").records, 5);
        w.close().expect("closed");
        let spool = Spool { dir: dir.clone() };
        let mut r = SpoolReader::open(&spool.partition(partition_of("11620"))).expect("open");
        let mut seen = Vec::new();
        while let Some(t) = r.next().expect("read") {
            assert_eq!(t, TopicKind::Observed);
            if r.key == b"11620" {
                seen.push(String::from_utf8(r.value.clone()).expect("utf8"));
            }
        }
        assert_eq!(seen, ["v0", "v3"]);
        let mut b = SpoolReader::open(&spool.brokers()).expect("open");
        assert_eq!(b.next().expect("read"), Some(TopicKind::Brokers));
        assert_eq!(
            (b.key.as_slice(), b.value.as_slice()),
            (&b"b1"[..], &b"reg"[..])
        );
        assert_eq!(b.next().expect("read"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
