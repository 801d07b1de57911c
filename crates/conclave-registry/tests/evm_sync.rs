//! The EVM registry backend following a real chain (anvil): confirmations, revocation, reorgs
//! and RPC outages.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use conclave_core::{Moment, PeerId, Unauthorized};
use conclave_registry::evm::anvil::RpcProxy;
use conclave_registry::evm::{EvmConfig, EvmRegistry};
use conclave_registry::{ChainSource, RegistrySource};

const OPEN: u64 = u64::MAX;

fn at(block: u64) -> Moment {
    Moment {
        unix_secs: 0,
        block: Some(block),
    }
}

/// A chain with operator 1 admitted and scope 0 = `signers`.
async fn signers_chain() -> Chain {
    Chain::with(&[], &["signers"], 1).await
}

/// A registry following a [`signers_chain`], once its set-up is confirmed.
async fn setup(rpc_url: Option<&str>, chain: &Chain) -> EvmRegistry {
    chain.mine(2).await;
    let mut cfg = EvmConfig::new(rpc_url.unwrap_or(&chain.anvil.url), chain.contract);
    cfg.poll_interval = Duration::from_millis(100);
    cfg.max_backoff = Duration::from_millis(400);
    EvmRegistry::spawn(cfg).await.expect("initial sync")
}

/// Operator 1 authorizes a fresh node key; returns it once the registry's view has it.
async fn authorized_peer(
    chain: &Chain,
    view: &tokio::sync::watch::Receiver<std::sync::Arc<conclave_core::MembershipView>>,
) -> PeerId {
    let peer = PeerId::random();
    send!(chain.as_account(1).authorize(peer_bytes(&peer), 1, 0, OPEN));
    chain.mine(2).await;
    wait_until(view, 10, "the delegation", |v| {
        v.nodes().any(|(p, _)| *p == peer)
    })
    .await;
    peer
}

#[tokio::test]
async fn applies_changes_after_confirmations_and_revocations_cut_keys_off() {
    let chain = signers_chain().await;
    let reg = setup(None, &chain).await;
    let alice = chain.as_account(1);
    let view = reg.view();
    let heads = reg.heads();
    assert!(
        view.borrow().operators().count() == 1,
        "the initial sync saw the operator"
    );

    let peer = PeerId::random();
    send!(alice.authorize(peer_bytes(&peer), 1, 0, OPEN));
    // One block on top is not enough with two confirmations.
    chain.mine(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        view.borrow()
            .authorization(&peer, at(chain.block().await))
            .is_err(),
        "applied before 2 confirmations"
    );
    chain.mine(1).await;
    wait_until(&view, 10, "the delegation to be applied", |v| {
        v.nodes().any(|(p, _)| *p == peer)
    })
    .await;
    let head = heads.borrow().number;
    let auth = view
        .borrow()
        .authorization(&peer, at(head))
        .cloned()
        .unwrap();
    assert_eq!(
        auth.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["signers"]
    );
    assert_eq!(auth.operator.to_string(), address_of(1).to_string());
    assert_eq!(reg.block_hash(head).await.unwrap(), heads.borrow().hash);

    // Revocation effective now: once confirmed, the key is refused at the head.
    send!(alice.revoke(peer_bytes(&peer), 0));
    let revoked_in = chain.block().await;
    chain.mine(2).await;
    wait_until(&view, 10, "the revocation to be applied", |v| {
        matches!(
            v.authorization(&peer, at(revoked_in)),
            Err(Unauthorized::Expired(_))
        )
    })
    .await;
    assert!(
        view.borrow()
            .authorization(&peer, at(revoked_in - 1))
            .is_ok(),
        "valid before the revocation block"
    );
    let status = reg.status().borrow().clone();
    assert!(!status.stale && status.last_error.is_none(), "{status:?}");
    assert!(status.synced_block.unwrap() >= revoked_in);
}

#[tokio::test]
async fn a_reorg_that_drops_a_revocation_restores_the_delegation() {
    let chain = signers_chain().await;
    let reg = setup(None, &chain).await;
    let alice = chain.as_account(1);
    let view = reg.view();
    let peer = authorized_peer(&chain, &view).await;

    let before_revoke = chain.snapshot().await;
    send!(alice.revoke(peer_bytes(&peer), 0));
    chain.mine(3).await;
    wait_until(&view, 10, "the revocation", |v| {
        v.nodes().any(|(p, a)| *p == peer && a.expiry.is_some())
    })
    .await;

    // The revocation's block leaves the canonical chain; a longer branch without it replaces it.
    chain.revert(before_revoke).await;
    chain.mine(6).await;
    wait_until(&view, 10, "the reorg to restore the delegation", |v| {
        v.nodes().any(|(p, a)| *p == peer && a.expiry.is_none())
    })
    .await;
    let head = reg.heads().borrow().number;
    assert!(view.borrow().authorization(&peer, at(head)).is_ok());
}

#[tokio::test]
async fn an_rpc_outage_keeps_the_view_marks_it_stale_and_recovers() {
    let chain = signers_chain().await;
    let proxy = RpcProxy::start(chain.anvil.port).await.unwrap();
    let reg = setup(Some(&proxy.url), &chain).await;
    let alice = chain.as_account(1);
    let view = reg.view();
    let status = reg.status();
    let peer = authorized_peer(&chain, &view).await;
    let revision = status.borrow().revision;

    proxy.cut();
    wait_until(&status, 10, "the status to turn stale", |s| s.stale).await;
    let s = status.borrow().clone();
    assert!(
        s.last_error.as_deref().unwrap_or("").contains(&proxy.url),
        "the error names the endpoint: {s:?}"
    );
    assert!(
        view.borrow().nodes().any(|(p, _)| *p == peer),
        "the last view stays in force"
    );
    assert_eq!(
        s.revision, revision,
        "no view was published from a failed read"
    );

    // A change made during the outage arrives once the endpoint is back.
    let second = PeerId::random();
    send!(alice.authorize(peer_bytes(&second), 1, 0, OPEN));
    chain.mine(2).await;
    proxy.restore();
    wait_until(&status, 10, "recovery", |s| {
        !s.stale && s.last_error.is_none()
    })
    .await;
    wait_until(&view, 10, "the change made during the outage", |v| {
        v.nodes().any(|(p, _)| *p == second)
    })
    .await;
}

#[tokio::test]
async fn start_up_fails_clearly_without_a_registry() {
    let chain = Chain::start(&[]).await;
    let err = EvmRegistry::spawn(EvmConfig::new(&chain.anvil.url, address_of(7)))
        .await
        .err()
        .expect("no contract there");
    let msg = err.to_string();
    assert!(
        msg.contains("no ConclaveRegistry") && msg.contains(&chain.anvil.url),
        "{msg}"
    );
    let err = EvmRegistry::spawn(EvmConfig::new("not a url", chain.contract))
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("`not a url`"), "{err}");
}
