//! The on-chain registry's logs, as the EVM registry reads them over JSON-RPC: each decoded
//! with the contract bindings (`ConclaveRegistryEvents::decode_log`), folded in order by
//! `evm::ChainState::apply`, and projected into a view by `ChainState::to_view` (on-chain data
//! cannot be refused, only skipped).
//!
//! Input: records (`conclave_fuzz::records`): the first string is the log's topics (32 bytes
//! each, at most 4), the second its data; the tag is unused.
//! Properties: nothing panics; a decoded event re-encodes to a log that decodes to the same
//! event; the projection is deterministic.
#![no_main]

use alloy::primitives::{Address, IntoLogData, Log, LogData, B256};
use alloy::sol_types::SolEventInterface;
use conclave_core::ViewSource;
use conclave_fuzz::records;
use conclave_registry::evm::bindings::ConclaveRegistry::ConclaveRegistryEvents;
use conclave_registry::evm::ChainState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut state = ChainState::default();
    for (_, topics, data) in records(input) {
        let topics: Vec<B256> = topics
            .chunks_exact(32)
            .take(4)
            .map(B256::from_slice)
            .collect();
        let log = Log {
            address: Address::ZERO,
            data: LogData::new_unchecked(topics, data.to_vec().into()),
        };
        let Ok(event) = ConclaveRegistryEvents::decode_log(&log) else {
            continue;
        };
        let reencoded = Log {
            address: Address::ZERO,
            data: event.data.to_log_data(),
        };
        match ConclaveRegistryEvents::decode_log(&reencoded) {
            Ok(again) => assert_eq!(format!("{:?}", again.data), format!("{:?}", event.data)),
            Err(e) => panic!("a decoded event re-encoded is refused: {e}"),
        }
        state.apply(&event.data);
    }
    let source = ViewSource::Chain {
        chain_id: 1,
        block: 100,
        hash: "00".repeat(32),
    };
    let (view, skipped) = state.to_view(source.clone());
    let (again, skipped_again) = state.to_view(source);
    assert_eq!(view, again);
    assert_eq!(skipped, skipped_again);
});
