//! Node-level metrics: registry health, readiness, API subscribers and key rotations (the network
//! service registers its own beside them; those restart from zero after a key rotation).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AnomalyLabel {
    pub anomaly: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct DriverLabel {
    pub driver: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
    pub dirty: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub outcome: &'static str,
    pub reason: &'static str,
}

/// The anonymous channel's metrics: validation outcomes by reason, verification times,
/// slashings and the tree's size. Nothing here counts or times this node's own anonymous
/// publishes: whoever reads `/metrics` could match those to messages on the channel.
pub(crate) struct RlnMetrics {
    pub messages: Family<OutcomeLabels, Counter>,
    pub verify_seconds: Histogram,
    pub slashings: Counter,
    pub members: Gauge,
    pub onchain_removals: Family<ReasonLabel, Counter>,
}

impl Default for RlnMetrics {
    fn default() -> Self {
        RlnMetrics {
            messages: Family::default(),
            // 1 ms .. ~0.5 s
            verify_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 10)),
            slashings: Counter::default(),
            members: Gauge::default(),
            onchain_removals: Family::default(),
        }
    }
}

/// The fallback chain and the transport drivers (feature `altnet`).
pub(crate) struct AltnetMetrics {
    pub fallback: Gauge,
    pub fallback_height: Gauge,
    pub header_fetches: Family<ReasonLabel, Counter>,
    pub driver_up: Family<DriverLabel, Gauge>,
    pub driver_answers: Family<DriverLabel, Counter>,
    pub driver_errors: Family<DriverLabel, Counter>,
    pub driver_bytes: Family<DriverLabel, Counter>,
    pub driver_latency: Family<DriverLabel, Histogram, fn() -> Histogram>,
}

impl Default for AltnetMetrics {
    fn default() -> Self {
        AltnetMetrics {
            fallback: Gauge::default(),
            fallback_height: Gauge::default(),
            header_fetches: Family::default(),
            driver_up: Family::default(),
            driver_answers: Family::default(),
            driver_errors: Family::default(),
            driver_bytes: Family::default(),
            // 1 ms .. ~8 s
            driver_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 14))
            }),
        }
    }
}

#[derive(Default)]
pub(crate) struct NodeMetrics {
    pub build: Family<BuildLabels, Gauge>,
    pub registry_revision: Gauge,
    pub registry_rejected: Gauge,
    pub registry_members: Gauge,
    pub registry_stale: Gauge,
    pub registry_skipped: Gauge,
    pub registry_synced_block: Gauge,
    pub self_member: Gauge,
    pub ready: Gauge,
    pub subscribers: Gauge,
    pub subscriber_lagged: Counter,
    pub peer_store_errors: Counter,
    /// Retained messages not written to the store because the write queue was full.
    pub retained_unsaved: Counter,
    pub key_rotations: Counter,
    pub key_rotation_failures: Counter,
    pub handover_republish_failures: Counter,
    pub coord_windows: Family<ReasonLabel, Counter>,
    pub coord_faults: Family<KindLabel, Counter>,
    pub coord_dropped: Family<ReasonLabel, Counter>,
    pub rln: RlnMetrics,
    pub watchdog_anomaly: Family<AnomalyLabel, Gauge>,
    pub watchdog_raised: Family<AnomalyLabel, Counter>,
    pub watchdog_tips: Family<ReasonLabel, Counter>,
    pub altnet: AltnetMetrics,
}

impl NodeMetrics {
    /// Sets `build_info` (always 1: the build is in its labels).
    pub fn record_build(&self, build: &crate::BuildInfo) {
        self.build
            .get_or_create(&BuildLabels {
                version: build.version,
                commit: build.commit,
                dirty: if build.dirty { "true" } else { "false" },
            })
            .set(1);
    }

