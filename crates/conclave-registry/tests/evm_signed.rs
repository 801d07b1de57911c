//! Operator actions signed offline (EIP-712) and submitted by a relayer that is no operator, on
//! a real EVM (anvil): every action is accepted once; a replay, an expired deadline, another
//! chain or registry, another signer, a malleated signature and a nonce ahead of the registry's
//! are each refused with their own reason; and the node's view after the signed actions equals
//! its view after the same actions sent by the operator itself.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::signers::SignerSync;
use conclave_core::{MembershipView, PeerId};
use conclave_registry::evm::admin::{self, AdminError};
use conclave_registry::evm::anvil::DEV_KEYS;
use conclave_registry::evm::signed::{
    ActionDomain, OperatorAction, SignedAction, SignedActionError, Verdict,
};
use conclave_registry::evm::{EvmConfig, EvmRegistry, RegistryAdmin, OPEN_ENDED};
use conclave_registry::RegistrySource;
use conclave_testkit::RegistryChain;

/// The relayer: a funded dev account that is no operator.
const RELAYER: usize = 9;
/// A deadline far ahead of anvil's clock.
const LATER: u64 = 4_000_000_000;

fn key(i: usize) -> admin::PrivateKeySigner {
    admin::parse_eth_key(DEV_KEYS[i]).unwrap()
}

fn reason(r: Result<admin::TxOutcome, AdminError>) -> String {
    match r {
        Err(AdminError::Reverted(why)) => why,
        other => panic!("expected a refusal: {other:?}"),
    }
}

/// The actions of the scenario, in order, for an operator holding `p1`, `p2`, `p3`.
fn actions(p1: PeerId, p2: PeerId, p3: PeerId, at: u64) -> Vec<OperatorAction> {
    vec![
        OperatorAction::Authorize {
            peer_id: p1,
            scopes: 1,
            valid_from: at,
            valid_until: OPEN_ENDED,
        },
        OperatorAction::SetNodeAddresses {
            peer_id: p1,
            addresses: vec!["/ip4/192.0.2.1/tcp/9000".into()],
        },
        OperatorAction::Authorize {
            peer_id: p3,
            scopes: 1,
            valid_from: at,
            valid_until: at + 1000,
        },
        OperatorAction::Rotate {
            old_peer_id: p1,
            new_peer_id: p2,
            scopes: 1,
            valid_until: OPEN_ENDED,
            revoke_old_at: at + 50,
        },
        OperatorAction::Revoke {
            peer_id: p3,
            effective_block: at + 60,
        },
        OperatorAction::RegisterRln {
            rate_commitment: B256::from(U256::from(12345u64)),
            limit: 4,
        },
        OperatorAction::RemoveRln { index: 0 },
    ]
}

async fn view_of(chain: &RegistryChain) -> MembershipView {
    let mut cfg = EvmConfig::new(chain.url(), chain.gov.contract());
    cfg.confirmations = 0;
    let registry = EvmRegistry::spawn(cfg).await.unwrap();
    let view = registry.view().borrow().as_ref().clone();
    view
}

/// Everything a node acts on, without where the view came from (the two chains' block hashes
/// differ).
fn membership(v: &MembershipView) -> String {
    let mut nodes: Vec<String> = v.nodes().map(|(p, a)| format!("{p} {a:?}")).collect();
    nodes.sort();
    let rln: Vec<String> = v.rln_members().map(|m| format!("{m:?}")).collect();
    format!("{nodes:#?}\n{rln:#?}\n{:?}", v.groups())
}

