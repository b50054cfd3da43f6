//! `rallypoint-benchplot [RESULTS_JSON] [OUT_PNG]`: one panel per client count, each server's
//! latency to the last recipient against the percentile, on a log scale (defaults:
//! `bench/results/latest.json`, `bench/results/latency.png`). The font is `PLOT_FONT` or DejaVu
//! Sans.

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;
use std::collections::BTreeMap;
use std::error::Error;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One curve: a server at a client count.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("rallypoint-benchplot: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let input = args.next().unwrap_or_else(|| "bench/results/latest.json".into());
    let output = args.next().unwrap_or_else(|| "bench/results/latency.png".into());
    let font_path = std::env::var("PLOT_FONT").unwrap_or_else(|_| FONT.into());
    let font = std::fs::read(&font_path)
        .map_err(|e| format!("cannot read the font {font_path} ({e}): set PLOT_FONT to a .ttf file"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice()))
        .map_err(|_| format!("{font_path} is not a TrueType font"))?;

    let text = std::fs::read_to_string(&input)
        .map_err(|e| format!("cannot read {input} ({e}): run bench/run.sh first"))?;
    let results: Value = serde_json::from_str(&text).map_err(|e| format!("{input}: {e}"))?;
    let machine = &results["machine"];
    let mut panels: BTreeMap<u64, Vec<Curve>> = BTreeMap::new();
    for run in results["runs"].as_array().ok_or("no `runs` in the results")? {
        let clients = run["clients"].as_u64().unwrap_or(0);
        let points: Vec<(f64, f64)> = run["last_recipient"]["percentiles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?.max(0.01))))
                    .collect()
            })
            .unwrap_or_default();
        if points.is_empty() {
            continue;
        }
        let label = run["label"].as_str().unwrap_or("?").to_string();
        panels.entry(clients).or_default().push(Curve { label, points });
    }
    if panels.is_empty() {
        return Err("no run has percentiles (a loadgen older than this plot?)".into());
    }

    let width = 700 * panels.len() as u32;
    let root = BitMapBackend::new(&output, (width, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "Report to last recipient, by percentile — {} × {}, {}",
        machine["cpus"], machine["cpu"].as_str().unwrap_or("?"), machine["date"].as_str().unwrap_or("")
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let areas = root.split_evenly((1, panels.len()));
    for (area, (clients, curves)) in areas.iter().zip(&panels) {
        let top = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1))
            .fold(1.0f64, f64::max)
            * 1.5;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{clients} clients"), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..100f64, (0.1f64..top).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("ms (log)")
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, c) in curves.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(3)))?
                .label(c.label.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    println!("wrote {output}");
    Ok(())
}
