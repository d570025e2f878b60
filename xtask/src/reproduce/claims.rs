//! The paper's claims, each checked against our numbers.
//!
//! A claim is *supported* when the measured numbers order the way the paper says, *not
//! supported* when they do not, and *not measurable at this scale* when a number is missing or
//! cannot mean what the paper's does (IS/FID from classifier features, models we do not train).
//! Verdicts compare means over seeds; nothing is tuned to the paper's values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The verdict on one claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Our numbers order as the paper's claim says.
    Supported,
    /// They do not.
    NotSupported,
    /// Nothing here can decide it.
    NotMeasurable,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Supported => "supported",
            Verdict::NotSupported => "not supported",
            Verdict::NotMeasurable => "not measurable at this scale",
        })
    }
}

/// One claim of the paper and what our numbers say about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The claim, in the paper's terms (with the paper's numbers).
    pub text: String,
    /// Our verdict.
    pub verdict: Verdict,
    /// The measured numbers behind the verdict, or why there are none.
    pub evidence: String,
}

impl Claim {
    /// A claim nothing here can decide, and why.
    pub fn not_measurable(text: impl Into<String>, why: impl Into<String>) -> Claim {
        Claim {
            text: text.into(),
            verdict: Verdict::NotMeasurable,
            evidence: why.into(),
        }
    }

    /// The Markdown line of the claim.
    pub fn markdown(&self) -> String {
        let mark = match self.verdict {
            Verdict::Supported => "✅",
            Verdict::NotSupported => "❌",
            Verdict::NotMeasurable => "➖",
        };
        format!(
            "- {mark} **{}**: {} — {}",
            self.verdict, self.text, self.evidence
        )
    }
}

/// A measured value and how to print it.
#[derive(Clone, Copy, Debug)]
pub struct Measured<'a> {
    /// What it is ("JEM's ECE").
    pub name: &'a str,
    /// Its value (mean over seeds), if measured.
    pub value: Option<f64>,
    /// How it is printed: a multiplier and a unit (`100.0, "%"`).
    pub scale: f64,
    /// Unit after the scaled value.
    pub unit: &'a str,
    /// Digits after the point.
    pub digits: usize,
}

impl<'a> Measured<'a> {
    /// A fraction shown as a percentage with two decimals.
    pub fn pct(name: &'a str, value: Option<f64>) -> Self {
        Measured {
            name,
            value,
            scale: 100.0,
            unit: "%",
            digits: 2,
        }
    }

    /// A plain number with `digits` decimals.
    pub fn num(name: &'a str, value: Option<f64>, digits: usize) -> Self {
        Measured {
            name,
            value,
            scale: 1.0,
            unit: "",
            digits,
        }
    }

    fn text(&self) -> String {
        match self.value {
            Some(v) if v.is_finite() => {
                format!(
                    "{} {:.*}{}",
                    self.name,
                    self.digits,
                    v * self.scale,
                    self.unit
                )
            }
            Some(v) => format!("{} {v}", self.name),
            None => format!("{} not measured", self.name),
        }
    }
}

/// "`a` is lower than `b`".
pub fn lower(text: impl Into<String>, a: Measured, b: Measured) -> Claim {
    compare(text.into(), a, b, "<", |x, y| x < y)
}

/// "`a` is higher than `b`".
pub fn higher(text: impl Into<String>, a: Measured, b: Measured) -> Claim {
    compare(text.into(), a, b, ">", |x, y| x > y)
}

/// "`a` is at least `b`".
pub fn at_least(text: impl Into<String>, a: Measured, b: Measured) -> Claim {
    compare(text.into(), a, b, "≥", |x, y| x >= y)
}

fn compare(text: String, a: Measured, b: Measured, op: &str, holds: fn(f64, f64) -> bool) -> Claim {
    match (a.value, b.value) {
        (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
            let ok = holds(x, y);
            Claim {
                text,
                verdict: if ok {
                    Verdict::Supported
                } else {
                    Verdict::NotSupported
                },
                evidence: format!(
                    "{} {} {}",
                    a.text(),
                    if ok { op } else { negate(op) },
                    b.text()
                ),
            }
        }
        _ => Claim {
            text,
            verdict: Verdict::NotMeasurable,
            evidence: format!("{}; {}", a.text(), b.text()),
        },
    }
}

fn negate(op: &str) -> &'static str {
    match op {
        "<" => "≥",
        ">" => "≤",
        _ => "<",
    }
}

/// "The values increase strictly in this order" (e.g. robustness with refinement steps).
pub fn increasing(text: impl Into<String>, values: &[Measured]) -> Claim {
    let text = text.into();
    let shown: Vec<String> = values.iter().map(|m| m.text()).collect();
    let nums: Option<Vec<f64>> = values
        .iter()
        .map(|m| m.value.filter(|v| v.is_finite()))
        .collect();
    match nums {
        Some(v) if v.len() >= 2 => Claim {
            verdict: if v.windows(2).all(|w| w[0] < w[1]) {
                Verdict::Supported
            } else {
                Verdict::NotSupported
            },
            text,
            evidence: shown.join(", "),
        },
        _ => Claim {
            text,
            verdict: Verdict::NotMeasurable,
            evidence: shown.join(", "),
        },
    }
}

/// Mean of the values, `None` when there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_is_supported_only_when_strictly_lower() {
        let c = lower(
            "JEM's ECE is lower than the baseline's",
            Measured::pct("JEM", Some(0.012)),
            Measured::pct("baseline", Some(0.034)),
        );
        assert_eq!(c.verdict, Verdict::Supported);
        assert_eq!(c.evidence, "JEM 1.20% < baseline 3.40%");
        let c = lower(
            "x",
            Measured::pct("JEM", Some(0.034)),
            Measured::pct("baseline", Some(0.012)),
        );
        assert_eq!(c.verdict, Verdict::NotSupported);
        assert_eq!(c.evidence, "JEM 3.40% ≥ baseline 1.20%");
        let c = lower(
            "x",
            Measured::pct("JEM", Some(0.02)),
            Measured::pct("baseline", Some(0.02)),
        );
        assert_eq!(c.verdict, Verdict::NotSupported);
    }

    #[test]
    fn a_missing_or_nan_number_is_not_measurable() {
        let c = higher(
            "x",
            Measured::num("IS", None, 2),
            Measured::num("b", Some(1.0), 2),
        );
        assert_eq!(c.verdict, Verdict::NotMeasurable);
        assert!(c.evidence.contains("IS not measured"), "{}", c.evidence);
        let c = higher(
            "x",
            Measured::num("a", Some(f64::NAN), 2),
            Measured::num("b", Some(1.0), 2),
        );
        assert_eq!(c.verdict, Verdict::NotMeasurable);
    }

    #[test]
    fn increasing_needs_a_strict_order() {
        let m = |v| Measured::pct("k", Some(v));
        assert_eq!(
            increasing("x", &[m(0.1), m(0.2), m(0.3)]).verdict,
            Verdict::Supported
        );
        assert_eq!(
            increasing("x", &[m(0.1), m(0.3), m(0.2)]).verdict,
            Verdict::NotSupported
        );
        assert_eq!(
            increasing("x", &[m(0.1), Measured::pct("k", None)]).verdict,
            Verdict::NotMeasurable
        );
    }

    #[test]
    fn markdown_names_the_verdict() {
        let c = Claim::not_measurable("IS beats IGEBM's 8.3", "classifier features");
        assert_eq!(
            c.markdown(),
            "- ➖ **not measurable at this scale**: IS beats IGEBM's 8.3 — classifier features"
        );
    }
}
