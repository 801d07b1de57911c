//! The anonymous RLN channel in the node (docs/ARCHITECTURE.md, "The anonymous channel (RLN)").
//!
//! Place in the data flow: **registry view → [`RlnChannel`] (tree, nullifier log) → validation of
//! every anonymous gossip message → API subscribers**, and **double signal → slashing evidence on
//! the signed `rln-slash` topic → every node verifies it → removal, persisted**. This module is
//! the channel's one writer; proofs run on the [`ProofPool`], never on the async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conclave_api::{RemovedSecret, RlnIdentityAnswer, RlnLeaf, RlnRemovedAnswer, RlnStatusAnswer};
use conclave_core::{Clock, MembershipView, SystemClock, TopicName};
use conclave_net::{Acceptance, AnonymousMessage, Delivery, NetworkService, PublishError};
use conclave_rln::{
    fr_from_bytes, fr_to_bytes, fr_to_hex, EvidenceError, Fr, Ignored, NullifierLog, PartialProof,
    ProofPool, RlnChannel, RlnIdentifier, RlnIdentity, RlnMembership, RlnRegistration,
    SlashingEvidence,
};
use futures::stream::{FuturesUnordered, StreamExt};
use prost::Message as _;
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::RlnConfig;
use crate::metrics::{NodeMetrics, OutcomeLabels};
use crate::network::NodeNetwork;
use crate::rln_arrivals::ArrivalRecord;
use crate::rln_chain::ChainRemoval;
use crate::store::{AllocateError, StateStore};

mod publish;
mod scheduler;
mod validate;

use scheduler::{Forwarder, ProofScheduler};

pub(crate) use publish::PUBLISH_TIMEOUT;

/// The signed topic slashing evidence and removal lists travel on (a registry scope).
pub const SLASH_TOPIC: &str = "rln-slash";

/// Nullifier log bounds: entries and stored message bytes. Honest traffic needs at most
/// Σ limits × (2·gap + 1) entries; beyond these, new messages are ignored, never evicted.
const LOG_MAX_ENTRIES: usize = 200_000;
const LOG_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Removed secrets carried per announcement.
const MAX_ANNOUNCED: usize = 1024;
/// Messages judged at once, each from a different forwarder ([`ProofScheduler`]): the pool's
/// verifier takes those waiting as one batch, so this is the largest batch.
const JUDGING: usize = conclave_rln::MAX_BATCH;
/// How long a forwarder of an invalid proof gets no verification (as long as a graylisted
/// member is kept out).
const SUSPENSION: Duration = Duration::from_secs(600);

/// A finished piece of the RLN task's work.
enum Done {
    /// A message was judged; `invalid_proof`: its proof did not verify.
    Judged {
        from: Forwarder,
        invalid_proof: bool,
    },
    /// A slashing notice was handled.
    Notice,
}

/// What the signed `rln-slash` topic carries: evidence of a double signal, or the removals a
/// node knows (so a late joiner rebuilds the same tree). Both are checked by every receiver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SlashingNotice {
    #[prost(message, optional, tag = "1")]
    pub evidence: Option<SlashingEvidence>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub removed_secrets: Vec<Vec<u8>>,
}

/// An anonymous message delivered to API subscribers: no sender identity exists to give.
#[derive(Debug, Clone)]
pub struct AnonymousDelivery {
    pub topic: TopicName,
    pub payload: Vec<u8>,
    pub epoch: u64,
    pub message_id: String,
}

/// Why an anonymous publish failed.
#[derive(Debug, thiserror::Error)]
pub enum RlnPublishError {
    #[error("this node has no RLN identity (set `[rln] key`)")]
    NoIdentity,
    #[error("this node's RLN identity is not a member (not registered, or removed)")]
    NotAMember,
    #[error(transparent)]
    Quota(AllocateError),
    #[error(
        "a payload of {len} bytes exceeds the anonymous channel's largest of {}",
        conclave_rln::MAX_PAYLOAD
    )]
    TooLarge { len: usize },
    #[error("the proof pool is busy; try again")]
    Busy,
    #[error("proving failed: {0}")]
    Prove(String),
    #[error(transparent)]
    Net(#[from] PublishError),
}

/// A published anonymous message.
pub struct Published {
    pub message_id: String,
    pub epoch: u64,
    pub proof_ms: u64,
}

