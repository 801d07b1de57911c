//! Writes the committed seed corpus: a few small valid inputs per target, built with the real
//! encoders against the fixtures in `src/lib.rs` (so, for example, the signed envelopes verify
//! and the RLN messages carry real proofs for the fixture channel).
//!
//!   cargo run --manifest-path fuzz/Cargo.toml --example make_seeds [corpus dir]
//!
//! Every seed is the same on each run except those holding RLN proofs (Groth16 proving is
//! randomized). Overwrites files of the same name; removes none.

use std::path::{Path, PathBuf};

use alloy::consensus::Header;
use alloy::primitives::{Address, Bytes, FixedBytes, IntoLogData, U256};
use alloy::rlp::Encodable;
use conclave_altnet::{TipAnnouncement, B256};
use conclave_bls::eip2537;
use conclave_coord::wire::{Bytes20, Deposit, Hash32, HexBytes};
use conclave_coord::{ActionType, CoordinationMessage, Proposal, WindowOutcome};
use conclave_core::{Envelope, GroupId, Multiaddr, OperatorId};
use conclave_fuzz::*;
use conclave_net::{HeaderEntry, HeaderReply, HeaderRequest, StemReply, StemRequest};
use conclave_node::header_answers::SignedHeaders;
use conclave_node::SlashingNotice;
use conclave_registry::evm::bindings::ConclaveRegistry as C;
use conclave_registry::evm::validators::SignedRegistration;
use conclave_registry::{GroupEntry, NodeEntry, OperatorEntry, RegistryDocument, RlnEntry};
use conclave_rln::{fr_to_hex, ProofPool, RlnChannel, SlashingEvidence};
use libp2p_identity::Keypair;
use prost::Message;

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn write(root: &Path, target: &str, seeds: Seeds) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    for (name, bytes) in seeds {
        assert!(
            bytes.len() < 4096,
            "{target}/{name} is {} bytes",
            bytes.len()
        );
        std::fs::write(dir.join(name), bytes).expect("seed file");
    }
}

fn envelope() -> Seeds {
    let key = member_key();
    let signed = |ts: u64, payload: &[u8], topic: &str| {
        let mut e = Envelope {
            timestamp_ms: ts,
            payload: payload.to_vec(),
            nonce: 1,
            signature: vec![],
        };
        e.signature = key.sign(&e.signing_bytes(topic)).expect("ed25519 signs");
        e.encode_to_vec()
    };
    // Byte 0: source (0 none, 1 member, 2 hashed member, 3 stranger) | 4 for the other topic.
    let with = |selector: u8, data: Vec<u8>| [vec![selector], data].concat();
    vec![
        (
            "member-valid",
            with(1, signed(NOW_MS - 5, b"hello", SIGNED_TOPIC)),
        ),
        (
            "member-empty-payload",
            with(1, signed(NOW_MS, b"", SIGNED_TOPIC)),
        ),
        (
            "member-stale",
            with(1, signed(NOW_MS - 60_000, b"x", SIGNED_TOPIC)),
        ),
        ("hashed-member", with(2, signed(NOW_MS, b"x", SIGNED_TOPIC))),
        ("other-topic", with(5, signed(NOW_MS, b"x", "other"))),
        ("no-source", with(0, signed(NOW_MS, b"x", SIGNED_TOPIC))),
    ]
}

fn coord_wire() -> Seeds {
    let msg = |proposal| {
        CoordinationMessage {
            sender_id: 3,
            coordination_block: 900,
            wallet_public_key_hash: Bytes20([0x11; 20]),
            proposal,
        }
        .encode()
    };
    vec![
        ("noop", msg(Proposal::Noop)),
        (
            "heartbeat",
            msg(Proposal::Heartbeat {
                message: HexBytes(vec![0xaa; 16]),
            }),
        ),
        (
            "deposit-sweep",
            msg(Proposal::DepositSweep {
                deposits: vec![Deposit {
                    funding_tx_hash: Hash32([0x22; 32]),
                    funding_output_index: 1,
                    reveal_block: 800,
                }],
                sweep_tx_fee: 12_000,
            }),
        ),
        (
            "redemption",
            msg(Proposal::Redemption {
                redeemers_output_scripts: vec![HexBytes(vec![0x00, 0x14, 0x33, 0x44])],
                redemption_tx_fee: 5_000,
            }),
        ),
        (
            "moving-funds",
            msg(Proposal::MovingFunds {
                target_wallets: vec![Bytes20([0x55; 20]), Bytes20([0x66; 20])],
                moving_funds_tx_fee: 7_000,
            }),
        ),
        (
            "moved-funds-sweep",
            msg(Proposal::MovedFundsSweep {
                moving_funds_tx_hash: Hash32([0x77; 32]),
                moving_funds_tx_output_index: 2,
                sweep_tx_fee: 3_000,
            }),
        ),
    ]
}

