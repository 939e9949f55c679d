//! The bench's rows: every round's figures of each side, pooled over the
//! processes of a run, summarised as medians and judged against targets. A
//! pair's ratio is the median of its rounds' ratios (Protobus / raw, both
//! sides measured back to back in each round), over all processes and, in
//! the *processes* column, per process.

use serde::{Deserialize, Serialize};

/// What a row must show, judged on the pooled medians.
#[derive(Clone, Copy, Serialize, Deserialize)]
pub(crate) enum Target {
    /// Protobus / raw at least this (throughput).
    RatioAtLeast(f64),
    /// Protobus / raw at most this (time per event).
    RatioAtMost(f64),
    /// Protobus at most raw plus this (latency).
    AtMostRawPlus(f64),
    /// Protobus's figure at least this.
    AtLeast(f64),
    /// Protobus's figure at most this.
    AtMost(f64),
    /// Protobus's figure exactly this.
    Equals(f64),
}

impl Target {
    fn text(self) -> String {
        match self {
            Target::RatioAtLeast(min) => format!("≥ {min:.2}"),
            Target::RatioAtMost(max) => format!("≤ {max:.2}"),
            Target::AtMostRawPlus(extra) => format!("≤ raw+{extra}"),
            Target::AtLeast(min) => format!("≥ {min}"),
            Target::AtMost(max) => format!("≤ {max}"),
            Target::Equals(value) => format!("= {value}"),
        }
    }

    /// Whether the medians (`protobus`, `raw`) and the pair's `ratio` meet it.
    fn met(self, protobus: f64, raw: f64, ratio: f64) -> bool {
        match self {
            Target::RatioAtLeast(min) => ratio >= min,
            Target::RatioAtMost(max) => ratio <= max,
            Target::AtMostRawPlus(extra) => protobus <= raw + extra,
            Target::AtLeast(min) => protobus >= min,
            Target::AtMost(max) => protobus <= max,
            Target::Equals(value) => protobus == value,
        }
    }
}

/// One measured pair (or a figure of Protobus alone) with every round's
/// figures. `{raw}` in `pair` is replaced by each baseline's name.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    pair: String,
    unit: String,
    higher_is_better: bool,
    protobus: Vec<f64>,
    /// Each raw side by name, one figure per round, in the rounds' order.
    baselines: Vec<(String, Vec<f64>)>,
    /// Judged against the best baseline (the fastest, for throughput).
    target: Option<Target>,
}

impl Row {
    /// Events per second of Protobus and of each raw side, round by round.
    pub(crate) fn throughput(
        pair: String,
        protobus: Vec<f64>,
        baselines: Vec<(String, Vec<f64>)>,
        min: Option<f64>,
    ) -> Self {
        Row {
            pair,
            unit: "events/s".into(),
            higher_is_better: true,
            protobus,
            baselines,
            target: min.map(Target::RatioAtLeast),
        }
    }

    /// Judged by `target` instead.
    pub(crate) fn judged_by(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// A time (lower is better) of Protobus and of one raw side, round by round.
    pub(crate) fn time(
        pair: String,
        unit: &str,
        protobus: Vec<f64>,
        raw: Vec<f64>,
        target: Option<Target>,
    ) -> Self {
        Row {
            target,
            ..Row::times(pair, unit, protobus, vec![("raw".into(), raw)])
        }
    }

    /// A time (lower is better) of Protobus and of each named side, round
    /// by round, without a target.
    pub(crate) fn times(
        pair: String,
        unit: &str,
        protobus: Vec<f64>,
        baselines: Vec<(String, Vec<f64>)>,
    ) -> Self {
        Row {
            pair,
            unit: unit.into(),
            higher_is_better: false,
            protobus,
            baselines,
            target: None,
        }
    }

    /// Names the only baseline (`raw` unless named).
    pub(crate) fn named(mut self, baseline: &str) -> Self {
        if let [(name, _)] = self.baselines.as_mut_slice() {
            *name = baseline.to_owned();
        }
        self
    }

    /// A figure of Protobus alone (allocations, requests, memory).
    pub(crate) fn single(
        pair: impl Into<String>,
        unit: &str,
        values: Vec<f64>,
        target: Option<Target>,
    ) -> Self {
        Row {
            pair: pair.into(),
            unit: unit.into(),
            higher_is_better: false,
            protobus: values,
            baselines: Vec::new(),
            target,
        }
    }

    /// The index of the best baseline by its median.
    fn best(&self) -> Option<usize> {
        let medians = self.baselines.iter().map(|(_, v)| median(v));
        let best = if self.higher_is_better {
            medians.enumerate().max_by(|a, b| a.1.total_cmp(&b.1))
        } else {
            medians.enumerate().min_by(|a, b| a.1.total_cmp(&b.1))
        };
        best.map(|(i, _)| i)
    }

    fn name(&self, baseline: &str) -> String {
        self.pair.replace("{raw}", baseline)
    }
}

/// The median; of an even count, the mean of the middle two.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Each round's ratio, Protobus / raw.
fn paired(protobus: &[f64], raw: &[f64]) -> Vec<f64> {
    protobus.iter().zip(raw).map(|(p, r)| p / r).collect()
}

fn range(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |range, v| match range {
        None => Some((v, v)),
        Some((low, high)) => Some((low.min(v), high.max(v))),
    })
}

