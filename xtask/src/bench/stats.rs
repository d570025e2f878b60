//! Summaries over rounds: each side's median of its per-round medians, and the ratio
//! jem / peer with the spread of the per-round ratios.
//!
//! A round runs the peer, then jem, back to back (ABAB over rounds), so a per-round ratio
//! compares two runs that saw about the same machine; the spread of those ratios shows how much
//! the machine's noise moves the comparison.

use super::child::SideRun;
use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::Value;

/// The timings compared: (JSON key, what it is).
pub const TIMED_KEYS: [(&str, &str); 3] = [
    ("jem_sec_per_iter", "JEM iteration"),
    ("sgld_sec_per_step", "SGLD step"),
    ("clf_sec_per_iter", "classifier step"),
];

/// One round: the peer's run (absent with `--no-peer`), then jem's.
#[derive(Debug, Clone)]
pub struct Round {
    /// The PyTorch peer's run.
    pub peer: Option<SideRun>,
    /// `jem bench-step`'s run.
    pub jem: SideRun,
}

/// The median (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some(0.5 * (v[n / 2 - 1] + v[n / 2])),
    }
}

/// The ratio jem / peer of one timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioSpread {
    /// jem's median over rounds divided by the peer's.
    pub of_medians: f64,
    /// jem / peer in each round.
    pub per_round: Vec<f64>,
    /// Median of `per_round`.
    pub median: f64,
    /// Smallest per-round ratio.
    pub min: f64,
    /// Largest per-round ratio.
    pub max: f64,
}

/// One timing key over all rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The JSON key both sides report (seconds).
    pub key: &'static str,
    /// The peer's value in each round (empty without the peer).
    pub peer_per_round: Vec<f64>,
    /// jem's value in each round.
    pub jem_per_round: Vec<f64>,
    /// Median of `peer_per_round`.
    pub peer: Option<f64>,
    /// Median of `jem_per_round`.
    pub jem: f64,
    /// jem / peer (absent without the peer).
    pub ratio: Option<RatioSpread>,
}

/// A positive, finite number of seconds under `key`, or an error naming who reported what.
fn seconds(json: &Value, key: &str, who: &str) -> Result<f64> {
    match json.get(key).and_then(Value::as_f64) {
        Some(s) if s.is_finite() && s > 0.0 => Ok(s),
        Some(s) => bail!("{who} reported {key} = {s}: expected a positive number of seconds"),
        None => bail!(
            "{who} reported no number under `{key}` (got {})",
            json.get(key).map_or("nothing".into(), Value::to_string)
        ),
    }
}

/// Summarises `key` over `rounds`; every round must report it, on both sides or on none.
pub fn summarise(rounds: &[Round], key: &'static str) -> Result<Summary> {
    if rounds.is_empty() {
        bail!("no rounds to summarise");
    }
    let with_peer = rounds.iter().filter(|r| r.peer.is_some()).count();
    if with_peer != 0 && with_peer != rounds.len() {
        bail!(
            "only {with_peer} of {} rounds ran the peer: ratios need it in every round",
            rounds.len()
        );
    }
    let mut peer_per_round = Vec::with_capacity(with_peer);
    let mut jem_per_round = Vec::with_capacity(rounds.len());
    for (i, round) in rounds.iter().enumerate() {
        if let Some(peer) = &round.peer {
            peer_per_round.push(seconds(
                &peer.json,
                key,
                &format!("the peer in round {}", i + 1),
            )?);
        }
        jem_per_round.push(seconds(
            &round.jem.json,
            key,
            &format!("jem in round {}", i + 1),
        )?);
    }
    let jem = median(&jem_per_round).expect("at least one round");
    let peer = median(&peer_per_round);
    let ratio = peer.map(|peer| {
        let per_round: Vec<f64> = jem_per_round
            .iter()
            .zip(&peer_per_round)
            .map(|(j, p)| j / p)
            .collect();
        RatioSpread {
            of_medians: jem / peer,
            median: median(&per_round).expect("at least one round"),
            min: per_round.iter().copied().fold(f64::INFINITY, f64::min),
            max: per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            per_round,
        }
    });
    Ok(Summary {
        key,
        peer_per_round,
        jem_per_round,
        peer,
        jem,
        ratio,
    })
}

/// Which side of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The PyTorch peer.
    Peer,
    /// `jem bench-step`.
    Jem,
}

fn side_runs(rounds: &[Round], side: Side) -> impl Iterator<Item = &SideRun> {
    rounds.iter().filter_map(move |r| match side {
        Side::Peer => r.peer.as_ref(),
        Side::Jem => Some(&r.jem),
    })
}

/// The largest peak resident set of `side` over the rounds, MiB (`None` when not measured).
pub fn peak_rss_mib(rounds: &[Round], side: Side) -> Option<f64> {
    side_runs(rounds, side)
        .filter_map(SideRun::max_rss_mib)
        .reduce(f64::max)
}

/// Median over the rounds of a number `side` reports under `key`, skipping rounds where it is
/// null or absent (for descriptive columns such as achieved GFLOP/s or other processes' CPU).
pub fn median_reported(rounds: &[Round], side: Side, key: &str) -> Option<f64> {
    let values: Vec<f64> = side_runs(rounds, side)
        .filter_map(|run| run.json.get(key).and_then(Value::as_f64))
        .collect();
    median(&values)
}

