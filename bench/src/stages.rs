//! Where a message's time goes in a cluster, from the nodes' own metrics.
//!
//! Each stage is a histogram a node exports on its metrics listener; read before and
//! after a run, the difference of its `_sum` and `_count` is the stage's mean
//! over the run, and its count says how often it was timed.

use std::collections::BTreeMap;

use serde::Serialize;

/// The stages in the order a cross-node message passes them, with the
/// metric that times each and the node that records it.
pub const STAGES: [(&str, &str); 5] = [
    // Sender's node: the batch transaction (queued sends wait for the one before).
    ("commit", "palaver_store_append_seconds"),
    // Sender's node: produced until the broker acknowledged the batch.
    ("publish", "palaver_bus_publish_seconds"),
    // Receiver's node: produced until the consumer read it.
    ("transit", "palaver_bus_transit_seconds"),
    // Receiver's node: read until handed to the hub (decode, checks).
    ("apply", "palaver_bus_apply_seconds"),
    // Either node: the hub until written to a socket (each write's oldest message).
    ("delivery", "palaver_delivery_seconds"),
];

/// A node's stage histograms at one moment: metric → (sum of seconds, count).
pub type Snapshot = BTreeMap<String, (f64, u64)>;

/// One stage over a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StageTiming {
    pub mean_ms: f64,
    pub count: u64,
}

/// Reads a node's stage histograms from `metrics_url` (`http://ADDR/metrics`).
pub async fn snapshot(metrics_url: &str) -> anyhow::Result<Snapshot> {
    let text = reqwest::get(metrics_url)
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(parse(&text))
}

/// The `_sum` and `_count` lines of the stage metrics in Prometheus text.
pub fn parse(text: &str) -> Snapshot {
    let mut found = Snapshot::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(' ') else {
            continue;
        };
        for (_, metric) in STAGES {
            let value = value.trim();
            match name.strip_prefix(metric) {
                Some("_sum") => {
                    found.entry(metric.to_owned()).or_default().0 = value.parse().unwrap_or(0.0)
                }
                Some("_count") => {
                    found.entry(metric.to_owned()).or_default().1 = value.parse().unwrap_or(0)
                }
                _ => {}
            }
        }
    }
    found
}

/// Each stage timed between two snapshots, by stage name; stages not timed
/// in between are left out.
pub fn between(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, StageTiming> {
    STAGES
        .iter()
        .filter_map(|(stage, metric)| {
            let (sum, count) = after.get(*metric).copied()?;
            let (sum_before, count_before) = before.get(*metric).copied().unwrap_or((0.0, 0));
            let count = count.checked_sub(count_before).filter(|n| *n > 0)?;
            let mean_ms = (sum - sum_before) / count as f64 * 1000.0;
            Some((stage.to_string(), StageTiming { mean_ms, count }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_the_difference_of_sums_over_the_difference_of_counts() {
        let before = parse(
            "# TYPE palaver_bus_transit_seconds summary\n\
             palaver_bus_transit_seconds{quantile=\"0.5\"} 0.002\n\
             palaver_bus_transit_seconds_sum 0.5\n\
             palaver_bus_transit_seconds_count 100\n\
             palaver_store_append_seconds_sum 1\n\
             palaver_store_append_seconds_count 10\n",
        );
        let after = parse(
            "palaver_bus_transit_seconds_sum 2.5\n\
             palaver_bus_transit_seconds_count 600\n\
             palaver_store_append_seconds_sum 1\n\
             palaver_store_append_seconds_count 10\n\
             palaver_delivery_seconds_sum 0.01\n\
             palaver_delivery_seconds_count 10\n",
        );
        let stages = between(&before, &after);
        assert_eq!(
            stages["transit"],
            StageTiming {
                mean_ms: 4.0,
                count: 500
            }
        );
        assert!((stages["delivery"].mean_ms - 1.0).abs() < 1e-9);
        assert!(
            !stages.contains_key("commit"),
            "nothing committed in between"
        );
    }
}
