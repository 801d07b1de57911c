//! RLN memberships on a real EVM (anvil): the contract's Poseidon is zerokit's, registrations
//! reach the view, and a revealed secret removes its membership once, whoever submits it.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use conclave_registry::evm::admin::{parse_eth_key, AdminError};
use conclave_registry::evm::anvil::DEV_KEYS;
use conclave_registry::evm::{EvmConfig, EvmRegistry, RegistryAdmin, SlashOutcome};
use conclave_registry::RegistrySource;
use conclave_rln::{fr_to_bytes, RlnIdentity};

fn admin(chain: &Chain, key_index: usize) -> RegistryAdmin {
    let key = parse_eth_key(DEV_KEYS[key_index]).unwrap();
    RegistryAdmin::connect(&chain.anvil.url, chain.contract, key).unwrap()
}

#[tokio::test]
async fn the_contracts_poseidon_is_zerokits() {
    let chain = Chain::start(&[]).await;
    let gov = &chain.gov;
    for limit in [1u32, 2, 7, 100, u32::MAX] {
        let id = RlnIdentity::generate();
        let on_chain = gov
            .rln_rate_commitment(id.secret_bytes(), limit)
            .await
            .unwrap();
        assert_eq!(
            on_chain,
            fr_to_bytes(&id.rate_commitment(limit)),
            "limit {limit}"
        );
    }
}

#[tokio::test]
async fn registrations_reach_the_view_and_a_revealed_secret_removes_one_once() {
    let chain = Chain::with(&["--block-time", "1"], &[], 2).await;
    let (alice, bob) = (&chain.operators[0], &chain.operators[1]);
    let (a, b) = (RlnIdentity::generate(), RlnIdentity::generate());

    let (_, ia) = alice
        .register_rln(fr_to_bytes(&a.rate_commitment(1)), 1)
        .await
        .unwrap();
    let (_, ib) = bob
        .register_rln(fr_to_bytes(&b.rate_commitment(3)), 3)
        .await
        .unwrap();
    assert_eq!((ia, ib), (0, 1));
    // A commitment that is not a field element could never be a leaf: refused, with the reason.
    match alice.register_rln([0xff; 32], 1).await {
        Err(AdminError::Reverted(why)) => {
            assert!(why.contains("non-zero rate commitment"), "{why}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let mut cfg = EvmConfig::new(&chain.anvil.url, chain.contract);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.confirmations = 0;
    let registry = EvmRegistry::spawn(cfg).await.unwrap();
    let view = registry.view();
    let leaves = |v: &conclave_core::MembershipView| -> Vec<(u32, [u8; 32], u32)> {
        v.rln_members()
            .map(|m| (m.index, m.rate_commitment, m.limit))
            .collect()
    };
    let both = vec![
        (0, fr_to_bytes(&a.rate_commitment(1)), 1),
        (1, fr_to_bytes(&b.rate_commitment(3)), 3),
    ];
    wait_until(&view, 20, "both registrations", |v| leaves(v) == both).await;

    // Another member's secret does not open leaf 0; the right one does, for anyone (account 3
    // is no operator), exactly once.
    let stranger = admin(&chain, 3);
    match stranger.slash_rln(0, b.secret_bytes()).await {
        Err(AdminError::Reverted(why)) => assert!(why.contains("does not open"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        stranger.slash_rln(0, a.secret_bytes()).await.unwrap(),
        SlashOutcome::Removed(_)
    ));
    assert!(matches!(
        bob.slash_rln(0, a.secret_bytes()).await.unwrap(),
        SlashOutcome::AlreadyRemoved
    ));
    assert!(alice.rln_removed(0).await.unwrap());
    assert!(!alice.rln_removed(1).await.unwrap());
    wait_until(&view, 20, "the slashed leaf to leave the view", |v| {
        leaves(v) == both[1..]
    })
    .await;
}
