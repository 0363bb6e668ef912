//! `roomstream demo`: the whole pipeline on one machine, with nothing to run beside it.
//!
//! 1. **Broker**: starts Tansu (Kafka protocol, SQLite storage under `<dir>/broker/`) as a child
//!    process in its own process group on `127.0.0.1:<broker-port>` — or uses `--brokers`;
//! 2. **Stores**: the production database is the SQLite file `<dir>/roomstream.db` (the MySQL sink and
//!    the API speak SQLite too), the object store the folder `<dir>/store/` (checkpoints, Parquet);
//! 3. **Crawl**: the calibrated simulator — `--listings` flats over `--days` days as fast as the broker
//!    takes them, then live: one region's crawl every `--live-every` (a simulated day every ~26 of
//!    them), for a simulated month (≈1 hour at 5 s) or until stopped;
//! 4. **Pipeline**: the processor, the MySQL sink (into SQLite) and the S3 sink (into the folder), and
//!    the API with the web page — all in this process, as `roomstream run` runs them. The Redshift
//!    staging sink is left out: it needs PostgreSQL (`roomstream run` with `config/local.toml` has it).
//!
//! Ctrl-C (or `--duration`) stops the crawl between two regions, lets the processor checkpoint and the
//! sinks commit, stops the API, then the broker. The next run **starts clean** and says so; with
//! `--resume` it continues from `<dir>` instead — the broker's topics, the processor's checkpoints, the
//! sinks' positions and the simulated day — and says that. Clean is the default because Tansu 0.6's
//! SQLite engine reopens a large store slowly: after the default demo (850 MB, 350,000 records) it
//! answered no metadata request within 4 minutes of restarting, busy on one core.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::crawl::Emitter;
use crate::crawl::synthetic::{self, Live, SyntheticArgs};
use crate::db::{Pool, Sql};
use crate::kafka::KafkaSink;
use crate::sink::SinkKind;
use crate::sink::runner::RunOptions;
use crate::topics::admin;

/// Simulated days the live part runs for after the backfill. The simulator lists 70 % of its flats on
/// day 0 and the rest over its horizon, each for 21 days on average: a month keeps the stock near its
/// size (a year would thin it to a few hundred flats at a time). After it the crawl stops and the API
/// keeps serving.
const LIVE_DAYS: u32 = 30;

/// `roomstream demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Flats in the simulated world.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..))]
    listings: u32,
    /// Days crawled at full speed before the live part.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Once live, the wait after each region's crawl.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    live_every: Duration,
    /// Stop after this long (default: at Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// The demo's folder: the broker's data, the SQLite production database, the object store.
    #[arg(long, default_value = "out/demo")]
    dir: PathBuf,
    /// Continue the previous run in the folder (its topics, checkpoints, sink positions and simulated
    /// day) instead of starting clean. Tansu 0.6 takes minutes to reopen a large store (20,000 flats ×
    /// 14 days: more than 4 minutes here), so this is for small demos.
    #[arg(long)]
    resume: bool,
    /// Port of the embedded broker.
    #[arg(long, default_value_t = 19092)]
    broker_port: u16,
    /// Use this Kafka-protocol broker (`host:port`) instead of starting Tansu.
    #[arg(long)]
    brokers: Option<String>,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What a run leaves in `<dir>/demo.json` for the next one.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Saved {
    listings: u32,
    seed: u64,
    days: u32,
    /// The namespace of the topics (its own per clean run on a broker the demo does not own).
    namespace: String,
    /// The first simulated day not fully sent.
    next_day: u32,
}

/// Marks a folder as the demo's, so that a clean start deletes only what a demo made.
const SENTINEL: &str = ".roomstream-demo";

