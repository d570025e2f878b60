//! Means and spreads over seeds, and how they are printed.

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// `0.912` or `0.912 ± 0.015` (the spread only when there are several seeds); `-` for none.
pub fn fmt_mean_sd(values: &[f64], seeds: usize, scale: f64, digits: usize, unit: &str) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let (m, sd) = mean_sd(values);
    if seeds < 2 {
        format!("{:.*}{unit}", digits, m * scale)
    } else {
        format!("{:.*} ± {:.*}{unit}", digits, m * scale, digits, sd * scale)
    }
}

/// `{"mean", "sd", "per_seed"}` of the values, or `null` for none.
pub fn json_stats(values: &[f64]) -> serde_json::Value {
    if values.is_empty() {
        return serde_json::Value::Null;
    }
    let (mean, sd) = mean_sd(values);
    serde_json::json!({ "mean": mean, "sd": sd, "per_seed": values })
}

/// A paper value as printed in its table (`-` when the paper has none).
pub fn paper_cell(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

/// Text safe inside a Markdown table cell (`|` escaped).
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_is_the_sample_statistic() {
        let (m, sd) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
        assert!((m - 2.5).abs() < 1e-12);
        // sqrt(5/3), the n-1 estimate.
        assert!((sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.7]), (0.7, 0.0));
    }

    #[test]
    fn formatting_shows_spread_only_for_several_seeds() {
        assert_eq!(fmt_mean_sd(&[0.9, 1.0], 2, 1.0, 3, ""), "0.950 ± 0.071");
        assert_eq!(fmt_mean_sd(&[0.9], 1, 100.0, 1, "%"), "90.0%");
        assert_eq!(fmt_mean_sd(&[], 1, 1.0, 3, ""), "-");
    }
}
