//! Turns the suite's JSON records into `benchmarks.md` tables and an SVG chart.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn find<'a>(
    records: &'a [Value],
    scenario: &str,
    target: &str,
    shape: Option<&str>,
) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["scenario"] == scenario && r["target"] == target)
        .filter(|r| shape.is_none_or(|s| r["shape"] == s))
        .collect()
}

fn ratio(palaver: f64, baseline: f64) -> String {
    if baseline > 0.0 {
        format!("{:.2}", palaver / baseline)
    } else {
        "–".into()
    }
}

/// Writes `benchmarks.md` (tables) and `benchmarks-latency.svg` into `out_dir`.
pub fn write(out_dir: &Path, records: &[Value]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(
        out_dir.join("benchmarks-latency.svg"),
        latency_chart(records),
    )?;
    std::fs::write(out_dir.join("benchmarks-results.md"), tables(records))?;
    Ok(())
}

pub fn tables(records: &[Value]) -> String {
    let mut md = String::new();
    let shapes: Vec<String> = {
        let mut s: Vec<String> = records
            .iter()
            .filter(|r| r["scenario"] == "fanout")
            .filter_map(|r| r["shape"].as_str().map(str::to_owned))
            .collect();
        s.dedup();
        s
    };
    md.push_str("### Fan-out at saturation\n\n");
    md.push_str("| rooms × members | target | deliveries/s | acked sends/s | lost | server CPU µs/delivery | server CPU s | load generator CPU s | deliveries ÷ baseline |\n|---|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        let base = find(records, "fanout", "baseline", Some(shape))
            .first()
            .map(|r| f(&r["report"]["deliveries_per_sec"]))
            .unwrap_or(0.0);
        for target in ["baseline", "palaver"] {
            for r in find(records, "fanout", target, Some(shape)) {
                let rep = &r["report"];
                let _ = writeln!(
                    md,
                    "| {shape} | {target} | {:.0} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} |",
                    f(&rep["deliveries_per_sec"]),
                    f(&rep["acked_per_sec"]),
                    rep["lost"],
                    f(&rep["server_us_per_delivery"]),
                    f(&rep["server_cpu_seconds"]),
                    f(&rep["loadgen_cpu_seconds"]),
                    ratio(f(&rep["deliveries_per_sec"]), base),
                );
            }
        }
    }
    md.push_str("\n### Latency at fixed rates (send → each receipt)\n\n");
    md.push_str("| rooms × members | target | offered deliveries/s | achieved deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost |\n|---|---|---|---|---|---|---|---|---|\n");
    for shape in &shapes {
        for target in ["baseline", "palaver"] {
            for r in find(records, "latency", target, Some(shape)) {
                let rep = &r["report"];
                let _ = writeln!(
                    md,
                    "| {shape} | {target} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                    f(&r["target_deliveries_per_sec"]),
                    f(&rep["deliveries_per_sec"]),
                    f(&rep["p50_ms"]),
                    f(&rep["p99_ms"]),
                    f(&rep["p999_ms"]),
                    f(&rep["max_ms"]),
                    rep["lost"],
                );
            }
        }
    }
    md.push_str("\n### Idle authenticated connections\n\n");
    md.push_str("| target | connections | set up per second | server RSS per connection | received the final message | lost |\n|---|---|---|---|---|---|\n");
    for target in ["baseline", "palaver"] {
        for r in find(records, "connections", target, None) {
            let rep = &r["report"];
            let _ = writeln!(
                md,
                "| {target} | {} | {:.0} | {:.1} KiB | {} | {} |",
                rep["connections"],
                f(&rep["connections_per_sec"]),
                f(&rep["rss_per_connection_bytes"]) / 1024.0,
                rep["received"],
                rep["lost"],
            );
        }
    }
    md.push_str("\n### Durable store throughput (domain send path)\n\n");
    md.push_str("| store | senders | rooms | messages/s | lost |\n|---|---|---|---|---|\n");
    for r in find(records, "store", "palaver", None) {
        let rep = &r["report"];
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} |",
            rep["store"].as_str().unwrap_or("?"),
            rep["senders"],
            rep["rooms"],
            f(&rep["messages_per_sec"]),
            rep["lost"]
        );
    }
    let cluster = find(records, "cluster", "palaver", None);
    if !cluster.is_empty() {
        md.push_str(
            "\n### Cluster: two nodes, PostgreSQL, Kafka (tansu) — latency by placement\n\n",
        );
        md.push_str("| rooms × members | placement | offered deliveries/s | achieved deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | lost |\n|---|---|---|---|---|---|---|---|---|\n");
        for r in cluster {
            let rep = &r["report"];
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                r["shape"].as_str().unwrap_or("?"),
                r["placement"].as_str().unwrap_or("?"),
                f(&r["target_deliveries_per_sec"]),
                f(&rep["deliveries_per_sec"]),
                f(&rep["p50_ms"]),
                f(&rep["p99_ms"]),
                f(&rep["p999_ms"]),
                f(&rep["max_ms"]),
                rep["lost"],
            );
        }
    }
    md
}

