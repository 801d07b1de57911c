//! The coordination message on the wire, byte-compatible with keep-core's protobuf
//! (`pkg/tbtc/gen/pb`): hand-written `prost` structs with keep-core's field numbers, and the
//! checked domain form [`CoordinationMessage`] that decoding produces.

use serde::{Deserialize, Serialize};

/// keep-core's `WalletActionType` numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionType {
    Noop = 0,
    Heartbeat = 1,
    DepositSweep = 2,
    Redemption = 3,
    MovingFunds = 4,
    MovedFundsSweep = 5,
}

impl ActionType {
    /// keep-core's numbering; `None` for an unknown action.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => ActionType::Noop,
            1 => ActionType::Heartbeat,
            2 => ActionType::DepositSweep,
            3 => ActionType::Redemption,
            4 => ActionType::MovingFunds,
            5 => ActionType::MovedFundsSweep,
            _ => return None,
        })
    }
}

/// Raw protobuf messages (field numbers as in keep-core).
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CoordinationProposal {
        #[prost(uint32, tag = "1")]
        pub action_type: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub payload: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CoordinationMessage {
        #[prost(uint32, tag = "1")]
        pub sender_id: u32,
        #[prost(uint64, tag = "2")]
        pub coordination_block: u64,
        #[prost(bytes = "vec", tag = "3")]
        pub wallet_public_key_hash: Vec<u8>,
        #[prost(message, optional, tag = "4")]
        pub proposal: Option<CoordinationProposal>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HeartbeatProposal {
        #[prost(bytes = "vec", tag = "1")]
        pub message: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DepositKey {
        #[prost(bytes = "vec", tag = "1")]
        pub funding_tx_hash: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub funding_output_index: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DepositSweepProposal {
        #[prost(message, repeated, tag = "1")]
        pub deposits_keys: Vec<DepositKey>,
        #[prost(bytes = "vec", tag = "2")]
        pub sweep_tx_fee: Vec<u8>,
        #[prost(uint64, repeated, tag = "3")]
        pub deposits_reveal_blocks: Vec<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RedemptionProposal {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub redeemers_output_scripts: Vec<Vec<u8>>,
        #[prost(bytes = "vec", tag = "2")]
        pub redemption_tx_fee: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MovingFundsProposal {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub target_wallets: Vec<Vec<u8>>,
        #[prost(bytes = "vec", tag = "2")]
        pub moving_funds_tx_fee: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MovedFundsSweepProposal {
        #[prost(bytes = "vec", tag = "1")]
        pub moving_funds_tx_hash: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub moving_funds_tx_output_index: u32,
        #[prost(bytes = "vec", tag = "3")]
        pub sweep_tx_fee: Vec<u8>,
    }
}

/// 32 bytes as hex in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hash32(pub [u8; 32]);

/// 20 bytes as hex in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes20(pub [u8; 20]);

macro_rules! hex_serde {
    ($t:ty, $n:expr) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&format!("0x{}", hex::encode(self.0)))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                let bytes = hex::decode(s.trim_start_matches("0x"))
                    .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))?;
                let arr: [u8; $n] = bytes.try_into().map_err(|b: Vec<u8>| {
                    serde::de::Error::custom(format!(
                        "{s:?}: expected {} bytes, got {}",
                        $n,
                        b.len()
                    ))
                })?;
                Ok(Self(arr))
            }
        }
    };
}
hex_serde!(Hash32, 32);
hex_serde!(Bytes20, 20);

/// Arbitrary bytes as hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl Serialize for HexBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(&self.0)))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s.trim_start_matches("0x"))
            .map(HexBytes)
            .map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

/// A deposit a sweep spends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub funding_tx_hash: Hash32,
    pub funding_output_index: u32,
    pub reveal_block: u64,
}

/// What a leader proposes. Fees are satoshi amounts (minimal big-endian bytes on the wire, as
/// Go's `big.Int.Bytes()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action")]
pub enum Proposal {
    Noop,
    Heartbeat {
        message: HexBytes,
    },
    DepositSweep {
        deposits: Vec<Deposit>,
        sweep_tx_fee: u64,
    },
    Redemption {
        redeemers_output_scripts: Vec<HexBytes>,
        redemption_tx_fee: u64,
    },
    MovingFunds {
        target_wallets: Vec<Bytes20>,
        moving_funds_tx_fee: u64,
    },
    MovedFundsSweep {
        moving_funds_tx_hash: Hash32,
        moving_funds_tx_output_index: u32,
        sweep_tx_fee: u64,
    },
}

