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

#[tokio::test]
async fn one_rln_membership_per_operator_unless_governance_raises_its_cap() {
    use alloy::primitives::U256;
    use conclave_registry::evm::bindings::ConclaveRegistry::ConclaveRegistryErrors as E;

    let chain = Chain::with(&[], &[], 2).await;
    let (gov, alice, bob) = (&chain.gov, &chain.operators[0], &chain.operators[1]);
    let (a_addr, alice_id) = (address_of(1), conclave_testkit::RegistryChain::id_of(alice));
    let ids: Vec<RlnIdentity> = (0..4).map(|_| RlnIdentity::generate()).collect();
    let commitment = |i: usize| fr_to_bytes(&ids[i].rate_commitment(1));
    let alice_raw = chain.as_account(1);

    // By default a second live membership of one operator is refused, by its own error.
    assert_eq!(alice.register_rln(commitment(0), 1).await.unwrap().1, 0);
    match revert_of::<(), _, _>(alice_raw.registerRln(U256::from_be_bytes(commitment(1)), 1)).await
    {
        E::RlnCapReached(x) => assert_eq!((x.operator, x.cap), (a_addr, 1)),
        other => panic!("expected RlnCapReached, got {other:?}"),
    }
    assert_eq!(gov.rln_cap(alice_id).await.unwrap(), (1, 1));

    // Only governance sets a cap, and only within 1..=16 (what every node holds too).
    assert!(matches!(
        revert_of::<(), _, _>(alice_raw.setRlnCap(a_addr, 2)).await,
        E::NotOwner(_)
    ));
    let max = chain.as_account(0).MAX_RLN_CAP().call().await.unwrap();
    assert_eq!(max, conclave_core::RLN_MAX_MEMBERSHIPS);
    for bad in [0, max + 1] {
        assert!(matches!(
            revert_of::<(), _, _>(chain.as_account(0).setRlnCap(a_addr, bad)).await,
            E::InvalidRlnCap(_)
        ));
    }
    gov.set_rln_cap(alice_id, 2).await.unwrap();
    assert_eq!(alice.register_rln(commitment(1), 1).await.unwrap().1, 1);
    match alice.register_rln(commitment(2), 1).await {
        Err(AdminError::Reverted(why)) => assert!(why.contains("its cap"), "{why}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(gov.rln_cap(alice_id).await.unwrap(), (2, 2));

    let mut cfg = EvmConfig::new(&chain.anvil.url, chain.contract);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.confirmations = 0;
    let registry = EvmRegistry::spawn(cfg).await.unwrap();
    let (view, status) = (registry.view(), registry.status());
    let leaves = |v: &conclave_core::MembershipView| -> Vec<u32> {
        v.rln_members().map(|m| m.index).collect()
    };
    wait_until(&view, 20, "both of alice's leaves", |v| leaves(v) == [0, 1]).await;
    assert!(
        status.borrow().skipped.is_empty(),
        "{:?}",
        status.borrow().skipped
    );

    // A removal (here by the operator) or a slashing frees a place; so it does at the default.
    alice.remove_rln(0).await.unwrap();
    assert_eq!(alice.register_rln(commitment(2), 1).await.unwrap().1, 2);
    assert!(matches!(
        bob.slash_rln(1, ids[1].secret_bytes()).await.unwrap(),
        SlashOutcome::Removed(_)
    ));
    assert_eq!(alice.register_rln(commitment(3), 1).await.unwrap().1, 3);
    let b = RlnIdentity::generate();
    let (_, ib) = bob
        .register_rln(fr_to_bytes(&b.rate_commitment(1)), 1)
        .await
        .unwrap();
    gov.remove_rln(ib).await.unwrap();
    // The freed place takes a new identity; the removed one's commitment never comes back.
    match bob
        .register_rln(fr_to_bytes(&b.rate_commitment(1)), 1)
        .await
    {
        Err(AdminError::Reverted(why)) => {
            assert!(
                why.contains("already registered (one identity, one leaf)"),
                "{why}"
            )
        }
        other => panic!("a reused commitment was not refused: {other:?}"),
    }
    bob.register_rln(fr_to_bytes(&RlnIdentity::generate().rate_commitment(1)), 1)
        .await
        .unwrap();
    wait_until(&view, 20, "the leaves after removals", |v| {
        leaves(v) == [2, 3, 5]
    })
    .await;

    // Lowering the cap removes nothing on-chain; nodes keep the earliest live leaf, say why.
    gov.set_rln_cap(alice_id, 1).await.unwrap();
    wait_until(&view, 20, "alice's later leaf skipped", |v| {
        leaves(v) == [2, 5]
    })
    .await;
    let skipped = status.borrow().skipped.clone();
    assert!(
        skipped
            .iter()
            .any(|r| r.contains("RLN leaf 3") && r.contains("already holds leaf 2 (its cap of 1)")),
        "{skipped:?}"
    );
}