/// One printed line.
struct Line {
    pair: String,
    unit: String,
    protobus: f64,
    raw: f64,
    ratio: Option<f64>,
    rounds: Option<(f64, f64)>,
    processes: Option<(f64, f64)>,
    target: String,
}

/// Prints the table of `runs` (each process's rows) pooled, then every
/// round's figures; returns the pairs whose target was missed.
pub(crate) fn print(runs: &[Vec<Row>]) -> Vec<String> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut missed = Vec::new();
    let mut pooled_rows = Vec::new();
    for (index, row) in first.iter().enumerate() {
        let same: Vec<&Row> = runs.iter().filter_map(|run| run.get(index)).collect();
        let mut pooled = row.clone();
        pooled.protobus = same.iter().flat_map(|r| r.protobus.clone()).collect();
        for (b, (_, values)) in pooled.baselines.iter_mut().enumerate() {
            *values = same.iter().flat_map(|r| r.baselines[b].1.clone()).collect();
        }
        let protobus = median(&pooled.protobus);
        let best = pooled.best();
        if pooled.baselines.is_empty() {
            let target = pooled
                .target
                .map(|t| (t.text(), t.met(protobus, f64::NAN, f64::NAN)));
            if let Some((_, false)) = target {
                missed.push(pooled.pair.clone());
            }
            lines.push(Line {
                pair: pooled.pair.clone(),
                unit: pooled.unit.clone(),
                protobus,
                raw: f64::NAN,
                ratio: None,
                rounds: range(pooled.protobus.iter().copied()),
                processes: None,
                target: mark(target),
            });
        }
        for (b, (name, values)) in pooled.baselines.iter().enumerate() {
            let raw = median(values);
            // Each round measures both sides back to back, so its ratio is
            // paired: the median of those ratios is what the target judges,
            // untouched by how fast a whole process happened to run.
            let ratios = paired(&pooled.protobus, values);
            let ratio = median(&ratios);
            let target = (best == Some(b))
                .then_some(pooled.target)
                .flatten()
                .map(|t| (t.text(), t.met(protobus, raw, ratio)));
            if let Some((_, false)) = target {
                missed.push(pooled.name(name));
            }
            lines.push(Line {
                pair: pooled.name(name),
                unit: pooled.unit.clone(),
                protobus,
                raw,
                ratio: Some(ratio),
                rounds: range(ratios),
                processes: range(
                    same.iter()
                        .map(|r| median(&paired(&r.protobus, &r.baselines[b].1))),
                ),
                target: mark(target),
            });
        }
        pooled_rows.push(pooled);
    }
    table(&lines);
    println!("\nEvery round's figures (Protobus first, then each raw side):");
    for row in &pooled_rows {
        println!("- {} ({})", row.name("raw"), row.unit);
        println!("    protobus: {}", figures(&row.protobus));
        for (name, values) in &row.baselines {
            println!("    {name}: {}", figures(values));
        }
    }
    missed
}

fn mark(target: Option<(String, bool)>) -> String {
    match target {
        Some((text, true)) => format!("{text} ✓"),
        Some((text, false)) => format!("{text} ✗"),
        None => String::new(),
    }
}

fn figures(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format_value(*v))
        .collect::<Vec<_>>()
        .join(" ")
}

fn table(lines: &[Line]) {
    let width = lines
        .iter()
        .map(|l| l.pair.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!(
        "| {:width$} | {:>12} | {:>12} | {:>9} | {:>6} | {:>11} | {:>11} | {:>10} |",
        "pair", "protobus", "raw", "unit", "ratio", "rounds", "processes", "target"
    );
    println!(
        "|{}|--------------|--------------|-----------|--------|-------------|-------------|------------|",
        "-".repeat(width + 2)
    );
    let span = |r: Option<(f64, f64)>| {
        r.map(|(low, high)| format!("{}–{}", format_ratio(low), format_ratio(high)))
            .unwrap_or_default()
    };
    for line in lines {
        println!(
            "| {:width$} | {:>12} | {:>12} | {:>9} | {:>6} | {:>11} | {:>11} | {:>10} |",
            line.pair,
            format_value(line.protobus),
            format_value(line.raw),
            line.unit,
            line.ratio.map(format_ratio).unwrap_or_default(),
            span(line.rounds),
            span(line.processes),
            line.target
        );
    }
}

fn format_ratio(value: f64) -> String {
    format!("{value:.2}")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "—".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