/// One measured rate: (achieved deliveries/s, p50 ms, p99 ms).
type LatencyPoint = (f64, f64, f64);

/// p50 and p99 latency against achieved deliveries/s, one line per target and shape.
pub fn latency_chart(records: &[Value]) -> String {
    let series: Vec<(String, Vec<LatencyPoint>)> = ["baseline", "palaver"]
        .iter()
        .flat_map(|target| {
            let mut shapes: Vec<String> = find(records, "latency", target, None)
                .iter()
                .filter_map(|r| r["shape"].as_str().map(str::to_owned))
                .collect();
            shapes.dedup();
            shapes.into_iter().map(move |shape| {
                let mut points: Vec<LatencyPoint> = find(records, "latency", target, Some(&shape))
                    .iter()
                    .map(|r| {
                        (
                            f(&r["report"]["deliveries_per_sec"]),
                            f(&r["report"]["p50_ms"]),
                            f(&r["report"]["p99_ms"]),
                        )
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                (format!("{target} {shape}"), points)
            })
        })
        .collect();
    let (width, height, margin) = (720.0, 420.0, 60.0);
    let max_x = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(1.0, f64::max)
        * 1.05;
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.2))
        .fold(1.0, f64::max)
        * 1.1;
    let x = |v: f64| margin + v / max_x * (width - 2.0 * margin);
    let y = |v: f64| height - margin - v / max_y * (height - 2.0 * margin);
    let colors = ["#888888", "#bbbbbb", "#1f6feb", "#d1242f"];
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="20" text-anchor="middle" font-size="14">Latency (send → receipt) vs. deliveries/s — solid p99, dashed p50</text>
<line x1="{margin}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><line x1="{margin}" y1="{margin}" x2="{margin}" y2="{b}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">deliveries per second</text>
<text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">milliseconds</text>
"##,
        width / 2.0,
        width / 2.0,
        height - 15.0,
        height / 2.0,
        height / 2.0,
        b = height - margin,
        r = width - margin,
    );
    for i in 0..=4 {
        let vx = max_x * i as f64 / 4.0;
        let vy = max_y * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.0}</text>"#,
            x(vx),
            height - margin + 16.0,
            vx
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.1}</text>"#,
            margin - 6.0,
            y(vy) + 4.0,
            vy
        );
    }
    for (n, (name, points)) in series.iter().enumerate() {
        let color = colors[n % colors.len()];
        for (index, dash) in [(2usize, ""), (1usize, r#" stroke-dasharray="4 3""#)] {
            let path: Vec<String> = points
                .iter()
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(if index == 2 { p.2 } else { p.1 })))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                path.join(" ")
            );
        }
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            margin + 10.0,
            margin + 10.0 + n as f64 * 16.0,
            margin + 28.0,
            margin + 15.0 + n as f64 * 16.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
