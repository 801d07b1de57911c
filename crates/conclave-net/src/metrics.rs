//! The network service's Prometheus metrics (libp2p's own swarm and gossipsub metrics are
//! registered beside them under the `libp2p` prefix).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MessageLabels {
    pub topic: String,
    /// accepted | rejected
    pub outcome: &'static str,
    /// Why, for rejections; "ok" otherwise.
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DeniedLabels {
    /// inbound | outbound
    pub direction: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PublishLabels {
    pub topic: String,
    /// published | queued | refused
    pub outcome: &'static str,
}

/// Counters and gauges the worker updates; all cheap atomics (clones share them).
#[derive(Clone)]
pub(crate) struct NetMetrics {
    pub peers: Gauge,
    pub messages: Family<MessageLabels, Counter>,
    pub connections_denied: Family<DeniedLabels, Counter>,
    pub evictions: Family<ReasonLabels, Counter>,
    pub publishes: Family<PublishLabels, Counter>,
    pub outbox_len: Gauge,
    pub outbox_dropped: Family<ReasonLabels, Counter>,
    pub events_dropped: Counter,
    pub anonymous_dropped: Counter,
    /// Headers sent in answer to members' header requests.
    pub headers_served: Counter,
    /// Relay server reservations and circuits, by outcome.
    pub relay: Family<ReasonLabels, Counter>,
    /// Stem frames from members, by verdict.
    pub stem_received: Family<ReasonLabels, Counter>,
    /// Members' stem frames this node fluffed, by cause (own frames are never counted: a
    /// counter that moved on them would date this node's anonymous publishes).
    pub stem_fluffed: Family<ReasonLabels, Counter>,
    /// Caught-up messages by outcome (promised, accepted, or why refused).
    pub catchup_fetched: Family<ReasonLabels, Counter>,
    /// Catch-up bytes this node sent in requests and received in answers.
    pub catchup_bytes: Family<ReasonLabels, Counter>,
    /// This node's catch-up sessions by how they ended.
    pub catchup_sessions: Family<ReasonLabels, Counter>,
    /// Members' catch-up requests by how they were answered.
    pub catchup_served: Family<ReasonLabels, Counter>,
    pub retained_messages: Gauge,
    pub retained_bytes: Gauge,
}

impl NetMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = NetMetrics {
            peers: Gauge::default(),
            messages: Family::default(),
            connections_denied: Family::default(),
            evictions: Family::default(),
            publishes: Family::default(),
            outbox_len: Gauge::default(),
            outbox_dropped: Family::default(),
            events_dropped: Counter::default(),
            anonymous_dropped: Counter::default(),
            headers_served: Counter::default(),
            relay: Family::default(),
            stem_received: Family::default(),
            stem_fluffed: Family::default(),
            catchup_fetched: Family::default(),
            catchup_bytes: Family::default(),
            catchup_sessions: Family::default(),
            catchup_served: Family::default(),
            retained_messages: Gauge::default(),
            retained_bytes: Gauge::default(),
        };
        registry.register(
            "anonymous_validation_dropped",
            "Anonymous-channel messages ignored because the validation queue was full",
            m.anonymous_dropped.clone(),
        );
        registry.register("peers_connected", "Connected member peers", m.peers.clone());
        registry.register(
            "messages",
            "Signed-channel messages received, by topic and validation outcome",
            m.messages.clone(),
        );
        registry.register(
            "connections_denied",
            "Connections refused by the membership gate or the connection limits",
            m.connections_denied.clone(),
        );
        registry.register(
            "peers_evicted",
            "Peers disconnected because the registry no longer authorizes them",
            m.evictions.clone(),
        );
        registry.register(
            "publishes",
            "Publishes from this node by outcome",
            m.publishes.clone(),
        );
        registry.register(
            "publish_queue_length",
            "Publishes waiting for subscribed peers",
            m.outbox_len.clone(),
        );
        registry.register(
            "publish_queue_dropped",
            "Publishes dropped from the wait queue (full, expired, or failed)",
            m.outbox_dropped.clone(),
        );
        registry.register(
            "network_events_dropped",
            "Network events dropped because the application did not keep up",
            m.events_dropped.clone(),
        );
        registry.register(
            "headers_served",
            "Chain headers sent in answer to members' header requests",
            m.headers_served.clone(),
        );
        registry.register(
            "relay",
            "Relay server reservations and circuits by outcome (members only: strangers never pass the gate)",
            m.relay.clone(),
        );
        registry.register(
            "stem_received",
            "Anonymous frames members sent this node on the stem, by verdict (accepted, ignored, rejected, refused, busy)",
            m.stem_received.clone(),
        );
        registry.register(
            "stem_fluffed",
            "Members' stem frames this node moved to gossip, by cause (coin, failsafe, unreachable, no_successor, held_full)",
            m.stem_fluffed.clone(),
        );
        registry.register(
            "catchup_messages",
            "Messages caught up from members, by outcome (promised, accepted, or the refusal reason)",
            m.catchup_fetched.clone(),
        );
        registry.register(
            "catchup_bytes",
            "Catch-up protocol bytes this node sent (requests) and received (answers)",
            m.catchup_bytes.clone(),
        );
        registry.register(
            "catchup_sessions",
            "Catch-up sessions this node ran, by how they ended",
            m.catchup_sessions.clone(),
        );
        registry.register(
            "catchup_served",
            "Members' catch-up requests, by how they were answered",
            m.catchup_served.clone(),
        );
        registry.register(
            "retained_messages",
            "Signed messages kept for catch-up",
            m.retained_messages.clone(),
        );
        registry.register(
            "retained_bytes",
            "Bytes of signed messages kept for catch-up",
            m.retained_bytes.clone(),
        );
        // Known label sets start at zero, so dashboards and alerts see a series before the
        // first event rather than nothing.
        for direction in ["inbound", "outbound"] {
            for reason in ["not_member", "expired", "connection_limit"] {
                let _ = m
                    .connections_denied
                    .get_or_create(&DeniedLabels { direction, reason });
            }
        }
        for reason in ["not_member", "expired"] {
            let _ = m.evictions.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["full", "expired", "failed"] {
            let _ = m.outbox_dropped.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["accepted", "rejected", "refused"] {
            let _ = m.stem_received.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["accepted", "promised", "unrequested"] {
            let _ = m.catchup_fetched.get_or_create(&ReasonLabels { reason });
        }
        for reason in ["coin", "failsafe"] {
            let _ = m.stem_fluffed.get_or_create(&ReasonLabels { reason });
        }
        m
    }
}
