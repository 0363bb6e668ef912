//! Scoring's subcommands: `rescore --full`, `eval model`, `eval bait`. Thin calls into
//! [`crate::process::score`].

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use super::process::{make_engine, restored_engine};
use crate::config::Config;
use crate::kafka::{EventSink, KafkaSink};
use crate::process::metrics::Metrics;
use crate::process::runtime::{self, RunOptions};
use crate::process::score;
use crate::topics::TopicKind;
use crate::topics::envelope::{CONTROL_SCHEMA, ControlRecord};

/// `rescore --full`: writes a `rescore_full` control record to every partition of `sweeps.v1`, then
/// runs the processor until idle; each partition, on reaching the record, scores every listing with the
/// current `score.sql` and publishes only those whose content changed. Prints `changed: N of M`.
pub async fn rescore(cfg: &Config) -> anyhow::Result<ExitCode> {
    super::require_topics(cfg).await?;
    let record = serde_json::to_vec(&ControlRecord {
        schema: CONTROL_SCHEMA.into(),
        command: "rescore_full".into(),
        requested_at: crate::topics::envelope::now(),
    })?;
    let kafka = cfg.kafka.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut sink = KafkaSink::new(&kafka)?;
        for p in 0..TopicKind::Sweeps.def().partitions {
            sink.send_to_partition(TopicKind::Sweeps, p, "control", &record)?;
        }
        sink.finish()?;
        Ok(())
    })
    .await??;
    let metrics = Arc::new(Metrics::default());
    let engine = make_engine(cfg, metrics.clone())?;
    let opts = RunOptions {
        exit_when_idle: true,
        replay: false,
        progress: false,
    };
    let cfg2 = cfg.clone();
    let summary = tokio::task::spawn_blocking(move || {
        runtime::run(
            &cfg2,
            &opts,
            engine,
            metrics,
            Arc::new(AtomicBool::new(false)),
            &crate::health::Health::new("rescore"),
        )
    })
    .await??;
    let (changed, total) = summary
        .rescored
        .values()
        .fold((0, 0), |a, (c, t)| (a.0 + c, a.1 + t));
    println!(
        "rescored partitions {:?} with {}",
        summary.rescored.keys().collect::<Vec<_>>(),
        if cfg.score.queries.is_empty() {
            "the built-in queries/score.sql".to_string()
        } else {
            format!("{}/score.sql", cfg.score.queries)
        }
    );
    println!("changed: {changed} of {total}");
    Ok(ExitCode::SUCCESS)
}

/// Every partition's canonical listings, scored in full from the checkpoints.
async fn listings(
    cfg: &Config,
) -> anyhow::Result<BTreeMap<i32, Vec<crate::process::publish::CanonicalListing>>> {
    let states = super::process::load_states(cfg).await?;
    let engine = restored_engine(cfg, states).await?;
    let parts: Vec<i32> = engine.parts.keys().copied().collect();
    let mut out = BTreeMap::new();
    for p in parts {
        out.insert(p, engine.canonical(p)?);
    }
    Ok(out)
}

/// `eval model`.
pub async fn eval_model(cfg: &Config, holdout: f64) -> anyhow::Result<ExitCode> {
    if !(0.01..=0.9).contains(&holdout) {
        anyhow::bail!("--holdout must be between 0.01 and 0.9");
    }
    let by_partition = listings(cfg).await?;
    let e = score::eval::model(&by_partition, holdout, cfg.score.deposit_rate);
    println!(
        "fair-rent model: {} training listings, {} held out ({:.0} % by a hash of the listing id)",
        e.train,
        e.held_out,
        holdout * 100.0
    );
    println!(
        "{:<32} {:>12} {:>14}",
        "monthly cost predictor", "MAE (만원)", "median |err| %"
    );
    println!(
        "{:<32} {:>12.2} {:>14.1}",
        "hedonic ridge (roomstream)",
        e.model_mae,
        e.model_mdape * 100.0
    );
    println!(
        "{:<32} {:>12.2} {:>14.1}",
        "per-구 median (baseline)",
        e.baseline_mae,
        e.baseline_mdape * 100.0
    );
    println!(
        "error reduction: {:.1} % (target ≥ 20 %)",
        (1.0 - e.model_mae / e.baseline_mae.max(1e-9)) * 100.0
    );
    Ok(ExitCode::SUCCESS)
}

/// `eval bait`.
pub async fn eval_bait(cfg: &Config, truth: &Path) -> anyhow::Result<ExitCode> {
    let t = score::eval::read_bait_truth(truth)
        .with_context(|| format!("cannot read truth file {}", truth.display()))?;
    let all: Vec<_> = listings(cfg).await?.into_values().flatten().collect();
    let rows = score::eval::bait(&all, &t, &[30.0, 40.0, 50.0, 60.0, 70.0]);
    println!(
        "bait warning on {} live listings in the truth file ({} of them bait)",
        rows.first().map_or(0, |r| r.listings),
        rows.first().map_or(0, |r| r.counts.truth)
    );
    println!(
        "{:>9} {:>8} {:>8} {:>10} {:>8}",
        "risk ≥", "flagged", "correct", "precision", "recall"
    );
    for r in rows {
        println!(
            "{:>9.0} {:>8} {:>8} {:>10.4} {:>8.4}{}",
            r.threshold,
            r.counts.predicted,
            r.counts.correct,
            r.counts.precision(),
            r.counts.recall(),
            if r.threshold == 50.0 {
                "   ← the warning"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
