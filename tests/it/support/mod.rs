//! Test harness: a namespaced configuration with its topics applied ([`spawn_env`]), a reader of whole
//! topics, the JSON Schemas of `topics/`, and the fake platform servers of [`sites`].

pub mod private;
pub mod sites;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use roomstream::config::{self, Config};
use roomstream::kafka::client_config;
use roomstream::topics::{TopicKind, admin};

/// A test's own namespace on the shared broker.
pub struct TestEnv {
    /// The configuration every component of this test uses.
    pub cfg: Config,
    /// The `ROOMSTREAM_*` variables that made it (namespace and overrides), passed to the binary.
    pub vars: Vec<(String, String)>,
}

/// One record as read back: partition, offset, key, value and the `roomstream.clock` header (which
/// tombstones carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Vec<u8>,
    pub clock_header: Option<i64>,
}

impl Record {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).expect("every value is JSON")
    }
}

/// The local profile under a fresh namespace, with `extra` overrides (`("zigbang", "min_interval", "0s")`),
/// and every topic applied.
pub async fn spawn_env(extra: &[(&str, &str, &str)]) -> TestEnv {
    let namespace = format!("rs_{}", uuid::Uuid::now_v7().simple());
    let mut own: Vec<(String, String)> = vec![("ROOMSTREAM_KAFKA_NAMESPACE".into(), namespace)];
    for (section, key, value) in extra {
        own.push((
            format!(
                "ROOMSTREAM_{}_{}",
                section.to_uppercase(),
                key.to_uppercase()
            ),
            value.to_string(),
        ));
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.extend(own.iter().cloned());
    let cfg = config::load_with_env(None, vars).expect("the local profile loads");
    admin::apply(&cfg.kafka)
        .await
        .expect("topics apply on the test broker");
    TestEnv { cfg, vars: own }
}

/// Tests drop what they create — where the broker allows it. Tansu 0.6.0 with SQLite storage cannot:
/// after a DeleteTopics, a later Produce (to any topic) panics its storage task ("more or less than one
/// row", tansu-storage `lite.rs:503`) and every request after that fails. So teardown is opt-in with
/// `ROOMSTREAM_TEST_DROP_TOPICS=1` (for a real Kafka); on Tansu the topics stay in their own namespace
/// and `scripts/services.sh` starts the broker on an empty database each time.
impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::env::var_os("ROOMSTREAM_TEST_DROP_TOPICS").is_none() {
            return;
        }
        let kafka = self.cfg.kafka.clone();
        // Drop runs inside the test's runtime, which must not block: a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(admin) = client_config(&kafka).create::<AdminClient<DefaultClientContext>>()
                else {
                    return;
                };
                let names: Vec<String> = TopicKind::ALL
                    .iter()
                    .map(|k| k.name(&kafka.namespace))
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
            });
        })
        .join();
    }
}

impl TestEnv {
    pub fn namespace(&self) -> &str {
        &self.cfg.kafka.namespace
    }

    /// Every value of a topic as JSON, each checked against the topic's JSON Schema.
    pub fn read_valid(&self, kind: TopicKind) -> Vec<serde_json::Value> {
        let records = self.read_topic(kind);
        assert_all_valid(kind, &records);
        records.iter().map(Record::json).collect()
    }

    /// Every record of a topic, partition by partition, in offset order.
    pub fn read_topic(&self, kind: TopicKind) -> Vec<Record> {
        read_topic(&self.cfg, kind)
    }

