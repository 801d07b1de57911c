//! A fresh anvil chain with the registry deployed, and wallets for governance and operators.
#![allow(dead_code)]

use alloy::primitives::{Address, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
use conclave_registry::evm::bindings::ConclaveRegistry::{
    self, ConclaveRegistryErrors, ConclaveRegistryInstance,
};

pub struct Chain {
    pub anvil: Anvil,
    pub contract: Address,
    /// Read-only provider (also used for anvil_* calls).
    pub provider: DynProvider,
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
    pub async fn start(args: &[&str]) -> Chain {
        let anvil = Anvil::spawn(args).expect("anvil (run scripts/install-deps.sh)");
        let key = conclave_registry::evm::admin::parse_eth_key(DEV_KEYS[0]).unwrap();
        let (admin, _) = conclave_registry::evm::RegistryAdmin::deploy(&anvil.url, key)
            .await
            .unwrap();
        let contract = admin.contract();
        let provider = ProviderBuilder::new()
            .connect_http(anvil.url.parse().unwrap())
            .erased();
        Chain {
            anvil,
            contract,
            provider,
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

/// Waits until `pred` holds for the channel's value, or panics after `secs` naming `what`.
pub async fn wait_until<T>(
    rx: &mut tokio::sync::watch::Receiver<T>,
    secs: u64,
    what: &str,
    mut pred: impl FnMut(&T) -> bool,
) {
    let fut = rx.wait_for(|v| pred(v));
    match tokio::time::timeout(std::time::Duration::from_secs(secs), fut).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => panic!("channel closed while waiting for {what}"),
        Err(_) => panic!("timed out after {secs} s waiting for {what}"),
    }
}
