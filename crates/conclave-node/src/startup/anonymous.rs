//! The anonymous channel's node side, when `[rln] enabled = true`.

use std::sync::Arc;

use conclave_net::{AnonymousMessage, NetworkService};
use conclave_registry::evm::{EvmError, RegistryAdmin};
use tokio::sync::{broadcast, mpsc};

use super::Wiring;
use crate::rln::RlnNode;
use crate::{keys, rln_chain, NodeError, RegistryChoice};

/// The RLN node and the inbox the dispatcher feeds it anonymous messages through.
pub(super) struct Anonymous {
    pub node: Arc<RlnNode>,
    pub inbox: mpsc::Sender<(NetworkService, AnonymousMessage)>,
    pub inbox_rx: mpsc::Receiver<(NetworkService, AnonymousMessage)>,
}

/// Builds the anonymous channel, with on-chain removal when `[rln] chain_key` is set.
pub(super) fn build(w: &Wiring) -> Result<Option<Anonymous>, NodeError> {
    let Some(rcfg) = &w.cfg.rln else {
        return Ok(None);
    };
    let chain_removal = match (&rcfg.chain_key, &w.cfg.registry) {
        (Some(key), RegistryChoice::Evm(evm)) => Some(rln_chain::ChainRemoval {
            admin: RegistryAdmin::connect(&evm.rpc_url, evm.contract, keys::load_eth(key)?)
                .map_err(|e| NodeError::Chain(EvmError::Url(evm.rpc_url.clone(), e.to_string())))?,
            stagger: rcfg.chain_stagger,
            view: w.view.clone(),
            net: w.net.clone(),
            metrics: w.metrics.clone(),
        }),
        _ => None,
    };
    let (inbox, inbox_rx) = mpsc::channel(rcfg.queue);
    let (anon_deliveries, _) = broadcast::channel(super::DELIVERY_FANOUT);
    let node = RlnNode::new(
        rcfg.clone(),
        chain_removal,
        w.store.clone(),
        w.metrics.clone(),
        w.net.clone(),
        anon_deliveries,
    )?;
    Ok(Some(Anonymous {
        node,
        inbox,
        inbox_rx,
    }))
}
