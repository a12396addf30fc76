//! Line charts as inline SVG for the HTML report: no script, no external file, so the
//! report opens anywhere and can be attached to an issue as it is.
//!
//! A chart has a title, axis labels and series of points; a point without a value breaks
//! its line (a gap, never a made-up value). Axes include 0, and get about five evenly
//! spaced ticks rounded to 1, 2 or 5 times a power of ten. Non-finite values are left out.
//! The chart grows taller when its legend needs the room (one line per series).

use std::fmt::Write as _;

/// One point; `y: None` is a gap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Horizontal value.
    pub x: f64,
    /// Vertical value, if measured.
    pub y: Option<f64>,
}

/// One line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points, by increasing `x`.
    pub points: Vec<Point>,
}

/// A chart to draw.
#[derive(Clone, Copy, Debug)]
pub struct Chart<'a> {
    /// Title above the plot.
    pub title: &'a str,
    /// Horizontal axis label (with its unit).
    pub x_label: &'a str,
    /// Vertical axis label (with its unit).
    pub y_label: &'a str,
    /// The lines.
    pub series: &'a [Series],
}

const WIDTH_PX: f64 = 760.0;
/// Height of a chart with a short legend.
const HEIGHT_PX: f64 = 320.0;
/// One legend line.
const LEGEND_LINE_PX: f64 = 14.0;
/// At most this many ticks per axis (a guard: round steps give about five).
const MAX_TICKS: usize = 20;
const LEFT_PX: f64 = 70.0;
const RIGHT_PX: f64 = 190.0;
const TOP_PX: f64 = 30.0;
const BOTTOM_PX: f64 = 45.0;
const COLOURS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// Escapes text for HTML and SVG.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A step of 1, 2 or 5 times a power of ten giving at most about five intervals over `span`.
fn nice_step(span: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// An axis: its range and the step between its ticks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    low: f64,
    high: f64,
    step: f64,
}

/// The axis covering `values` and 0, rounded out to whole steps.
fn axis(values: impl Iterator<Item = f64>) -> Axis {
    // Past this, rounding out to a step could overflow to infinity.
    const LIMIT: f64 = 1e300;
    let (mut low, mut high) = (0.0f64, 0.0f64);
    for v in values.filter(|v| v.is_finite()) {
        low = low.min(v.max(-LIMIT));
        high = high.max(v.min(LIMIT));
    }
    if high <= low {
        high = low + 1.0;
    }
    let step = nice_step(high - low);
    Axis {
        low: (low / step).floor() * step,
        high: (high / step).ceil() * step,
        step,
    }
}

/// The tick values of an axis, at most [`MAX_TICKS`].
fn ticks(axis: Axis) -> impl Iterator<Item = f64> {
    (0..MAX_TICKS)
        .map(move |i| axis.low + axis.step * i as f64)
        .take_while(move |v| *v <= axis.high + axis.step * 1e-9)
}

