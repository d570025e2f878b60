#![doc = include_str!("../README.md")]

use std::fmt::{Debug, Display};

/// A config value outside its allowed range: where it lives, its field, the value as written
/// and the allowed values in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: `{}` = {value}: {requirement}", self.key())]
pub struct InvalidParam {
    /// The config section (`data`, `sampler.sgld`, `train.recovery`) or the params type
    /// (`PgdConfig`) the field belongs to.
    pub config: String,
    /// The field, as spelled in the config file.
    pub field: String,
    /// The rejected value, formatted.
    pub value: String,
    /// What the value must be, in words: `must be >= 1`, `must match the 28x28 images of
    /// train.npy`.
    pub requirement: String,
}

impl InvalidParam {
    /// `config.field` = `value` (formatted with `Display`) is outside `allowed`, a range in
    /// words (`>= 1`, `finite and > 0`): the requirement reads "must be `allowed`".
    pub fn new(
        config: impl Into<String>,
        field: impl Into<String>,
        value: impl Display,
        allowed: impl AsRef<str>,
    ) -> Self {
        Self::requires(
            config,
            field,
            value,
            format!("must be {}", allowed.as_ref()),
        )
    }

    /// `config.field` = `value` breaks `requirement`, a whole phrase (`must match ...`,
    /// `applies only to ...`) for what a range cannot say.
    pub fn requires(
        config: impl Into<String>,
        field: impl Into<String>,
        value: impl Display,
        requirement: impl Into<String>,
    ) -> Self {
        Self {
            config: config.into(),
            field: field.into(),
            value: value.to_string(),
            requirement: requirement.into(),
        }
    }

    /// As [`InvalidParam::new`], the value formatted with `Debug` (floats keep their `.0`,
    /// strings their quotes, lists their brackets).
    pub fn debug(
        config: impl Into<String>,
        field: impl Into<String>,
        value: impl Debug,
        allowed: impl AsRef<str>,
    ) -> Self {
        Self::new(config, field, format_args!("{value:?}"), allowed)
    }

    /// From a full key `section.field` (split at the last dot; a key without a dot is a field
    /// of no named config).
    pub fn at_key(key: &str, value: impl Display, allowed: impl AsRef<str>) -> Self {
        let (config, field) = key.rsplit_once('.').unwrap_or(("", key));
        Self::new(config, field, value, allowed)
    }

    /// `config.field`, or the field alone when the config has no name.
    pub fn key(&self) -> String {
        if self.config.is_empty() {
            self.field.clone()
        } else {
            format!("{}.{}", self.config, self.field)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_values_differ_as_their_traits_do() {
        assert_eq!(InvalidParam::new("a", "b", 1.0, "x").value, "1");
        assert_eq!(InvalidParam::debug("a", "b", 1.0, "x").value, "1.0");
        assert_eq!(InvalidParam::debug("a", "b", "s", "x").value, "\"s\"");
    }

    #[test]
    fn keys_split_at_the_last_dot() {
        let e = InvalidParam::at_key("lr", 0, ">= 1");
        assert_eq!((e.config.as_str(), e.key()), ("", "lr".to_string()));
        assert_eq!(e.to_string(), "invalid config: `lr` = 0: must be >= 1");
        let e = InvalidParam::requires("data", "pad", 28, "must be in 0..=27");
        assert_eq!(
            e.to_string(),
            "invalid config: `data.pad` = 28: must be in 0..=27"
        );
        let e = InvalidParam::at_key("train.recovery.max_retries", 0, ">= 1");
        assert_eq!(e.key(), "train.recovery.max_retries");
    }
}