    /// How many records a topic holds (high minus low watermark, summed over its partitions), without
    /// reading them: a million-event topic on a loaded broker takes minutes to read.
    pub fn count(&self, kind: TopicKind) -> i64 {
        let consumer: BaseConsumer = client_config(&self.cfg.kafka).create().expect("consumer");
        let topic = kind.name(self.namespace());
        (0..kind.def().partitions)
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(&topic, p, Duration::from_secs(20))
                    .expect("watermarks");
                high - low
            })
            .sum()
    }

    /// Runs the `roomstream` binary with this test's namespace and broker.
    pub fn roomstream(&self, args: &[&str]) -> Output {
        roomstream_with(&self.env_vars(), args)
    }

    /// The variables that give the binary this test's configuration.
    pub fn env_vars(&self) -> Vec<(&str, &str)> {
        let mut vars: Vec<(&str, &str)> =
            vec![("ROOMSTREAM_KAFKA_BROKERS", &self.cfg.kafka.brokers)];
        vars.extend(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        vars
    }

    /// Runs `roomstream args` to completion on a thread of its own (a crawl that feeds while the test
    /// kills and restarts other components); join it for the output.
    pub fn run_in_background(&self, args: &[&str]) -> std::thread::JoinHandle<Output> {
        let vars: Vec<(String, String)> = self
            .env_vars()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            let vars: Vec<(&str, &str)> =
                vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            roomstream_with(&vars, &args)
        })
    }

    /// `roomstream state hash`'s total: the checkpointed state of every partition; `None` while the
    /// command fails (no checkpoint yet, store down).
    pub fn state_hash(&self) -> Option<String> {
        let out = self.roomstream(&["state", "hash"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let total = text.lines().next()?.strip_prefix("total ")?;
        let hash = total.split_whitespace().next()?.to_string();
        out.status.success().then_some(hash)
    }

    /// A `roomstream` child process with this test's configuration, output to the test log.
    pub fn spawn_roomstream(&self, args: &[&str]) -> std::process::Child {
        eprintln!("$ roomstream {} &", args.join(" "));
        std::process::Command::new(env!("CARGO_BIN_EXE_roomstream"))
            .args(args)
            .envs(self.env_vars())
            .spawn()
            .expect("the roomstream binary starts")
    }
}

/// Sends SIGINT to a component and expects a clean exit within 60 s.
pub fn interrupt(child: &mut std::process::Child, what: &str) {
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(sent, "SIGINT to {what}");
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the `roomstream` binary with extra environment variables, echoing its output to the test log.
pub fn roomstream_with(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roomstream"))
        .args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("the roomstream binary runs");
    eprintln!(
        "$ roomstream {}   ({:.1} s)\n{}{}",
        args.join(" "),
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn clock_header(msg: &rdkafka::message::BorrowedMessage<'_>) -> Option<i64> {
    use rdkafka::message::Headers;
    msg.headers()?
        .iter()
        .find(|h| h.key == roomstream::topics::HEADER_CLOCK)
        .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse().ok())
}

/// Reads a topic from the beginning up to each partition's high watermark.
pub fn read_topic(cfg: &Config, kind: TopicKind) -> Vec<Record> {
    let topic = kind.name(&cfg.kafka.namespace);
    let consumer: BaseConsumer = client_config(&cfg.kafka)
        .set("group.id", format!("{}.test-reader", cfg.kafka.namespace))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(20);
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in 0..kind.def().partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, p, timeout)
            .expect("watermarks");
        if high > low {
            ends.insert(p, high);
            assignment
                .add_partition_offset(&topic, p, Offset::Offset(low))
                .expect("assign");
        }
    }
    let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&assignment).expect("assign");
    // Gives up after 120 s without a record (not 120 s in all: big topics on a loaded broker take longer).
    let mut deadline = std::time::Instant::now() + Duration::from_secs(120);
    let done = |p: i32, offset: i64| ends.get(&p).is_some_and(|end| offset + 1 >= *end);
    let mut finished: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();
    let wanted = ends.len();
    while finished.len() < wanted {
        assert!(
            std::time::Instant::now() < deadline,
            "no record of {topic} for 120 s"
        );
        let Some(msg) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let msg = msg.expect("consume");
        deadline = std::time::Instant::now() + Duration::from_secs(120);
        by_partition
            .entry(msg.partition())
            .or_default()
            .push(Record {
                partition: msg.partition(),
                offset: msg.offset(),
                clock_header: clock_header(&msg),
                key: String::from_utf8(msg.key().unwrap_or_default().to_vec())
                    .expect("keys are UTF-8"),
                value: msg.payload().unwrap_or_default().to_vec(),
            });
        if done(msg.partition(), msg.offset()) {
            finished.insert(msg.partition());
        }
    }
    by_partition.into_values().flatten().collect()
}

/// The compiled validator of a topic's JSON Schema.
pub fn validator(kind: TopicKind) -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(kind.schema_json()).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

/// Asserts every record of a topic validates; returns how many there were.
pub fn assert_all_valid(kind: TopicKind, records: &[Record]) -> usize {
    let v = validator(kind);
    for r in records {
        let value = r.json();
        if let Some(error) = v.iter_errors(&value).next() {
            panic!(
                "{kind:?} record with key {} does not validate: {error} at {}\n{value}",
                r.key, error.instance_path
            );
        }
    }
    records.len()
}

/// The real fixtures, or `None` (the caller prints SKIP) where they are absent.
pub fn real_fixtures() -> Option<PathBuf> {
    let dir = roomstream::crawl::fixtures::real_fixtures_dir();
    if dir.is_none() {
        eprintln!(
            "SKIP: real fixtures not found (../shared/fixtures/real or ROOMSTREAM_TEST_FIXTURES)"
        );
    }
    dir
}
