//! bench.md (tables) and bench.json (every round's JSON lines in full, with the summaries).

use super::child::{MMAP_THRESHOLD, TRIM_THRESHOLD};
use super::stats::{
    median_reported, peak_rss_mib, summarise, RatioSpread, Round, Side, Summary, TIMED_KEYS,
};
use super::BenchConfig;
use crate::libtorch::TORCH_VERSION;
use anyhow::Result;
use serde_json::{json, Value};

/// One configuration's rounds and their summaries.
pub struct ConfigResult<'a> {
    pub config: &'a BenchConfig,
    /// The flags both sides got.
    pub flags: Vec<String>,
    pub rounds: Vec<Round>,
    /// One per [`TIMED_KEYS`] entry, in that order.
    pub summaries: Vec<Summary>,
}

impl<'a> ConfigResult<'a> {
    /// Summarises `rounds` (fails when a round lacks a timing).
    pub fn new(config: &'a BenchConfig, flags: Vec<String>, rounds: Vec<Round>) -> Result<Self> {
        let summaries = TIMED_KEYS
            .iter()
            .map(|(key, _)| summarise(&rounds, key))
            .collect::<Result<_>>()?;
        Ok(Self {
            config,
            flags,
            rounds,
            summaries,
        })
    }

    fn summary(&self, key: &str) -> &Summary {
        self.summaries
            .iter()
            .find(|s| s.key == key)
            .expect("every timed key is summarised")
    }

    fn has_peer(&self) -> bool {
        self.rounds.iter().any(|r| r.peer.is_some())
    }
}

/// What was run, for the header and the environment section.
pub struct RunInfo {
    pub iters: usize,
    pub warmup: usize,
    pub rounds: usize,
    pub threads: usize,
    pub cores: usize,
    /// The variables both sides got (see [`super::child::shared_env`]).
    pub env: Vec<(&'static str, String)>,
    /// The peer script, when it ran.
    pub peer: Option<String>,
}

fn seconds(s: Option<f64>) -> String {
    match s {
        Some(s) if s >= 1.0 => format!("{s:.2}"),
        Some(s) => format!("{s:.4}"),
        None => "-".into(),
    }
}

fn ratio(r: Option<&RatioSpread>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.2}", r.of_medians))
}

