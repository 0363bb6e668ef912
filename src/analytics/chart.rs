//! SVG charts of query answers, drawn with plotters' SVG backend: horizontal bars, lines over weeks
//! and a map of positions. Text (Korean 구 names, offices, titles) goes into the SVG as `<text>`,
//! escaped, in a font list that names common Korean fonts before `sans-serif`; the viewer renders it.
//! Plotters, without a font backend, guesses text widths from byte counts, so label areas are sized
//! here from the characters (a Hangul syllable ≈ one em).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The font list every text uses.
pub const FONT: &str =
    "Noto Sans KR, Nanum Gothic, NanumGothic, Apple SD Gothic Neo, Malgun Gothic, sans-serif";
/// Chart width, pixels.
const WIDTH: u32 = 960;
/// Plotters writes `font-size` as the given size / 1.24: these give 12, 13 and 18 px.
const SMALL: f64 = 15.0;
const LABEL: f64 = 16.0;
const TITLE: f64 = 22.0;
/// Bar and line colours.
const BLUE: RGBColor = RGBColor(44, 123, 182);
const COLOURS: [RGBColor; 3] = [
    RGBColor(44, 123, 182),
    RGBColor(215, 25, 28),
    RGBColor(26, 150, 65),
];

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError(e.to_string())
    }
}

/// One bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Its label (drawn left of the axis).
    pub label: String,
    /// Its length.
    pub value: f64,
}

/// One point of the map.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The 구 it belongs to (its name is drawn at the centre of its points).
    pub group: String,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lng: f64,
    /// The value its colour shows.
    pub value: f64,
}

/// Width in pixels of `s` at `px`: Hangul and other wide characters one em, the rest about 0.6.
pub fn text_width(s: &str, px: f64) -> f64 {
    s.chars()
        .map(|c| if c >= '\u{1100}' { px } else { px * 0.6 })
        .sum()
}

/// A number as a label: whole numbers without decimals, others with one.
pub fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// The page of a chart without rows: its title and a line saying so.
fn empty(root: &DrawingArea<SVGBackend<'_>, Shift>, title: &str) -> Result<(), ChartError> {
    let area = root.titled(title, font(TITLE))?;
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        "데이터 없음 (no rows)",
        (w as i32 / 2, h as i32 / 2),
        font(LABEL).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// Horizontal bars, the first at the top, each with its value at its end; `unit` names the axis.
pub fn bars(title: &str, unit: &str, rows: &[Bar]) -> Result<String, ChartError> {
    let n = rows.len();
    let height = 110 + 26 * n.max(4) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        if n == 0 {
            empty(&root, title)?;
        } else {
            let label_px = rows
                .iter()
                .map(|b| text_width(&b.label, LABEL / 1.24))
                .fold(0.0, f64::max)
                .clamp(30.0, 420.0) as u32
                + 16;
            let max = rows.iter().map(|b| b.value).fold(0.0, f64::max);
            let top = if max > 0.0 { max * 1.15 } else { 1.0 };
            let mut chart = ChartBuilder::on(&root)
                .caption(title, font(TITLE))
                .margin(14)
                .x_label_area_size(44)
                .y_label_area_size(label_px)
                .build_cartesian_2d(0f64..top, (0..n - 1).into_segmented())?;
            // Row i is drawn at segment n-1-i, so the first row is on top.
            let at = |i: usize| n - 1 - i;
            let edge = |s: usize| {
                if s + 1 == n {
                    SegmentValue::Last
                } else {
                    SegmentValue::Exact(s + 1)
                }
            };
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(n)
                .y_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(s) if *s < n => rows[n - 1 - s].label.clone(),
                    _ => String::new(),
                })
                .x_label_formatter(&|v| number(*v))
                .x_desc(unit)
                .label_style(font(LABEL))
                .axis_desc_style(font(LABEL))
                .draw()?;
            chart.draw_series(rows.iter().enumerate().map(|(i, b)| {
                let mut r = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(at(i))),
                        (b.value.max(0.0), edge(at(i))),
                    ],
                    BLUE.filled(),
                );
                r.set_margin(3, 3, 0, 0);
                r
            }))?;
            chart.draw_series(rows.iter().enumerate().map(|(i, b)| {
                EmptyElement::at((b.value.max(0.0), SegmentValue::CenterOf(at(i))))
                    + Text::new(
                        number(b.value),
                        (5, 0),
                        font(SMALL).pos(Pos::new(HPos::Left, VPos::Center)),
                    )
            }))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Lines over weeks (`weeks` the x labels, `YYYY-MM-DD`), one per (legend, values) of `lines`.
