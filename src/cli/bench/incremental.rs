//! Scenario `incremental`: what keeping the state current costs, against recomputing it.
//!
//! 1. **One change vs a full recompute** (in memory, one partition of N listings, the built-in
//!    `score.sql` planned once): the full recompute rebuilds the model's statistics, fits it, computes
//!    every fair cost and runs every row through the query; a micro-batch of one changed listing
//!    updates its statistics, refits, re-checks the listings the refit may have moved across a grid
//!    line and runs the marked rows through the query. Also a micro-batch of 1,000 changes, per change.
//! 2. **A day of changes** (the simulator's last day over a week's state, in the real MySQL): applied
//!    incrementally — the day's events through the processor's engine holding the week's state, then
//!    the listings it published through the MySQL sink into the production table — against the seed's
//!    daily batch: recompute everything from every event, then write the whole table anew.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, ensure};
use rand::{Rng, SeedableRng};

use super::feed::{self, Core, Published};
use super::report::{Better, Figure, Report};
use super::{Ctx, fresh_namespace};
use crate::process::score::Params;
use crate::process::score::features::Row;
use crate::process::score::live::Live;
use crate::process::score::sql::{InputRow, Query, SCORE_SQL, load};
use crate::sink::mysql::MysqlSink;
use crate::sink::runner::{Batch, Destination};
use crate::topics::TopicKind;

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let n: u32 = ctx.size.pick(5_000, 200_000, 1_000_000);
    let (flats, days) = ctx.size.pick((500, 4), (10_000, 8), (100_000, 8));
    let mut report = Report::new(
        "incremental",
        format!(
            "scoring: {n} listings in one partition (25 구, 450 동); a day: simulator {flats} flats, day {days} over days 1–{} in MySQL",
            days - 1
        ),
        &ctx.machine,
    );
    let cfg = ctx.cfg.clone();
    let scored = tokio::task::spawn_blocking(move || score_part(&cfg, n)).await??;
    for f in scored.0 {
        report.push(f);
    }
    for note in scored.1 {
        report.note(note);
    }
    day_part(ctx, flats, days, &mut report).await?;
    Ok(report)
}

/// One synthetic listing for the benchmark: a row and its `score_input` columns.
fn bench_listing(
    rng: &mut rand_chacha::ChaCha8Rng,
    i: u32,
    version: u32,
) -> (String, Row, InputRow) {
    let gu = 11110 + 10 * rng.random_range(0..25u32);
    let dong = format!("{gu}{:05}", rng.random_range(0..18u32));
    let area: f64 = 15.0 + rng.random_range(0.0..40.0);
    let semi = rng.random_range(0..20) == 0;
    let base = 40.0 + f64::from(gu % 250) / 10.0;
    let cost =
        base * (area / 30.0).powf(0.5) * if semi { 0.8 } else { 1.0 } * rng.random_range(0.7..1.4)
            + f64::from(version);
    let id = format!("L{i:08}");
    let mut x = vec![
        ("1".to_string(), 1.0),
        ("ln_area".to_string(), (area / 30.0).ln()),
        (format!("gu:{gu}"), 1.0),
        (format!("dong:{dong}"), 1.0),
    ];
    if semi {
        x.push(("floor:semi_basement".into(), 1.0));
    }
    let row = Row {
        gu: gu.to_string(),
        dong: dong.clone(),
        monthly_cost: cost,
        cost_m2: Some(cost / area),
        x,
        y: cost.ln(),
        fresh_since: 0,
        members: Vec::new(),
    };
    let input = InputRow {
        listing_id: id.clone(),
        gu: gu.to_string(),
        dong,
        monthly_cost: cost,
        cost_m2: Some(cost / area),
        fair_cost: None,
        floor_kind: if semi { "semi_basement" } else { "level" },
        floor_level: (!semi).then_some(3),
        direction: Some("S".into()),
        subway_m: Some(rng.random_range(100..1500)),
        store_m: Some(rng.random_range(30..700)),
        broker_status: "verified".into(),
        age_band: 0,
        photo_reuse: 0,
    };
    (id, row, input)
}

