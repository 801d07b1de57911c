//! The coordination wire format: every proposal round-trips, a no-op and fees encode minimally,
//! and every decoding error is named.

use super::*;
use prost::Message;

fn msg(proposal: Proposal) -> CoordinationMessage {
    CoordinationMessage {
        sender_id: 7,
        coordination_block: 900,
        wallet_public_key_hash: Bytes20([0xab; 20]),
        proposal,
    }
}

#[test]
fn every_proposal_round_trips() {
    let all = [
        Proposal::Noop,
        Proposal::Heartbeat {
            message: HexBytes(vec![0xff; 16]),
        },
        Proposal::DepositSweep {
            deposits: vec![
                Deposit {
                    funding_tx_hash: Hash32([1; 32]),
                    funding_output_index: 3,
                    reveal_block: 100,
                },
                Deposit {
                    funding_tx_hash: Hash32([2; 32]),
                    funding_output_index: 0,
                    reveal_block: 101,
                },
            ],
            sweep_tx_fee: 12_000,
        },
        Proposal::Redemption {
            redeemers_output_scripts: vec![HexBytes(vec![0x00, 0x14, 9, 9]), HexBytes(vec![])],
            redemption_tx_fee: 0,
        },
        Proposal::MovingFunds {
            target_wallets: vec![Bytes20([5; 20])],
            moving_funds_tx_fee: 1,
        },
        Proposal::MovedFundsSweep {
            moving_funds_tx_hash: Hash32([6; 32]),
            moving_funds_tx_output_index: 1,
            sweep_tx_fee: u64::MAX,
        },
    ];
    for p in all {
        let m = msg(p);
        assert_eq!(CoordinationMessage::decode(&m.encode()), Ok(m.clone()));
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            serde_json::from_str::<CoordinationMessage>(&json).unwrap(),
            m
        );
    }
}

#[test]
fn noop_is_an_empty_sub_message_and_fees_are_minimal() {
    let bytes = msg(Proposal::Noop).encode();
    // field 4, length-delimited, length 0: the proposal is present.
    assert!(bytes.ends_with(&[0x22, 0x00]), "{}", hex::encode(&bytes));
    assert_eq!(fee_bytes(0), Vec::<u8>::new());
    assert_eq!(fee_bytes(0x0102), vec![1, 2]);
    assert_eq!(
        fee_value(ActionType::Redemption, "f", &[0, 0, 1, 2]),
        Ok(0x0102)
    );
}

fn raw(sender: u32, pkh: usize, proposal: Option<(u32, Vec<u8>)>) -> Vec<u8> {
    pb::CoordinationMessage {
        sender_id: sender,
        coordination_block: 900,
        wallet_public_key_hash: vec![1; pkh],
        proposal: proposal.map(|(a, p)| pb::CoordinationProposal {
            action_type: a,
            payload: p,
        }),
    }
    .encode_to_vec()
}

#[test]
fn every_decoding_error_is_named() {
    let err = |b: Vec<u8>| CoordinationMessage::decode(&b).unwrap_err();
    assert_eq!(
        err(raw(256, 20, Some((0, vec![])))),
        WireError::SenderId(256)
    );
    assert_eq!(err(raw(1, 19, Some((0, vec![])))), WireError::WalletPkh(19));
    assert_eq!(err(raw(1, 20, None)), WireError::MissingProposal);
    assert_eq!(
        err(raw(1, 20, Some((6, vec![])))),
        WireError::UnknownAction(6)
    );
    assert_eq!(
        err(raw(1, 20, Some((0, vec![1])))),
        WireError::NoopPayload(1)
    );
    let hb = pb::HeartbeatProposal {
        message: vec![0; 15],
    }
    .encode_to_vec();
    assert!(matches!(
        err(raw(1, 20, Some((1, hb)))),
        WireError::Length {
            field: "message",
            got: 15,
            expected: 16,
            ..
        }
    ));
    let ds = pb::DepositSweepProposal {
        deposits_keys: vec![pb::DepositKey {
            funding_tx_hash: vec![0; 31],
            funding_output_index: 0,
        }],
        sweep_tx_fee: vec![],
        deposits_reveal_blocks: vec![1],
    }
    .encode_to_vec();
    assert!(matches!(
        err(raw(1, 20, Some((2, ds)))),
        WireError::Length {
            field: "fundingTxHash",
            ..
        }
    ));
    let ds = pb::DepositSweepProposal {
        deposits_keys: vec![pb::DepositKey {
            funding_tx_hash: vec![0; 32],
            funding_output_index: 0,
        }],
        sweep_tx_fee: vec![],
        deposits_reveal_blocks: vec![],
    }
    .encode_to_vec();
    assert_eq!(
        err(raw(1, 20, Some((2, ds)))),
        WireError::DepositCount { keys: 1, blocks: 0 }
    );
    let mf = pb::MovingFundsProposal {
        target_wallets: vec![vec![0; 21]],
        moving_funds_tx_fee: vec![],
    }
    .encode_to_vec();
    assert!(matches!(
        err(raw(1, 20, Some((4, mf)))),
        WireError::Length {
            field: "targetWallets",
            ..
        }
    ));
    let mfs = pb::MovedFundsSweepProposal {
        moving_funds_tx_hash: vec![0; 32],
        moving_funds_tx_output_index: 0,
        sweep_tx_fee: vec![1; 17],
    }
    .encode_to_vec();
    assert!(matches!(
        err(raw(1, 20, Some((5, mfs)))),
        WireError::Fee {
            field: "sweepTxFee",
            ..
        }
    ));
    let mfs = pb::MovedFundsSweepProposal {
        moving_funds_tx_hash: vec![0; 3],
        moving_funds_tx_output_index: 0,
        sweep_tx_fee: vec![],
    }
    .encode_to_vec();
    assert!(matches!(
        err(raw(1, 20, Some((5, mfs)))),
        WireError::Length {
            field: "movingFundsTxHash",
            ..
        }
    ));
    assert!(matches!(
        err(vec![0xff, 0xff, 0xff]),
        WireError::Protobuf(_)
    ));
    // Errors read as sentences an operator can act on.
    assert_eq!(
        WireError::WalletPkh(19).to_string(),
        "walletPublicKeyHash has 19 bytes; expected 20"
    );
}
