//! A multisig operator, with the real thing: the Safe 1.4.1 contracts from
//! `@safe-global/safe-contracts` deployed on anvil; a 2-of-3 Safe is admitted as an operator and
//! authorizes, rotates and revokes a node key through ERC-1271 with two owners' signatures,
//! while one owner's alone is refused.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use conclave_core::{Moment, OperatorId, PeerId};
use conclave_registry::evm::admin::{self, AdminError};
use conclave_registry::evm::anvil::DEV_KEYS;
use conclave_registry::evm::safe::SafeDeployment;
use conclave_registry::evm::signed::{ActionDomain, OperatorAction, SignedAction, Verdict};
use conclave_registry::evm::{EvmConfig, EvmRegistry, RegistryAdmin, OPEN_ENDED};
use conclave_registry::RegistrySource;
use conclave_testkit::RegistryChain;

const LATER: u64 = 4_000_000_000;

fn key(i: usize) -> admin::PrivateKeySigner {
    admin::parse_eth_key(DEV_KEYS[i]).unwrap()
}

#[tokio::test]
async fn a_two_of_three_safe_manages_its_node_key_and_one_owner_alone_cannot() {
    let chain = RegistryChain::start(&[], &["signers"], 0).await;
    let registry = chain.gov.contract();
    let relayer = RegistryAdmin::connect(chain.url(), registry, key(9)).unwrap();
    let safes = SafeDeployment::deploy(chain.url(), &key(9)).await.unwrap();
    let (o1, o2, o3) = (key(3), key(4), key(5));
    let safe = safes
        .create_safe(
            chain.url(),
            &key(9),
            &[o1.address(), o2.address(), o3.address()],
            2,
            1,
        )
        .await
        .unwrap();
    chain.gov.add_operator(OperatorId(safe.0 .0)).await.unwrap();
    let domain = ActionDomain {
        chain_id: relayer.chain_id().await.unwrap(),
        registry,
    };
    let (p1, p2) = (PeerId::random(), PeerId::random());
    let as_safe = |action, owners: &[&admin::PrivateKeySigner], nonce| {
        SignedAction::sign_as_safe(action, safe, owners, nonce, LATER, domain).unwrap()
    };

    let authorize = as_safe(
        OperatorAction::Authorize {
            peer_id: p1,
            scopes: 1,
            valid_from: 0,
            valid_until: OPEN_ENDED,
        },
        &[&o1, &o3],
        0,
    );
    // Offline, a contract operator's signature cannot be judged; the chain does.
    assert_eq!(authorize.verify(true).unwrap(), Verdict::ContractOperator);
    relayer.submit(&authorize).await.unwrap();

    let rotate = OperatorAction::Rotate {
        old_peer_id: p1,
        new_peer_id: p2,
        scopes: 1,
        valid_until: OPEN_ENDED,
        revoke_old_at: 0,
    };
    // One owner is not the Safe.
    match relayer.submit(&as_safe(rotate.clone(), &[&o2], 1)).await {
        Err(AdminError::Reverted(why)) => assert!(why.contains("ERC-1271"), "{why}"),
        other => panic!("one owner's signature was not refused: {other:?}"),
    }
    relayer
        .submit(&as_safe(rotate, &[&o2, &o3], 1))
        .await
        .unwrap();

    let mut cfg = EvmConfig::new(chain.url(), registry);
    cfg.confirmations = 0;
    let view = EvmRegistry::spawn(cfg).await.unwrap().view();
    let at = Moment {
        unix_secs: 0,
        block: Some(relayer.block().await.unwrap()),
    };
    let v = view.borrow().clone();
    assert_eq!(
        v.authorization(&p2, at).unwrap().operator,
        OperatorId(safe.0 .0)
    );
    assert!(v.authorization(&p1, at).is_err(), "rotated out");

    let revoke = as_safe(
        OperatorAction::Revoke {
            peer_id: p2,
            effective_block: 0,
        },
        &[&o1, &o2],
        2,
    );
    relayer.submit(&revoke).await.unwrap();
    assert_eq!(relayer.nonce_of(safe).await.unwrap(), 3);
}