/// The benchmark listing's index in the world, from its id `L{index:08}`.
fn index_of(id: &str) -> usize {
    id.strip_prefix('L')
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// An input row with the fair cost the live state holds for it.
fn with_fair(mut input: InputRow, live: &Live) -> InputRow {
    input.fair_cost = live.fair.get(&input.listing_id).copied();
    input
}

/// Part 1: figures and notes.
fn score_part(cfg: &crate::config::Config, n: u32) -> anyhow::Result<(Vec<Figure>, Vec<String>)> {
    let params = Params {
        deposit_rate: cfg.score.deposit_rate,
        epsilon: cfg.score.epsilon,
    };
    let seed = 7;
    let (name, sql) = load(&cfg.score.queries, "score.sql", SCORE_SQL)?;
    let query = Query::plan_score(&name, &sql)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut world: Vec<(String, Row, InputRow)> =
        (0..n).map(|i| bench_listing(&mut rng, i, 0)).collect();

    // The full recompute.
    let t = Instant::now();
    let mut live = Live::default();
    live.rebuild(
        world
            .iter()
            .map(|(id, row, _)| (id.clone(), row.clone()))
            .collect(),
        &params,
    );
    let inputs: Vec<InputRow> = world
        .iter()
        .map(|(_, _, input)| with_fair(input.clone(), &live))
        .collect();
    let out = query.score(&inputs)?;
    let full = t.elapsed().as_secs_f64();
    ensure!(
        out.len() == n as usize,
        "the full run scored {} of {n}",
        out.len()
    );
    drop((inputs, out));
    let features = live.coef.len();

    // Micro-batches: `changed` listings change; one refit; only the marked listings are scored.
    let mut batch = |changed: u32, round: u32| -> anyhow::Result<(f64, usize)> {
        let picks: Vec<u32> = (0..changed).map(|_| rng.random_range(0..n)).collect();
        let t = Instant::now();
        for &i in &picks {
            let mut one = rand_chacha::ChaCha8Rng::seed_from_u64(
                seed ^ (u64::from(i) << 8) ^ u64::from(round),
            );
            let (id, row, input) = bench_listing(&mut one, i, round + 1);
            live.upsert(&id, row.clone(), &params);
            world[i as usize] = (id, row, input);
        }
        live.refit(&params);
        let marked = std::mem::take(&mut live.to_score);
        live.knock_on = 0;
        let rows: Vec<InputRow> = marked
            .iter()
            .map(|id| with_fair(world[index_of(id)].2.clone(), &live))
            .collect();
        query.score(&rows)?;
        Ok((t.elapsed().as_secs_f64(), marked.len()))
    };
    let mut ones = Vec::new();
    for round in 0..20 {
        ones.push(batch(1, round)?);
    }
    let mut thousands = Vec::new();
    for round in 20..25 {
        thousands.push(batch(1000, round)?);
    }
    let median = |v: &mut Vec<(f64, usize)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v[v.len() / 2]
    };
    let (one, one_marked) = median(&mut ones);
    let (thousand, thousand_marked) = median(&mut thousands);
    let figures = vec![
        Figure::new(
            "one changed listing, rescored incrementally",
            one * 1e3,
            "ms",
            Better::Lower,
        )
        .vs("full recompute", full * 1e3)
        .headline(),
        Figure::new(
            "full recompute ÷ one change",
            full / one,
            "×",
            Better::Higher,
        )
        .target(1000.0)
        .headline(),
        Figure::new(
            "a micro-batch of 1,000 changes, per change",
            thousand * 1e6 / 1000.0,
            "µs",
            Better::Lower,
        )
        .vs("full recompute per listing", full * 1e6 / f64::from(n)),
        Figure::new(
            "full recompute ÷ one change within a batch of 1,000",
            full / (thousand / 1000.0),
            "×",
            Better::Higher,
        ),
    ];
    let notes = vec![format!(
        "full recompute {full:.2} s over {n} listings ({features} features); medians of 20 single changes ({one_marked} rescored) and of 5 batches of 1,000 ({thousand_marked} rescored: the changed ones and those a refit moved across a grid line)"
    )];
    Ok((figures, notes))
}

