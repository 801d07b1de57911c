//! A fresh anvil chain with the registry deployed (by the testkit's [`RegistryChain`]), and
//! the contract's raw bindings for governance and operators.
#![allow(dead_code)]

use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
use conclave_registry::evm::bindings::ConclaveRegistry::{
    self, ConclaveRegistryErrors, ConclaveRegistryInstance,
};
use conclave_registry::evm::RegistryAdmin;
use conclave_testkit::{eventually_within, RegistryChain};

pub struct Chain {
    pub anvil: Anvil,
    pub contract: Address,
    /// Read-only provider (also used for anvil_* calls).
    pub provider: DynProvider,
    /// Governance's admin handle (dev account 0, the deployer).
    pub gov: RegistryAdmin,
    /// The operators admitted at start: operator `i` is dev account `i + 1`.
    pub operators: Vec<RegistryAdmin>,
}

pub type Registry = ConclaveRegistryInstance<DynProvider>;

pub fn wallet_provider(url: &str, key_index: usize) -> DynProvider {
    let signer: PrivateKeySigner = DEV_KEYS[key_index].parse().unwrap();
    conclave_registry::evm::admin::signing_provider(url, signer).unwrap()
}

pub fn address_of(key_index: usize) -> Address {
    DEV_KEYS[key_index]
        .parse::<PrivateKeySigner>()
        .unwrap()
        .address()
}

impl Chain {
    /// A chain with the registry deployed and nothing else: no scopes, no operators.
    pub async fn start(args: &[&str]) -> Chain {
        Self::with(args, &[], 0).await
    }

    /// A chain with the registry deployed, `scopes` defined as bits 0, 1, … and dev accounts
    /// 1..=`operators` admitted.
    pub async fn with(args: &[&str], scopes: &[&str], operators: usize) -> Chain {
        let RegistryChain {
            anvil,
            gov,
            operators,
        } = RegistryChain::start(args, scopes, operators).await;
        let contract = gov.contract();
        let provider = ProviderBuilder::new()
            .connect_http(anvil.url.parse().unwrap())
            .erased();
        Chain {
            anvil,
            contract,
            provider,
            gov,
            operators,
        }
    }

    /// The contract as seen by dev account `key_index` (0 = governance).
    pub fn as_account(&self, key_index: usize) -> Registry {
        ConclaveRegistry::new(self.contract, wallet_provider(&self.anvil.url, key_index))
    }

    pub async fn block(&self) -> u64 {
        self.provider.get_block_number().await.unwrap()
    }

    pub async fn mine(&self, blocks: u64) {
        self.anvil.mine(blocks).await.unwrap();
    }
}

/// Sends a call and waits for its receipt; panics with the decoded revert if it fails.
#[macro_export]
macro_rules! send {
    ($call:expr) => {
        conclave_registry::evm::admin::wait_receipt(
            $call
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", stringify!($call))),
        )
        .await
        .unwrap()
    };
}

/// The contract error a call reverts with.
pub async fn revert_of<T, P, D>(call: alloy::contract::CallBuilder<P, D>) -> ConclaveRegistryErrors
where
    P: Provider,
    D: alloy::contract::CallDecoder,
{
    let _ = std::marker::PhantomData::<T>;
    match call.send().await {
        Ok(_) => panic!("call succeeded, a revert was expected"),
        Err(e) => e
            .as_decoded_interface_error::<ConclaveRegistryErrors>()
            .unwrap_or_else(|| panic!("revert not decodable: {e}")),
    }
}

pub fn peer_bytes(peer: &conclave_core::PeerId) -> Bytes {
    Bytes::from(peer.to_bytes())
}

impl Chain {
    /// Takes an anvil snapshot (the point a later [`Chain::revert`] returns to).
    pub async fn snapshot(&self) -> alloy::primitives::U256 {
        self.provider
            .raw_request("evm_snapshot".into(), ())
            .await
            .unwrap()
    }

    /// Returns the chain to a snapshot: the blocks after it leave the canonical chain (a reorg,
    /// as followers see it, once new blocks are mined on top).
    pub async fn revert(&self, id: alloy::primitives::U256) {
        let ok: bool = self
            .provider
            .raw_request("evm_revert".into(), (id,))
            .await
            .unwrap();
        assert!(ok, "evm_revert {id}");
    }
}

/// Waits until `pred` holds for the channel's value, or panics after `secs` naming `what` (or
/// as soon as the channel closes with `pred` still false).
pub async fn wait_until<T>(
    rx: &tokio::sync::watch::Receiver<T>,
    secs: u64,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) {
    eventually_within(Duration::from_secs(secs), what, || {
        let holds = pred(&rx.borrow());
        assert!(
            holds || rx.has_changed().is_ok(),
            "channel closed while waiting for {what}"
        );
        async move { holds }
    })
    .await
}
