//! The `rallypoint-sim` command: runs the built-in storm scenarios (or one, or a custom storm)
//! over their seeds, prints the Markdown table on stdout and one progress line per scenario on
//! stderr. Exit code 2 for flags that describe no possible storm, 1 when a decider broke the
//! storm's rules (a bug to report).

use clap::{CommandFactory, FromArgMatches, Parser};
use rallypoint_sim::city::Shape;
use rallypoint_sim::deciders::DEFAULT_PARAMS;
use rallypoint_sim::scenarios::{self, Scenario};
use std::process::ExitCode;
use std::time::Instant;

/// Storm simulator: K drivers report the orders they hold at once, and three deciders place
/// those orders (and the waiting ones) over the same seeded city: `greedy` (one report at a time,
/// nearest available driver, as the engine did before batching), `ours` (`storm::plan`, as the
/// Dispatcher runs it) and `optimum` (an exact assignment over every driver). Prints orders
/// served, total distance, the gap to the optimum and decision times as a Markdown table.
#[derive(Debug, Parser)]
#[command(name = "rallypoint-sim", version, about, long_about)]
struct Cli {
    /// Storms per scenario: seeds 1 to N, each decided by the three deciders (after seed 0,
    /// decided untimed to warm up).
    #[arg(long, default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,

    /// Run only this built-in scenario.
    #[arg(long, value_name = "NAME",
          value_parser = clap::builder::PossibleValuesParser::new(scenarios::names()),
          conflicts_with_all = ["drivers", "orders", "reports", "waiting"])]
    scenario: Option<String>,

    /// Custom storm: drivers, capacity 1 each, uniform over a 20 × 20 km city box.
    #[arg(long, value_name = "N", requires_all = ["orders", "reports"])]
    drivers: Option<usize>,

    /// Custom storm: orders assigned before the storm, one per driver, each picked up within
    /// 2 km of its driver (at most --drivers).
    #[arg(long, value_name = "N", requires = "drivers")]
    orders: Option<usize>,

    /// Custom storm: holders of an order who report at once (at most --orders); each reported
    /// order must move, never back to its reporter.
    #[arg(long, value_name = "N", requires = "drivers")]
    reports: Option<usize>,

    /// Custom storm: orders already waiting for a driver, at uniform points of the city
    /// [default: 0].
    #[arg(long, value_name = "N", requires = "drivers")]
    waiting: Option<usize>,
}

impl Cli {
    /// The scenarios these flags ask for.
    fn scenarios(&self) -> Result<Vec<Scenario>, String> {
        if let (Some(drivers), Some(orders), Some(reports)) =
            (self.drivers, self.orders, self.reports)
        {
            let shape = Shape {
                drivers,
                orders,
                reports,
                waiting: self.waiting.unwrap_or(0),
            };
            shape.check()?;
            return Ok(vec![Scenario {
                name: "custom".to_string(),
                shape,
            }]);
        }
        match &self.scenario {
            Some(name) => scenarios::find(name).map(|s| vec![s]).ok_or_else(|| {
                format!(
                    "no scenario {name:?}; the built-in ones are {:?}",
                    scenarios::names()
                )
            }),
            None => Ok(scenarios::builtin()),
        }
    }
}

/// The built-in scenarios, for the end of `--help`.
fn scenario_help() -> String {
    let mut s = String::from("Built-in scenarios (all run, in this order, without --scenario):\n");
    for (name, shape) in scenarios::BUILTIN {
        s.push_str(&format!("  {name:<9} {}\n", scenarios::describe(&shape)));
    }
    s
}

fn main() -> ExitCode {
    let matches = Cli::command().after_help(scenario_help()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let list = match cli.scenarios() {
        Ok(list) => list,
        Err(e) => {
            eprintln!("rallypoint-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let p = DEFAULT_PARAMS;
    let mut outcomes = Vec::new();
    for s in &list {
        let started = Instant::now();
        let outcome = match scenarios::run(s, cli.seeds, &p) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("rallypoint-sim: scenario {}: {e}", s.name);
                return ExitCode::from(1);
            }
        };
        let skipped = outcome
            .optimum
            .skipped
            .as_ref()
            .map(|why| format!("; optimum skipped: {why}"))
            .unwrap_or_default();
        eprintln!(
            "[sim] {} ({}): {} seeds in {:.1} s{skipped}",
            s.name,
            scenarios::describe(&s.shape),
            cli.seeds,
            started.elapsed().as_secs_f64()
        );
        outcomes.push(outcome);
    }
    println!(
        "Seeds 1–{} per scenario. ours: storm::plan with k = {}, max_batch {}, budget {} ms, \
         move_penalty {} m. Distance: from each order to its driver.\n",
        cli.seeds,
        p.k,
        p.max_batch,
        p.budget.as_millis(),
        p.move_penalty_m
    );
    print!("{}", scenarios::table(&outcomes));
    ExitCode::SUCCESS
}
