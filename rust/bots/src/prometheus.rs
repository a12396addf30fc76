//! A small parser of the Prometheus text exposition format (what `GET /metrics` returns),
//! and the few queries the load tester needs: a summed value, and a histogram's cumulative
//! buckets summed over its other labels.
//!
//! Each sample line is `name{label="value",...} value [timestamp]`; `#` lines (HELP, TYPE,
//! comments) and blank lines are skipped. Label values may hold escaped `\"`, `\\` and
//! `\n`. A line that does not parse is an error naming the line number: a scrape that looks
//! wrong is reported, never half-read.

use std::collections::BTreeMap;

/// One sample: a metric name, its labels, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The metric name (for a histogram bucket: `<name>_bucket`).
    pub name: String,
    /// Label name -> value, ascending by name.
    pub labels: BTreeMap<String, String>,
    /// The value (`+Inf`, `-Inf` and `NaN` are allowed by the format).
    pub value: f64,
}

/// Every sample of one scrape, in the order they appeared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    /// The samples.
    pub samples: Vec<Sample>,
}

/// A line that is not valid exposition text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metrics line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Scrape {
    /// Parses a whole exposition text.
    pub fn parse(text: &str) -> Result<Scrape, ParseError> {
        let mut samples = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let sample = parse_sample(line).map_err(|message| ParseError {
                line: index + 1,
                message,
            })?;
            samples.push(sample);
        }
        Ok(Scrape { samples })
    }

    /// The sum of every sample named `name` (over all label sets), or `None` when there is
    /// none.
    #[must_use]
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in self.samples.iter().filter(|s| s.name == name) {
            found = true;
            total += s.value;
        }
        found.then_some(total)
    }

    /// The sum of the samples named `name` whose label `label` is `value`, or `None` when
    /// there is none.
    #[must_use]
    pub fn sum_where(&self, name: &str, label: &str, value: &str) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in self
            .samples
            .iter()
            .filter(|s| s.name == name && s.labels.get(label).is_some_and(|v| v == value))
        {
            found = true;
            total += s.value;
        }
        found.then_some(total)
    }

    /// The value of label `label` on the first sample named `name` whose value is `1`
    /// (an info-style gauge such as `mmo_process_role{role="zone"} 1`), or `None`.
    #[must_use]
    pub fn label_of_one(&self, name: &str, label: &str) -> Option<&str> {
        self.samples
            .iter()
            .find(|s| s.name == name && s.value == 1.0)
            .and_then(|s| s.labels.get(label))
            .map(String::as_str)
    }

    /// The largest value of the samples named `name`, or `None` when there is none.
    #[must_use]
    pub fn max(&self, name: &str) -> Option<f64> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .reduce(f64::max)
    }

    /// The cumulative buckets of histogram `name` (its `<name>_bucket` samples), summed over
    /// every label but `le`, ascending by upper bound. `None` when the histogram is absent
    /// or a bucket's `le` is not a number.
    #[must_use]
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        let bucket_name = format!("{name}_bucket");
        let mut by_le: Vec<(f64, f64)> = Vec::new();
        for s in self.samples.iter().filter(|s| s.name == bucket_name) {
            let le = parse_value(s.labels.get("le")?).ok()?;
            match by_le.iter_mut().find(|(b, _)| *b == le) {
                Some((_, count)) => *count += s.value,
                None => by_le.push((le, s.value)),
            }
        }
        if by_le.is_empty() {
            return None;
        }
        by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(Histogram { buckets: by_le })
    }
}

/// A histogram's cumulative buckets: `(upper bound, observations <= bound)`, ascending by
/// bound; the last bound is normally `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// The buckets.
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// `self - earlier`, bucket by bucket (the observations between two scrapes). Buckets
    /// only in `self` are kept whole; counts never go below zero (a restarted server).
    #[must_use]
    pub fn delta(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, c)| *c);
                (*le, (count - before).max(0.0))
            })
            .collect();
        Histogram { buckets }
    }

    /// Observations in total (the largest cumulative count).
    #[must_use]
    pub fn count(&self) -> f64 {
        self.buckets.iter().map(|(_, c)| *c).fold(0.0, f64::max)
    }

    /// The upper bound of the bucket holding quantile `q` (`0 < q <= 1`): the smallest bound
    /// whose cumulative count reaches `q * count`. `None` with no observations; `+Inf` when
    /// the quantile lies past the last finite bound.
    #[must_use]
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total).max(f64::MIN_POSITIVE);
        self.buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .map(|(le, _)| *le)
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or_else(|| "no value after the metric name".to_owned())?;
    let name = &line[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(after_brace)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or_else(|| format!("{name}: no value"))?;
    let value = parse_value(value).map_err(|e| format!("{name}: {e}"))?;
    // An optional integer timestamp may follow; anything else is an error.
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("{name}: bad timestamp {ts:?}"));
    }
    if fields.next().is_some() {
        return Err(format!("{name}: unexpected text after the value"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` (after the opening brace); returns the labels and the rest of the
/// line after the closing brace.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let eq = s.find('=').ok_or_else(|| "label without '='".to_owned())?;
        let key = s[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("bad label name {key:?}"));
        }
        s = s[eq + 1..].trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label {key}: value not quoted"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {key}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('"' | '\\'))) => value.push(c),
                    _ => return Err(format!("label {key}: bad escape")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.insert(key.to_owned(), value);
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!("label {key}: expected ',' or '}}'"));
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().map_err(|_| format!("bad value {s:?}")),
    }
}
