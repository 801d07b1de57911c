//! Ethereum validators' RLN registrations on a real EVM (anvil, Prague: the EIP-2537
//! precompiles): the contract's hash-to-curve and signing root agree with blst's, a valid
//! registration lands and reaches the view, and each way to get one wrong is refused with its
//! own error.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use alloy::primitives::{Address, Bytes, U256};
use common::*;
use conclave_bls::{eip2537, Registration, ValidatorSecret};
use conclave_core::OperatorId;
use conclave_registry::evm::bindings::ConclaveRegistry::ConclaveRegistryErrors as E;
use conclave_registry::evm::validators::SignedRegistration;
use conclave_registry::evm::{EvmConfig, EvmRegistry};
use conclave_registry::RegistrySource;

const RFC_DST: &[u8] = b"QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// RFC 9380 J.10.1's messages.
fn rfc_messages() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"abc".to_vec(),
        b"abcdef0123456789".to_vec(),
        format!("q128_{}", "q".repeat(128)).into_bytes(),
        format!("a512_{}", "a".repeat(512)).into_bytes(),
    ]
}

#[tokio::test]
async fn the_contracts_hash_to_curve_and_signing_root_are_blsts() {
    let chain = Chain::start(&[]).await;
    let c = chain.as_account(0);
    for msg in rfc_messages() {
        let on_chain = c
            .hashToG2(Bytes::from(msg.clone()), Bytes::from_static(RFC_DST))
            .call()
            .await
            .unwrap();
        assert_eq!(
            on_chain.as_ref(),
            eip2537::hash_to_g2(&msg, RFC_DST).as_slice(),
            "message {:?}",
            String::from_utf8_lossy(&msg[..msg.len().min(8)])
        );
    }
    assert_eq!(
        c.validatorDomain().call().await.unwrap().0,
        conclave_bls::DOMAIN
    );
    let sk = ValidatorSecret::generate().unwrap();
    let r = Registration {
        validator_pubkey: sk.public_key(),
        rate_commitment: [0x0a; 32],
        limit: 7,
        chain_id: 31337,
        registry: chain.contract.0 .0,
    };
    let root = c
        .validatorSigningRoot(
            Bytes::copy_from_slice(&r.validator_pubkey),
            U256::from_be_bytes(r.rate_commitment),
            7,
        )
        .call()
        .await
        .unwrap();
    assert_eq!(root.0, r.signing_root());
    // The signature's own hash: the POP ciphersuite over the signing root.
    let on_chain = c
        .hashToG2(
            Bytes::copy_from_slice(&root.0),
            Bytes::from_static(conclave_bls::DST),
        )
        .call()
        .await
        .unwrap();
    assert_eq!(
        on_chain.as_ref(),
        eip2537::hash_to_g2(&root.0, conclave_bls::DST).as_slice()
    );
}

fn commitment(n: u8) -> [u8; 32] {
    let mut c = [0u8; 32];
    c[31] = n;
    c[0] = 0x01;
    c
}

