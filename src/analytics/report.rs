//! `roomstream report --out DIR`: every built-in question ([`queries::QUERIES`]) run over one
//! snapshot, each answer drawn as an SVG chart ([`chart`]) and written as CSV beside it, and an
//! `index.html` that shows the charts with what each answers and its SQL.
//!
//! Which chart a question gets is [`CHARTS`]: bars for counts by 구, office, floor or status, a line
//! for weeks, a map for positions. Labels are the answers' own text (Korean 구 names and offices); SVG
//! text is drawn by the viewer's fonts.

use std::fmt::Write as _;
use std::path::{Path as FsPath, PathBuf};

use super::chart::{self, Bar, Point};
use super::format::{self, Format};
use super::queries::{self, Query};
use super::{Analytics, AnalyticsError, Answer};

/// How a question's answer is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Horizontal bars: one per row (the first `top`), labelled by `label` columns joined with " · ",
    /// of length `value` × `scale`.
    Bars {
        /// Columns that make a bar's label.
        label: &'static [&'static str],
        /// The column of the bar's length.
        value: &'static str,
        /// Multiplier (100 for a share in %).
        scale: f64,
        /// What the value axis measures.
        unit: &'static str,
        /// Bars at most.
        top: usize,
        /// Draw the last row on top (floors: the highest floor up).
        last_on_top: bool,
    },
    /// Lines over weeks: `week` on x, one line per column of `series`.
    Weekly {
        /// (column, legend) of each line.
        series: &'static [(&'static str, &'static str)],
    },
    /// Each listing at its position, coloured by `value`, with the 구 names at their centres.
    Map {
        /// The colouring column.
        value: &'static str,
    },
}

/// One chart of the report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// The question (a [`queries::QUERIES`] name); also the files' stem.
    pub query: &'static str,
    /// The chart's title.
    pub title: &'static str,
    /// How it is drawn.
    pub kind: Kind,
}

const fn bars(label: &'static [&'static str], value: &'static str, unit: &'static str) -> Kind {
    Kind::Bars {
        label,
        value,
        scale: 1.0,
        unit,
        top: 30,
        last_on_top: false,
    }
}

/// The charts, in the order of the page: one per built-in question.
pub const CHARTS: [Spec; 9] = [
    Spec {
        query: "position_and_fee",
        title: "매물 위치와 월세+관리비 (만원)",
        kind: Kind::Map { value: "rent_fee" },
    },
    Spec {
        query: "all_facilities_by_district",
        title: "구별 주변 시설을 모두 갖춘 매물 수 (알려진 시설 기준)",
        kind: bars(&["district"], "known_count", "매물 수"),
    },
    Spec {
        query: "listings_per_agency",
        title: "중개사무소별 매물 수 (상위 30)",
        kind: bars(&["agency_name"], "property_count", "매물 수"),
    },
    Spec {
        query: "floor_distribution",
        title: "층별 매물 수",
        kind: Kind::Bars {
            label: &["floor"],
            value: "property_count",
            scale: 1.0,
            unit: "매물 수",
            top: 60,
            last_on_top: true,
        },
    },
    Spec {
        query: "broker_certification",
        title: "인증·미인증 중개사 매물 수",
        kind: bars(&["certificate_status"], "property_count", "매물 수"),
    },
    Spec {
        query: "uncertified_agents",
        title: "미인증 중개사별 매물 수 (상위 30)",
        kind: bars(&["agency_name", "agent_name"], "property_count", "매물 수"),
    },
    Spec {
        query: "price_changes_per_week",
        title: "주별 가격 변동",
        kind: Kind::Weekly {
            series: &[
                ("price_changes", "변동"),
                ("increases", "인상"),
                ("decreases", "인하"),
            ],
        },
    },
    Spec {
        query: "time_to_removal_by_district",
        title: "구별 거래 완료까지 걸린 날 (중앙값)",
        kind: bars(&["district"], "median_days", "일"),
    },
    Spec {
        query: "cross_listing_share",
        title: "다른 플랫폼에도 올라온 매물 비율",
        kind: Kind::Bars {
            label: &["platform"],
            value: "share",
            scale: 100.0,
            unit: "%",
            top: 10,
            last_on_top: false,
        },
    },
];

/// What one chart of a report came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// The question.
    pub query: &'static str,
    /// Rows of its answer.
    pub rows: usize,
    /// The SVG file.
    pub svg: PathBuf,
}