fn spread(r: Option<&RatioSpread>) -> String {
    r.map_or_else(
        || "-".into(),
        |r| format!("{:.2} [{:.2}, {:.2}]", r.median, r.min, r.max),
    )
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

/// `peer / jem` of two already formatted cells.
fn pair(peer: String, jem: String) -> String {
    format!("{peer} / {jem}")
}

/// The allocator jem says it set (its JSON's `allocator`), as a sentence fragment.
fn jem_allocator(results: &[ConfigResult]) -> String {
    let Some(alloc) = results
        .iter()
        .flat_map(|r| &r.rounds)
        .map(|r| &r.jem.json["allocator"])
        .find(|a| a.is_object())
    else {
        return "jem did not report its allocator settings (an older binary?)".into();
    };
    if alloc["mallopt"] != json!(true) {
        return "jem reported that it does not call mallopt (not glibc)".into();
    }
    let same = alloc["mmap_threshold"] == json!(MMAP_THRESHOLD)
        && alloc["trim_threshold"] == json!(TRIM_THRESHOLD);
    format!(
        "jem reported mallopt(M_MMAP_THRESHOLD, {}) and mallopt(M_TRIM_THRESHOLD, {}) at start{}",
        alloc["mmap_threshold"],
        alloc["trim_threshold"],
        if same {
            ", the same values"
        } else {
            " — NOT the peer's values, so the ratio is not like for like"
        }
    )
}

/// The values a side reported under `key` over all rounds, e.g. `2` or `2, 3` when rounds differ.
fn reported(results: &[ConfigResult], side: Side, key: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for round in results.iter().flat_map(|r| &r.rounds) {
        let run = match side {
            Side::Peer => round.peer.as_ref(),
            Side::Jem => Some(&round.jem),
        };
        if let Some(run) = run {
            let t = match &run.json[key] {
                serde_json::Value::String(text) => text.clone(),
                serde_json::Value::Null => "not reported".into(),
                other => other.to_string(),
            };
            if !seen.contains(&t) {
                seen.push(t);
            }
        }
    }
    if seen.is_empty() {
        "-".into()
    } else {
        seen.join(", ")
    }
}

/// The Markdown report.
pub fn markdown(results: &[ConfigResult], info: &RunInfo) -> String {
    let mut md = format!(
        "# JEM training speed: jem vs the PyTorch peer\n\n\
         {rounds} rounds, alternating (ABAB): in each round the peer, then jem, each a fresh process \
         that times {iters} iterations after {warmup} untimed warm-up iterations and reports their median. Each \
         side's figure is the median over rounds of those per-round medians; jem/peer is the ratio \
         of the two, and the per-round column gives the median and the range [min, max] of the \
         ratios of the two runs of each round (below 1: jem is faster). {threads} intra-op threads on \
         both sides ({cores} cores), CPU, synthetic data; both sides on libtorch {TORCH_VERSION}. \
         Peak RSS: the largest resident set of a side's process over the rounds.\n\n\
         | config | peer s/it | jem s/it | jem/peer | per-round jem/peer: median [min, max] | peak RSS peer / jem (MiB) |\n\
         |---|---|---|---|---|---|\n",
        rounds = info.rounds,
        iters = info.iters,
        warmup = info.warmup,
        threads = info.threads,
        cores = info.cores,
    );
    for r in results {
        let it = r.summary("jem_sec_per_iter");
        md.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} | {} |\n",
            r.config.name,
            r.config.description,
            seconds(it.peer),
            seconds(Some(it.jem)),
            ratio(it.ratio.as_ref()),
            spread(it.ratio.as_ref()),
            pair(
                fixed(peak_rss_mib(&r.rounds, Side::Peer), 0),
                fixed(peak_rss_mib(&r.rounds, Side::Jem), 0)
            ),
        ));
    }

    md.push_str(
        "\nPer phase. SGLD step: one buffer draw + SGLD run + store, divided by the steps. \
         Classifier step: forward, cross-entropy, backward, Adam.\n\n\
         | config | SGLD step peer / jem (s) | jem/peer | per-round: median [min, max] | classifier step peer / jem (s) | jem/peer | per-round: median [min, max] |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let sgld = r.summary("sgld_sec_per_step");
        let clf = r.summary("clf_sec_per_iter");
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.config.name,
            pair(seconds(sgld.peer), seconds(Some(sgld.jem))),
            ratio(sgld.ratio.as_ref()),
            spread(sgld.ratio.as_ref()),
            pair(seconds(clf.peer), seconds(Some(clf.jem))),
            ratio(clf.ratio.as_ref()),
            spread(clf.ratio.as_ref()),
        ));
    }

    md.push_str(
        "\nWhat is compared (peer / jem). The networks are the same Wide-ResNet (biased convolutions, \
         LeakyReLU 0.2, no normalisation), so parameters and MACs agree. A JEM iteration costs \
         different numbers of passes: the peer runs three forward passes with full backward (data, \
         samples, a separate labelled batch, as the reference), jem two (its data batch is the \
         labelled batch: one pass gives the logits and log p(x)). Achieved GFLOP/s and other CPU \
         (the share of the machine other processes used during the timed JEM iterations: noise in \
         the timings) are medians over rounds.\n\n\
         | config | parameters | GMACs / image (forward) | forward passes / JEM iteration | achieved GFLOP/s (JEM) | other CPU |\n\
         |---|---|---|---|---|---|\n",
    );
    for r in results {
        let peer = r.has_peer();
        let first = |side: Side, key: &str, digits: usize| -> String {
            let run = match side {
                Side::Peer => r.rounds[0].peer.as_ref(),
                Side::Jem => Some(&r.rounds[0].jem),
            };
            fixed(run.and_then(|run| run.json[key].as_f64()), digits)
        };
        let both = |key: &str, digits: usize| {
            pair(
                fixed(median_reported(&r.rounds, Side::Peer, key), digits),
                fixed(median_reported(&r.rounds, Side::Jem, key), digits),
            )
        };
        let peer_passes = if peer {
            (2 * r.config.sgld_steps + 9).to_string()
        } else {
            "-".into()
        };
        md.push_str(&format!(
            "| {} | {} | {} | {peer_passes} / {} | {} | {} |\n",
            r.config.name,
            pair(
                first(Side::Peer, "params", 0),
                first(Side::Jem, "params", 0)
            ),
            pair(
                first(Side::Peer, "gmacs_per_image_fwd", 4),
                first(Side::Jem, "gmacs_per_image_fwd", 4)
            ),
            first(Side::Jem, "jem_fwd_passes_per_iter", 0),
            both("jem_achieved_gflops", 1),
            both("jem_other_cpu_frac", 2),
        ));
    }

    md.push_str("\nEnvironment (the same on both sides):\n\n");
    let env: Vec<String> = info.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    md.push_str(&format!(
        "- both processes started with `{}`; intra-op threads reported by the peer: {}, by jem: {}\n",
        env.join(" "),
        reported(results, Side::Peer, "threads"),
        reported(results, Side::Jem, "threads"),
    ));
    md.push_str(&format!(
        "- jem's arithmetic as it reported it: SGLD passes {}, training passes {} (`auto` runs bf16 \
         only where the CPU computes bfloat16 natively); the peer runs float32\n",
        reported(results, Side::Jem, "sgld_precision"),
        reported(results, Side::Jem, "train_precision"),
    ));
    md.push_str(&format!("- {}\n", jem_allocator(results)));
    md.push_str(&format!(
        "- peer: {}\n",
        info.peer
            .as_deref()
            .map_or("not run (--no-peer)".into(), |p| format!(
                "`{p}` on the project's torch {TORCH_VERSION} Python package (its resident memory \
                 includes the interpreter and the CUDA libraries torch's Python extension links)"
            )),
    ));
    md
}

