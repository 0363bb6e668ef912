//! What every scenario hands back: its figures, each beside the baseline measured in the same run and
//! the ratio between them, the target it is held to, and the data size and machine it ran on. Printed
//! as a table and written as JSON (`<out>/<scenario>.json`); [`summary`] renders every scenario's
//! headline figures as the Markdown table the README quotes.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The machine a run measured: figures from another machine are not comparable, ratios more so.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// Physical memory, GiB.
    pub memory_gib: f64,
    /// `model name` of the first CPU.
    pub cpu: String,
    /// `release`, or `debug` (figures of a debug build are not the product's).
    pub profile: String,
    /// `git describe --always --dirty` of the working directory, when it is a checkout.
    pub commit: Option<String>,
    /// UTC time the run started (RFC 3339).
    pub started: String,
}

impl Machine {
    /// Reads this machine.
    pub fn read() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
        let commit = std::process::Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: (mem_kib / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            cpu,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
            commit,
            started: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }

    /// One line for a table's header.
    pub fn line(&self) -> String {
        format!(
            "{} cores, {} GiB, {}; {} build{}",
            self.cores,
            self.memory_gib,
            self.cpu,
            self.profile,
            self.commit
                .as_deref()
                .map(|c| format!(" of {c}"))
                .unwrap_or_default()
        )
    }
}

/// Which way a figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// What a target bounds: the figure itself or its ratio to the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Value,
    Ratio,
}

/// A target: `value` ≥ (higher is better) or ≤ (lower is better) `limit`, or the same of the ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub bound: Bound,
    pub limit: f64,
}

/// The baseline a figure is quoted beside: the same quantity for something simpler, measured in the
/// same run on the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub value: f64,
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub better: Better,
    pub baseline: Option<Baseline>,
    /// value / baseline.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    /// Whether the target is met (None without a target).
    pub met: Option<bool>,
    /// Shown in the summary table (the scenario's headline figures).
    pub headline: bool,
}

impl Figure {
    /// A figure without baseline or target.
    pub fn new(name: &str, value: f64, unit: &str, better: Better) -> Figure {
        Figure {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            better,
            baseline: None,
            ratio: None,
            target: None,
            met: None,
            headline: false,
        }
    }

    /// Quoted beside `baseline` (its ratio computed).
    pub fn vs(mut self, name: &str, value: f64) -> Figure {
        self.ratio = (value != 0.0 && value.is_finite()).then(|| self.value / value);
        self.baseline = Some(Baseline {
            name: name.to_string(),
            value,
        });
        self.check();
        self
    }

    /// Held to a target on the value.
    pub fn target(mut self, limit: f64) -> Figure {
        self.target = Some(Target {
            bound: Bound::Value,
            limit,
        });
        self.check();
        self
    }

    /// Held to a target on the ratio to the baseline.
    pub fn target_ratio(mut self, limit: f64) -> Figure {
        self.target = Some(Target {
            bound: Bound::Ratio,
            limit,
        });
        self.check();
        self
    }

    /// In the summary table.
    pub fn headline(mut self) -> Figure {
        self.headline = true;
        self
    }

    fn check(&mut self) {
        self.met = self.target.and_then(|t| {
            let x = match t.bound {
                Bound::Value => Some(self.value),
                Bound::Ratio => self.ratio,
            }?;
            Some(match self.better {
                Better::Higher => x >= t.limit,
                Better::Lower => x <= t.limit,
            })
        });
    }

    /// The target as text (`≥ 250,000 events/s`, `ratio ≥ 0.5`).
    pub fn target_text(&self) -> String {
        let Some(t) = self.target else {
            return String::new();
        };
        let op = match self.better {
            Better::Higher => "≥",
            Better::Lower => "≤",
        };
        match t.bound {
            Bound::Value => format!("{op} {} {}", num(t.limit), self.unit),
            Bound::Ratio => format!("{op} {}×", num(t.limit)),
        }
    }
}

