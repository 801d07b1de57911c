//! The ConclaveRegistry contract on a real EVM (anvil): access control and edge cases.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use alloy::primitives::{FixedBytes, U256};
use common::*;
use conclave_core::PeerId;
use conclave_registry::evm::bindings::ConclaveRegistry::ConclaveRegistryErrors as E;

const OPEN: u64 = u64::MAX;

#[tokio::test]
async fn access_control_and_edge_cases() {
    let chain = Chain::start(&[]).await;
    let gov = chain.as_account(0);
    let alice = chain.as_account(1);
    let bob = chain.as_account(2);
    let (a_addr, b_addr) = (address_of(1), address_of(2));

    // Only governance admits operators, defines scopes and groups.
    assert!(matches!(
        revert_of::<(), _, _>(alice.addOperator(a_addr)).await,
        E::NotOwner(_)
    ));
    send!(gov.addOperator(a_addr));
    assert!(matches!(
        revert_of::<(), _, _>(gov.addOperator(a_addr)).await,
        E::AlreadyOperator(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.defineScope(0, "signers".into())).await,
        E::NotOwner(_)
    ));
    send!(gov.defineScope(0, "signers".into()));
    send!(gov.defineScope(1, "coord".into()));

    // Only operators authorize; scopes must be defined; windows must be open and ahead.
    let p1 = peer_bytes(&PeerId::random());
    assert!(matches!(
        revert_of::<(), _, _>(bob.authorize(p1.clone(), 1, 0, OPEN)).await,
        E::NotOperator(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(p1.clone(), 0, 0, OPEN)).await,
        E::NoScopes(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(p1.clone(), 0b100, 0, OPEN)).await,
        E::UndefinedScope(_)
    ));
    let now = chain.block().await;
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(p1.clone(), 1, 0, now)).await,
        E::InvalidWindow(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(p1.clone(), 1, now + 10, now + 5)).await,
        E::InvalidWindow(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(Default::default(), 1, 0, OPEN)).await,
        E::EmptyPeerId(_)
    ));
    send!(alice.authorize(p1.clone(), 0b11, 0, OPEN));
    let h = chain.block().await;
    assert!(gov.isAuthorized(p1.clone(), 0b11, h).call().await.unwrap());
    assert!(!gov.isAuthorized(p1.clone(), 0b111, h).call().await.unwrap());

    // Double authorization is refused, by the same or another operator.
    assert!(matches!(
        revert_of::<(), _, _>(alice.authorize(p1.clone(), 1, 0, OPEN)).await,
        E::AlreadyAuthorized(_)
    ));
    send!(gov.addOperator(b_addr));
    assert!(matches!(
        revert_of::<(), _, _>(bob.authorize(p1.clone(), 1, 0, OPEN)).await,
        E::AlreadyAuthorized(_)
    ));

    // Only the owning operator revokes or sets hints; revoking what is not there is refused.
    assert!(matches!(
        revert_of::<(), _, _>(bob.revoke(p1.clone(), 0)).await,
        E::NotYourNode(_)
    ));
    let unknown = peer_bytes(&PeerId::random());
    assert!(matches!(
        revert_of::<(), _, _>(alice.revoke(unknown.clone(), 0)).await,
        E::UnknownNode(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.setNodeAddresses(unknown, vec![])).await,
        E::UnknownNode(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(bob.setNodeAddresses(p1.clone(), vec![])).await,
        E::NotYourNode(_)
    ));
    let nine: Vec<String> = (0..9).map(|i| format!("/ip4/127.0.0.1/tcp/{i}")).collect();
    assert!(matches!(
        revert_of::<(), _, _>(alice.setNodeAddresses(p1.clone(), nine)).await,
        E::TooManyAddresses(_)
    ));
    send!(alice.setNodeAddresses(p1.clone(), vec!["/ip4/127.0.0.1/tcp/9000".into()]));
    assert_eq!(gov.addressesOf(p1.clone()).call().await.unwrap().len(), 1);

    // A revocation in the past is refused; a future one may only be brought forward.
    let now = chain.block().await;
    assert!(matches!(
        revert_of::<(), _, _>(alice.revoke(p1.clone(), now.saturating_sub(1).max(1))).await,
        E::InvalidRevocationBlock(_)
    ));
    send!(alice.revoke(p1.clone(), now + 100));
    assert!(matches!(
        revert_of::<(), _, _>(alice.revoke(p1.clone(), now + 200)).await,
        E::AlreadyRevoked(_)
    ));
    send!(alice.revoke(p1.clone(), 0));
    assert!(matches!(
        revert_of::<(), _, _>(alice.revoke(p1.clone(), 0)).await,
        E::AlreadyRevoked(_)
    ));
    let h = chain.block().await;
    assert!(!gov.isAuthorized(p1.clone(), 1, h).call().await.unwrap());
    // Once revoked, the key may be authorized afresh.
    send!(bob.authorize(p1.clone(), 1, 0, OPEN));
    assert_eq!(
        gov.delegation(p1.clone()).call().await.unwrap().operator,
        b_addr
    );

    // An expired window: valid before validUntil, not at it.
    let p2 = peer_bytes(&PeerId::random());
    let start = chain.block().await;
    send!(alice.authorize(p2.clone(), 1, 0, start + 5));
    assert!(gov
        .isAuthorized(p2.clone(), 1, start + 4)
        .call()
        .await
        .unwrap());
    assert!(!gov
        .isAuthorized(p2.clone(), 1, start + 5)
        .call()
        .await
        .unwrap());

    // Rotation: new key valid now, old one revoked at the given block, one transaction.
    let (old, new) = (peer_bytes(&PeerId::random()), peer_bytes(&PeerId::random()));
    send!(alice.authorize(old.clone(), 1, 0, OPEN));
    let now = chain.block().await;
    send!(alice.rotate(old.clone(), new.clone(), 1, OPEN, now + 10));
    assert!(gov
        .isAuthorized(new.clone(), 1, now + 1)
        .call()
        .await
        .unwrap());
    assert!(gov
        .isAuthorized(old.clone(), 1, now + 9)
        .call()
        .await
        .unwrap());
    assert!(!gov
        .isAuthorized(old.clone(), 1, now + 10)
        .call()
        .await
        .unwrap());

    // Removing an operator voids its keys for good, even if it comes back.
    send!(gov.removeOperator(a_addr));
    assert!(matches!(
        revert_of::<(), _, _>(gov.removeOperator(a_addr)).await,
        E::UnknownOperator(_)
    ));
    send!(gov.addOperator(a_addr));
    let h = chain.block().await;
    assert!(!gov.isAuthorized(new.clone(), 1, h).call().await.unwrap());
    assert!(matches!(
        revert_of::<(), _, _>(alice.revoke(new.clone(), 0)).await,
        E::NotYourNode(_)
    ));

    // Groups: only registered operators hold seats; seats may repeat.
    let g = FixedBytes([9u8; 20]);
    assert!(matches!(
        revert_of::<(), _, _>(gov.setGroup(g, vec![])).await,
        E::EmptyGroup(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(gov.setGroup(g, vec![address_of(5)])).await,
        E::SeatNotOperator(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(alice.setGroup(g, vec![a_addr])).await,
        E::NotOwner(_)
    ));
    send!(gov.setGroup(g, vec![a_addr, b_addr, a_addr]));
    assert_eq!(gov.seats(g).call().await.unwrap().len(), 3);
    send!(gov.removeGroup(g));
    assert!(matches!(
        revert_of::<(), _, _>(gov.removeGroup(g)).await,
        E::UnknownGroup(_)
    ));

    // RLN: operators register; governance or the registrant removes, once.
    assert!(matches!(
        revert_of::<(), _, _>(alice.registerRln(U256::ZERO, 1)).await,
        E::InvalidRlnMembership(_)
    ));
    send!(alice.registerRln(U256::from(42u64), 3));
    assert!(matches!(
        revert_of::<(), _, _>(bob.removeRln(U256::ZERO)).await,
        E::NotRlnOwner(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(bob.removeRln(U256::from(7u64))).await,
        E::UnknownRlnIndex(_)
    ));
    send!(gov.removeRln(U256::ZERO));
    assert!(matches!(
        revert_of::<(), _, _>(alice.removeRln(U256::ZERO)).await,
        E::RlnAlreadyRemoved(_)
    ));
    assert!(gov.rlnMembership(U256::ZERO).call().await.unwrap().removed);

    // Ownership moves only by the owner, never to zero.
    assert!(matches!(
        revert_of::<(), _, _>(alice.transferOwnership(a_addr)).await,
        E::NotOwner(_)
    ));
    assert!(matches!(
        revert_of::<(), _, _>(gov.transferOwnership(Default::default())).await,
        E::ZeroAddress(_)
    ));
    send!(gov.transferOwnership(b_addr));
    assert_eq!(gov.owner().call().await.unwrap(), b_addr);
}