/// Real RLN messages for the fixture channel: member 0's ids 0 and 1, member 0's id 0 again
/// with another payload (a double signal), member 1's id 0.
fn rln_messages(channel: &RlnChannel) -> [Vec<u8>; 4] {
    let pool = ProofPool::new(1, 4);
    let ids = rln_identities();
    let make = |who: usize, payload: &[u8], id: u32| {
        let draft = channel
            .draft(&ids[who], RLN_TOPIC, payload.to_vec(), RLN_NOW_MS, id)
            .expect("draft");
        let proved = futures::executor::block_on(pool.prove(draft.witness.clone(), None))
            .expect("proof")
            .value;
        draft.finish(proved.0, proved.1).encode()
    };
    [
        make(0, b"hello", 0),
        make(0, b"second", 1),
        make(0, b"other", 0),
        make(1, b"", 0),
    ]
}

fn header_reply() -> Seeds {
    let entries = linked_headers();
    let parent = B256::from_slice(&entries[2].hash);
    vec![
        (
            "reply-linked-3",
            HeaderReply {
                headers: entries.clone(),
            }
            .encode_to_vec(),
        ),
        (
            "reply-linked-1",
            HeaderReply {
                headers: entries[..1].to_vec(),
            }
            .encode_to_vec(),
        ),
        (
            "request",
            HeaderRequest { from: 10, count: 4 }.encode_to_vec(),
        ),
        ("tip", TipAnnouncement::new(1003, parent).encode_to_vec()),
    ]
}

/// Three headers linked to the fixture anchor, as a member serves them.
fn linked_headers() -> Vec<HeaderEntry> {
    let (mut number, mut parent) = (HEADER_ANCHOR_NUMBER, B256::from(HEADER_ANCHOR_HASH));
    let mut entries = Vec::new();
    for _ in 0..3 {
        number += 1;
        let h = Header {
            parent_hash: parent,
            number,
            timestamp: 1_700_000_000 + number * 12,
            gas_limit: 30_000_000,
            ..Header::default()
        };
        let mut rlp = Vec::new();
        h.encode(&mut rlp);
        parent = h.hash_slow();
        entries.push(HeaderEntry {
            hash: parent.to_vec(),
            rlp,
        });
    }
    entries
}

fn header_http() -> Seeds {
    let key = member_key();
    let signed = |entries: &[HeaderEntry]| {
        let answer = SignedHeaders::build(&key.public(), HEADER_ANCHOR_NUMBER + 1, entries, |d| {
            key.sign(d).expect("ed25519 signs")
        });
        serde_json::to_vec(&answer).expect("JSON")
    };
    let entries = linked_headers();
    vec![
        ("signed-linked-3", signed(&entries)),
        ("signed-linked-1", signed(&entries[..1])),
        ("signed-empty", signed(&[])),
    ]
}

fn bounded_read() -> Seeds {
    let reply = HeaderReply {
        headers: linked_headers(),
    }
    .encode_to_vec();
    let framed = |limit: u16, piece: u8, body: &[u8]| {
        let mut v = limit.to_be_bytes().to_vec();
        v.push(piece);
        v.extend_from_slice(body);
        v
    };
    vec![
        ("within-pieces-7", framed(4000, 7, &reply)),
        ("within-one-piece", framed(4000, 255, &reply)),
        ("over-limit", framed(100, 13, &reply)),
        ("empty", framed(0, 1, &[])),
    ]
}