pub fn weekly(
    title: &str,
    weeks: &[String],
    lines: &[(&str, Vec<f64>)],
) -> Result<String, ChartError> {
    let n = weeks.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        if n == 0 {
            empty(&root, title)?;
        } else {
            let max = lines
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(&root)
                .caption(title, font(TITLE))
                .margin(14)
                .x_label_area_size(52)
                .y_label_area_size(64)
                .build_cartesian_2d((0..n - 1).into_segmented(), 0f64..(max * 1.15).max(1.0))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(n.min(16))
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => weeks.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_label_formatter(&|v| number(*v))
                .x_desc("주 (월요일 시작, KST)")
                .y_desc("건수")
                .label_style(font(SMALL))
                .axis_desc_style(font(LABEL))
                .draw()?;
            for (k, (legend, values)) in lines.iter().enumerate() {
                let colour = COLOURS[k % COLOURS.len()];
                let points: Vec<(SegmentValue<usize>, f64)> = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (SegmentValue::CenterOf(i), *v))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
                    .label(*legend)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
                chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )?;
            }
            chart
                .configure_series_labels()
                .label_font(font(LABEL))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A colour from blue (0) through yellow to red (1).
fn ramp(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: (f64, f64, f64), b: (f64, f64, f64), s: f64| {
        RGBColor(
            (a.0 + (b.0 - a.0) * s) as u8,
            (a.1 + (b.1 - a.1) * s) as u8,
            (a.2 + (b.2 - a.2) * s) as u8,
        )
    };
    let (blue, yellow, red) = (
        (44.0, 123.0, 182.0),
        (255.0, 220.0, 100.0),
        (215.0, 25.0, 28.0),
    );
    if t < 0.5 {
        mix(blue, yellow, t * 2.0)
    } else {
        mix(yellow, red, (t - 0.5) * 2.0)
    }
}