/// The node's anonymous channel.
pub(crate) struct RlnNode {
    cfg: RlnConfig,
    channel: Mutex<RlnChannel>,
    pool: ProofPool,
    identity: Option<RlnIdentity>,
    /// The partial proof of our identity under one root (zerokit's precomputation).
    partial: Mutex<Option<(Fr, Arc<PartialProof>)>>,
    store: Arc<StateStore>,
    metrics: Arc<NodeMetrics>,
    net: NodeNetwork,
    /// With the EVM registry and a chain key: removes slashed members on-chain too.
    chain: Option<ChainRemoval>,
    /// With `[rln] record_arrivals`: where each message came from.
    pub arrivals: Option<ArrivalRecord>,
    pub deliveries: broadcast::Sender<Arc<AnonymousDelivery>>,
}

fn slash_topic() -> TopicName {
    conclave_core::static_topic!(SLASH_TOPIC)
}

/// The wall clock epochs are computed from (a chain clock's blocks have nothing to do with them).
fn now_ms() -> u64 {
    SystemClock.now_ms()
}

fn registrations(view: &MembershipView) -> Vec<RlnRegistration> {
    view.rln_members()
        .filter_map(|m| match fr_from_bytes(&m.rate_commitment) {
            Ok(rate_commitment) => Some(RlnRegistration {
                index: m.index,
                rate_commitment,
                limit: m.limit,
            }),
            Err(e) => {
                tracing::error!(index = m.index, error = %e, "skipping an RLN leaf");
                None
            }
        })
        .collect()
}

impl RlnNode {
    /// Loads the identity and the persisted removals; the tree follows the view from `run`.
    pub fn new(
        cfg: RlnConfig,
        chain: Option<ChainRemoval>,
        store: Arc<StateStore>,
        metrics: Arc<NodeMetrics>,
        net: NodeNetwork,
        deliveries: broadcast::Sender<Arc<AnonymousDelivery>>,
    ) -> Result<Arc<Self>, crate::NodeError> {
        let identity = match &cfg.key_file {
            Some(path) => Some(crate::keys::load_rln(path)?),
            None => None,
        };
        let mut channel = RlnChannel::new(
            cfg.rules,
            RlnIdentifier::new(&cfg.identifier),
            RlnMembership::new(cfg.root_window),
            NullifierLog::new(LOG_MAX_ENTRIES, LOG_MAX_BYTES),
        );
        for r in store.rln_removed()? {
            match RlnIdentity::from_secret_bytes(&r.secret) {
                Ok(id) => {
                    channel.remove(&id);
                }
                Err(e) => tracing::warn!(error = %e, "skipping a stored removal"),
            }
        }
        Ok(Arc::new(RlnNode {
            pool: ProofPool::new(cfg.workers, cfg.queue),
            arrivals: ArrivalRecord::new(cfg.record_arrivals),
            cfg,
            channel: Mutex::new(channel),
            identity,
            partial: Mutex::new(None),
            store,
            metrics,
            net,
            chain,
            deliveries,
        }))
    }

