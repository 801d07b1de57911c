//! The devnet's validator report (`conclave devnet --rln-validators`): every member's RLN
//! membership registered through an Ethereum validator's BLS key, and the forgeries that must
//! not be.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One validator registration that landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedRegistration {
    pub leaf: u32,
    /// The validator key, 0x-hex (48 bytes).
    pub validator: String,
    /// The registration's gas (on-chain only).
    pub gas: Option<u64>,
}

/// A registration that must be refused, and what refused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRegistration {
    /// What was tried, in words.
    pub attempt: String,
    /// The refusal (the contract's error in words, or the nodes' skip reason); `None` if it
    /// was accepted.
    pub refusal: Option<String>,
}

/// The validators' registrations and the attempts that must fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsReport {
    /// `anvil` (checked on-chain, then by every node) or `file` (by every node alone).
    pub registry: String,
    /// Where the keystores are (EIP-2335, one per member).
    pub keystores: String,
    pub accepted: Vec<AcceptedRegistration>,
    pub refused: Vec<RefusedRegistration>,
    /// With a file registry: how many members left every forged entry out and named it, of how
    /// many asked.
    pub nodes_skipping: Option<(usize, usize)>,
}

impl ValidatorsReport {
    pub fn ok(&self) -> bool {
        !self.accepted.is_empty()
            && !self.refused.is_empty()
            && self.refused.iter().all(|r| r.refusal.is_some())
            && self
                .nodes_skipping
                .is_none_or(|(skipping, of)| skipping == of && of > 0)
    }
}

impl fmt::Display for ValidatorsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gas: Vec<u64> = self.accepted.iter().filter_map(|a| a.gas).collect();
        let gas = match (gas.iter().min(), gas.iter().max()) {
            (Some(lo), Some(hi)) => format!(", gas {lo}–{hi} per registration"),
            _ => String::new(),
        };
        writeln!(
            f,
            "  validators        {} RLN memberships registered by validator BLS keys ({} registry{gas}; keystores in {})",
            self.accepted.len(),
            self.registry,
            self.keystores
        )?;
        for r in &self.refused {
            match &r.refusal {
                Some(why) => writeln!(f, "                      {}: refused: {why}", r.attempt)?,
                None => writeln!(f, "                      {}: ACCEPTED", r.attempt)?,
            }
        }
        if let Some((skipping, of)) = self.nodes_skipping {
            writeln!(
                f,
                "                      {skipping} of {of} members left the forged entries out of their trees"
            )?;
        }
        Ok(())
    }
}
