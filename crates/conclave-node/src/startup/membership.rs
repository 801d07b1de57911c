//! The registry and the chain the node follows, and the chain as the node acts on it.

use std::sync::Arc;

use conclave_core::{Clock, SystemClock};
use conclave_registry::clock_chain::ClockChain;
use conclave_registry::evm::EvmRegistry;
use conclave_registry::stacks::StacksRegistry;
use conclave_registry::{ChainClock, FileRegistry, RegistrySource};

use crate::chain_view::{ChainView, NodeChain};
use crate::{NodeError, RegistryChoice, ValidConfig};

/// Where membership comes from, and the chain that comes with it (the EVM registry's, or the
/// clock chain beside a registry file or the Stacks registry).
pub(super) struct Membership {
    pub registry: Box<dyn RegistrySource>,
    pub chain: Option<NodeChain>,
}

impl Membership {
    pub async fn start(cfg: &ValidConfig) -> Result<Self, NodeError> {
        let clock_chain = || {
            cfg.clock_chain
                .map(|(g, i)| NodeChain::Clock(Arc::new(ClockChain::spawn(g, i))))
        };
        Ok(match &cfg.registry {
            RegistryChoice::File { path, poll } => Membership {
                registry: Box::new(FileRegistry::spawn(path, *poll)?),
                chain: clock_chain(),
            },
            RegistryChoice::Stacks(stacks) => Membership {
                registry: Box::new(StacksRegistry::spawn(stacks.clone()).await?),
                chain: clock_chain(),
            },
            RegistryChoice::Evm(evm) => {
                let chain = Arc::new(EvmRegistry::spawn(evm.clone()).await?);
                Membership {
                    registry: Box::new(chain.clone()),
                    chain: Some(NodeChain::Evm(chain)),
                }
            }
        })
    }
}

/// The chain as the node's tasks read it, and the clock delegations are judged by.
pub(super) struct ActingChain {
    pub view: Option<ChainView>,
    /// The writer of `view`, for the chain watch task (altnet, with the watchdog).
    #[cfg(feature = "altnet")]
    pub writer: Option<crate::chain_view::ChainViewWriter>,
    /// Delegations may be bounded by blocks: with a chain they are judged against its head.
    pub clock: Arc<dyn Clock>,
}

impl ActingChain {
    /// With the watchdog, its task chooses between the source and a fallback tip members agree
    /// on; without, the view is the source.
    pub fn new(chain: &Option<NodeChain>, cfg: &ValidConfig) -> Self {
        #[cfg(feature = "altnet")]
        let (view, writer) = match (chain, cfg.watchdog.is_some()) {
            (Some(c), true) => {
                let (v, w) = ChainView::with_writer(c.clone(), super::RECENT_HEADERS);
                (Some(v), Some(w))
            }
            (c, _) => (c.clone().map(ChainView::of_source), None),
        };
        #[cfg(not(feature = "altnet"))]
        let view = {
            let _ = cfg;
            chain.clone().map(ChainView::of_source)
        };
        let clock: Arc<dyn Clock> = match &view {
            Some(c) => Arc::new(ChainClock::new(c.heads())),
            None => Arc::new(SystemClock),
        };
        ActingChain {
            view,
            #[cfg(feature = "altnet")]
            writer,
            clock,
        }
    }
}