fn label(value: f64) -> String {
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The chart as an `<svg>` element. With no point at all it still draws the axes and says
/// "no data".
#[must_use]
pub fn line_chart(chart: &Chart<'_>) -> String {
    let finite = |p: &Point| p.y.filter(|y| y.is_finite());
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x));
    let ys = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(finite));
    let x_axis = axis(xs);
    let y_axis = axis(ys);
    let height_px = HEIGHT_PX.max(TOP_PX + LEGEND_LINE_PX * chart.series.len() as f64 + 20.0);
    let plot_w = WIDTH_PX - LEFT_PX - RIGHT_PX;
    let plot_h = height_px - TOP_PX - BOTTOM_PX;
    let px = |x: f64| LEFT_PX + (x - x_axis.low) / (x_axis.high - x_axis.low) * plot_w;
    let py = |y: f64| TOP_PX + plot_h - (y - y_axis.low) / (y_axis.high - y_axis.low) * plot_h;
    let mut svg = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH_PX}\" height=\"{height_px}\" \
         viewBox=\"0 0 {WIDTH_PX} {height_px}\" role=\"img\" aria-label=\"{title}\">\
         <text x=\"{LEFT_PX}\" y=\"18\" font-weight=\"bold\">{title}</text>",
        title = escape(chart.title)
    );
    for y in ticks(y_axis) {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT_PX}\" x2=\"{:.1}\" y1=\"{v:.1}\" y2=\"{v:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            LEFT_PX + plot_w,
            LEFT_PX - 6.0,
            py(y) + 4.0,
            label(y),
            v = py(y),
        );
    }
    for x in ticks(x_axis) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
            px(x),
            TOP_PX + plot_h + 16.0,
            label(x)
        );
    }
    let _ = write!(
        svg,
        "<rect x=\"{LEFT_PX}\" y=\"{TOP_PX}\" width=\"{plot_w}\" height=\"{plot_h}\" \
         fill=\"none\" stroke=\"#444\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\
         <text x=\"14\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" \
         transform=\"rotate(-90 14 {:.1})\">{}</text>",
        LEFT_PX + plot_w / 2.0,
        height_px - 8.0,
        escape(chart.x_label),
        TOP_PX + plot_h / 2.0,
        TOP_PX + plot_h / 2.0,
        escape(chart.y_label)
    );
    let mut any = false;
    for (i, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        // Runs of consecutive points with a value, in pixels.
        let mut runs: Vec<Vec<Pixel>> = vec![Vec::new()];
        for p in &series.points {
            match finite(p) {
                Some(y) => {
                    any = true;
                    // Invariant: `runs` starts with one run and only grows.
                    let run = runs.last_mut().expect("runs is never empty");
                    run.push(Pixel {
                        x: px(p.x),
                        y: py(y),
                    });
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in &runs {
            match run.as_slice() {
                [] => {}
                [only] => {
                    let _ = write!(
                        svg,
                        "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\"/>",
                        only.x, only.y
                    );
                }
                points => {
                    let coordinates: Vec<String> = points
                        .iter()
                        .map(|p| format!("{:.1},{:.1}", p.x, p.y))
                        .collect();
                    let _ = write!(
                        svg,
                        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" \
                         points=\"{}\"/>",
                        coordinates.join(" ")
                    );
                }
            }
        }
        let legend_y = TOP_PX + LEGEND_LINE_PX * i as f64 + 8.0;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            LEFT_PX + plot_w + 10.0,
            legend_y - 3.0,
            LEFT_PX + plot_w + 26.0,
            legend_y + 1.0,
            escape(&series.name)
        );
    }
    if !any {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
            LEFT_PX + plot_w / 2.0,
            TOP_PX + plot_h / 2.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A point in the SVG's pixels.
#[derive(Clone, Copy, Debug)]
struct Pixel {
    x: f64,
    y: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round_and_axes_cover_the_data() {
        assert_eq!(nice_step(10.0), 2.0);
        assert_eq!(nice_step(7.0), 2.0);
        assert!((nice_step(0.3) - 0.1).abs() < 1e-12);
        assert_eq!(nice_step(400.0), 100.0);
        let a = |low, high, step| Axis { low, high, step };
        assert_eq!(axis([3.0, 47.0].into_iter()), a(0.0, 50.0, 10.0));
        assert_eq!(axis([-3.0, 7.0].into_iter()), a(-4.0, 8.0, 2.0));
        assert_eq!(axis(std::iter::empty()), a(0.0, 1.0, 0.2));
        // All negative: 0 stays on the axis.
        assert_eq!(axis([-5.0, -3.0].into_iter()), a(-5.0, 0.0, 1.0));
        // Huge and non-finite values: a finite axis and a bounded number of ticks.
        let huge = axis([f64::MAX, f64::INFINITY, f64::NAN].into_iter());
        assert!(huge.high.is_finite() && huge.step.is_finite(), "{huge:?}");
        assert!(ticks(huge).count() <= MAX_TICKS);
        assert_eq!(ticks(a(0.0, 50.0, 10.0)).count(), 6);
    }

    #[test]
    fn gaps_break_lines_and_text_is_escaped() {
        let series = [Series {
            name: "zone <1> & co".into(),
            points: vec![
                Point {
                    x: 0.0,
                    y: Some(1.0),
                },
                Point {
                    x: 1.0,
                    y: Some(2.0),
                },
                Point { x: 2.0, y: None },
                Point {
                    x: 3.0,
                    y: Some(2.0),
                },
                Point {
                    x: 4.0,
                    y: Some(3.0),
                },
            ],
        }];
        let svg = line_chart(&Chart {
            title: "tick p99",
            x_label: "s",
            y_label: "ms",
            series: &series,
        });
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert!(svg.contains("zone &lt;1&gt; &amp; co"));
        assert!(!svg.contains("no data"));
        let empty = line_chart(&Chart {
            title: "t",
            x_label: "s",
            y_label: "ms",
            series: &[],
        });
        assert!(empty.contains("no data"));
        assert!(empty.starts_with("<svg") && empty.ends_with("</svg>"));
        // A long legend makes the chart taller instead of falling off it.
        let many: Vec<Series> = (0..30)
            .map(|i| Series {
                name: format!("p{i}"),
                points: vec![Point {
                    x: 0.0,
                    y: Some(1.0),
                }],
            })
            .collect();
        let tall = line_chart(&Chart {
            title: "t",
            x_label: "s",
            y_label: "ms",
            series: &many,
        });
        let expected = TOP_PX + LEGEND_LINE_PX * 30.0 + 20.0;
        assert!(tall.contains(&format!("height=\"{expected}\"")), "{tall}");
    }
}
