use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A topic name as it appears in registry scopes and the API (`signers`, `coord.tbtc`).
///
/// Names are restricted so that a scope in the registry, a path segment in the HTTP API and a
/// gossipsub topic string can never disagree about what they denote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TopicName(String);

/// Why a string is not a topic name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{0}` is not a topic name (expected 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit)")]
pub struct TopicNameError(pub String);

impl TopicName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TopicName {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let starts_ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if s.len() <= 64 && starts_ok && s.chars().all(valid_char) {
            Ok(TopicName(s.to_owned()))
        } else {
            Err(TopicNameError(s.to_owned()))
        }
    }
}

impl TryFrom<String> for TopicName {
    type Error = TopicNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TopicName> for String {
    fn from(t: TopicName) -> String {
        t.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_simple_names_and_refuses_the_rest() {
        for ok in ["signers", "coord.tbtc", "a", "x_1-2"] {
            assert!(ok.parse::<TopicName>().is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in ["", "Signers", "-x", "a/b", "a b", long.as_str()] {
            assert!(bad.parse::<TopicName>().is_err(), "{bad}");
        }
    }
}
