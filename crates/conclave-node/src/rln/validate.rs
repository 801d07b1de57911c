//! Judging anonymous messages: a gossip copy in full (checks, proof, nullifier log commit,
//! delivery, slashing on a double signal), a stem hop without committing anything.

use std::sync::Arc;

use conclave_net::{Acceptance, AnonymousMessage, Arrival, NetworkService};
use conclave_rln::{Ignored, Outcome, Rejection};
use prost::Message as _;

use super::{now_ms, slash_topic, AnonymousDelivery, RlnNode, SlashingNotice};

impl RlnNode {
    /// Judges `m` and reports the verdict; true when its proof did not verify (the forwarder's
    /// fault: every node verifies before it forwards).
    pub(super) async fn validate(
        self: &Arc<Self>,
        service: NetworkService,
        m: AnonymousMessage,
    ) -> bool {
        let now = now_ms();
        if let Some(record) = &self.arrivals {
            record.record(&m.id, now);
        }
        if m.id.arrival() == Arrival::Stem {
            return self.check_stem_hop(service, m, now).await;
        }
        let pending = self.channel().precheck(m.topic.as_str(), &m.data, now);
        let outcome = match pending {
            Err(outcome) => outcome,
            Ok(pending) => {
                let (proof, values) = pending.proof();
                match self.pool.verify(proof, values).await {
                    Ok(v) => {
                        self.metrics
                            .rln
                            .verify_seconds
                            .observe(v.took.as_secs_f64());
                        let mut ch = self.channel();
                        ch.commit(pending, v.value, now_ms())
                    }
                    Err(_) => Outcome::Ignore(Ignored::Busy),
                }
            }
        };
        let acceptance = match &outcome {
            Outcome::Accept(_) => Acceptance::Accept,
            Outcome::Ignore(_) => Acceptance::Ignore,
            Outcome::Reject(Rejection::InvalidProof) => Acceptance::Forged,
            Outcome::Reject(_) => Acceptance::Reject,
            // The second message of a double signal is not forwarded, but its forwarder is not
            // at fault (it could not know before it saw both); the evidence travels on
            // `rln-slash` and the author's leaf is removed.
            Outcome::Slash(_) => Acceptance::Ignore,
        };
        let _ = service.report_anonymous(m.id.clone(), acceptance).await;
        match outcome {
            Outcome::Accept(msg) => {
                self.count("accepted", "ok");
                let _ = self.deliveries.send(Arc::new(AnonymousDelivery {
                    topic: m.topic,
                    payload: msg.payload,
                    epoch: msg.epoch,
                    message_id: m.id.hex(),
                }));
            }
            Outcome::Ignore(why) => self.count("ignored", why.label()),
            Outcome::Reject(why) => {
                tracing::debug!(reason = %why, "anonymous message rejected");
                self.count("rejected", why.label());
            }
            Outcome::Slash(evidence) => {
                self.count("ignored", "double_signal");
                tracing::warn!("double signal on the anonymous channel: gossiping the evidence");
                let notice = SlashingNotice {
                    evidence: Some(evidence.clone()),
                    removed_secrets: Vec::new(),
                };
                if let Err(e) = self
                    .net
                    .publish(slash_topic(), notice.encode_to_vec())
                    .await
                {
                    tracing::warn!(error = %e, "cannot gossip slashing evidence");
                }
                if let Err(e) = self.slash(&evidence).await {
                    tracing::warn!(error = %e, "own slashing evidence not acted on");
                }
            }
        }
        acceptance == Acceptance::Forged
    }

    /// A stem hop: the same checks as gossip (format, topic, epoch, root, nullifier log, the
    /// proof), but nothing is committed or delivered. The frame's gossip copy is judged in full
    /// later, so every node forwards it in gossip after the same work, and its stem hops are
    /// not told apart by how fast they pass it on.
    async fn check_stem_hop(
        self: &Arc<Self>,
        service: NetworkService,
        m: AnonymousMessage,
        now: u64,
    ) -> bool {
        let pending = self.channel().precheck(m.topic.as_str(), &m.data, now);
        let acceptance = match pending {
            Err(Outcome::Reject(why)) => {
                self.count("rejected", why.label());
                Acceptance::Reject
            }
            Err(Outcome::Ignore(why)) => {
                self.count("ignored", why.label());
                Acceptance::Ignore
            }
            Err(_) => Acceptance::Ignore,
            Ok(pending) => {
                let (proof, values) = pending.proof();
                match self.pool.verify(proof, values).await {
                    Ok(v) if v.value => Acceptance::Accept,
                    Ok(_) => {
                        self.count("rejected", Rejection::InvalidProof.label());
                        Acceptance::Forged
                    }
                    Err(_) => {
                        self.count("ignored", Ignored::Busy.label());
                        Acceptance::Ignore
                    }
                }
            }
        };
        let _ = service.report_anonymous(m.id, acceptance).await;
        acceptance == Acceptance::Forged
    }
}
