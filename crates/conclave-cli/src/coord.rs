//! `conclave coord seed | leader | checklist | encode | decode`: the coordination rules as an
//! operator (or another implementation's test suite) can query them, printing JSON.

use std::io::Read;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use conclave_coord::{
    checklist, leader_order, seed, ChecklistPolicy, CoordinationMessage, WindowParams,
};
use conclave_core::{GroupId, OperatorId};
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum CoordCommand {
    /// The window seed: SHA-256(group public key hash ‖ safe block hash).
    Seed {
        /// The group's (wallet's) 20-byte public key hash, hex.
        #[arg(long)]
        group: String,
        /// The hash of the window's safe block, hex.
        #[arg(long)]
        safe_block_hash: String,
    },
    /// The leader and the full leader order for a seed and a group's seats.
    Leader {
        #[arg(long)]
        seed: String,
        /// Seat operators in seat order (repeats allowed), with or without 0x.
        #[arg(long, value_delimiter = ',', required = true)]
        operators: Vec<String>,
    },
    /// The actions a window may propose.
    Checklist {
        /// The coordination block.
        #[arg(long)]
        block: u64,
        #[arg(long)]
        seed: String,
        #[arg(long, default_value_t = WindowParams::default().frequency)]
        frequency: u64,
        #[arg(long, default_value_t = ChecklistPolicy::default().sweep_every)]
        sweep_every: u64,
        #[arg(long, default_value_t = ChecklistPolicy::default().heartbeat_probability)]
        heartbeat_probability: f64,
    },
    /// JSON (argument or stdin) to the protobuf hex of a CoordinationMessage.
    Encode { json: Option<String> },
    /// Protobuf hex of a CoordinationMessage to JSON.
    Decode { hex: String },
}

fn bytes<const N: usize>(what: &str, text: &str) -> anyhow::Result<[u8; N]> {
    let raw = hex::decode(text.trim().trim_start_matches("0x"))
        .map_err(|e| anyhow!("{what} `{text}` is not hex: {e}"))?;
    raw.as_slice()
        .try_into()
        .map_err(|_| anyhow!("{what} `{text}` has {} bytes; expected {N}", raw.len()))
}

/// Runs one command and returns its JSON answer.
pub fn run(cmd: CoordCommand) -> anyhow::Result<Value> {
    Ok(match cmd {
        CoordCommand::Seed {
            group,
            safe_block_hash,
        } => {
            let g = GroupId(bytes("--group", &group)?);
            let h = bytes("--safe-block-hash", &safe_block_hash)?;
            json!({ "seed": hex::encode(seed(&g, &h)) })
        }
        CoordCommand::Leader { seed, operators } => {
            let s = bytes("--seed", &seed)?;
            let mut parsed = Vec::new();
            for given in &operators {
                let with_prefix = if given.starts_with("0x") {
                    given.clone()
                } else {
                    format!("0x{given}")
                };
                let op: OperatorId = with_prefix
                    .parse()
                    .map_err(|e| anyhow!("operator `{given}`: {e}"))?;
                parsed.push((op, given.as_str()));
            }
            let seats: Vec<OperatorId> = parsed.iter().map(|(o, _)| *o).collect();
            let as_given = |o: &OperatorId| {
                parsed
                    .iter()
                    .find(|(p, _)| p == o)
                    .map(|(_, g)| g.to_string())
                    .expect("every ordered operator is a seat")
            };
            let order: Vec<String> = leader_order(&s, &seats).iter().map(as_given).collect();
            json!({ "leader": order.first(), "order": order })
        }
        CoordCommand::Checklist {
            block,
            seed,
            frequency,
            sweep_every,
            heartbeat_probability,
        } => {
            if frequency == 0 {
                bail!("--frequency must be positive");
            }
            let s = bytes("--seed", &seed)?;
            let params = WindowParams {
                frequency,
                ..WindowParams::default()
            };
            let policy = ChecklistPolicy {
                sweep_every,
                heartbeat_probability,
            };
            match params.window_at(block) {
                Some(w) => json!({
                    "index": w.index,
                    "actions": checklist(w.index, &s, &policy),
                }),
                None => json!({ "index": Value::Null, "actions": Value::Null }),
            }
        }
        CoordCommand::Encode { json } => {
            let text = match json {
                Some(t) => t,
                None => {
                    let mut t = String::new();
                    std::io::stdin().read_to_string(&mut t)?;
                    t
                }
            };
            let msg: CoordinationMessage =
                serde_json::from_str(&text).context("not a CoordinationMessage in JSON")?;
            json!({ "hex": hex::encode(msg.encode()) })
        }
        CoordCommand::Decode { hex: h } => {
            let raw = hex::decode(h.trim().trim_start_matches("0x"))
                .map_err(|e| anyhow!("not hex: {e}"))?;
            serde_json::to_value(CoordinationMessage::decode(&raw)?)?
        }
    })
}
