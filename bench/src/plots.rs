//! The report's plots, as SVG beside the JSON and Markdown, per placement of the nodes: the
//! latency CDF of every system (one plot per broadcast configuration), p99 against the number of
//! nodes, and sustained throughput against the number of nodes.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::{Placement, Report, Row, System};

const SIZE: (u32, u32) = (800, 500);

fn colour(s: System) -> RGBColor {
    match s {
        System::Conclave => RGBColor(0xd6, 0x27, 0x28),
        System::PlainGossipsub => RGBColor(0x1f, 0x77, 0xb4),
        System::SbtcProfile => RGBColor(0x2c, 0xa0, 0x2c),
        System::CentralRelay => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a plot: {e}")
}

/// Draws every plot the report has data for; returns the files written. In-process plots keep
/// their earlier names; nodes-as-processes plots end in `-processes`.
pub fn draw(r: &Report, stem: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for placement in [Placement::Processes, Placement::InProcess] {
        let (suffix, shape) = match placement {
            Placement::Processes => ("-processes", "nodes as processes"),
            Placement::InProcess => ("", "nodes in one process"),
        };
        let mut configs: Vec<(usize, usize)> = r
            .rows
            .iter()
            .filter(|x| x.placement == placement)
            .map(|x| (x.params.nodes, x.params.size))
            .collect();
        configs.dedup();
        for (nodes, size) in configs {
            let rows: Vec<&Row> = r
                .rows
                .iter()
                .filter(|x| {
                    x.placement == placement
                        && x.params.nodes == nodes
                        && x.params.size == size
                        && !x.cdf_ms.is_empty()
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            let path = PathBuf::from(format!(
                "{}-cdf-n{nodes}-{size}b{suffix}.svg",
                stem.display()
            ));
            let title = format!(
                "Delivery latency CDF — {nodes} nodes, {size} B, {} msg/s, {shape}",
                rows[0].params.rate
            );
            cdf(&rows, &path, &title)?;
            out.push(path);
        }
        let by_n = |value: &dyn Fn(&Row) -> Option<f64>| -> Vec<(System, Vec<(f64, f64)>)> {
            System::ALL
                .iter()
                .map(|s| {
                    let pts = r
                        .rows
                        .iter()
                        .filter(|x| {
                            x.system == *s && x.placement == placement && x.params.size == 1024
                        })
                        .filter_map(|x| Some((x.params.nodes as f64, value(x)?)))
                        .collect();
                    (*s, pts)
                })
                .filter(|(_, p): &(System, Vec<(f64, f64)>)| !p.is_empty())
                .collect()
        };
        let p99 = by_n(&|x| Some(x.p99_ms.median));
        if !p99.is_empty() {
            let path = PathBuf::from(format!("{}-p99-vs-n{suffix}.svg", stem.display()));
            let title = format!("p99 latency, 1 KiB (100 msg/s; 20 beyond 15 nodes), {shape}");
            versus_n(&p99, &path, &title, "p99 (ms)")?;
            out.push(path);
        }
        let tput = by_n(&|x| x.throughput.as_ref().map(|t| t.sustained_msgs_per_s.median));
        if !tput.is_empty() {
            let path = PathBuf::from(format!("{}-throughput-vs-n{suffix}.svg", stem.display()));
            let title = format!("sustained throughput (p99 <= 50 ms), 1 KiB, {shape}");
            versus_n(&tput, &path, &title, "msg/s")?;
            out.push(path);
        }
    }
    Ok(out)
}

/// Fraction of deliveries within x ms, log-scaled x.
fn cdf(rows: &[&Row], path: &Path, title: &str) -> anyhow::Result<()> {
    let lo = rows
        .iter()
        .filter_map(|x| x.cdf_ms.first())
        .fold(f64::INFINITY, |a, b| a.min(*b))
        .max(0.01);
    let hi = rows
        .iter()
        .filter_map(|x| x.cdf_ms.last())
        .fold(0.0f64, |a, b| a.max(*b))
        .max(lo * 10.0);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((lo * 0.8..hi * 1.25).log_scale(), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("fraction delivered")
        .draw()
        .map_err(err)?;
    for row in rows {
        let n = row.cdf_ms.len() as f64;
        let c = colour(row.system);
        chart
            .draw_series(LineSeries::new(
                row.cdf_ms
                    .iter()
                    .enumerate()
                    .map(|(k, v)| (*v, (k + 1) as f64 / n)),
                c.stroke_width(2),
            ))
            .map_err(err)?
            .label(row.system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// One line per system over the node counts, log-scaled y (the relay and the gossip systems lie
/// orders of magnitude apart; a point at zero — nothing sustained — cannot be drawn and is left
/// out).
fn versus_n(
    series: &[(System, Vec<(f64, f64)>)],
    path: &Path,
    title: &str,
    y: &str,
) -> anyhow::Result<()> {
    let series: Vec<(System, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(s, p)| (*s, p.iter().copied().filter(|(_, v)| *v > 0.0).collect()))
        .collect();
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut xmax, mut ymin, mut ymax) = (0.0f64, f64::INFINITY, 0.0f64);
    for (x, v) in pts {
        xmax = xmax.max(*x);
        ymin = ymin.min(*v);
        ymax = ymax.max(*v);
    }
    if ymax <= 0.0 {
        ymin = 1.0;
        ymax = 10.0;
    }
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..xmax * 1.1 + 1.0, (ymin * 0.5..ymax * 2.0).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("nodes")
        .y_desc(format!("{y}, log scale"))
        .draw()
        .map_err(err)?;
    for (system, p) in &series {
        let c = colour(*system);
        chart
            .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(system.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(p.iter().map(|pt| Circle::new(*pt, 4, c.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