    fn channel(&self) -> std::sync::MutexGuard<'_, RlnChannel> {
        crate::lock(&self.channel)
    }

    fn count(&self, outcome: &'static str, reason: &'static str) {
        self.metrics
            .rln
            .messages
            .get_or_create(&OutcomeLabels { outcome, reason })
            .inc();
    }

    /// Follows the registry, validates anonymous messages, handles slashing notices and
    /// re-announces removals, until shutdown.
    pub async fn run(
        self: Arc<Self>,
        mut view: watch::Receiver<Arc<MembershipView>>,
        mut inbox: mpsc::Receiver<(NetworkService, AnonymousMessage)>,
        mut signed: broadcast::Receiver<Arc<Delivery>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let slash_topic = slash_topic();
        if let Err(e) = self.net.subscribe(slash_topic.clone()).await {
            tracing::error!(error = %e, "cannot subscribe to the slashing topic");
        }
        self.apply_view(&view.borrow_and_update());
        let mut announce = tokio::time::interval(self.cfg.announce_removed);
        announce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut page = 0;
        // Validations and notices in flight, owned by this task: stopping it stops them all
        // (nothing outlives the node, e.g. its state store).
        let mut work: FuturesUnordered<Pin<Box<dyn Future<Output = Done> + Send>>> =
            FuturesUnordered::new();
        let mut waiting = ProofScheduler::new(self.cfg.queue, SUSPENSION);
        let mut judging = 0;
        loop {
            while judging < JUDGING {
                let Some((from, (service, m))) = waiting.pop() else {
                    break;
                };
                judging += 1;
                let me = self.clone();
                work.push(Box::pin(async move {
                    let invalid_proof = me.validate(service, m).await;
                    Done::Judged {
                        from,
                        invalid_proof,
                    }
                }));
            }
            tokio::select! {
                changed = view.changed() => {
                    if changed.is_err() { return; }
                    let v = view.borrow_and_update().clone();
                    self.apply_view(&v);
                }
                Some(done) = work.next(), if !work.is_empty() => {
                    let Done::Judged { from, invalid_proof } = done else { continue };
                    judging -= 1;
                    waiting.judged(from);
                    if let (true, Some(peer)) = (invalid_proof, from) {
                        tracing::info!(%peer, "forwarded an invalid proof: suspended");
                        for (service, m) in waiting.invalid_proof(peer, Instant::now()) {
                            self.count("ignored", scheduler::Refused::Suspended.label());
                            let _ = service.report_anonymous(m.id, Acceptance::Ignore).await;
                        }
                    }
                }
                m = inbox.recv() => {
                    let Some((service, m)) = m else { return };
                    let from = m.id.from();
                    let dropped = match waiting.push(from, (service, m), Instant::now()) {
                        Ok(None) => continue,
                        Ok(Some(evicted)) => (evicted, Ignored::Busy.label()),
                        Err((refused, why)) => (refused, why.label()),
                    };
                    let ((service, m), reason) = dropped;
                    self.count("ignored", reason);
                    let _ = service.report_anonymous(m.id, Acceptance::Ignore).await;
                }
                d = signed.recv() => match d {
                    Ok(d) if d.topic == slash_topic => {
                        let me = self.clone();
                        work.push(Box::pin(async move {
                            me.on_notice(&d.payload).await;
                            Done::Notice
                        }));
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "the RLN task fell behind the delivery stream");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = announce.tick() => page = self.announce_removed(page).await,
                _ = shutdown.changed() => return,
            }
        }
    }

    fn apply_view(&self, view: &MembershipView) {
        let regs = registrations(view);
        let mut ch = self.channel();
        match ch.apply_registrations(regs) {
            Ok(changed) => {
                self.metrics
                    .rln
                    .members
                    .set(ch.membership().members() as i64);
                if changed {
                    tracing::info!(
                        members = ch.membership().members(),
                        root = %fr_to_hex(&ch.membership().root()),
                        "RLN tree updated"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "RLN tree not updated"),
        }
    }

    async fn on_notice(self: &Arc<Self>, payload: &[u8]) {
        let notice = match SlashingNotice::decode(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable slashing notice");
                return;
            }
        };
        if let Some(evidence) = &notice.evidence {
            if let Err(e) = self.slash(evidence).await {
                tracing::info!(error = %e, "slashing evidence not acted on");
            }
        }
        for secret in notice.removed_secrets.iter().take(MAX_ANNOUNCED) {
            match RlnIdentity::from_secret_bytes(secret) {
                // A secret that maps to no current leaf changes nothing (already removed, or
                // not a member's): announcing one cannot remove anybody else.
                Ok(id) => {
                    if self.channel().membership().leaf_of(&id).is_some() {
                        self.remove(&id).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "announced removal is not a secret"),
            }
        }
    }

    /// Verifies evidence itself (both proofs, the recovered secret is a member's) and removes
    /// the member.
    async fn slash(self: &Arc<Self>, evidence: &SlashingEvidence) -> Result<(), String> {
        let examined = match self.channel().examine(evidence) {
            Ok(e) => e,
            Err(EvidenceError::NotAMember) => return Ok(()), // already removed here
            Err(e) => return Err(e.to_string()),
        };
        for (proof, values) in examined.proofs.clone() {
            let v = self
                .pool
                .verify(proof, values)
                .await
                .map_err(|e| e.to_string())?;
            if !v.value {
                return Err("a proof in the evidence does not verify".into());
            }
        }
        tracing::warn!(
            leaf = examined.index,
            "removing an RLN member for double signalling"
        );
        // Only the call that took the leaf out goes on to the chain (evidence arrives from
        // several peers, and our own detection races with theirs).
        if self.remove(&examined.identity).await {
            if let Some(chain) = &self.chain {
                chain
                    .remove(examined.index, examined.identity.secret_bytes())
                    .await;
            }
        }
        Ok(())
    }

    /// Persists the removal, then takes the member out of the tree; true if it was still
    /// there. Persisting first means `/v1/rln/removed` never lags the tree, and a node that
    /// stops in between removes the member again at start.
    async fn remove(&self, identity: &RlnIdentity) -> bool {
        let store = self.store.clone();
        let (idc, secret) = (
            fr_to_bytes(&identity.id_commitment()),
            identity.secret_bytes(),
        );
        let now = now_ms();
        match tokio::task::spawn_blocking(move || store.record_rln_removal(&idc, &secret, now))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "RLN removal not persisted"),
            Err(e) => tracing::error!(error = %e, "RLN removal not persisted"),
        }
        let dropped = {
            let mut ch = self.channel();
            let dropped = ch.remove(identity);
            self.metrics
                .rln
                .members
                .set(ch.membership().members() as i64);
            dropped
        };
        if dropped {
            self.metrics.rln.slashings.inc();
        }
        dropped
    }

    /// Announces page `page` of the removals this node knows (a notice holds at most
    /// [`MAX_ANNOUNCED`]); returns the page to announce next, so every removal goes out within
    /// ⌈removals / MAX_ANNOUNCED⌉ announcements.
    async fn announce_removed(&self, page: usize) -> usize {
        let removed = match self.store.rln_removed() {
            Ok(r) if !r.is_empty() => r,
            Ok(_) => return 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read removals");
                return page;
            }
        };
        let (slice, next) = page_of(&removed, page, MAX_ANNOUNCED);
        let notice = SlashingNotice {
            evidence: None,
            removed_secrets: slice.iter().map(|r| r.secret.to_vec()).collect(),
        };
        if let Err(e) = self
            .net
            .publish(slash_topic(), notice.encode_to_vec())
            .await
        {
            tracing::debug!(error = %e, "removal announcement not sent");
        }
        next
    }

    /// What `/v1/rln/status` shows.
    pub fn status(&self) -> RlnStatusAnswer {
        let ch = self.channel();
        let m = ch.membership();
        RlnStatusAnswer {
            identifier: self.cfg.identifier.clone(),
            epoch: self.cfg.rules.epoch_of(now_ms()),
            epoch_secs: self.cfg.rules.epoch_secs,
            members: m.members(),
            root: fr_to_hex(&m.root()),
            roots: m.roots().iter().map(fr_to_hex).collect(),
            identity: self.identity.as_ref().map(|id| RlnIdentityAnswer {
                id_commitment: fr_to_hex(&id.id_commitment()),
                leaf: m.leaf_of(id).map(|(index, limit)| RlnLeaf { index, limit }),
            }),
        }
    }

    /// What `/v1/rln/removed` serves: the revealed secrets (public once revealed) a late joiner
    /// removes from its tree.
    pub fn removed(&self) -> Result<RlnRemovedAnswer, crate::store::StoreError> {
        let removed = self.store.rln_removed()?;
        Ok(RlnRemovedAnswer {
            removed: removed
                .iter()
                .map(|r| RemovedSecret {
                    secret: hex::encode(r.secret),
                    id_commitment: RlnIdentity::from_secret_bytes(&r.secret)
                        .ok()
                        .map(|i| fr_to_hex(&i.id_commitment())),
                    removed_at_ms: r.removed_at_ms,
                })
                .collect(),
        })
    }
}

/// Page `page` (wrapping around) of `items` in pages of `size`, and the page after it.
fn page_of<T>(items: &[T], page: usize, size: usize) -> (&[T], usize) {
    let pages = items.len().div_ceil(size).max(1);
    let p = page % pages;
    let start = p * size;
    (
        &items[start..(start + size).min(items.len())],
        (p + 1) % pages,
    )
}

#[cfg(test)]
mod tests {
    use super::page_of;

    #[test]
    fn removal_pages_cover_every_removal_and_wrap_around() {
        let items: Vec<u32> = (0..2500).collect();
        let (mut seen, mut page) = (Vec::new(), 0);
        for _ in 0..3 {
            let (slice, next) = page_of(&items, page, 1024);
            seen.extend_from_slice(slice);
            page = next;
        }
        assert_eq!(seen, items);
        assert_eq!(page, 0, "after the last page comes the first");
        assert_eq!(page_of(&items[..5], 7, 1024), (&items[..5], 0));
        assert_eq!(page_of::<u32>(&[], 3, 1024), (&[][..], 0));
    }
}
