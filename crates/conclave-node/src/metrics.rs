//! Node-level metrics: registry health, readiness and API subscribers (the network service
//! registers its own beside them).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub(crate) struct NodeMetrics {
    pub registry_revision: Gauge,
    pub registry_rejected: Gauge,
    pub registry_members: Gauge,
    pub ready: Gauge,
    pub subscribers: Gauge,
    pub subscriber_lagged: Counter,
    pub peer_store_errors: Counter,
}

impl NodeMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = NodeMetrics {
            registry_revision: Gauge::default(),
            registry_rejected: Gauge::default(),
            registry_members: Gauge::default(),
            ready: Gauge::default(),
            subscribers: Gauge::default(),
            subscriber_lagged: Counter::default(),
            peer_store_errors: Counter::default(),
        };
        registry.register(
            "registry_revision",
            "Registry views accepted since start",
            m.registry_revision.clone(),
        );
        registry.register(
            "registry_rejected_updates",
            "Registry updates refused (the previous view stayed in force)",
            m.registry_rejected.clone(),
        );
        registry.register(
            "registry_members",
            "Node keys authorized by the current view",
            m.registry_members.clone(),
        );
        registry.register(
            "ready",
            "1 when a quorum of members is connected",
            m.ready.clone(),
        );
        registry.register(
            "api_subscribers",
            "Open WebSocket subscriptions",
            m.subscribers.clone(),
        );
        registry.register(
            "api_subscriber_lagged_messages",
            "Messages skipped for WebSocket subscribers that fell behind",
            m.subscriber_lagged.clone(),
        );
        registry.register(
            "peer_store_errors",
            "Failed peer-store writes",
            m.peer_store_errors.clone(),
        );
        m
    }
}
