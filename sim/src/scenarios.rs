//! The built-in scenarios, running one over its seeds (every decider on every storm, each answer
//! checked by [`Storm::score`]), and the Markdown table of the results. No printing here: the
//! binary decides what goes to stdout and stderr.

use crate::city::{Shape, Storm};
use crate::deciders::{self, Decision};
use rallypoint::dispatch::storm::StormParams;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// A named storm shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub name: String,
    pub shape: Shape,
}

const fn shape(drivers: usize, orders: usize, reports: usize, waiting: usize) -> Shape {
    Shape {
        drivers,
        orders,
        reports,
        waiting,
    }
}

/// The built-in scenarios, in the order they run.
pub const BUILTIN: [(&str, Shape); 6] = [
    // Scenario B of issue 13: three drivers, each reporting the order it holds.
    ("b", shape(3, 3, 3, 0)),
    ("small", shape(40, 30, 30, 0)),
    ("city-1k", shape(1_000, 800, 100, 0)),
    ("city-10k", shape(10_000, 8_000, 100, 0)),
    // Few free: 10 idle drivers, so the 100 orders mostly go to one another's reporters.
    ("tight", shape(200, 190, 100, 0)),
    // More orders than slots: 50 idle drivers and 100 reporters for 100 reports and 100 waiting.
    ("waiting", shape(1_000, 950, 100, 100)),
];

/// The names of the built-in scenarios.
pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// The built-in scenario called `name`.
pub fn find(name: &str) -> Option<Scenario> {
    BUILTIN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, s)| Scenario {
            name: (*n).to_string(),
            shape: *s,
        })
}

/// Every built-in scenario.
pub fn builtin() -> Vec<Scenario> {
    names().into_iter().filter_map(find).collect()
}

/// One decider's results over the seeds of a scenario.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per seed: orders served, total metres, decision time.
    pub served: Vec<usize>,
    pub total_m: Vec<i64>,
    pub times: Vec<Duration>,
    /// How `storm::plan` decided (`exact`, `greedy_budget`, ...), per seed: `ours` only.
    pub solvers: BTreeMap<&'static str, usize>,
    /// The largest `k` and the most rounds `storm::plan` needed: `ours` only.
    pub max_k: usize,
    pub max_rounds: u32,
    /// Why the decider was not run, if it was not (the optimum past its size).
    pub skipped: Option<String>,
}

impl Tally {
    fn add(&mut self, storm: &Storm, who: &str, d: &Decision) -> Result<(), String> {
        let (served, total) = storm
            .score(&d.to)
            .map_err(|e| format!("{who} broke the rules on seed {}: {e}", storm.seed))?;
        self.served.push(served);
        self.total_m.push(total);
        self.times.push(d.time);
        if let Some(plan) = &d.plan {
            *self.solvers.entry(plan.solver.as_str()).or_default() += 1;
            self.max_k = self.max_k.max(plan.k);
            self.max_rounds = self.max_rounds.max(plan.rounds);
        }
        Ok(())
    }

    /// Mean orders served.
    pub fn served_mean(&self) -> f64 {
        mean(self.served.iter().map(|&s| s as f64))
    }

    /// Mean total distance, in km.
    pub fn km_mean(&self) -> f64 {
        mean(self.total_m.iter().map(|&m| m as f64 / 1000.0))
    }