/// Runs every built-in question and writes `<query>.svg`, `<query>.csv` and `index.html` into `out`
/// (created if missing).
pub async fn write(a: &Analytics, out: &FsPath) -> Result<Vec<Drawn>, AnalyticsError> {
    let io = |path: &FsPath| {
        let path = path.display().to_string();
        move |source| AnalyticsError::Io { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut drawn = Vec::new();
    let mut sections = String::new();
    for spec in CHARTS {
        let query = queries::by_name(spec.query).ok_or_else(|| AnalyticsError::Chart {
            name: spec.query.into(),
            reason: "no such built-in query".into(),
        })?;
        let answer = a.sql(query.sql).await?;
        let svg = draw(&spec, &answer)?;
        let svg_path = out.join(format!("{}.svg", spec.query));
        std::fs::write(&svg_path, svg).map_err(io(&svg_path))?;
        let csv_path = out.join(format!("{}.csv", spec.query));
        let csv = format::to_string(Format::Csv, &answer.schema, &answer.batches)?;
        std::fs::write(&csv_path, csv).map_err(io(&csv_path))?;
        section(&mut sections, &spec, &query, answer.rows());
        drawn.push(Drawn {
            query: spec.query,
            rows: answer.rows(),
            svg: svg_path,
        });
    }
    let index = out.join("index.html");
    std::fs::write(&index, page(a, &sections)).map_err(io(&index))?;
    Ok(drawn)
}

/// Draws one answer as its spec says.
pub fn draw(spec: &Spec, answer: &Answer) -> Result<String, AnalyticsError> {
    let failed = |e: chart::ChartError| AnalyticsError::Chart {
        name: spec.query.into(),
        reason: e.to_string(),
    };
    match spec.kind {
        Kind::Bars {
            label,
            value,
            scale,
            unit,
            top,
            last_on_top,
        } => {
            let labels: Vec<Vec<Option<String>>> = label
                .iter()
                .map(|c| answer.strings(c))
                .collect::<Result<_, _>>()?;
            let values = answer.floats(value)?;
            let mut rows: Vec<Bar> = values
                .iter()
                .enumerate()
                .take(top)
                .map(|(i, v)| Bar {
                    label: labels
                        .iter()
                        .map(|col| col[i].clone().unwrap_or_else(|| "(없음)".into()))
                        .collect::<Vec<_>>()
                        .join(" · "),
                    value: v.unwrap_or(0.0) * scale,
                })
                .collect();
            if last_on_top {
                rows.reverse();
            }
            chart::bars(spec.title, unit, &rows).map_err(failed)
        }
        Kind::Weekly { series } => {
            let weeks: Vec<String> = answer
                .strings("week")?
                .into_iter()
                .map(|w| w.map(|w| w.chars().take(10).collect()).unwrap_or_default())
                .collect();
            let lines = series
                .iter()
                .map(|(column, legend)| {
                    let v = answer.floats(column)?;
                    Ok((*legend, v.into_iter().map(|x| x.unwrap_or(0.0)).collect()))
                })
                .collect::<Result<Vec<(&str, Vec<f64>)>, AnalyticsError>>()?;
            chart::weekly(spec.title, &weeks, &lines).map_err(failed)
        }
        Kind::Map { value } => {
            let (gu, lat, lng, v) = (
                answer.strings("district")?,
                answer.floats("latitude")?,
                answer.floats("longitude")?,
                answer.floats(value)?,
            );
            let points: Vec<Point> = (0..answer.rows())
                .filter_map(|i| {
                    Some(Point {
                        group: gu[i].clone().unwrap_or_default(),
                        lat: lat[i]?,
                        lng: lng[i]?,
                        value: v[i]?,
                    })
                })
                .collect();
            chart::map(spec.title, &points).map_err(failed)
        }
    }
}

/// `&`, `<`, `>` and `"` escaped for HTML text and attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn section(out: &mut String, spec: &Spec, query: &Query, rows: usize) {
    let name = escape(spec.query);
    let _ = write!(
        out,
        "<section id=\"{name}\">\n<h2>{title}</h2>\n<p>{about}</p>\n\
         <img src=\"{name}.svg\" alt=\"{title}\">\n\
         <p class=\"files\">{rows} rows · <a href=\"{name}.svg\">{name}.svg</a> · <a href=\"{name}.csv\">{name}.csv</a></p>\n\
         <details><summary>SQL (queries/analytics/{name}.sql)</summary><pre>{sql}</pre></details>\n</section>\n",
        title = escape(spec.title),
        about = escape(&query.about()),
        sql = escape(query.sql),
    );
}

fn page(a: &Analytics, sections: &str) -> String {
    let m = a.manifest();
    let toc: String = CHARTS
        .iter()
        .map(|s| {
            format!(
                "<li><a href=\"#{}\">{}</a> <code>{}</code></li>\n",
                escape(s.query),
                escape(s.title),
                escape(s.query)
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"ko\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>roomstream 분석 리포트</title>\n<style>\n\
         body {{ font-family: 'Noto Sans KR', 'Nanum Gothic', NanumGothic, 'Apple SD Gothic Neo', 'Malgun Gothic', sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }}\n\
         img {{ max-width: 100%; border: 1px solid #ddd; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}\n\
         section {{ margin-bottom: 3em; }} .files {{ color: #666; font-size: 0.9em; }}\n\
         </style>\n</head>\n<body>\n<h1>roomstream 분석 리포트</h1>\n\
         <p>Snapshot epoch {epoch} of the S3 sink (written {written}): {rows} live listings; changes from {files} committed change files up to its positions. \
         Each chart is one query of <code>queries/analytics/</code>, its answer beside it as CSV.</p>\n\
         <ul>\n{toc}</ul>\n{sections}</body>\n</html>\n",
        epoch = m.epoch,
        written = escape(&m.written_at),
        rows = m.rows,
        files = a.change_files(),
    )
}