/// One scenario's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    /// What ran, on how much data.
    pub data: String,
    pub machine: Machine,
    /// Wall time of the scenario, seconds.
    pub seconds: f64,
    pub figures: Vec<Figure>,
    /// Observations worth keeping with the figures (where time went, what was excluded).
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report of `scenario` on `data`.
    pub fn new(scenario: &str, data: String, machine: &Machine) -> Report {
        Report {
            scenario: scenario.to_string(),
            data,
            machine: machine.clone(),
            seconds: 0.0,
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a figure.
    pub fn push(&mut self, f: Figure) {
        self.figures.push(f);
    }

    /// Adds a note.
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "== bench {} ({:.0} s) ==", self.scenario, self.seconds);
        let _ = writeln!(s, "data: {}", self.data);
        let _ = writeln!(s, "machine: {}", self.machine.line());
        let rows: Vec<[String; 6]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.name.clone(),
                    format!("{} {}", num(f.value), f.unit),
                    f.baseline
                        .as_ref()
                        .map(|b| format!("{}: {}", b.name, num(b.value)))
                        .unwrap_or_default(),
                    f.ratio.map(|r| format!("{}×", num(r))).unwrap_or_default(),
                    f.target_text(),
                    match f.met {
                        Some(true) => "met".into(),
                        Some(false) => "MISSED".into(),
                        None => String::new(),
                    },
                ]
            })
            .collect();
        let header = [
            "figure",
            "value",
            "baseline (same run)",
            "ratio",
            "target",
            "",
        ];
        let widths: Vec<usize> = (0..6)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                if i == 1 || i == 3 {
                    let _ = write!(l, "{}{}  ", " ".repeat(pad), c);
                } else {
                    let _ = write!(l, "{}{}  ", c, " ".repeat(pad));
                }
            }
            l.trim_end().to_string()
        };
        let _ = writeln!(s, "{}", line(&header.map(String::from)));
        for r in &rows {
            let _ = writeln!(s, "{}", line(r));
        }
        for n in &self.notes {
            let _ = writeln!(s, "  · {n}");
        }
        s
    }

    /// Writes `<dir>/<scenario>.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join(format!("{}.json", self.scenario)),
            serde_json::to_vec_pretty(self)?,
        )?;
        Ok(())
    }
}

/// The headline figures of every report as a Markdown table, ratios first, then what each scenario
/// ran on.
pub fn summary(reports: &[Report]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| scenario | ratio to baseline | figure | baseline (same run) | target | met |"
    );
    let _ = writeln!(s, "|---|---:|---|---|---|---|");
    for r in reports {
        for f in r.figures.iter().filter(|f| f.headline) {
            let _ = writeln!(
                s,
                "| {} | {} | {}: {} {} | {} | {} | {} |",
                r.scenario,
                f.ratio
                    .map(|x| format!("**{}×**", num(x)))
                    .unwrap_or_default(),
                f.name,
                num(f.value),
                f.unit,
                f.baseline
                    .as_ref()
                    .map(|b| format!("{}: {} {}", b.name, num(b.value), f.unit))
                    .unwrap_or_default(),
                f.target_text(),
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "",
                },
            );
        }
    }
    let _ = writeln!(s);
    if let Some(m) = reports.first().map(|r| &r.machine) {
        let _ = writeln!(
            s,
            "Machine: {}.
",
            m.line()
        );
    }
    for r in reports {
        let _ = writeln!(s, "- **{}** ({:.0} s): {}", r.scenario, r.seconds, r.data);
    }
    s
}

/// A number for people: thousands separated, three significant digits below 100.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if a >= 100.0 {
        let n = x.round() as i64;
        let digits = n.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        if n < 0 { format!("-{out}") } else { out }
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(3, 9) as usize;
        format!("{x:.decimals$}")
    }
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], bytes (`VmHWM`).
pub fn peak_rss() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

/// Resident memory now, bytes (`VmRSS`).
pub fn rss() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

/// Resets the peak resident memory to the current one (Linux: `5` into `/proc/self/clear_refs`), so a
/// phase's peak is its own. Returns whether it could.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kib(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// p-th percentile (0–100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_check_their_targets_on_value_or_ratio() {
        let f = Figure::new("core", 200_000.0, "events/s", Better::Higher)
            .vs("decode only", 400_000.0)
            .target(250_000.0);
        assert_eq!(f.ratio, Some(0.5));
        assert_eq!(f.met, Some(false));
        assert_eq!(f.target_text(), "≥ 250,000 events/s");
        let g = Figure::new("whole", 6000.0, "events/s", Better::Higher)
            .vs("plain consumer", 10_000.0)
            .target_ratio(0.5);
        assert_eq!(g.met, Some(true));
        let h = Figure::new("p99", 700.0, "ms", Better::Lower).target(500.0);
        assert_eq!(h.met, Some(false));
        assert_eq!(h.ratio, None);
    }

    #[test]
    fn numbers_read_well_and_percentiles_take_the_nearest_rank() {
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(-1234.0), "-1,234");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.01234), "0.0123");
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
    }

    #[test]
    fn the_summary_lists_headline_figures_with_their_ratio() {
        let m = Machine::read();
        let mut r = Report::new("throughput", "20,000 flats".into(), &m);
        r.push(
            Figure::new("core", 49_000.0, "events/s", Better::Higher)
                .vs("decode only", 98_000.0)
                .target(250_000.0)
                .headline(),
        );
        r.push(Figure::new("state", 541.0, "bytes", Better::Lower));
        let s = summary(&[r.clone()]);
        assert!(
            s.contains("| throughput | **0.500×** | core: 49,000 events/s"),
            "{s}"
        );
        assert!(!s.contains("state"), "{s}");
        assert!(r.table().contains("MISSED"));
        assert!(m.cores >= 1 && m.memory_gib > 0.0);
    }
}