#[tokio::test]
async fn a_valid_registration_lands_once_and_each_mistake_has_its_own_error() {
    let chain = Chain::with(&[], &[], 1).await;
    let alice = OperatorId(address_of(1).0 .0);
    let gov = &chain.gov;
    gov.set_rln_cap(alice, 4).await.unwrap();
    let validators: Vec<ValidatorSecret> = (0..3)
        .map(|_| ValidatorSecret::generate().unwrap())
        .collect();
    let admitted: Vec<_> = validators.iter().map(|v| v.public_key()).collect();
    gov.assign_validators(alice, &admitted).await.unwrap();
    let chain_id = 31337;
    let sign = |v: &ValidatorSecret, c: [u8; 32], chain_id: u64, registry: Address| {
        SignedRegistration::sign(v, c, 1, chain_id, registry)
    };

    // Anyone submits (account 5 is neither governance nor an operator).
    let relayer = chain.as_account(5);
    let good = sign(&validators[0], commitment(1), chain_id, chain.contract);
    good.verify().unwrap();
    let receipt = send!(relayer.registerRlnValidator(good.to_call().unwrap()));
    eprintln!("gas of one validator registration: {}", receipt.gas_used);
    let standing = gov.validator_standing(&admitted[0]).await.unwrap();
    assert_eq!(
        (standing.operator, standing.registered),
        (Some(alice), true)
    );

    let refusal = |r: SignedRegistration| {
        let relayer = relayer.clone();
        async move { revert_of::<(), _, _>(relayer.registerRlnValidator(r.to_call().unwrap())).await }
    };
    // Another validator's signature over validator 1's registration.
    let mut forged = sign(&validators[2], commitment(2), chain_id, chain.contract);
    forged.validator_pubkey = good_key(&validators[1]);
    assert!(matches!(
        refusal(forged).await,
        E::WrongValidatorSignature(_)
    ));
    // Signed for another chain, and for another registry.
    let other_chain = sign(&validators[1], commitment(2), 1, chain.contract);
    assert!(matches!(refusal(other_chain).await, E::WrongChain(_)));
    let other_registry = sign(
        &validators[1],
        commitment(2),
        chain_id,
        Address::repeat_byte(7),
    );
    assert!(matches!(refusal(other_registry).await, E::WrongRegistry(_)));
    // The same validator again, with a fresh commitment.
    let twice = sign(&validators[0], commitment(3), chain_id, chain.contract);
    assert!(matches!(
        refusal(twice).await,
        E::ValidatorAlreadyRegistered(_)
    ));
    // Another validator with the commitment already registered.
    let reused = sign(&validators[1], commitment(1), chain_id, chain.contract);
    assert!(matches!(refusal(reused).await, E::RlnCommitmentUsed(_)));
    // A key governance never admitted.
    let stranger = ValidatorSecret::generate().unwrap();
    let unadmitted = sign(&stranger, commitment(4), chain_id, chain.contract);
    assert!(matches!(
        refusal(unadmitted).await,
        E::ValidatorNotAssigned(_)
    ));

    // Malformed keys: a point that is not the compressed key's, and a key of the wrong length.
    let valid = sign(&validators[1], commitment(2), chain_id, chain.contract);
    let mut call = valid.to_call().unwrap();
    call.pubkeyPoint = Bytes::copy_from_slice(&eip2537::g1_point(&admitted[2]).unwrap());
    assert!(matches!(
        revert_of::<(), _, _>(relayer.registerRlnValidator(call)).await,
        E::MalformedValidatorKey(_)
    ));
    let mut call = valid.to_call().unwrap();
    call.pubkey = Bytes::copy_from_slice(&admitted[1][..47]);
    assert!(matches!(
        revert_of::<(), _, _>(relayer.registerRlnValidator(call)).await,
        E::MalformedValidatorKey(_)
    ));
    // The identity with a compressed encoding of x = 0 that would otherwise match it.
    let mut call = valid.to_call().unwrap();
    let mut zero_x = [0u8; 48];
    zero_x[0] = 0x80;
    call.pubkey = Bytes::copy_from_slice(&zero_x);
    call.pubkeyPoint = Bytes::from(vec![0u8; 128]);
    assert!(matches!(
        revert_of::<(), _, _>(relayer.registerRlnValidator(call)).await,
        E::MalformedValidatorKey(_)
    ));
    // A signature that is no point of G2.
    let mut call = valid.to_call().unwrap();
    call.signature = Bytes::from(vec![0x11u8; 256]);
    assert!(matches!(
        revert_of::<(), _, _>(relayer.registerRlnValidator(call)).await,
        E::MalformedValidatorSignature(_)
    ));

    // After all the refusals the valid one still lands, as leaf 1.
    let (_, index) = gov.register_validator(&valid).await.unwrap();
    assert_eq!(index, 1);

    let registry = EvmRegistry::spawn(EvmConfig {
        confirmations: 0,
        ..EvmConfig::new(chain.anvil.url.clone(), chain.contract)
    })
    .await
    .unwrap();
    let view = registry.view();
    let leaves: Vec<_> = view
        .borrow()
        .rln_members()
        .map(|m| (m.index, m.validator))
        .collect();
    assert_eq!(
        leaves,
        [(0, Some(admitted[0])), (1, Some(admitted[1]))],
        "each leaf names the validator that signed it"
    );
    assert!(registry.status().borrow().skipped.is_empty());
}

fn good_key(v: &ValidatorSecret) -> alloy::primitives::FixedBytes<48> {
    alloy::primitives::FixedBytes(v.public_key())
}
