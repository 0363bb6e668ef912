//! `roomstream bench --smoke`: every scenario of the benchmark harness runs end to end on the real
//! broker, S3 server, MariaDB and PostgreSQL at tiny sizes, and writes reports whose figures each
//! carry a baseline measured in the same run. (The figures themselves are the release build's, from
//! `scripts/bench.sh`; a debug smoke run only proves the harness has not rotted.)

use crate::support::spawn_env;

#[tokio::test(flavor = "multi_thread")]
async fn every_scenario_runs_and_reports_figures_beside_baselines() {
    let env = spawn_env(&[]).await;
    let out = std::env::temp_dir().join(format!("roomstream-bench-{}", env.namespace()));
    let _ = std::fs::remove_dir_all(&out);
    let run = env.roomstream(&[
        "bench",
        "--smoke",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let scenarios = [
        "throughput",
        "replay",
        "incremental",
        "freshness",
        "api",
        "sinks",
    ];
    for s in scenarios {
        let path = out.join(format!("{s}.json"));
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .expect("a JSON report");
        assert_eq!(report["scenario"], s);
        assert!(
            report["machine"]["cores"].as_u64().unwrap_or(0) >= 1,
            "{report}"
        );
        assert!(
            !report["data"].as_str().unwrap_or("").is_empty(),
            "{report}"
        );
        let figures = report["figures"].as_array().expect("figures");
        let headline: Vec<&serde_json::Value> =
            figures.iter().filter(|f| f["headline"] == true).collect();
        assert!(!headline.is_empty(), "{s}: no headline figure");
        for f in figures {
            let value = f["value"].as_f64().unwrap_or(f64::NAN);
            assert!(value.is_finite() && value >= 0.0, "{s}: {f}");
            if let Some(b) = f["baseline"].as_object() {
                let base = b["value"].as_f64().unwrap_or(f64::NAN);
                assert!(base.is_finite() && base > 0.0, "{s}: {f}");
                let ratio = f["ratio"].as_f64().expect("a ratio beside a baseline");
                assert!(
                    (ratio - value / base).abs() <= 1e-9 * ratio.abs().max(1.0),
                    "{s}: {f}"
                );
            }
            if f["target"].is_object() {
                assert!(
                    f["met"].is_boolean(),
                    "{s}: a target without a verdict: {f}"
                );
            }
        }
        // Every headline figure but a ratio of its own is quoted beside a baseline.
        for f in headline {
            assert!(
                f["baseline"].is_object() || f["unit"] == "×",
                "{s}: headline without a baseline: {f}"
            );
        }
        assert!(stdout.contains(&format!("== bench {s} (")), "{stdout}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    for s in scenarios {
        assert!(
            summary.contains(&format!("| {s} |")),
            "{s} missing from\n{summary}"
        );
    }
    let all: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json"))
            .expect("JSON");
    assert_eq!(all.as_array().map(Vec::len), Some(scenarios.len()));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn an_unknown_scenario_is_refused_naming_the_choices() {
    let out = crate::support::roomstream_with(&[], &["bench", "latency"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("throughput") && err.contains("freshness"),
        "{err}"
    );
}