/// The registry's values as the Clarity VM serialized them (captured from
/// scripts/stacks-simnet.mjs; the same vectors as the decoder's unit tests), behind the
/// target's selector byte.
fn stacks_value() -> Seeds {
    let value = |selector: u8, hex_value: &str| {
        let mut v = vec![selector];
        v.extend_from_slice(&hex::decode(hex_value).expect("a hex vector"));
        v
    };
    vec![
        ("set-empty", value(0, "0b00000000")),
        ("set-g-2g-3g", value(0, "0b0000000302000000210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798020000002102c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5020000002102f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9")),
        ("set-with-non-point", value(0, "0b0000000202000000210279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798020000002102ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")),
        ("threshold-2", value(1, "0100000000000000000000000000000002")),
        ("aggregate-default", value(2, "020000000100")),
        ("aggregate-2g", value(2, "020000002102c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")),
    ]
}

/// The Web3 Secret Storage vectors with their key derivation made cheap enough to fuzz (their
/// MACs no longer match: the wrong-password path, after the whole parse).
fn keystore() -> Seeds {
    let pbkdf2 = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46","kdf":"pbkdf2","kdfparams":{"c":1000,"dklen":32,"prf":"hmac-sha256","salt":"ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},"mac":"517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;
    let scrypt = r#"{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"83dbcc02d8ccb40e466191a123791e0e"},"ciphertext":"d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c","kdf":"scrypt","kdfparams":{"dklen":32,"n":1024,"p":1,"r":1,"salt":"ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"},"mac":"2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}"#;
    // EIP-2335's PBKDF2 vector, likewise with 1000 rounds.
    let eip2335 = r#"{"crypto":{"kdf":{"function":"pbkdf2","params":{"dklen":32,"c":1000,"prf":"hmac-sha256","salt":"d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3"},"message":""},"checksum":{"function":"sha256","params":{},"message":"8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1"},"cipher":{"function":"aes-128-ctr","params":{"iv":"264daa3f303d7259501c93d997d84fe6"},"message":"cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad"}},"description":"This is a test keystore that uses PBKDF2 to secure the secret.","pubkey":"9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07","path":"m/12381/60/0/0","uuid":"64625def-3331-4eea-ab6f-782f3ed16a83","version":4}"#;
    vec![
        ("pbkdf2-1000-rounds", pbkdf2.as_bytes().to_vec()),
        ("scrypt-n1024", scrypt.as_bytes().to_vec()),
        ("eip2335-pbkdf2-1000-rounds", eip2335.as_bytes().to_vec()),
    ]
}

fn registry_file() -> Seeds {
    let peer = member_peer();
    let op_a = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
    let op_b = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
    let node = |peer: String, scopes: &[&str]| NodeEntry {
        peer_id: peer,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        valid_until: None,
        valid_until_block: None,
        addresses: vec![],
    };
    let mut a = node(peer.to_string(), &["signers", "coord"]);
    a.addresses = vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{peer}")];
    let mut b = node(stranger().to_string(), &["signers"]);
    b.valid_until = Some(1_800_000_000);
    let mut h = node(hashed_member().to_string(), &["chain-tip"]);
    h.valid_until_block = Some(500);
    let rate = fr_to_hex(&rln_identities()[0].rate_commitment(RLN_LIMIT));
    let full = RegistryDocument {
        operators: vec![
            OperatorEntry {
                address: op_a.into(),
                name: Some("alpha".into()),
                nodes: vec![a, h],
                rln_memberships: Some(2),
            },
            OperatorEntry {
                address: op_b.into(),
                name: None,
                nodes: vec![b],
                rln_memberships: None,
            },
        ],
        groups: vec![GroupEntry {
            id: format!("0x{}", "11".repeat(20)),
            seats: vec![op_a.into(), op_b.into(), op_a.into()],
        }],
        rln: vec![RlnEntry {
            operator: op_a.into(),
            index: 1,
            rate_commitment: format!("0x{rate}"),
            limit: RLN_LIMIT,
            validator_pubkey: None,
            validator_signature: None,
        }],
    };
    let small = RegistryDocument {
        operators: vec![OperatorEntry {
            address: op_a.into(),
            name: None,
            nodes: vec![node(peer.to_string(), &["signers"])],
            rln_memberships: None,
        }],
        groups: vec![],
        rln: vec![],
    };
    // A validator's membership (a file's registrations are signed for chain 0, registry 0) and
    // a forgery: another key's signature under the first validator's key.
    let validator_entry = |index: u32, r: &SignedRegistration| RlnEntry {
        operator: op_b.into(),
        index,
        rate_commitment: format!("0x{}", hex::encode(r.rate_commitment)),
        limit: r.limit,
        validator_pubkey: Some(format!("0x{}", hex::encode(r.validator_pubkey))),
        validator_signature: Some(format!("0x{}", hex::encode(r.signature))),
    };
    let mut validators = full.clone();
    validators.operators[1].rln_memberships = Some(2);
    validators.rln.extend([
        validator_entry(2, &validator_registration(0x11, 0x11, rln_rate(1))),
        validator_entry(3, &validator_registration(0x11, 0x22, rln_rate(2))),
    ]);
    let text = |d: &RegistryDocument| toml::to_string(d).expect("toml").into_bytes();
    vec![
        ("full", text(&full)),
        ("one-operator", text(&small)),
        ("validators", text(&validators)),
    ]
}

