//! The devnet's cold-key report (`conclave devnet --chain anvil --cold-keys offline`): every
//! operator's actions signed offline and submitted by one relayer, checked from the chain.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One operator's signed actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSignatures {
    pub operator: String,
    /// How it signs: a cold key offline, or a Safe's owners.
    pub kind: String,
    /// Each action in words, with who signed it and who submitted it.
    pub actions: Vec<String>,
}

/// Who sent what, read back from the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColdKeysReport {
    pub relayer: String,
    pub governance: String,
    pub operators: Vec<OperatorSignatures>,
    /// Transactions on the chain, every block read.
    pub transactions: u64,
    /// Senders of those transactions other than the relayer and governance (none expected:
    /// no operator key ever sent one).
    pub other_senders: Vec<String>,
    /// Why the registry refused a replayed signed action (none: it was accepted).
    pub replay_refusal: Option<String>,
    /// Why it refused an action signed with a passed deadline.
    pub expired_refusal: Option<String>,
}

impl ColdKeysReport {
    pub fn ok(&self) -> bool {
        !self.operators.is_empty()
            && self.other_senders.is_empty()
            && self.replay_refusal.is_some()
            && self.expired_refusal.is_some()
    }
}

impl fmt::Display for ColdKeysReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.operators {
            writeln!(f, "  operator          {} ({})", o.operator, o.kind)?;
            for a in &o.actions {
                writeln!(f, "                      {a}")?;
            }
        }
        let senders = if self.other_senders.is_empty() {
            "none".to_owned()
        } else {
            self.other_senders.join(", ")
        };
        writeln!(
            f,
            "  senders           {} transactions, all from the relayer {} or governance {}; others: {senders}",
            self.transactions, self.relayer, self.governance
        )?;
        let refusal = |r: &Option<String>| match r {
            Some(why) => format!("refused: {why}"),
            None => "ACCEPTED".to_owned(),
        };
        writeln!(f, "  replayed action   {}", refusal(&self.replay_refusal))?;
        writeln!(f, "  expired action    {}", refusal(&self.expired_refusal))
    }
}
