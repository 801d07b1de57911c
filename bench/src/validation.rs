//! Validation throughput of one node, one core: how many messages per second the checks a
//! receiver must run on each new message get through, with no network in the way.
//!
//! Conclave: `validate_signed` as the network service calls it — size, membership and scope,
//! decoding, timestamp, the envelope's ed25519 signature — once per message. The sBTC profile:
//! gossipsub's secp256k1 signature (libp2p's implementation) plus the application's secp256k1
//! ECDSA signature over SHA-256 — per message, and gossipsub repeats its part for every copy
//! a node receives (up to the mesh degree), which this scenario does not count against it.

use std::time::Instant;

use conclave_core::{Envelope, Moment, OperatorId, PeerId, TopicName};
use conclave_net::{validate_signed, ValidationLimits};
use libp2p::identity::Keypair;
use prost::Message as _;
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ValidationParams {
    pub members: usize,
    pub messages: usize,
    pub size: usize,
}

#[derive(Serialize)]
pub struct ValidationRow {
    pub params: ValidationParams,
    /// Messages per second on one core, per repetition: (Conclave, sBTC profile).
    pub runs: Vec<(f64, f64)>,
    pub conclave_per_s: Spread,
    pub sbtc_profile_per_s: Spread,
}

use crate::conclave::TOPIC;

fn conclave_rate(p: ValidationParams) -> anyhow::Result<f64> {
    let topic: TopicName = TOPIC.parse()?;
    let keys: Vec<Keypair> = (0..p.members)
        .map(|_| Keypair::generate_ed25519())
        .collect();
    let members: Vec<(PeerId, OperatorId)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.public().to_peer_id(), OperatorId([i as u8 + 1; 20])))
        .collect();
    let view = crate::conclave::view(&members, &[]);
    let now_ms = conclave_core::Clock::now_ms(&conclave_core::SystemClock);
    let messages: Vec<_> = (0..p.messages)
        .map(|i| {
            let key = &keys[i % keys.len()];
            let mut e = Envelope {
                timestamp_ms: now_ms,
                payload: vec![0xa5; p.size],
                nonce: i as u64,
                signature: Vec::new(),
            };
            e.signature = key.sign(&e.signing_bytes(TOPIC)).expect("ed25519 signs");
            (key.public().to_peer_id(), e.encode_to_vec())
        })
        .collect();
    let limits = ValidationLimits {
        max_message_bytes: p.size + 1024,
        timestamp_tolerance_ms: 60_000,
    };
    let at = Moment {
        unix_secs: now_ms / 1000,
        block: None,
    };
    let start = Instant::now();
    for (source, data) in &messages {
        validate_signed(&view, at, now_ms, limits, Some(*source), &topic, data)
            .map_err(|e| anyhow::anyhow!("a valid message was refused: {e}"))?;
    }
    Ok(p.messages as f64 / start.elapsed().as_secs_f64())
}

fn sbtc_rate(p: ValidationParams) -> anyhow::Result<f64> {
    let secp = Secp256k1::new();
    let app_keys: Vec<SecretKey> = (0..p.members)
        .map(|i| SecretKey::from_slice(&Sha256::digest(i.to_be_bytes())).expect("a valid key"))
        .collect();
    let app_pubs: Vec<PublicKey> = app_keys
        .iter()
        .map(|k| PublicKey::from_secret_key(&secp, k))
        .collect();
    let node_keys: Vec<Keypair> = (0..p.members)
        .map(|_| Keypair::generate_secp256k1())
        .collect();
    let messages: Vec<_> = (0..p.messages)
        .map(|i| {
            let m = i % p.members;
            let payload = vec![0xa5; p.size];
            let digest = Message::from_digest(Sha256::digest(&payload).into());
            let app_sig = secp.sign_ecdsa(&digest, &app_keys[m]);
            let node_sig = node_keys[m].sign(&payload).expect("secp256k1 signs");
            (m, payload, app_sig, node_sig)
        })
        .collect();
    let start = Instant::now();
    for (m, payload, app_sig, node_sig) in &messages {
        if !node_keys[*m].public().verify(payload, node_sig) {
            anyhow::bail!("a gossipsub signature did not verify");
        }
        let digest = Message::from_digest(Sha256::digest(payload).into());
        secp.verify_ecdsa(&digest, app_sig, &app_pubs[*m])?;
    }
    Ok(p.messages as f64 / start.elapsed().as_secs_f64())
}

pub async fn measure(p: ValidationParams, reps: usize) -> anyhow::Result<ValidationRow> {
    let mut runs = Vec::new();
    for r in 0..reps {
        // One core: each side runs on one blocking thread, one after the other.
        let (c, s) = tokio::task::spawn_blocking(move || -> anyhow::Result<(f64, f64)> {
            Ok((conclave_rate(p)?, sbtc_rate(p)?))
        })
        .await??;
        eprintln!(
            "  validation       rep {}: conclave {c:.0} msg/s, sbtc-profile {s:.0} msg/s (one core)",
            r + 1
        );
        runs.push((c, s));
    }
    Ok(ValidationRow {
        params: p,
        conclave_per_s: Spread::of(runs.iter().map(|r| r.0)),
        sbtc_profile_per_s: Spread::of(runs.iter().map(|r| r.1)),
        runs,
    })
}