/// Runs the demo until Ctrl-C (SIGINT), SIGTERM, SIGHUP or `--duration`. A second signal exits at once.
pub async fn run(cfg: &Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let stop = stop_on_signals(args.duration)?;
    let dir = std::path::absolute(&args.dir).context("demo folder")?;
    let _lock = DirLock::take(&dir)?;
    let saved_path = dir.join("demo.json");
    let saved: Option<Saved> = std::fs::read(&saved_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let same_world =
        |s: &Saved| (s.listings, s.seed, s.days) == (args.listings, args.seed, args.days);
    let resume = match &saved {
        Some(s) if args.resume && same_world(s) => {
            println!(
                "Resuming the demo in {} at simulated day {} ({} flats, {} fast days, seed {}): the broker's \
                 topics, the processor's checkpoints and the sinks' positions are kept.",
                dir.display(),
                s.next_day + 1,
                s.listings,
                s.days,
                s.seed
            );
            true
        }
        Some(_) if args.resume => {
            println!(
                "Starting clean in {}: the previous run simulated another world (--listings/--days/--seed), it cannot be resumed.",
                dir.display()
            );
            false
        }
        Some(_) => {
            println!(
                "Starting clean in {}: the previous run's broker data, database and store are removed (--resume keeps them).",
                dir.display()
            );
            false
        }
        None => {
            println!("Starting clean in {}.", dir.display());
            false
        }
    };
    let namespace = match (&saved, resume, &args.brokers) {
        (Some(s), true, _) => s.namespace.clone(),
        // Someone else's broker keeps the old topics: a clean run gets topics of its own.
        (_, false, Some(_)) => format!(
            "{}-{}",
            cfg.kafka.namespace,
            time::OffsetDateTime::now_utc().unix_timestamp()
        ),
        _ => cfg.kafka.namespace.clone(),
    };
    if args.brokers.is_none() {
        Broker::check_port_free(args.broker_port).await?;
    }
    if !resume {
        clear(&dir)?;
    }
    std::fs::create_dir_all(dir.join("store")).context("demo folder")?;
    std::fs::write(dir.join(SENTINEL), b"").context("demo folder")?;
    let first_day = saved.as_ref().filter(|_| resume).map_or(0, |s| s.next_day);

    let mut broker = match &args.brokers {
        Some(b) => Broker::External(b.clone()),
        None => Broker::start(&dir.join("broker"), args.broker_port, &stop).await?,
    };
    if let Err(e) = broker.wait_for_metadata(resume, &stop).await {
        broker.stop().await;
        return Err(e);
    }
    let mut cfg = cfg.clone();
    cfg.kafka.namespace = namespace.clone();
    let outcome = run_with_broker(&cfg, &args, &dir, broker.address(), first_day, stop).await;
    println!("Stopping the broker.");
    broker.stop().await;
    let next_day = outcome?;
    let saved = Saved {
        listings: args.listings,
        seed: args.seed,
        days: args.days,
        namespace,
        next_day,
    };
    std::fs::write(&saved_path, serde_json::to_vec_pretty(&saved)?).context("writing demo.json")?;
    println!(
        "Stopped cleanly at simulated day {}. `roomstream demo --resume` continues from there; without it the next run starts clean.",
        next_day + 1
    );
    Ok(ExitCode::SUCCESS)
}

/// A flag set at the first SIGINT, SIGTERM or SIGHUP (or when `limit` has passed); a second signal
/// exits at once (the broker, started with a parent-death signal, goes with this process).
fn stop_on_signals(limit: Option<Duration>) -> anyhow::Result<Arc<AtomicBool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = Arc::new(AtomicBool::new(false));
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let s = stop.clone();
    tokio::spawn(async move {
        let timer = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
            _ = timer => {}
        }
        println!(
            "Stopping: the crawl (between two regions), the processor (after a checkpoint), the sinks \
             (after a commit) and the API, then the broker. A second Ctrl-C exits at once."
        );
        s.store(true, Ordering::Relaxed);
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        eprintln!(
            "Second signal: exiting now (nothing committed since the last batch is lost: it is re-read next time)."
        );
        std::process::exit(130);
    });
    Ok(stop)
}

/// `<dir>/demo.pid`: one demo per folder. Removed when dropped.
struct DirLock(PathBuf);