/// The rate commitment of RLN identity `n` (0 and 1 are the channel's members).
fn rln_rate(n: u64) -> [u8; 32] {
    let id = conclave_rln::RlnIdentity::from_secret_bytes(&conclave_rln::fr_to_bytes(
        &conclave_rln::Fr::from(1001 + n),
    ))
    .expect("fixed RLN secret");
    conclave_rln::fr_to_bytes(&id.rate_commitment(RLN_LIMIT))
}

/// The registration of `rate` under validator `key`'s public key, signed by validator
/// `signer` (a forgery when they differ) for a file registry (chain 0, registry 0).
fn validator_registration(key: u8, signer: u8, rate: [u8; 32]) -> SignedRegistration {
    let mut r = SignedRegistration::sign(&validator_key(signer), rate, RLN_LIMIT, 0, Address::ZERO);
    r.validator_pubkey = FixedBytes(validator_key(key).public_key());
    r
}

fn validator_registration_seeds() -> Seeds {
    let valid = validator_registration(0x11, 0x11, rln_rate(1));
    let forged = validator_registration(0x11, 0x22, rln_rate(1));
    let tagged = |tag: u8, bytes: &[u8]| [&[tag], bytes].concat();
    let json = |r: &SignedRegistration| serde_json::to_string_pretty(r).expect("json");
    let g1 = eip2537::g1_point(&valid.validator_pubkey.0).expect("fixed key");
    let g2 = eip2537::g2_point(&valid.signature.0).expect("fixed signature");
    vec![
        ("file-valid", tagged(0, json(&valid).as_bytes())),
        ("file-forged", tagged(0, json(&forged).as_bytes())),
        ("g1-point", tagged(1, &g1)),
        ("g2-point", tagged(2, &g2)),
        (
            "compressed-key",
            tagged(3, valid.validator_pubkey.as_slice()),
        ),
        (
            "compressed-signature",
            tagged(3, valid.signature.as_slice()),
        ),
    ]
}