    /// Registers these (shared) handles in `registry`. A key rotation builds a fresh registry
    /// for the new network service; the node's own metrics carry over into it.
    pub fn register(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "build_info",
            "The build this node runs, in its labels (version, git commit, dirty); always 1",
            m.build.clone(),
        );
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
            "registry_stale",
            "1 while the registry source cannot be read (the last view stays in force)",
            m.registry_stale.clone(),
        );
        registry.register(
            "registry_skipped_entries",
            "Registry entries left out of the view in force, each named in /v1/membership (a validator registration whose BLS signature fails, a validator's second leaf, an undefined scope, ...)",
            m.registry_skipped.clone(),
        );
        registry.register(
            "registry_synced_block",
            "Newest confirmed block applied by the chain registry",
            m.registry_synced_block.clone(),
        );
        registry.register(
            "self_member",
            "1 while the registry's view authorizes this node's own key (0: it left the set, and the node does not publish)",
            m.self_member.clone(),
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
            "Failed state-store writes (learned addresses, delivered ids, retained messages) and damaged rows skipped",
            m.peer_store_errors.clone(),
        );
        registry.register(
            "retained_unsaved",
            "Retained messages not written to the state store because its write queue was full",
            m.retained_unsaved.clone(),
        );
        registry.register(
            "key_rotations",
            "Moves to a new node key delegated on the registry",
            m.key_rotations.clone(),
        );
        registry.register(
            "key_rotation_failures",
            "Key rotations that failed (the node stayed on its key and retries)",
            m.key_rotation_failures.clone(),
        );
        registry.register(
            "handover_republish_failures",
            "Queued publishes the new key's service refused during a rotation",
            m.handover_republish_failures.clone(),
        );
        registry.register(
            "coordination_windows",
            "Coordination windows by this node's result (led, accepted, none; missed: the head passed the active phase at once)",
            m.coord_windows.clone(),
        );
        registry.register(
            "coordination_faults",
            "Faults recorded against leaders, by kind",
            m.coord_faults.clone(),
        );
        registry.register(
            "coordination_messages_dropped",
            "Coordination messages ignored without blame, by reason",
            m.coord_dropped.clone(),
        );
        registry.register(
            "rln_messages",
            "Anonymous-channel messages by validation outcome and reason",
            m.rln.messages.clone(),
        );
        registry.register(
            "rln_verify_seconds",
            "Time to verify one RLN proof (on the proof pool)",
            m.rln.verify_seconds.clone(),
        );
        registry.register(
            "rln_slashings",
            "Members removed for double signalling (evidence verified by this node)",
            m.rln.slashings.clone(),
        );
        registry.register(
            "rln_members",
            "Leaves in the RLN membership tree",
            m.rln.members.clone(),
        );
        registry.register(
            "watchdog_anomaly",
            "Chain-view anomalies the watchdog holds raised (1) or not (0): stalled, behind, forked, silent",
            m.watchdog_anomaly.clone(),
        );
        registry.register(
            "watchdog_raised",
            "Times each chain-view anomaly was raised",
            m.watchdog_raised.clone(),
        );
        registry.register(
            "watchdog_tips",
            "Members' chain-tip announcements received, by outcome (accepted, malformed)",
            m.watchdog_tips.clone(),
        );
        let a = &m.altnet;
        registry.register(
            "altnet_fallback",
            "1 while the node acts on headers members agreed on instead of its own chain source",
            a.fallback.clone(),
        );
        registry.register(
            "altnet_fallback_height",
            "The fallback tip's height (last set while on fallback)",
            a.fallback_height.clone(),
        );
        registry.register(
            "altnet_header_fetches",
            "Header fetches from members by outcome (accepted, refused)",
            a.header_fetches.clone(),
        );
        registry.register(
            "altnet_driver_up",
            "1 while a transport driver is up",
            a.driver_up.clone(),
        );
        registry.register(
            "altnet_driver_answers",
            "Header answers received over each driver",
            a.driver_answers.clone(),
        );
        registry.register(
            "altnet_driver_errors",
            "Header requests that failed or timed out, by driver",
            a.driver_errors.clone(),
        );
        registry.register(
            "altnet_driver_bytes",
            "Bytes of header answers received, by driver",
            a.driver_bytes.clone(),
        );
        registry.register(
            "altnet_driver_latency_seconds",
            "Time for a driver's parallel header request to finish (slowest member)",
            a.driver_latency.clone(),
        );
        registry.register(
            "rln_onchain_removals",
            "Slashed members this node removed from the on-chain registry, by outcome (submitted, already_removed, failed)",
            m.rln.onchain_removals.clone(),
        );
    }
}