/// Points at their positions (longitude east, latitude north, distances kept at Seoul's latitude),
/// coloured by the quintile of their value, with each group's name at the mean of its points.
pub fn map(title: &str, points: &[Point]) -> Result<String, ChartError> {
    let mut svg = String::new();
    let bounds = points.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), p| (a.min(p.lng), b.max(p.lng), c.min(p.lat), d.max(p.lat)),
    );
    let (x0, x1, y0, y1) = (
        bounds.0 - 0.01,
        bounds.1 + 0.01,
        bounds.2 - 0.01,
        bounds.3 + 0.01,
    );
    // A degree of longitude is cos(37.5°) ≈ 0.79 of a degree of latitude here.
    let height = if points.is_empty() {
        400
    } else {
        (120.0 + 800.0 * (y1 - y0) / ((x1 - x0) * 0.79)).clamp(400.0, 1100.0) as u32
    };
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        if points.is_empty() {
            empty(&root, title)?;
        } else {
            let mut values: Vec<f64> = points.iter().map(|p| p.value).collect();
            values.sort_by(f64::total_cmp);
            let cut = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
            let edges = [cut(0.2), cut(0.4), cut(0.6), cut(0.8), f64::MAX];
            let mut chart = ChartBuilder::on(&root)
                .caption(title, font(TITLE))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)?;
            chart
                .configure_mesh()
                .x_desc("경도")
                .y_desc("위도")
                .x_label_formatter(&|v| format!("{v:.2}"))
                .y_label_formatter(&|v| format!("{v:.2}"))
                .label_style(font(SMALL))
                .axis_desc_style(font(LABEL))
                .light_line_style(WHITE)
                .draw()?;
            let mut low = values[0];
            for (k, high) in edges.iter().enumerate() {
                let colour = ramp(k as f64 / 4.0);
                let bin = points
                    .iter()
                    .filter(|p| p.value <= *high && (k == 0 || p.value > edges[k - 1]));
                let legend = if k == 4 {
                    format!("{}만원 초과", number(edges[3]))
                } else {
                    format!("{}–{}만원", number(low), number(*high))
                };
                low = *high;
                chart
                    .draw_series(
                        bin.map(|p| Circle::new((p.lng, p.lat), 2, colour.mix(0.8).filled())),
                    )?
                    .label(legend)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, colour.filled()));
            }
            let mut groups: std::collections::BTreeMap<&str, (f64, f64, f64)> = Default::default();
            for p in points.iter().filter(|p| !p.group.is_empty()) {
                let g = groups.entry(p.group.as_str()).or_default();
                *g = (g.0 + p.lng, g.1 + p.lat, g.2 + 1.0);
            }
            chart.draw_series(groups.iter().map(|(name, (x, y, n))| {
                Text::new(
                    name.to_string(),
                    (x / n, y / n),
                    (FONT, LABEL, FontStyle::Bold)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            }))?;
            chart
                .configure_series_labels()
                .label_font(font(SMALL))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_carry_korean_labels_escaped_and_their_values() {
        let rows = vec![
            Bar {
                label: "관악구".into(),
                value: 120.0,
            },
            Bar {
                label: "A&B <공인중개사>".into(),
                value: 7.5,
            },
        ];
        let svg = bars("구별 매물 수", "매물 수", &rows).expect("drawn");
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in [
            "관악구",
            "A&amp;B &lt;공인중개사&gt;",
            "구별 매물 수",
            ">\n120\n</text>",
            ">\n7.5\n</text>",
        ] {
            assert!(svg.contains(text), "missing {text:?}");
        }
        assert!(!svg.contains("<공인"), "text is escaped");
        assert!(svg.contains("Noto Sans KR"), "a Korean font is asked for");
        let first = svg.find("관악구").unwrap_or(usize::MAX);
        let second = svg.find("A&amp;B").unwrap_or(0);
        assert!(
            first < second || svg.matches("<text").count() > 4,
            "both labels drawn"
        );
    }

    #[test]
    fn empty_answers_say_so_and_weeks_and_maps_draw() {
        for svg in [
            bars("빈 차트", "건", &[]).expect("empty bars"),
            weekly("빈 주", &[], &[]).expect("empty weeks"),
            map("빈 지도", &[]).expect("empty map"),
        ] {
            assert!(svg.contains("데이터 없음"), "{svg}");
        }
        let weeks = vec!["2026-05-04".to_string(), "2026-05-11".to_string()];
        let svg = weekly(
            "주별",
            &weeks,
            &[("변동", vec![3.0, 5.0]), ("인상", vec![1.0, 2.0])],
        )
        .expect("weeks");
        assert!(svg.contains("2026-05-11") && svg.contains("인상") && svg.contains("<polyline"));
        let points: Vec<Point> = (0..20)
            .map(|i| Point {
                group: if i < 10 { "관악구" } else { "마포구" }.into(),
                lat: 37.45 + f64::from(i) * 0.005,
                lng: 126.9 + f64::from(i) * 0.004,
                value: f64::from(40 + i),
            })
            .collect();
        let svg = map("지도", &points).expect("map");
        assert!(svg.contains("관악구") && svg.contains("마포구") && svg.contains("<circle"));
        assert!(svg.contains("만원 초과"), "a legend of the colours");
    }

    #[test]
    fn widths_count_hangul_as_one_em() {
        assert_eq!(text_width("관악구", 10.0), 30.0);
        assert_eq!(text_width("ab", 10.0), 12.0);
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.26), "2.3");
    }
}
