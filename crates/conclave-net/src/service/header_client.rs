//! The header protocol's two sides in the worker: answering members' requests from the chain
//! task's snapshot, and correlating our own requests with their answers by request id.

use std::collections::HashMap;
use std::sync::Arc;

use conclave_core::PeerId;
use libp2p::request_response::{self, OutboundRequestId};
use tokio::sync::watch;

use super::command::HeaderReplySender;
use crate::headers::{HeaderReply, HeaderRequest, RecentHeaders};
use crate::metrics::NetMetrics;
use crate::NetError;

/// Header requests in flight at once; beyond it a request is refused at once (each ends in an
/// answer or the request timeout, so the table drains).
const MAX_HEADER_REQUESTS: usize = 256;

type Protocol = request_response::Behaviour<crate::headers::HeaderCodec>;

pub(crate) struct HeaderClient {
    /// What we serve to header requests (written by the node's chain task).
    served: watch::Receiver<Arc<RecentHeaders>>,
    /// Our requests in flight, by request id.
    in_flight: HashMap<OutboundRequestId, HeaderReplySender>,
    metrics: NetMetrics,
}

impl HeaderClient {
    pub fn new(served: watch::Receiver<Arc<RecentHeaders>>, metrics: NetMetrics) -> Self {
        HeaderClient {
            served,
            in_flight: HashMap::new(),
            metrics,
        }
    }

    /// Sends our request to a connected member; refused at once when too many are in flight or
    /// the peer is not connected (dialing a stranger for one would bypass the redial schedule).
    pub fn request(
        &mut self,
        protocol: &mut Protocol,
        connected: bool,
        peer: PeerId,
        request: HeaderRequest,
        reply: HeaderReplySender,
    ) {
        let refused = |reason: String| NetError::HeaderRequest { peer, reason };
        if self.in_flight.len() >= MAX_HEADER_REQUESTS {
            let reason = format!("{MAX_HEADER_REQUESTS} header requests already in flight");
            let _ = reply.send(Err(refused(reason)));
        } else if !connected {
            let _ = reply.send(Err(refused("not connected".into())));
        } else {
            let id = protocol.send_request(&peer, request);
            self.in_flight.insert(id, reply);
        }
    }

    /// Serves a member's request or completes one of ours.
    pub fn on_event(
        &mut self,
        protocol: &mut Protocol,
        event: request_response::Event<HeaderRequest, HeaderReply>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let headers = self.served.borrow().range(request.from, request.count);
                tracing::debug!(%peer, from = request.from, served = headers.len(), "header request");
                self.metrics.headers_served.inc_by(headers.len() as u64);
                // An error only means the asker went away.
                let _ = protocol.send_response(channel, HeaderReply { headers });
            }
            Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.in_flight.remove(&request_id) {
                    let _ = reply.send(Ok(response.headers));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.in_flight.remove(&request_id) {
                    let reason = error.to_string();
                    let _ = reply.send(Err(NetError::HeaderRequest { peer, reason }));
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "header request not answered");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