impl Proposal {
    /// The action type the proposal is sent under.
    pub fn action(&self) -> ActionType {
        match self {
            Proposal::Noop => ActionType::Noop,
            Proposal::Heartbeat { .. } => ActionType::Heartbeat,
            Proposal::DepositSweep { .. } => ActionType::DepositSweep,
            Proposal::Redemption { .. } => ActionType::Redemption,
            Proposal::MovingFunds { .. } => ActionType::MovingFunds,
            Proposal::MovedFundsSweep { .. } => ActionType::MovedFundsSweep,
        }
    }
}

/// A decoded, checked coordination message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinationMessage {
    /// The sender's seat (member index), 1..=255 in keep-core's groups.
    pub sender_id: u8,
    pub coordination_block: u64,
    pub wallet_public_key_hash: Bytes20,
    pub proposal: Proposal,
}

/// Why bytes are not a coordination message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a protobuf CoordinationMessage: {0}")]
    Protobuf(String),
    #[error("senderID {0} is out of range (a member index is at most 255)")]
    SenderId(u32),
    #[error("walletPublicKeyHash has {0} bytes; expected 20")]
    WalletPkh(usize),
    #[error("the proposal field is missing (a no-op is an empty proposal, not none)")]
    MissingProposal,
    #[error("unknown action type {0}")]
    UnknownAction(u32),
    #[error("{action:?} proposal: {field} has {got} bytes; expected {expected}")]
    Length {
        action: ActionType,
        field: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("{action:?} proposal: {field} is {got} bytes, larger than any satoshi amount (8 bytes at most)")]
    Fee {
        action: ActionType,
        field: &'static str,
        got: usize,
    },
    #[error("DepositSweep proposal: {keys} deposit keys but {blocks} reveal blocks")]
    DepositCount { keys: usize, blocks: usize },
    #[error("a Noop proposal carries a {0}-byte payload; expected none")]
    NoopPayload(usize),
}

fn fee_bytes(fee: u64) -> Vec<u8> {
    let b = fee.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

fn fee_value(action: ActionType, field: &'static str, bytes: &[u8]) -> Result<u64, WireError> {
    let significant = &bytes[bytes.iter().position(|&x| x != 0).unwrap_or(bytes.len())..];
    if significant.len() > 8 {
        return Err(WireError::Fee {
            action,
            field,
            got: bytes.len(),
        });
    }
    let mut buf = [0u8; 8];
    buf[8 - significant.len()..].copy_from_slice(significant);
    Ok(u64::from_be_bytes(buf))
}

fn fixed<const N: usize>(
    action: ActionType,
    field: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::Length {
        action,
        field,
        got: bytes.len(),
        expected: N,
    })
}