    /// The decision time at quantile `q` (nearest rank).
    pub fn time_at(&self, q: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort_unstable();
        let rank = ((q * t.len() as f64).ceil() as usize).clamp(1, t.len().max(1));
        t.get(rank - 1).copied().unwrap_or_default()
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// A scenario's results.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    pub seeds: u64,
    pub greedy: Tally,
    pub ours: Tally,
    pub optimum: Tally,
}

impl Outcome {
    /// `who`'s mean distance over the optimum's, in % (`None` without the optimum).
    pub fn gap(&self, who: &Tally) -> Option<f64> {
        let best = self.optimum.km_mean();
        (self.optimum.skipped.is_none() && best > 0.0).then(|| (who.km_mean() / best - 1.0) * 100.0)
    }
}

/// Runs `scenario` over seeds `1..=seeds`: on each storm, the three deciders, each answer checked.
/// Seed 0 goes first, decided and thrown away, so no decider's times include the process's first
/// allocations and page faults (the Dispatcher that runs `storm::plan` is a long-lived process).
pub fn run(scenario: &Scenario, seeds: u64, params: &StormParams) -> Result<Outcome, String> {
    scenario.shape.check()?;
    let warm_up = Storm::generate(scenario.shape, 0);
    deciders::greedy(&warm_up);
    deciders::ours(&warm_up, params)?;
    let _ = deciders::optimum(&warm_up);
    let mut out = Outcome {
        scenario: scenario.clone(),
        seeds,
        greedy: Tally::default(),
        ours: Tally::default(),
        optimum: Tally::default(),
    };
    for seed in 1..=seeds {
        let storm = Storm::generate(scenario.shape, seed);
        out.greedy
            .add(&storm, "greedy", &deciders::greedy(&storm))?;
        out.ours
            .add(&storm, "ours", &deciders::ours(&storm, params)?)?;
        if out.optimum.skipped.is_none() {
            match deciders::optimum(&storm) {
                Ok(d) => out.optimum.add(&storm, "optimum", &d)?,
                Err(why) => out.optimum.skipped = Some(why),
            }
        }
    }
    Ok(out)
}

/// What a shape is, in words.
pub fn describe(shape: &Shape) -> String {
    format!(
        "{} drivers, {} orders, {} reports, {} waiting",
        shape.drivers, shape.orders, shape.reports, shape.waiting
    )
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.1}")
    }
}

/// The results as one Markdown table: three rows per scenario.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut s = String::from(
        "| scenario | decider | served (mean) | total km (mean) | distance gap to optimum (%) \
         | decision p50 ms | decision p99 ms | how ours decided |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let label = format!("`{}`: {}", o.scenario.name, describe(&o.scenario.shape));
        let rows = [
            ("greedy", &o.greedy),
            ("ours", &o.ours),
            ("optimum", &o.optimum),
        ];
        for (n, (who, t)) in rows.into_iter().enumerate() {
            let scenario = if n == 0 { label.as_str() } else { "" };
            if let Some(why) = &t.skipped {
                let _ = writeln!(s, "| {scenario} | {who} | skipped: {why} | | | | | |");
                continue;
            }
            let gap = match (who, o.gap(t)) {
                ("optimum", _) => "—".to_string(),
                (_, Some(g)) => format!("{g:+.2}"),
                (_, None) => "n/a".to_string(),
            };
            let how = if who == "ours" {
                solvers(t, o.seeds)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {scenario} | {who} | {:.2} / {} | {:.2} | {gap} | {} | {} | {how} |",
                t.served_mean(),
                o.scenario.shape.to_decide(),
                t.km_mean(),
                ms(t.time_at(0.5)),
                ms(t.time_at(0.99)),
            );
        }
    }
    s
}

/// How `storm::plan` decided over the seeds, e.g. `exact 20/20, k ≤ 20, rounds ≤ 2`.
fn solvers(t: &Tally, seeds: u64) -> String {
    let counts: Vec<String> = t
        .solvers
        .iter()
        .map(|(name, n)| format!("{name} {n}/{seeds}"))
        .collect();
    format!(
        "{}, k ≤ {}, rounds ≤ {}",
        counts.join(", "),
        t.max_k,
        t.max_rounds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_scenario_is_a_possible_storm() {
        for s in builtin() {
            assert_eq!(s.shape.check(), Ok(()), "{}", s.name);
        }
        assert_eq!(builtin().len(), BUILTIN.len());
        assert!(find("nope").is_none());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let t = Tally {
            times: (1..=20).map(Duration::from_millis).collect(),
            ..Tally::default()
        };
        assert_eq!(t.time_at(0.5), Duration::from_millis(10));
        assert_eq!(t.time_at(0.99), Duration::from_millis(20));
        assert_eq!(Tally::default().time_at(0.5), Duration::ZERO);
    }
}