/// Part 2: a day of changes into MySQL, incrementally and the seed's way.
async fn day_part(ctx: &Ctx, flats: u32, days: u32, report: &mut Report) -> anyhow::Result<()> {
    let seed = 5;
    let all = feed::synthetic(flats, days, seed)?;
    // The last day (KST) of the feed, which plays day after day.
    let dates: Vec<Option<i64>> = all.iter().map(|r| kst_date(r)).collect();
    let last = dates
        .iter()
        .flatten()
        .max()
        .copied()
        .context("an empty feed")?;
    let split = dates
        .iter()
        .position(|d| *d == Some(last))
        .context("no last day")?;
    ensure!(
        dates[split..].iter().all(|d| d.is_none_or(|d| d == last)),
        "the feed is not in day order"
    );
    let (week, day) = all.split_at(split);
    // The state and the production table as of yesterday (not timed).
    let mut core = Core::new(&ctx.cfg)?;
    core.keep = true;
    for (t, k, v) in week {
        core.feed(*t, k, v)?;
    }
    core.finish()?;
    let yesterday = latest(std::mem::take(&mut core.kept));
    let cfg = fresh_namespace(&ctx.cfg, "incremental");
    let mut table = MysqlSink::open(&cfg).await.context("mysql")?;
    let mut offset = 0i64;
    write(&mut table, &yesterday, &mut offset, cfg.sink.batch_rows).await?;
    table.close().await?;
    let listings = yesterday.iter().filter(|p| p.value.is_some()).count();

    // Incremental: the day's events, then what they published.
    let t = Instant::now();
    for (tk, k, v) in day {
        core.feed(*tk, k, v)?;
    }
    core.finish()?;
    let changes = std::mem::take(&mut core.kept);
    let processed = t.elapsed().as_secs_f64();
    write(&mut table, &changes, &mut offset, cfg.sink.batch_rows).await?;
    table.close().await?; // the changed regions' statistics
    let incremental = t.elapsed().as_secs_f64();
    drop((core, table));
    super::drop_namespace(&cfg).await;

    // The seed's way: recompute from every event, replace the whole table.
    let t = Instant::now();
    let mut batch = Core::new(&ctx.cfg)?;
    batch.keep = true;
    for (tk, k, v) in &all {
        batch.feed(*tk, k, v)?;
    }
    batch.finish()?;
    let now = latest(std::mem::take(&mut batch.kept));
    let recomputed = t.elapsed().as_secs_f64();
    let rows: Vec<Published> = now.into_iter().filter(|p| p.value.is_some()).collect();
    let cfg2 = fresh_namespace(&ctx.cfg, "incremental_batch");
    let mut fresh = MysqlSink::open(&cfg2).await.context("mysql")?;
    let mut offset2 = 0i64;
    write(&mut fresh, &rows, &mut offset2, cfg.sink.batch_rows).await?;
    fresh.close().await?; // every region's statistics
    let seed_way = t.elapsed().as_secs_f64();
    drop(fresh);
    super::drop_namespace(&cfg2).await;

    report.push(
        Figure::new(
            "a day of changes applied incrementally",
            incremental,
            "s",
            Better::Lower,
        )
        .vs(
            "recompute everything and replace the table (the seed's way)",
            seed_way,
        )
        .headline(),
    );
    report.note(format!(
        "the day: {} events → {} listing changes published (of {listings} listings in the table, {} after); incremental {processed:.2} s processing + {:.2} s MySQL; seed's way {recomputed:.2} s recompute + {:.2} s writing {} rows",
        day.len(),
        changes.len(),
        rows.len(),
        incremental - processed,
        seed_way - recomputed,
        rows.len()
    ));
    Ok(())
}

/// The KST date (days since the epoch) an observation was made or a sweep started; None for the
/// registry.
fn kst_date(r: &feed::Record) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct When {
        #[serde(default, with = "time::serde::rfc3339::option")]
        observed_at: Option<time::OffsetDateTime>,
        #[serde(default, with = "time::serde::rfc3339::option")]
        started_at: Option<time::OffsetDateTime>,
    }
    if r.0 == TopicKind::Brokers {
        return None;
    }
    let w: When = serde_json::from_slice(&r.2).ok()?;
    let t = w.observed_at.or(w.started_at)?;
    Some((t.unix_timestamp() + 9 * 3600).div_euclid(86_400))
}

/// The last record of each key (what a compacted topic keeps), in first-seen order.
fn latest(records: Vec<Published>) -> Vec<Published> {
    let mut at: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Published> = Vec::new();
    for p in records {
        match at.get(&p.key) {
            Some(&i) => out[i] = p,
            None => {
                at.insert(p.key.clone(), out.len());
                out.push(p);
            }
        }
    }
    out
}

/// Writes records through the sink's write path in batches, at consecutive offsets of partition 0.
pub(super) async fn write(
    dest: &mut MysqlSink,
    records: &[Published],
    offset: &mut i64,
    batch_rows: usize,
) -> anyhow::Result<()> {
    for chunk in records.chunks(batch_rows.max(1)) {
        let from = *offset;
        let changes = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                crate::sink::change::decode(
                    0,
                    from + i as i64,
                    Some(p.key.as_bytes()),
                    p.value.as_deref(),
                    p.ended.clone(),
                )
                .map_err(|r| anyhow::anyhow!("a published record does not decode: {}", r.reason))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let next = from + chunk.len() as i64;
        dest.write(Batch {
            topic: TopicKind::Listings,
            partition: 0,
            from,
            first: from,
            next,
            records: Vec::new(),
            changes,
        })
        .await?;
        *offset = next;
    }
    Ok(())
}
