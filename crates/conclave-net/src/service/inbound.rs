//! What arrives on the two gossipsub channels: signed messages are validated here, once per
//! message, and reported back to gossipsub (which forwards only what is accepted); anonymous
//! messages are held and handed to the application's validator over a bounded queue.

use std::sync::Arc;

use conclave_core::{Clock, MembershipView, PeerId, TimestampError, TopicName};
use libp2p::gossipsub::{self, MessageAcceptance};
use tokio::sync::mpsc;

use super::types::{Acceptance, AnonymousMessage, AnonymousMessageId, NetworkEvent, Route};
use crate::behaviour::{anonymous_topic_name, topic_name};
use crate::catchup::log::RetainedMessage;
use crate::metrics::{MessageLabels, NetMetrics};
use crate::validation::{validate_signed, Rejection, Validated, ValidationLimits};

/// What became of a signed message.
pub(crate) enum Judged {
    /// Valid: to retain and deliver.
    Accepted(RetainedMessage, Validated),
    /// Refused, with the event that says why.
    Refused(NetworkEvent),
    /// Not taken, nobody at fault: a late copy (older than the timestamp tolerance, within
    /// the retention window).
    Ignored,
}

pub(crate) struct Inbound {
    pub limits: ValidationLimits,
    /// How old a message may be and still be a late copy rather than a replay (the catch-up
    /// retention window).
    pub retention_ms: u64,
    /// Anonymous messages waiting for the application's verdict.
    pub anonymous: mpsc::Sender<AnonymousMessage>,
    pub metrics: NetMetrics,
}

impl Inbound {
    /// Judges a signed-channel message: accepted (to retain and deliver), or the rejection.
    pub fn signed(
        &self,
        gs: &mut gossipsub::Behaviour,
        view: &MembershipView,
        clock: &Arc<dyn Clock>,
        propagation_source: PeerId,
        message_id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) -> Judged {
        let Some(topic) = topic_name(&message.topic) else {
            let reason = Rejection::ForeignTopic(message.topic.to_string());
            return Judged::Refused(self.reject(
                gs,
                &message_id,
                &propagation_source,
                message.source,
                String::new(),
                reason,
            ));
        };
        let verdict = validate_signed(
            view,
            clock.moment(),
            clock.now_ms(),
            self.limits,
            message.source,
            &topic,
            &message.data,
        );
        let v = match verdict {
            Ok(v) => v,
            // Late, not forged: a connection that was cut resumes with what it queued. Not
            // forwarded, nobody penalized; catch-up brings it with the retention window's
            // checks. Older than that, it is a replay.
            Err(Rejection::Timestamp(TimestampError::TooOld { age_ms, .. }))
                if age_ms <= self.retention_ms =>
            {
                self.ignore(gs, &message_id, &propagation_source, &topic);
                return Judged::Ignored;
            }
            Err(reason) => {
                let topic = topic.to_string();
                return Judged::Refused(self.reject(
                    gs,
                    &message_id,
                    &propagation_source,
                    message.source,
                    topic,
                    reason,
                ));
            }
        };
        gs.report_message_validation_result(
            &message_id,
            &propagation_source,
            MessageAcceptance::Accept,
        );
        self.metrics
            .messages
            .get_or_create(&MessageLabels {
                topic: topic.to_string(),
                outcome: "accepted",
                reason: "ok",
            })
            .inc();
        let retained = RetainedMessage {
            topic,
            source: v.source,
            timestamp_ms: v.envelope.timestamp_ms,
            id: message_id.0.as_slice().try_into().unwrap_or_default(),
            data: message.data.into(),
        };
        Judged::Accepted(retained, v)
    }

    /// Reports `Ignore` for a late copy (or one already held) and counts it.
    pub fn ignore(
        &self,
        gs: &mut gossipsub::Behaviour,
        message_id: &gossipsub::MessageId,
        propagation_source: &PeerId,
        topic: &TopicName,
    ) {
        gs.report_message_validation_result(
            message_id,
            propagation_source,
            MessageAcceptance::Ignore,
        );
        self.metrics
            .messages
            .get_or_create(&MessageLabels {
                topic: topic.to_string(),
                outcome: "ignored",
                reason: "late",
            })
            .inc();
    }

    /// Reports `Reject` to gossipsub (which lowers the forwarder's score and stops the message
    /// here) and counts it.
    fn reject(
        &self,
        gs: &mut gossipsub::Behaviour,
        message_id: &gossipsub::MessageId,
        propagation_source: &PeerId,
        source: Option<PeerId>,
        topic: String,
        reason: Rejection,
    ) -> NetworkEvent {
        tracing::debug!(?source, forwarder = %propagation_source, %reason, "message rejected");
        gs.report_message_validation_result(
            message_id,
            propagation_source,
            MessageAcceptance::Reject,
        );
        self.metrics
            .messages
            .get_or_create(&MessageLabels {
                topic,
                outcome: "rejected",
                reason: reason.label(),
            })
            .inc();
        NetworkEvent::MessageRejected { source, reason }
    }

    /// Hands an anonymous message to the application's validator; when its queue is full the
    /// message is ignored (not forwarded, nobody penalized) and counted.
    pub fn anonymous(&self, gs: &mut gossipsub::Behaviour, event: gossipsub::Event) {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let id = AnonymousMessageId {
            message_id,
            route: Route::Gossip {
                source: propagation_source,
            },
        };
        let Some(topic) = anonymous_topic_name(&message.topic) else {
            report_anonymous(gs, &id, Acceptance::Reject);
            return;
        };
        let held = AnonymousMessage {
            topic,
            data: message.data,
            id,
        };
        if let Err(e) = self.anonymous.try_send(held) {
            let id = match e {
                mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m.id,
            };
            self.metrics.anonymous_dropped.inc();
            report_anonymous(gs, &id, Acceptance::Ignore);
        }
    }
}

/// Passes the application's verdict on a held anonymous message to gossipsub.
pub(crate) fn report_anonymous(
    gs: &mut gossipsub::Behaviour,
    id: &AnonymousMessageId,
    acceptance: Acceptance,
) {
    let acceptance = match acceptance {
        Acceptance::Accept => MessageAcceptance::Accept,
        Acceptance::Ignore => MessageAcceptance::Ignore,
        Acceptance::Reject | Acceptance::Forged => MessageAcceptance::Reject,
    };
    if let Route::Gossip { source } = id.route {
        gs.report_message_validation_result(&id.message_id, &source, acceptance);
    }
}
