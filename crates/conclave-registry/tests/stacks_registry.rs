//! The Stacks backend against a Stacks node stand-in whose state is a real Clarity VM
//! (scripts/stacks-simnet.mjs): it will not start on a contract the node does not know or a node
//! it cannot reach; it starts on the freshly deployed (empty) set and says so; a rotation by
//! contract call becomes exactly one new view; a call the contract refuses changes nothing.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use conclave_core::{Moment, TopicName, ViewSource};
use conclave_registry::stacks::simnet::StacksSimnet;
use conclave_registry::stacks::{ContractId, SignerKey, StacksConfig, StacksError, StacksRegistry};
use conclave_registry::RegistrySource;
use conclave_testkit::eventually;

const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const G2: &str = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
const NOW: Moment = Moment {
    unix_secs: 1_700_000_000,
    block: None,
};

fn config(url: &str, contract: ContractId) -> StacksConfig {
    StacksConfig {
        node_url: url.to_owned(),
        contract,
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        member_scopes: ["signers".parse::<TopicName>().unwrap()].into(),
        candidates: Vec::new(),
        candidate_scopes: BTreeSet::new(),
    }
}

#[tokio::test]
async fn the_backend_follows_rotations_made_by_contract_calls() {
    let simnet = StacksSimnet::spawn().unwrap();
    let wrong = ContractId {
        name: "no-such-registry".into(),
        ..simnet.contract.clone()
    };
    let err = StacksRegistry::spawn(config(&simnet.url, wrong))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StacksError::NoVar { .. }), "{err}");
    assert!(err.to_string().contains("no-such-registry"), "{err}");
    // A port nothing listens on: the simnet's, once it is gone.
    let gone = StacksSimnet::spawn().unwrap();
    let (url, contract) = (gone.url.clone(), gone.contract.clone());
    drop(gone);
    let err = StacksRegistry::spawn(config(&url, contract))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StacksError::Node { .. }), "{err}");

    // As deployed, the set is empty.
    let registry = StacksRegistry::spawn(config(&simnet.url, simnet.contract.clone()))
        .await
        .unwrap();
    let (mut view, status) = (registry.view(), registry.status());
    assert_eq!(view.borrow().nodes().count(), 0);
    assert!(status.borrow().warnings[0].contains("empty"));
    assert!(matches!(
        view.borrow().source(),
        ViewSource::Stacks { revision: 1, .. }
    ));

    let (g, g2) = (
        SignerKey::from_hex(G).unwrap(),
        SignerKey::from_hex(G2).unwrap(),
    );
    let r = simnet
        .rotate(&[g.compressed, g2.compressed], &g.compressed, 2)
        .await
        .unwrap();
    assert!(r.ok, "{r:?}");
    tokio::time::timeout(Duration::from_secs(30), view.changed())
        .await
        .unwrap()
        .unwrap();
    let v = view.borrow_and_update().clone();
    assert!(
        matches!(v.source(), ViewSource::Stacks { revision: 2, .. }),
        "{}",
        v.source()
    );
    assert!(v.authorization(&g.peer, NOW).is_ok());
    assert!(v.authorization(&g2.peer, NOW).is_ok());
    assert!(status.borrow().warnings.is_empty());

    // A call the contract refuses (a 32-byte aggregate key) changes nothing: no new view.
    let r = simnet.rotate(&[], &[0u8; 32], 1).await.unwrap();
    assert!(!r.ok && r.result.contains("u402"), "{r:?}");
    eventually("the tip to move on unchanged", || async {
        status.borrow().synced_block.filter(|b| *b >= r.height)
    })
    .await;
    assert!(!view.has_changed().unwrap());
    assert_eq!(status.borrow().revision, 2);
}