/// The JSON report: settings, summaries and every round's lines in full.
pub fn report_json(results: &[ConfigResult], info: &RunInfo) -> Value {
    json!({
        "iters": info.iters,
        "warmup": info.warmup,
        "rounds": info.rounds,
        "order": "ABAB: each round runs the peer, then jem",
        "threads": info.threads,
        "cores": info.cores,
        "torch": TORCH_VERSION,
        "peer": info.peer,
        "environment": {
            "both": info.env.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "jem_mallopt": {
                "mmap_threshold": MMAP_THRESHOLD,
                "trim_threshold": TRIM_THRESHOLD,
            },
        },
        "configs": results.iter().map(|r| json!({
            "name": r.config.name,
            "description": r.config.description,
            "flags": r.flags,
            "summary": r.summaries,
            "peak_rss_mib": {
                "peer": peak_rss_mib(&r.rounds, Side::Peer),
                "jem": peak_rss_mib(&r.rounds, Side::Jem),
            },
            "rounds": r.rounds.iter().map(|round| json!({
                "peer": round.peer.as_ref().map(|p| &p.json),
                "peer_max_rss_kib": round.peer.as_ref().and_then(|p| p.max_rss_kib),
                "jem": round.jem.json,
                "jem_max_rss_kib": round.jem.max_rss_kib,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::child::shared_env;
    use super::super::stats::tests::rounds;
    use super::super::CONFIGS;
    use super::*;

    fn info(peer: bool) -> RunInfo {
        RunInfo {
            iters: 4,
            warmup: 1,
            rounds: 3,
            threads: 2,
            cores: 2,
            env: shared_env(2),
            peer: peer.then(|| "/x/torch_jem_step.py".into()),
        }
    }

    fn with_allocator(mut rounds: Vec<Round>, mmap: u64) -> Vec<Round> {
        for r in &mut rounds {
            r.jem.json["allocator"] = json!({"mallopt": true, "mmap_threshold": mmap,
                "trim_threshold": TRIM_THRESHOLD, "glibc_tunables": null});
        }
        rounds
    }

    fn table_row<'m>(md: &'m str, prefix: &str) -> Vec<&'m str> {
        let line = md
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row starting {prefix:?} in\n{md}"));
        line.trim_matches('|').split('|').map(str::trim).collect()
    }

    #[test]
    fn the_tables_carry_medians_ratios_spreads_and_memory() {
        let config = &CONFIGS[0];
        let result =
            ConfigResult::new(config, vec![], with_allocator(rounds(), MMAP_THRESHOLD)).unwrap();
        let md = markdown(&[result], &info(true));
        let row = table_row(&md, "| wrn-10-1 (");
        // peer median 0.25, jem median 0.3, ratio 1.2, per-round 1.5 [0.5, 2.0],
        // peak RSS 3 MiB / 4 MiB.
        assert_eq!(
            row[1..],
            ["0.2500", "0.3000", "1.20", "1.50 [0.50, 2.00]", "3 / 4"]
        );
        let row = table_row(&md, "| wrn-10-1 | 0.0250 / 0.0600");
        assert_eq!(row[2..4], ["2.40", "3.00 [1.00, 4.00]"]);
        assert_eq!(row[4..], ["0.1250 / 0.1500", "1.20", "1.50 [0.50, 2.00]"]);
        assert!(md.contains("3 rounds, alternating (ABAB)"), "{md}");
        assert!(md.contains(
            "`OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`"
        ));
        assert!(md.contains("reported by the peer: 2, by jem: 2"), "{md}");
        // No precision in these rounds' JSON (an older jem): said, not invented.
        assert!(
            md.contains("SGLD passes not reported, training passes not reported"),
            "{md}"
        );
        assert!(md.contains("mallopt(M_MMAP_THRESHOLD, 268435456)"), "{md}");
        assert!(md.contains(", the same values"), "{md}");
    }

    #[test]
    fn jems_reported_arithmetic_is_named_once_or_per_distinct_value() {
        let mut rounds = with_allocator(rounds(), MMAP_THRESHOLD);
        for (i, r) in rounds.iter_mut().enumerate() {
            r.jem.json["sgld_precision"] = json!(if i == 0 { "fp32" } else { "bf16" });
            r.jem.json["train_precision"] = json!("fp32");
        }
        let result = ConfigResult::new(&CONFIGS[0], vec![], rounds).unwrap();
        let md = markdown(&[result], &info(true));
        assert!(
            md.contains("SGLD passes fp32, bf16, training passes fp32 (`auto`"),
            "{md}"
        );
    }

    #[test]
    fn a_different_jem_allocator_is_flagged() {
        let result =
            ConfigResult::new(&CONFIGS[0], vec![], with_allocator(rounds(), 1 << 20)).unwrap();
        let md = markdown(&[result], &info(true));
        assert!(md.contains("NOT the peer's values"), "{md}");
    }

    #[test]
    fn without_the_peer_the_peer_cells_are_dashes() {
        let rounds: Vec<Round> = rounds()
            .into_iter()
            .map(|r| Round { peer: None, ..r })
            .collect();
        let result = ConfigResult::new(&CONFIGS[0], vec![], rounds).unwrap();
        let md = markdown(&[result], &info(false));
        let row = table_row(&md, "| wrn-10-1 (");
        assert_eq!(row[1..], ["-", "0.3000", "-", "-", "- / 4"]);
        assert!(md.contains("not run (--no-peer)"));
        assert!(md.contains("did not report its allocator"));
    }

    #[test]
    fn the_json_report_keeps_every_round_and_the_summaries() {
        let result =
            ConfigResult::new(&CONFIGS[1], vec!["--depth".into(), "10".into()], rounds()).unwrap();
        let report = report_json(&[result], &info(true));
        let config = &report["configs"][0];
        assert_eq!(config["name"], "wrn-10-2");
        assert_eq!(config["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(config["rounds"][1]["peer_max_rss_kib"], 3072);
        assert_eq!(config["summary"][0]["key"], "jem_sec_per_iter");
        assert_eq!(config["summary"][0]["peer"], 0.25);
        assert_eq!(config["peak_rss_mib"]["jem"], 4.0);
        assert_eq!(
            report["environment"]["both"]["GLIBC_TUNABLES"],
            "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"
        );
        assert_eq!(report["environment"]["both"]["MKL_NUM_THREADS"], "2");
    }
}