fn node_config() -> Seeds {
    let text: &[(&'static str, &str)] = &[
        (
            "file-registry",
            "key_file = \"k/node.key\"\ntopics = [\"signers\"]\nhttp_listen = \"127.0.0.1:0\"\n\
             ready_quorum = 3\n[registry]\nfile = \"registry.toml\"\npoll_ms = 500\n",
        ),
        (
            "evm-coordination",
            "[registry]\nsource = \"evm\"\n\
             [evm]\nrpc_url = \"http://127.0.0.1:8545\"\n\
             contract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nconfirmations = 5\n\
             [coordination]\nenabled = true\nfrequency = 20\nactive = 10\npassive = 5\nsafe_shift = 3\n",
        ),
        (
            "rln-stem",
            "[rln]\nenabled = true\nstem = false\nstem_hop_delay_ms = 10\n\
             stem_failsafe_ms = 900\nstem_epoch_secs = 60\nstem_fluff_probability = 0.5\n",
        ),
        ("flat-key", "evm_rpc_url = \"http://x\"\n"),
    ];
    text.iter()
        .map(|(name, t)| (*name, t.as_bytes().to_vec()))
        .collect()
}

fn key_file() -> Seeds {
    let node = |kp: &Keypair, kind: &str, secret: &[u8]| {
        format!(
            "# Conclave node key. Keep it secret: mode 0600.\ntype = \"{kind}\"\nsecret = \"{}\"\npeer_id = \"{}\"\n",
            alloy::hex::encode(secret),
            kp.public().to_peer_id()
        )
        .into_bytes()
    };
    let mut ed = [7u8; 32];
    let ed_kp = Keypair::ed25519_from_bytes(ed).expect("ed25519");
    let secp_secret = [0x42u8; 32];
    let mut s = secp_secret;
    let secp = libp2p_identity::secp256k1::SecretKey::try_from_bytes(&mut s).expect("secp256k1");
    let secp_kp: Keypair = libp2p_identity::secp256k1::Keypair::from(secp).into();
    let id = &rln_identities()[0];
    let rln = format!(
        "# Conclave RLN identity. Keep it secret: mode 0600. Sending over quota reveals it.\n\
         secret = \"{}\"\nid_commitment = \"{}\"\n",
        alloy::hex::encode(id.secret_bytes()),
        fr_to_hex(&id.id_commitment())
    );
    ed = [7u8; 32];
    vec![
        ("ed25519", node(&ed_kp, "ed25519", &ed)),
        ("secp256k1", node(&secp_kp, "secp256k1", &secp_secret)),
        ("rln", rln.into_bytes()),
        ("eth", format!("0x{}\n", "42".repeat(32)).into_bytes()),
    ]
}

fn registry_events() -> Seeds {
    let op = Address::repeat_byte(1);
    let peer = Bytes::from(member_peer().to_bytes());
    let log = |data: alloy::primitives::LogData| -> (u8, Vec<u8>, Vec<u8>) {
        let topics: Vec<u8> = data.topics().iter().flat_map(|t| t.0).collect();
        (0, topics, data.data.to_vec())
    };
    let rate = conclave_rln::fr_to_bytes(&rln_identities()[0].rate_commitment(RLN_LIMIT));
    let setup = vec![
        log(C::OperatorAdded { operator: op }.to_log_data()),
        log(C::ScopeDefined {
            bit: 0,
            name: "signers".into(),
        }
        .to_log_data()),
        log(C::NodeAuthorized {
            operator: op,
            peerId: peer.clone(),
            scopes: 1,
            validFrom: 10,
            validUntil: u64::MAX,
        }
        .to_log_data()),
        log(C::NodeAddressesSet {
            operator: op,
            peerId: peer.clone(),
            addresses: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        }
        .to_log_data()),
        log(C::GroupSet {
            groupId: FixedBytes([0x11; 20]),
            seats: vec![op, op],
        }
        .to_log_data()),
        log(C::RlnCapSet {
            operator: op,
            cap: 2,
        }
        .to_log_data()),
        log(C::RlnRegistered {
            index: U256::from(0),
            operator: op,
            rateCommitment: U256::from_be_bytes(rate),
            limit: RLN_LIMIT,
        }
        .to_log_data()),
    ];
    // Leaf 1 registered by a validator, leaf 2 by a forger (ChainState::default's domain is
    // chain 0, registry 0, as the file's).
    let mut validators = setup.clone();
    for (index, signer, n) in [(1u64, 0x11, 1), (2, 0x22, 2)] {
        let r = validator_registration(0x11, signer, rln_rate(n));
        validators.extend([
            log(C::RlnRegistered {
                index: U256::from(index),
                operator: op,
                rateCommitment: U256::from_be_bytes(r.rate_commitment.0),
                limit: RLN_LIMIT,
            }
            .to_log_data()),
            log(C::RlnValidatorRegistered {
                index: U256::from(index),
                pubkey: Bytes::copy_from_slice(r.validator_pubkey.as_slice()),
                signature: Bytes::copy_from_slice(
                    &eip2537::g2_point(&r.signature.0).expect("fixed signature"),
                ),
            }
            .to_log_data()),
        ]);
    }
    let mut removals = setup.clone();
    removals.extend([
        log(C::NodeRevoked {
            operator: op,
            peerId: peer,
            effectiveBlock: 50,
        }
        .to_log_data()),
        log(C::RlnRemoved {
            index: U256::from(0),
            by: op,
        }
        .to_log_data()),
        log(C::GroupRemoved {
            groupId: FixedBytes([0x11; 20]),
        }
        .to_log_data()),
        log(C::OperatorRemoved { operator: op }.to_log_data()),
    ]);
    let join = |logs: &[(u8, Vec<u8>, Vec<u8>)]| {
        join_records(
            logs.iter()
                .map(|(t, a, b)| (*t, a.as_slice(), b.as_slice())),
        )
    };
    vec![
        ("setup", join(&setup)),
        ("setup-then-removals", join(&removals)),
        ("validators", join(&validators)),
    ]
}

fn state_store() -> Seeds {
    let peer = member_peer().to_bytes();
    let addrs: Vec<u8> = ["/ip4/127.0.0.1/tcp/4001", "/ip4/10.0.0.1/udp/9000/quic-v1"]
        .iter()
        .flat_map(|a| {
            let b = a.parse::<Multiaddr>().expect("multiaddr").to_vec();
            [(b.len() as u16).to_be_bytes().to_vec(), b].concat()
        })
        .collect();
    let window = WindowOutcome {
        group: GroupId([0x11; 20]),
        coordination_block: 900,
        index: 45,
        leader: Some(OperatorId([7; 20])),
        checklist: vec![ActionType::Heartbeat],
        proposal: Some(Proposal::Heartbeat {
            message: HexBytes(vec![0xaa; 16]),
        }),
        faults: vec![],
        accepted_at_ms: Some(NOW_MS),
    };
    let window_json = serde_json::to_vec(&window).expect("json");
    let mut window_key = 900u64.to_be_bytes().to_vec();
    window_key.extend_from_slice(&[0x11; 20]);
    let removed = [vec![2u8; 32], NOW_MS.to_be_bytes().to_vec()].concat();
    let counter = [7u64.to_be_bytes().to_vec(), 1u32.to_be_bytes().to_vec()].concat();
    let delivered_key = [NOW_MS.to_be_bytes().to_vec(), b"00ff".to_vec()].concat();
    let rows: Vec<(u8, &[u8], &[u8])> = vec![
        (0, &peer, &addrs),
        (1, &window_key, &window_json),
        (2, &[1u8; 32], &removed),
        (3, b"counter", &counter),
        (4, &delivered_key, b""),
    ];
    vec![
        ("every-table", join_records(rows.clone())),
        ("peers-only", join_records(rows[..1].to_vec())),
    ]
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus"));
    write(&root, "envelope", envelope());
    write(&root, "coord_wire", coord_wire());
    write(&root, "header_reply", header_reply());
    write(&root, "header_http", header_http());
    write(&root, "bounded_read", bounded_read());
    write(&root, "registry_file", registry_file());
    write(&root, "stacks_value", stacks_value());
    write(&root, "keystore", keystore());
    write(&root, "node_config", node_config());
    write(&root, "key_file", key_file());
    write(&root, "registry_events", registry_events());
    write(&root, "state_store", state_store());
    write(
        &root,
        "validator_registration",
        validator_registration_seeds(),
    );

    eprintln!("proving RLN messages (a few seconds each)…");
    let channel = new_rln_channel();
    let [m0, m1, double, other] = rln_messages(&channel);
    write(
        &root,
        "rln_message",
        vec![
            ("member0-id0", m0.clone()),
            ("member0-id1", m1.clone()),
            ("member1-empty", other.clone()),
        ],
    );
    let evidence = SlashingEvidence {
        first: m0.clone(),
        second: double,
    };
    let secret = rln_identities()[1].secret_bytes().to_vec();
    write(
        &root,
        "rln_evidence",
        vec![
            (
                "double-signal",
                SlashingNotice {
                    evidence: Some(evidence.clone()),
                    removed_secrets: vec![],
                }
                .encode_to_vec(),
            ),
            (
                "removals",
                SlashingNotice {
                    evidence: None,
                    removed_secrets: vec![secret.clone(), vec![0xff; 32]],
                }
                .encode_to_vec(),
            ),
            (
                "same-message-twice",
                SlashingNotice {
                    evidence: Some(SlashingEvidence {
                        first: m1.clone(),
                        second: m1.clone(),
                    }),
                    removed_secrets: vec![secret],
                }
                .encode_to_vec(),
            ),
        ],
    );
    write(
        &root,
        "stem_frame",
        vec![
            (
                "request",
                StemRequest {
                    topic: RLN_TOPIC.into(),
                    data: m0,
                }
                .encode_to_vec(),
            ),
            (
                "request-wrong-topic",
                StemRequest {
                    topic: "Not A Topic".into(),
                    data: other,
                }
                .encode_to_vec(),
            ),
            ("reply-rejected", StemReply { verdict: 2 }.encode_to_vec()),
        ],
    );
    eprintln!("seeds written under {}", root.display());
}
