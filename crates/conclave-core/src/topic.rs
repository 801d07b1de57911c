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

    /// Whether `s` is a topic name: 1–64 bytes of `a-z`, `0-9`, `.`, `_`, `-`, starting with a
    /// letter or digit. `const`, so names fixed in code are checked when it compiles
    /// ([`static_topic!`](crate::static_topic)).
    pub const fn is_valid(s: &str) -> bool {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > 64 || !(b[0].is_ascii_lowercase() || b[0].is_ascii_digit()) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'.'
                || c == b'_'
                || c == b'-')
            {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The name `static_topic!` checked at compile time. Not for unchecked strings.
    #[doc(hidden)]
    pub fn from_checked(name: &'static str) -> Self {
        TopicName(name.to_owned())
    }
}

/// A [`TopicName`] from a constant, checked when the code compiles: a name fixed in code cannot
/// fail at run time.
#[macro_export]
macro_rules! static_topic {
    ($name:expr) => {{
        const _: () = assert!($crate::TopicName::is_valid($name), "not a topic name");
        $crate::TopicName::from_checked($name)
    }};
}

impl FromStr for TopicName {
    type Err = TopicNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if TopicName::is_valid(s) {
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
        for bad in ["", "Signers", "-x", "a/b", "a b", "é", long.as_str()] {
            assert!(bad.parse::<TopicName>().is_err(), "{bad}");
        }
        assert_eq!(crate::static_topic!("coord.tbtc").as_str(), "coord.tbtc");
    }
}