/// Checks that a side ran what it was asked to: each `(key, value)` must be reported as that
/// integer (the shape and the thread count), so a side that silently ignored a flag cannot end
/// up in a ratio.
pub fn check_reported(json: &Value, expected: &[(&str, u64)], who: &str) -> Result<()> {
    for &(key, want) in expected {
        match json.get(key).and_then(Value::as_u64) {
            Some(got) if got == want => {}
            Some(got) => bail!("{who} ran with {key} = {got}, but {want} was asked for"),
            None => bail!("{who} did not report `{key}` (expected {want})"),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    pub fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-12, "{got} != {want}");
    }

    /// A fake JSON line with the three timings.
    pub fn line(it: f64, sgld: f64, clf: f64) -> Value {
        json!({"jem_sec_per_iter": it, "sgld_sec_per_step": sgld, "clf_sec_per_iter": clf,
               "threads": 2, "batch": 32})
    }

    pub fn run(json: Value, rss_kib: u64) -> SideRun {
        SideRun {
            json,
            max_rss_kib: Some(rss_kib),
        }
    }

    /// Three rounds, peer then jem; jem's iteration is 0.3/0.2, 0.5/0.25 and 0.2/0.4 of the
    /// peer's in rounds 1-3.
    pub fn rounds() -> Vec<Round> {
        [
            (0.2, 0.3, 1024, 2048),
            (0.25, 0.5, 3072, 1024),
            (0.4, 0.2, 2048, 4096),
        ]
        .into_iter()
        .map(|(p, j, p_rss, j_rss)| Round {
            peer: Some(run(line(p, p / 10.0, p / 2.0), p_rss)),
            jem: run(line(j, j / 5.0, j / 2.0), j_rss),
        })
        .collect()
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn medians_and_ratio_spread_over_rounds() {
        let s = summarise(&rounds(), "jem_sec_per_iter").unwrap();
        assert_eq!(s.peer_per_round, vec![0.2, 0.25, 0.4]);
        assert_eq!(s.jem_per_round, vec![0.3, 0.5, 0.2]);
        assert_eq!(s.peer, Some(0.25));
        assert_eq!(s.jem, 0.3);
        let r = s.ratio.unwrap();
        assert_close(r.of_medians, 1.2);
        // Per-round: 1.5, 2.0, 0.5 — their median is not the ratio of medians.
        assert_close(r.per_round[0], 1.5);
        assert_close(r.per_round[1], 2.0);
        assert_close(r.per_round[2], 0.5);
        assert_close(r.median, 1.5);
        assert_close(r.min, 0.5);
        assert_close(r.max, 2.0);
    }

    #[test]
    fn sgld_and_classifier_keys_are_summarised_separately() {
        let sgld = summarise(&rounds(), "sgld_sec_per_step").unwrap();
        // Peer's SGLD step is a tenth of its iteration, jem's a fifth: the median ratio doubles.
        assert_close(sgld.ratio.unwrap().median, 3.0);
        let clf = summarise(&rounds(), "clf_sec_per_iter").unwrap();
        assert_close(clf.ratio.unwrap().median, 1.5);
    }

    #[test]
    fn without_the_peer_there_is_no_ratio() {
        let rounds: Vec<Round> = rounds()
            .into_iter()
            .map(|r| Round { peer: None, ..r })
            .collect();
        let s = summarise(&rounds, "jem_sec_per_iter").unwrap();
        assert_eq!(s.peer, None);
        assert!(s.peer_per_round.is_empty());
        assert_eq!(s.ratio, None);
        assert_eq!(s.jem, 0.3);
        assert_eq!(peak_rss_mib(&rounds, Side::Peer), None);
    }

    #[test]
    fn a_missing_or_bad_timing_names_side_round_and_key() {
        let mut r = rounds();
        r[1].jem.json["sgld_sec_per_step"] = Value::Null;
        let err = summarise(&r, "sgld_sec_per_step").unwrap_err().to_string();
        assert!(
            err.contains("jem in round 2") && err.contains("sgld_sec_per_step"),
            "{err}"
        );

        let mut r = rounds();
        r[2].peer.as_mut().unwrap().json["clf_sec_per_iter"] = json!(0.0);
        let err = summarise(&r, "clf_sec_per_iter").unwrap_err().to_string();
        assert!(
            err.contains("the peer in round 3") && err.contains("= 0"),
            "{err}"
        );

        let mut r = rounds();
        r[0].peer = None;
        let err = summarise(&r, "jem_sec_per_iter").unwrap_err().to_string();
        assert!(err.contains("only 2 of 3 rounds"), "{err}");
        assert!(summarise(&[], "jem_sec_per_iter").is_err());
    }

    #[test]
    fn peak_memory_is_the_largest_round() {
        assert_eq!(peak_rss_mib(&rounds(), Side::Peer), Some(3.0));
        assert_eq!(peak_rss_mib(&rounds(), Side::Jem), Some(4.0));
    }

    #[test]
    fn descriptive_medians_skip_nulls() {
        let mut r = rounds();
        r[0].jem.json["gflops"] = json!(10.0);
        r[1].jem.json["gflops"] = Value::Null;
        r[2].jem.json["gflops"] = json!(20.0);
        assert_eq!(median_reported(&r, Side::Jem, "gflops"), Some(15.0));
        assert_eq!(median_reported(&r, Side::Peer, "gflops"), None);
    }

    #[test]
    fn a_side_that_ignored_a_flag_is_caught() {
        let json = line(0.1, 0.01, 0.05);
        check_reported(&json, &[("threads", 2), ("batch", 32)], "jem").unwrap();
        let err = check_reported(&json, &[("threads", 4)], "the peer")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the peer ran with threads = 2, but 4"),
            "{err}"
        );
        let err = check_reported(&json, &[("depth", 10)], "jem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not report `depth`"), "{err}");
    }
}
