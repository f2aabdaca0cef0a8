//! The two outputs: a table for people, one JSON object for machines.

use std::fmt::Write;

use crate::Metric;

/// One JSON object: `{"metric_name": value, ...}` in the order measured.
pub(crate) fn json(metrics: &[Metric]) -> String {
    let mut map = serde_json::Map::new();
    for m in metrics {
        let rounded = (m.value * 1000.0).round() / 1000.0;
        map.insert(m.name.to_string(), serde_json::Value::from(rounded));
    }
    serde_json::Value::Object(map).to_string()
}

/// An aligned table: metric, value, unit, baseline, goal, verdict.
pub(crate) fn table(metrics: &[Metric]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>14} {:<6} {:<24} {:<12}",
        "metric", "value", "unit", "beside", "goal"
    );
    for m in metrics {
        let beside = m
            .baseline
            .as_ref()
            .and_then(|b| metrics.iter().find(|x| x.name == *b))
            .map(|b| format!("{} {}", human(b.value), b.unit))
            .unwrap_or_default();
        let goal = m.target.map(|t| t.to_string()).unwrap_or_default();
        let verdict = match m.target {
            Some(t) if t.met(m.value) => "ok",
            Some(_) => "MISS",
            None => "",
        };
        let _ = writeln!(
            out,
            "{:<28} {:>14} {:<6} {:<24} {:<12} {verdict}",
            m.name,
            human(m.value),
            m.unit,
            beside,
            goal
        );
    }
    out
}

/// A number for people: thousands separated, two decimals below 100.
pub(crate) fn human(v: f64) -> String {
    if v.abs() < 100.0 {
        return format!("{v:.2}");
    }
    let digits = format!("{:.0}", v.abs());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if v < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    #[test]
    fn human_groups_thousands() {
        assert_eq!(human(1234567.0), "1,234,567");
        assert_eq!(human(999.4), "999");
        assert_eq!(human(0.725), "0.72");
        assert_eq!(human(-12345.0), "-12,345");
    }

    #[test]
    fn json_is_one_flat_object() {
        let m = [
            Metric::new("a_rec_s", 10.5, "rec/s"),
            Metric::new("b", 0.12345, ""),
        ];
        assert_eq!(json(&m), r#"{"a_rec_s":10.5,"b":0.123}"#);
    }

    #[test]
    fn table_shows_baseline_and_verdict() {
        let m = [
            Metric::new("disk_write_mb_s", 100.0, "MB/s"),
            Metric::new("x_ratio", 0.5, "")
                .target(Target::AtLeast(0.7))
                .beside("disk_write_mb_s"),
        ];
        let t = table(&m);
        assert!(t.lines().nth(2).unwrap().contains("100 MB/s"));
        assert!(t.lines().nth(2).unwrap().ends_with("MISS"));
    }
}