impl DirLock {
    fn take(dir: &Path) -> anyhow::Result<DirLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("demo.pid");
        if let Ok(pid) = std::fs::read_to_string(&path)
            && let Ok(pid) = pid.trim().parse::<u32>()
            && pid != std::process::id()
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!(
                "another demo (pid {pid}) runs in {}: stop it, or pass another --dir",
                dir.display()
            );
        }
        std::fs::write(&path, std::process::id().to_string()).context("demo.pid")?;
        Ok(DirLock(path))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Removes what a previous run left (only the demo's own files).
fn clear(dir: &Path) -> anyhow::Result<()> {
    // Only a folder a demo made (its sentinel, or the `demo.json` a run leaves), or one without the
    // demo's folders in it.
    let made_by_demo = dir.join(SENTINEL).exists() || dir.join("demo.json").exists();
    for name in ["broker", "store"] {
        if dir.join(name).exists() && !made_by_demo {
            bail!(
                "{} holds a `{name}` folder that no demo made (no {SENTINEL} or demo.json): pick another --dir",
                dir.display()
            );
        }
    }
    for name in ["broker", "store"] {
        let p = dir.join(name);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    for name in [
        "roomstream.db",
        "roomstream.db-wal",
        "roomstream.db-shm",
        "demo.json",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    Ok(())
}

/// The demo's configuration: the profile's, with the broker, the SQLite database and the folder.
fn demo_config(cfg: &Config, dir: &Path, brokers: &str) -> Config {
    let mut c = cfg.clone();
    c.kafka.brokers = brokers.to_string();
    c.mysql.url = format!("sqlite://{}", dir.join("roomstream.db").display());
    c.mysql.reader_user.clear();
    c.store.url = format!("file://{}", dir.join("store").display());
    c.store.endpoint.clear();
    // Snapshots (what `roomstream query` reads) at least every minute, not every ten.
    c.sink.snapshot_interval = c.sink.snapshot_interval.min(Duration::from_secs(60));
    c
}

async fn run_with_broker(
    cfg: &Config,
    args: &DemoArgs,
    dir: &Path,
    brokers: &str,
    first_day: u32,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u32> {
    let cfg = demo_config(cfg, dir, brokers);
    cfg.validate()?;
    let applied = admin::apply(&cfg.kafka)
        .await
        .context("creating the topics")?;
    if !applied.failed.is_empty() || !applied.unfixable.is_empty() {
        bail!(
            "the broker refused topic changes: {:?} {:?}",
            applied.failed,
            applied.unfixable
        );
    }
    // The crawl, on a thread of its own (the producer blocks).
    let next_day = Arc::new(AtomicU32::new(first_day));
    let live = Live {
        first_day,
        paced_from: args.days,
        every: args.live_every,
        stop: stop.clone(),
        next_day: next_day.clone(),
    };
    let synthetic_args = SyntheticArgs {
        listings: args.listings,
        days: args.days + LIVE_DAYS,
        seed: args.seed,
        rate: None,
        truth: None,
    };
    let crawl = {
        let kafka = cfg.kafka.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
            let mut sink = KafkaSink::new(&kafka)?;
            let mut emitter = Emitter::new(&mut sink, None);
            synthetic::run_live(&synthetic_args, &live, &mut emitter)?;
            let r = emitter.finish()?;
            Ok(r.observations + r.sweeps + r.brokers)
        })
    };

    // The processor, two sinks and the API, stopped by the same flag.
    let mut tasks = tokio::task::JoinSet::new();
    {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        tasks.spawn(async move {
            super::process::run_until(&cfg, super::process::ProcessArgs::live(false), false, stop)
                .await
                .map(|_| ())
                .context("processor")
        });
    }
    for kind in [SinkKind::Mysql, SinkKind::S3] {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        let opts = RunOptions {
            exit_when_idle: false,
            replay: false,
        };
        tasks.spawn(async move {
            super::sink::run_one(
                &cfg,
                kind,
                opts,
                stop,
                Arc::new(crate::health::Health::new(kind.component())),
            )
            .await
            .map(|_| ())
            .with_context(|| format!("sink {}", kind.name()))
        });
    }
    {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        tasks.spawn(async move {
            let watched = stop.clone();
            let until_stopped = async move {
                while !watched.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            };
            crate::api::run(&cfg, until_stopped).await.context("api")
        });
    }
    let ops = if cfg.api.ops_listen.is_empty() {
        &cfg.api.listen
    } else {
        &cfg.api.ops_listen
    };
    println!(
        "The page: http://{listen}/  ·  the API: http://{listen}/api/v1/listings  ·  metrics: http://{ops}/metrics",
        listen = cfg.api.listen
    );
    println!(
        "Analytics over its Parquet snapshots (every minute): ROOMSTREAM_KAFKA_NAMESPACE={} ROOMSTREAM_STORE_URL={} \
         roomstream query --file queries/analytics/floor_distribution.sql",
        cfg.kafka.namespace, cfg.store.url
    );
    println!(
        "Crawling {} flats: {} days at full speed, then one region every {} (Ctrl-C stops).",
        args.listings,
        args.days,
        humantime::format_duration(args.live_every)
    );

    // Progress every 15 s, until something stops.
    let mut db: Option<Pool> = None;
    let started = Instant::now();
    let mut failed = None;
    let mut crawl = Some(crawl);
    loop {
        tokio::select! {
            done = tasks.join_next() => {
                match done {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => { failed.get_or_insert(e); }
                    Some(Err(e)) => { failed.get_or_insert(e.into()); }
                }
                // One part ending ends the demo.
                stop.store(true, Ordering::Relaxed);
            }
            _ = tokio::time::sleep(Duration::from_secs(15)) => {
                if db.is_none() {
                    // Read-only, once the sink has created the file.
                    db = Pool::connect(&cfg.mysql.url, true, 1).await.ok();
                }
                let served = match &db {
                    Some(p) => count(p).await,
                    None => None,
                };
                println!(
                    "[{:>4} s] simulated day {}, {} listings served",
                    started.elapsed().as_secs(),
                    next_day.load(Ordering::Relaxed) + 1,
                    served.map_or("no".to_string(), |n| n.to_string())
                );
            }
        }
        let stopping = stop.load(Ordering::Relaxed);
        if (stopping || crawl.as_ref().is_some_and(|c| c.is_finished()))
            && let Some(c) = crawl.take()
        {
            match c.await {
                Ok(Ok(events)) if stopping => println!("crawl: {events} events sent this run"),
                Ok(Ok(events)) => println!(
                    "crawl: the simulated month is over ({events} events sent this run); the API keeps serving (Ctrl-C stops)"
                ),
                // A crawl that fails ends the demo (its data would go stale), saying why at once.
                Ok(Err(e)) => {
                    eprintln!("crawl failed: {e:#}");
                    stop.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e.context("crawl"));
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failed.get_or_insert(e.into());
                }
            }
        }
    }
    if let Some(c) = crawl.take() {
        stop.store(true, Ordering::Relaxed);
        let _ = c.await;
    }
    if let Some(p) = db {
        p.close().await;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(next_day.load(Ordering::Relaxed)),
    }
}

/// Listings in the production database (None before the sink has created it).
async fn count(pool: &Pool) -> Option<i64> {
    pool.fetch_optional::<(i64,)>(&Sql::new("SELECT COUNT(*) FROM listings"))
        .await
        .ok()
        .flatten()
        .map(|r| r.0)
}

/// The demo's broker.
enum Broker {
    /// Tansu, started here.
    Tansu {
        child: tokio::process::Child,
        address: String,
    },
    /// One the user runs.
    External(String),
}

impl Broker {
    /// Fails if something listens on the port already (another demo?).
    async fn check_port_free(port: u16) -> anyhow::Result<()> {
        let address = format!("127.0.0.1:{port}");
        if tokio::net::TcpStream::connect(&address).await.is_ok() {
            bail!(
                "{address} is taken (another demo?): stop it, or pass --broker-port, or --brokers {address} to use it"
            );
        }
        Ok(())
    }

    /// Starts Tansu with SQLite storage in `dir` (its memory engine misreports high watermarks) and
    /// waits until it accepts connections (or `stop` is set).
    async fn start(dir: &Path, port: u16, stop: &AtomicBool) -> anyhow::Result<Broker> {
        let address = format!("127.0.0.1:{port}");
        let tansu = which_tansu().context(
            "Tansu not found: install it with `cargo install --locked tansu --version 0.6.0 --features dynostore,libsql` \
             (scripts/demo.sh does), or pass --brokers host:port",
        )?;
        std::fs::create_dir_all(dir).context("broker folder")?;
        let log = std::fs::File::create(dir.join("tansu.log")).context("broker log")?;
        let url = format!("tcp://{address}");
        // Through a small shell that watches this process: whatever ends it (even SIGKILL), the
        // broker goes too rather than outlive the demo and hold the port. (The crate has no unsafe
        // code, so no prctl(PR_SET_PDEATHSIG).) SIGTERM to the shell stops the broker and waits.
        let child = tokio::process::Command::new("sh")
            .args([
                "-c",
                WATCHDOG,
                "roomstream-demo-broker",
                &tansu.display().to_string(),
                &url,
                &std::process::id().to_string(),
            ])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C in the terminal reaches this process only, which stops
            // the broker last, after the processor and the sinks are done with it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", tansu.display()))?;
        let mut broker = Broker::Tansu {
            child,
            address: address.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(&address).await.is_ok() {
                println!(
                    "Broker: Tansu on {address} (data and log in {}).",
                    dir.display()
                );
                return Ok(broker);
            }
            if let Broker::Tansu { child, .. } = &mut broker
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "Tansu exited ({status}) before accepting connections; see {}",
                    dir.join("tansu.log").display()
                );
            }
            if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                broker.stop().await;
                bail!(
                    "Tansu did not accept connections on {address} within 30 s (or the demo was stopped)"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the broker answers a metadata request: 60 s for a fresh one, 10 minutes for one
    /// reopening a previous run's store (Tansu reads it first), saying so every 30 s.
    async fn wait_for_metadata(&self, reopening: bool, stop: &AtomicBool) -> anyhow::Result<()> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let address = self.address().to_string();
        let patience = Duration::from_secs(if reopening { 600 } else { 60 });
        let started = Instant::now();
        let mut said = Instant::now();
        loop {
            let a = address.clone();
            let answered = tokio::task::spawn_blocking(move || {
                let consumer: BaseConsumer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", &a)
                    .create()
                    .map_err(|e| e.to_string())?;
                consumer
                    .fetch_metadata(None, Duration::from_secs(10))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await?;
            match answered {
                Ok(()) => return Ok(()),
                Err(_) if stop.load(Ordering::Relaxed) => {
                    bail!("stopped while waiting for the broker")
                }
                Err(e) if started.elapsed() > patience => bail!(
                    "the broker at {address} answered no metadata request within {}: {e}",
                    humantime::format_duration(patience)
                ),
                Err(_) => {
                    if said.elapsed() >= Duration::from_secs(30) {
                        println!(
                            "waiting for the broker to answer ({} s; Tansu reopens a previous run's data slowly)",
                            started.elapsed().as_secs()
                        );
                        said = Instant::now();
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn address(&self) -> &str {
        match self {
            Broker::Tansu { address, .. } => address,
            Broker::External(a) => a,
        }
    }

    /// SIGTERM (the watchdog shell stops the broker and waits for it), then SIGKILL to the whole
    /// process group after 10 s (Tansu busy reopening a store ignores SIGTERM).
    async fn stop(&mut self) {
        let Broker::Tansu { child, .. } = self else {
            return;
        };
        let Some(pid) = child.id() else {
            return;
        };
        let signal = |sig: &str, target: String| {
            let _ = std::process::Command::new("kill")
                .args([sig, "--", &target])
                .status();
        };
        signal("-TERM", pid.to_string());
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_err()
        {
            signal("-KILL", format!("-{pid}"));
            let _ = child.wait().await;
        }
    }
}

/// Runs `$1 broker` on `$2` (SQLite storage in the working folder) until this process (`$3`) is
/// gone, the broker exits, or the shell gets SIGTERM/SIGINT; then stops the broker and waits for it.
const WATCHDOG: &str = r#"
"$1" broker --listener-url "$2" --advertised-listener-url "$2" --storage-engine sqlite://tansu.db &
broker=$!
trap 'kill -TERM $broker 2>/dev/null; wait $broker; exit 0' TERM INT
while kill -0 "$3" 2>/dev/null && kill -0 $broker 2>/dev/null; do sleep 1; done
kill -TERM $broker 2>/dev/null
wait $broker
"#;

/// `tansu` on the PATH or in `~/.cargo/bin`.
fn which_tansu() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("tansu"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_uses_its_own_broker_database_and_folder() {
        let cfg = crate::config::load_with_env(None, Vec::new()).expect("local profile");
        let c = demo_config(&cfg, Path::new("/tmp/d"), "127.0.0.1:19092");
        assert_eq!(c.kafka.brokers, "127.0.0.1:19092");
        assert_eq!(c.mysql.url, "sqlite:///tmp/d/roomstream.db");
        assert_eq!(c.store.url, "file:///tmp/d/store");
        assert!(c.mysql.reader_user.is_empty());
        c.validate().expect("a valid configuration");
    }

    #[test]
    fn clearing_removes_only_the_demos_files_and_only_in_a_demos_folder() {
        let dir =
            std::env::temp_dir().join(format!("roomstream-demo-clear-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("store/x")).expect("mkdir");
        std::fs::create_dir_all(dir.join("broker")).expect("mkdir");
        std::fs::write(dir.join("roomstream.db"), b"x").expect("write");
        std::fs::write(dir.join("notes.txt"), b"mine").expect("write");
        let err = clear(&dir).expect_err("no sentinel, no demo.json: not the demo's folder");
        assert!(err.to_string().contains("no demo made"), "{err}");
        assert!(dir.join("store/x").exists(), "nothing removed");
        // A run's demo.json (an older demo's folder) or the sentinel mark it as the demo's.
        std::fs::write(dir.join("demo.json"), b"{}").expect("write");
        clear(&dir).expect("clear");
        assert!(!dir.join("store").exists(), "cleared");
        std::fs::create_dir_all(dir.join("store/x")).expect("mkdir");
        std::fs::create_dir_all(dir.join("broker")).expect("mkdir");
        std::fs::write(dir.join("demo.json"), b"{}").expect("write");
        std::fs::write(dir.join(SENTINEL), b"").expect("write");
        clear(&dir).expect("clear");
        assert!(!dir.join("store").exists() && !dir.join("broker").exists());
        assert!(!dir.join("roomstream.db").exists() && !dir.join("demo.json").exists());
        assert!(dir.join("notes.txt").exists(), "not the demo's: kept");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
