//! The JEM-k classifiers under attack: their refinement follows the attack's own flags (the
//! paper's α = 1, σ = 0.01, no clamp by default), never the checkpoint's training sampler, and
//! each EOT chain starts from the input plus N(0, `--eot-noise`²) noise.

use super::{AttackArgs, Variant};
use anyhow::Result;
use jem_attack::RefinedClassifier;
use jem_sampler::SgldConfig;

/// `LO,HI` with LO < HI.
pub(super) fn parse_clamp(s: &str) -> std::result::Result<(f64, f64), String> {
    let bad = || format!("`{s}`: expected LO,HI with finite LO < HI, e.g. -1,1");
    let (lo, hi) = s.split_once(',').ok_or_else(bad)?;
    let lo: f64 = lo.trim().parse().map_err(|_| bad())?;
    let hi: f64 = hi.trim().parse().map_err(|_| bad())?;
    if lo.is_finite() && hi.is_finite() && lo < hi {
        Ok((lo, hi))
    } else {
        Err(bad())
    }
}

/// The refinement's SGLD settings: the attack's own flags over the paper's defaults, never the
/// checkpoint's training sampler (whose clamp, say, is a training choice).
pub(super) fn refinement_sgld(args: &AttackArgs) -> SgldConfig {
    SgldConfig {
        step_size: args.refine_step_size,
        noise: args.refine_noise,
        clamp: args.refine_clamp,
        ..SgldConfig::default()
    }
}

impl Variant<'_> {
    pub(super) fn target(&self, args: &AttackArgs) -> Result<RefinedClassifier<'_>> {
        let config = &self.model.loaded.config;
        // Without refinement the classifier is deterministic: one chain is the same as many.
        let chains = if self.refine_steps == 0 { 1 } else { args.eot };
        Ok(RefinedClassifier::new(
            &self.model.loaded.model,
            config.model.num_classes as i64,
            self.refine_steps,
            chains,
            refinement_sgld(args),
        )?
        .with_eot_noise(args.eot_noise)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn parse(extra: &[&str]) -> std::result::Result<AttackArgs, clap::Error> {
        let argv = ["attack", "--checkpoint", "run", "--attack", "pgd-linf"]
            .iter()
            .chain(extra);
        let matches =
            AttackArgs::augment_args(clap::Command::new("attack")).try_get_matches_from(argv)?;
        AttackArgs::from_arg_matches(&matches)
    }

    #[test]
    fn refinement_follows_the_attacks_flags_with_the_papers_defaults() {
        let args = parse(&[]).unwrap();
        let sgld = refinement_sgld(&args);
        // The paper's refinement (α = 1, σ = 0.01, no clamp) whatever the checkpoint trained with.
        assert_eq!(sgld.step_size, 1.0);
        assert_eq!(sgld.noise, 0.01);
        assert_eq!(sgld.clamp, None);
        assert_eq!(sgld.mode, SgldConfig::default().mode);
        assert_eq!(args.eot_noise, 0.03);
        assert_eq!(args.bisection_steps, 20);
        let args = parse(&[
            "--refine-step-size",
            "0.5",
            "--refine-noise",
            "0",
            "--refine-clamp",
            "-1,1",
            "--eot-noise",
            "0.1",
        ])
        .unwrap();
        let sgld = refinement_sgld(&args);
        assert_eq!(
            (sgld.step_size, sgld.noise, sgld.clamp),
            (0.5, 0.0, Some((-1.0, 1.0)))
        );
        assert_eq!(args.eot_noise, 0.1);
    }

    #[test]
    fn a_bad_clamp_is_rejected_naming_the_value() {
        for bad in ["1,-1", "0,0", "x,1", "1", "-1,inf"] {
            let err = parse(&["--refine-clamp", bad]).err().unwrap().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert_eq!(parse_clamp(" -0.5 , 2"), Ok((-0.5, 2.0)));
    }
}