impl CoordinationMessage {
    /// keep-core's protobuf bytes (fees minimal big-endian, the proposal always present).
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        let payload = match &self.proposal {
            Proposal::Noop => Vec::new(),
            Proposal::Heartbeat { message } => pb::HeartbeatProposal {
                message: message.0.clone(),
            }
            .encode_to_vec(),
            Proposal::DepositSweep {
                deposits,
                sweep_tx_fee,
            } => pb::DepositSweepProposal {
                deposits_keys: deposits
                    .iter()
                    .map(|d| pb::DepositKey {
                        funding_tx_hash: d.funding_tx_hash.0.to_vec(),
                        funding_output_index: d.funding_output_index,
                    })
                    .collect(),
                sweep_tx_fee: fee_bytes(*sweep_tx_fee),
                deposits_reveal_blocks: deposits.iter().map(|d| d.reveal_block).collect(),
            }
            .encode_to_vec(),
            Proposal::Redemption {
                redeemers_output_scripts,
                redemption_tx_fee,
            } => pb::RedemptionProposal {
                redeemers_output_scripts: redeemers_output_scripts
                    .iter()
                    .map(|s| s.0.clone())
                    .collect(),
                redemption_tx_fee: fee_bytes(*redemption_tx_fee),
            }
            .encode_to_vec(),
            Proposal::MovingFunds {
                target_wallets,
                moving_funds_tx_fee,
            } => pb::MovingFundsProposal {
                target_wallets: target_wallets.iter().map(|w| w.0.to_vec()).collect(),
                moving_funds_tx_fee: fee_bytes(*moving_funds_tx_fee),
            }
            .encode_to_vec(),
            Proposal::MovedFundsSweep {
                moving_funds_tx_hash,
                moving_funds_tx_output_index,
                sweep_tx_fee,
            } => pb::MovedFundsSweepProposal {
                moving_funds_tx_hash: moving_funds_tx_hash.0.to_vec(),
                moving_funds_tx_output_index: *moving_funds_tx_output_index,
                sweep_tx_fee: fee_bytes(*sweep_tx_fee),
            }
            .encode_to_vec(),
        };
        pb::CoordinationMessage {
            sender_id: u32::from(self.sender_id),
            coordination_block: self.coordination_block,
            wallet_public_key_hash: self.wallet_public_key_hash.0.to_vec(),
            proposal: Some(pb::CoordinationProposal {
                action_type: self.proposal.action() as u32,
                payload,
            }),
        }
        .encode_to_vec()
    }

    /// Parses and checks keep-core's protobuf bytes; every refusal names the field.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        use prost::Message;
        let pbe = |e: prost::DecodeError| WireError::Protobuf(e.to_string());
        let raw = pb::CoordinationMessage::decode(bytes).map_err(pbe)?;
        let sender_id =
            u8::try_from(raw.sender_id).map_err(|_| WireError::SenderId(raw.sender_id))?;
        let pkh: [u8; 20] = raw
            .wallet_public_key_hash
            .as_slice()
            .try_into()
            .map_err(|_| WireError::WalletPkh(raw.wallet_public_key_hash.len()))?;
        let p = raw.proposal.ok_or(WireError::MissingProposal)?;
        let action =
            ActionType::from_u32(p.action_type).ok_or(WireError::UnknownAction(p.action_type))?;
        let payload = p.payload.as_slice();
        let proposal = match action {
            ActionType::Noop => {
                if !payload.is_empty() {
                    return Err(WireError::NoopPayload(payload.len()));
                }
                Proposal::Noop
            }
            ActionType::Heartbeat => {
                let h = pb::HeartbeatProposal::decode(payload).map_err(pbe)?;
                let message: [u8; 16] = fixed(action, "message", &h.message)?;
                Proposal::Heartbeat {
                    message: HexBytes(message.to_vec()),
                }
            }
            ActionType::DepositSweep => {
                let d = pb::DepositSweepProposal::decode(payload).map_err(pbe)?;
                if d.deposits_keys.len() != d.deposits_reveal_blocks.len() {
                    return Err(WireError::DepositCount {
                        keys: d.deposits_keys.len(),
                        blocks: d.deposits_reveal_blocks.len(),
                    });
                }
                let deposits = d
                    .deposits_keys
                    .iter()
                    .zip(&d.deposits_reveal_blocks)
                    .map(|(k, b)| {
                        Ok(Deposit {
                            funding_tx_hash: Hash32(fixed(
                                action,
                                "fundingTxHash",
                                &k.funding_tx_hash,
                            )?),
                            funding_output_index: k.funding_output_index,
                            reveal_block: *b,
                        })
                    })
                    .collect::<Result<_, WireError>>()?;
                Proposal::DepositSweep {
                    deposits,
                    sweep_tx_fee: fee_value(action, "sweepTxFee", &d.sweep_tx_fee)?,
                }
            }
            ActionType::Redemption => {
                let r = pb::RedemptionProposal::decode(payload).map_err(pbe)?;
                Proposal::Redemption {
                    redeemers_output_scripts: r
                        .redeemers_output_scripts
                        .into_iter()
                        .map(HexBytes)
                        .collect(),
                    redemption_tx_fee: fee_value(action, "redemptionTxFee", &r.redemption_tx_fee)?,
                }
            }
            ActionType::MovingFunds => {
                let m = pb::MovingFundsProposal::decode(payload).map_err(pbe)?;
                Proposal::MovingFunds {
                    target_wallets: m
                        .target_wallets
                        .iter()
                        .map(|w| fixed(action, "targetWallets", w).map(Bytes20))
                        .collect::<Result<_, _>>()?,
                    moving_funds_tx_fee: fee_value(
                        action,
                        "movingFundsTxFee",
                        &m.moving_funds_tx_fee,
                    )?,
                }
            }
            ActionType::MovedFundsSweep => {
                let m = pb::MovedFundsSweepProposal::decode(payload).map_err(pbe)?;
                Proposal::MovedFundsSweep {
                    moving_funds_tx_hash: Hash32(fixed(
                        action,
                        "movingFundsTxHash",
                        &m.moving_funds_tx_hash,
                    )?),
                    moving_funds_tx_output_index: m.moving_funds_tx_output_index,
                    sweep_tx_fee: fee_value(action, "sweepTxFee", &m.sweep_tx_fee)?,
                }
            }
        };
        Ok(CoordinationMessage {
            sender_id,
            coordination_block: raw.coordination_block,
            wallet_public_key_hash: Bytes20(pkh),
            proposal,
        })
    }
}

#[cfg(test)]
mod tests;