#[tokio::test]
async fn signed_actions_land_once_and_each_refusal_names_its_reason() {
    let chain = RegistryChain::start(&[], &["signers"], 2).await;
    let registry = chain.gov.contract();
    let relayer = RegistryAdmin::connect(chain.url(), registry, key(RELAYER)).unwrap();
    let cold = key(1);
    let operator = cold.address();
    let domain = ActionDomain {
        chain_id: relayer.chain_id().await.unwrap(),
        registry,
    };
    let at = relayer.block().await.unwrap() + 2;
    let (p1, p2, p3) = (PeerId::random(), PeerId::random(), PeerId::random());
    for (nonce, action) in actions(p1, p2, p3, at).into_iter().enumerate() {
        let nonce = nonce as u64;
        assert_eq!(relayer.nonce_of(operator).await.unwrap(), nonce);
        let signed = SignedAction::sign(action, &cold, nonce, LATER, domain).unwrap();
        assert_eq!(signed.verify(false).unwrap(), Verdict::SignedByOperator);
        // It travels as a file.
        let file = serde_json::to_string_pretty(&signed).unwrap();
        let signed = SignedAction::parse(&file).unwrap();
        relayer.submit(&signed).await.unwrap();
        let replay = reason(relayer.submit(&signed).await);
        assert!(replay.contains("already used"), "{replay}");
    }
    let next = relayer.nonce_of(operator).await.unwrap();
    let action = OperatorAction::Revoke {
        peer_id: p2,
        effective_block: 0,
    };
    let sign = |domain, nonce, deadline| {
        SignedAction::sign(action.clone(), &cold, nonce, deadline, domain).unwrap()
    };

    let expired = reason(relayer.submit(&sign(domain, next, 1)).await);
    assert!(expired.contains("deadline 1 has passed"), "{expired}");
    let other_chain = ActionDomain {
        chain_id: 1,
        ..domain
    };
    let r = reason(relayer.submit(&sign(other_chain, next, LATER)).await);
    assert!(r.contains("signed for chain 1"), "{r}");
    let other_registry = ActionDomain {
        registry: Address::repeat_byte(0x42),
        ..domain
    };
    let r = reason(relayer.submit(&sign(other_registry, next, LATER)).await);
    assert!(r.contains("signed for registry"), "{r}");
    let ahead = reason(relayer.submit(&sign(domain, next + 1, LATER)).await);
    assert!(ahead.contains("ahead of the registry's"), "{ahead}");

    // Another operator's key signing this operator's action.
    let mut forged = sign(domain, next, LATER);
    let by_other = key(2).sign_hash_sync(&forged.digest()).unwrap();
    forged.signature = Bytes::from(by_other.as_bytes().to_vec());
    assert_eq!(
        forged.verify(false).unwrap(),
        Verdict::SignedBy(key(2).address())
    );
    let r = reason(relayer.submit(&forged).await);
    assert!(
        r.contains(&format!("not by the operator {operator}")),
        "{r}"
    );

    // The twin of a valid signature: s → n − s, v flipped. It would recover to the same key; it
    // is refused all the same, offline and on-chain.
    let good = sign(domain, next, LATER);
    let mut twin = good.clone();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let s = U256::from_be_slice(&good.signature[32..64]);
    let mut bytes = good.signature.to_vec();
    bytes[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    bytes[64] ^= 1;
    twin.signature = Bytes::from(bytes);
    assert_eq!(twin.verify(false), Err(SignedActionError::Malleable));
    let r = reason(relayer.submit(&twin).await);
    assert!(r.contains("malleated"), "{r}");

    // A key that is no operator at all.
    let stranger = SignedAction::sign(action.clone(), &key(5), 0, LATER, domain).unwrap();
    let r = reason(relayer.submit(&stranger).await);
    assert!(r.contains("is not a registered operator"), "{r}");

    // Finally the good one lands, once.
    relayer.submit(&good).await.unwrap();
    assert_eq!(relayer.nonce_of(operator).await.unwrap(), next + 1);
}

#[tokio::test]
async fn the_view_after_signed_actions_equals_the_view_after_the_operator_s_own() {
    // Two fresh chains with the same history so far: same registry address, same blocks.
    let signed_chain = RegistryChain::start(&[], &["signers"], 1).await;
    let direct_chain = RegistryChain::start(&[], &["signers"], 1).await;
    assert_eq!(signed_chain.gov.contract(), direct_chain.gov.contract());
    let registry = signed_chain.gov.contract();
    let relayer = RegistryAdmin::connect(signed_chain.url(), registry, key(RELAYER)).unwrap();
    let domain = ActionDomain {
        chain_id: relayer.chain_id().await.unwrap(),
        registry,
    };
    let at = relayer.block().await.unwrap() + 2;
    assert_eq!(direct_chain.gov.block().await.unwrap() + 2, at);
    let (p1, p2, p3) = (PeerId::random(), PeerId::random(), PeerId::random());
    let cold = key(1);
    for (nonce, action) in actions(p1, p2, p3, at).into_iter().enumerate() {
        let signed =
            SignedAction::sign(action.clone(), &cold, nonce as u64, LATER, domain).unwrap();
        let by_sig = relayer.submit(&signed).await.unwrap();
        let direct = direct_chain.operators[0].send(&action).await.unwrap();
        // What the signature costs on top (the README's gas table comes from this line).
        let kind = format!("{action:?}");
        eprintln!(
            "gas {:<18} msg.sender {:>7}  signed {:>7}  (+{})",
            kind.split([' ', '{']).next().unwrap(),
            direct.gas_used,
            by_sig.gas_used,
            by_sig.gas_used.saturating_sub(direct.gas_used)
        );
        assert!(
            by_sig.gas_used > direct.gas_used,
            "a signature check is not free"
        );
    }
    assert_eq!(
        relayer.block().await.unwrap(),
        direct_chain.gov.block().await.unwrap()
    );
    let (a, b) = (view_of(&signed_chain).await, view_of(&direct_chain).await);
    assert_eq!(a.nodes().count(), 3);
    assert_eq!(membership(&a), membership(&b));
}
