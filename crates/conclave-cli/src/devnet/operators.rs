//! The devnet's operators on a chain, and how their actions reach the registry: each sends its
//! own transactions (`--cold-keys online`), or (`--cold-keys offline`) each signs its actions
//! offline and one relayer account submits them all — one operator being a 2-of-3 Safe whose
//! owners sign. Either way every action is recorded: who signed it and who submitted it.

use std::sync::Mutex;

use conclave_api::OperatorSignatures;
use conclave_core::OperatorId;
use conclave_registry::evm::admin::{PrivateKeySigner, TxOutcome};
use conclave_registry::evm::signed::{ActionDomain, OperatorAction, SignedAction};
use conclave_registry::evm::Address;
use conclave_registry::evm::RegistryAdmin;

/// How long the devnet's signatures stay valid.
const DEADLINE_SECS: u64 = 3600;

/// Who an operator is, and how it signs.
enum Hand {
    /// A funded account that sends its own transactions.
    Sends(Box<RegistryAdmin>),
    /// A cold key that never holds ETH: it signs, the relayer submits.
    Cold(PrivateKeySigner),
    /// A Safe; two of its three owners sign for it (the first two, then the last two, in
    /// turn), the relayer submits.
    Safe {
        safe: Address,
        owners: Box<[PrivateKeySigner; 3]>,
    },
}

/// One operator of the devnet.
pub struct Operator {
    hand: Hand,
    /// The nonce its next signed action carries (it signs offline, so it counts itself).
    nonce: Mutex<u64>,
    log: Mutex<Vec<(String, Vec<Address>)>>,
}

/// The last signed action, kept to show its replay is refused.
pub type LastSigned = Mutex<Option<SignedAction>>;

impl Operator {
    pub fn sends(admin: RegistryAdmin) -> Self {
        Self::with(Hand::Sends(Box::new(admin)))
    }

    pub fn cold(key: PrivateKeySigner) -> Self {
        Self::with(Hand::Cold(key))
    }

    pub fn safe(safe: Address, owners: [PrivateKeySigner; 3]) -> Self {
        Self::with(Hand::Safe {
            safe,
            owners: Box::new(owners),
        })
    }

    fn with(hand: Hand) -> Self {
        Operator {
            hand,
            nonce: Mutex::new(0),
            log: Mutex::new(Vec::new()),
        }
    }

    pub fn address(&self) -> Address {
        match &self.hand {
            Hand::Sends(a) => a.signer(),
            Hand::Cold(k) => k.address(),
            Hand::Safe { safe, .. } => *safe,
        }
    }

    pub fn id(&self) -> OperatorId {
        OperatorId(self.address().0 .0)
    }

    /// Signs `action` for this operator with nonce `nonce`, valid until `deadline`.
    fn sign(
        &self,
        action: OperatorAction,
        nonce: u64,
        deadline: u64,
        domain: ActionDomain,
    ) -> anyhow::Result<(SignedAction, Vec<Address>)> {
        Ok(match &self.hand {
            Hand::Sends(_) => {
                anyhow::bail!("an operator that sends its own transactions signs none")
            }
            Hand::Cold(k) => (
                SignedAction::sign(action, k, nonce, deadline, domain)?,
                vec![k.address()],
            ),
            Hand::Safe { safe, owners } => {
                let pair: [&PrivateKeySigner; 2] = if nonce.is_multiple_of(2) {
                    [&owners[0], &owners[1]]
                } else {
                    [&owners[1], &owners[2]]
                };
                (
                    SignedAction::sign_as_safe(action, *safe, &pair, nonce, deadline, domain)?,
                    pair.iter().map(|k| k.address()).collect(),
                )
            }
        })
    }

    /// Carries `action` out: sent by the operator itself, or signed and submitted by `relayer`.
    pub async fn act(
        &self,
        action: OperatorAction,
        relayer: Option<&Relayer>,
    ) -> anyhow::Result<TxOutcome> {
        let words = action.to_string();
        let (tx, signers) = match (&self.hand, relayer) {
            (Hand::Sends(admin), _) => (admin.send(&action).await?, vec![admin.signer()]),
            (_, Some(r)) => {
                let nonce = *self.nonce.lock().expect("nonce lock");
                let (signed, signers) = self.sign(action, nonce, r.deadline(), r.domain)?;
                let tx = r.admin.submit(&signed).await?;
                *self.nonce.lock().expect("nonce lock") = nonce + 1;
                *r.last.lock().expect("last lock") = Some(signed);
                (tx, signers)
            }
            (_, None) => anyhow::bail!("an offline operator needs a relayer to submit"),
        };
        self.log.lock().expect("log lock").push((words, signers));
        Ok(tx)
    }

    /// An action of this operator's signed with a deadline already passed.
    pub fn expired(
        &self,
        action: OperatorAction,
        domain: ActionDomain,
    ) -> anyhow::Result<SignedAction> {
        let nonce = *self.nonce.lock().expect("nonce lock");
        Ok(self.sign(action, nonce, 1, domain)?.0)
    }

    /// Who signed what, for the report.
    pub fn signatures(&self, relayer: &str) -> OperatorSignatures {
        let kind = match &self.hand {
            Hand::Sends(_) => "operator account (msg.sender)",
            Hand::Cold(_) => "cold key, offline",
            Hand::Safe { .. } => "Safe, 2 of 3 owners",
        };
        let log = self.log.lock().expect("log lock");
        OperatorSignatures {
            operator: self.id().to_string(),
            kind: kind.into(),
            actions: log
                .iter()
                .map(|(words, signers)| {
                    let by: Vec<String> = signers.iter().map(|a| a.to_string()).collect();
                    format!(
                        "{words} — signed by {}, submitted by {relayer}",
                        by.join(" + ")
                    )
                })
                .collect(),
        }
    }
}

/// The one account that submits every signed action.
pub struct Relayer {
    pub admin: RegistryAdmin,
    pub key: PrivateKeySigner,
    pub domain: ActionDomain,
    pub last: LastSigned,
}

impl Relayer {
    fn deadline(&self) -> u64 {
        conclave_core::Clock::now_ms(&conclave_core::SystemClock) / 1000 + DEADLINE_SECS
    }

    /// The relayer's key, which also pays for deploying the Safe contracts.
    pub fn admin_key(&self) -> &PrivateKeySigner {
        &self.key
    }

    /// Writes the relayer's key as a node's hot key file (0600): the nodes' on-chain removals
    /// of slashed members go out from the relayer too.
    pub fn write_key(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        writeln!(f, "{}", self.key.to_bytes())?;
        Ok(())
    }
}
