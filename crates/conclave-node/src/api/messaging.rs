//! The signed channel: publish, subscribe (WebSocket) and the connection table.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use conclave_api::{DeliveryFrame, Lagged, PeerAnswer, PeersAnswer, PublishAnswer};
use std::collections::HashMap;

use conclave_core::{PeerId, TopicName};
use conclave_net::{Delivery, PeerSnapshot, PublishError, PublishOutcome};
use serde::Serialize;
use tokio::sync::broadcast;

use super::{error, parse_topic, ApiError, ApiState};

pub(super) async fn publish(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let topic = parse_topic(&topic)?;
    let response = match s.net.publish(topic, body.to_vec()).await {
        Ok(PublishOutcome::Published { message_id }) => (
            StatusCode::OK,
            Json(PublishAnswer::Published { message_id }),
        )
            .into_response(),
        Ok(PublishOutcome::Queued { position }) => (
            StatusCode::ACCEPTED,
            Json(PublishAnswer::Queued { position }),
        )
            .into_response(),
        Err(e @ PublishError::NotAuthorized { .. }) => return Err(error(StatusCode::FORBIDDEN, e)),
        Err(e @ PublishError::TooLarge { .. }) => {
            return Err(error(StatusCode::PAYLOAD_TOO_LARGE, e))
        }
        Err(
            e @ (PublishError::QueueFull { .. }
            | PublishError::NotSent(_)
            | PublishError::Stopped
            | PublishError::HandedOver),
        ) => return Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
    };
    Ok(response)
}

/// A delivered message as streamed to subscribers.
pub(crate) fn delivery_frame(d: &Delivery) -> DeliveryFrame {
    DeliveryFrame {
        topic: d.topic.as_str().to_owned(),
        operator: d.operator.to_string(),
        node: d.source.to_string(),
        timestamp_ms: d.timestamp_ms,
        message_id: d.message_id.clone(),
        payload_base64: base64::engine::general_purpose::STANDARD.encode(&d.payload),
        caught_up: d.caught_up,
        replayed: false,
    }
}

/// `?since_ms=`: first replay what this node retains of the topic from then on.
#[derive(serde::Deserialize)]
pub(super) struct SubscribeQuery {
    since_ms: Option<u64>,
}

pub(super) async fn subscribe(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    axum::extract::Query(q): axum::extract::Query<SubscribeQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let topic = parse_topic(&topic)?;
    s.net
        .subscribe(topic.clone())
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
    // Live deliveries are taken from now on, before the replay is read: none falls between.
    let rx = s.deliveries.subscribe();
    let replay = match q.since_ms {
        Some(since) => s
            .net
            .current()
            .retained(topic.clone(), since)
            .await
            .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?,
        None => Vec::new(),
    };
    Ok(ws.on_upgrade(move |socket| stream_deliveries(socket, topic, replay, rx, s)))
}

async fn stream_deliveries(
    mut socket: WebSocket,
    topic: TopicName,
    replay: Vec<Delivery>,
    rx: broadcast::Receiver<Arc<Delivery>>,
    s: ApiState,
) {
    let mut replayed = std::collections::HashSet::with_capacity(replay.len());
    for d in replay {
        let frame = DeliveryFrame {
            replayed: true,
            ..delivery_frame(&d)
        };
        if send_json(&mut socket, &frame).await.is_err() {
            return;
        }
        replayed.insert(d.message_id);
    }
    // A message replayed and then delivered live (it was in flight) goes out once.
    stream(socket, rx, s, move |d: &Delivery| {
        (d.topic == topic && !replayed.contains(&d.message_id)).then(|| delivery_frame(d))
    })
    .await
}

/// Streams what `pick` selects from `rx` as JSON text frames until the client leaves or the
/// node stops. A slow subscriber loses messages rather than stalling the node; it is told how
/// many.
pub(super) async fn stream<T, F: Serialize>(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<T>>,
    s: ApiState,
    pick: impl Fn(&T) -> Option<F>,
) {
    let mut shutdown = s.shutdown.clone();
    s.metrics.subscribers.inc();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(d) => {
                    if let Some(frame) = pick(&d) {
                        if send_json(&mut socket, &frame).await.is_err() {
                            break;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    s.metrics.subscriber_lagged.inc_by(n);
                    if send_json(&mut socket, &Lagged { lagged: n }).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => break,
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
    s.metrics.subscribers.dec();
}

/// Sends one JSON text frame.
async fn send_json(socket: &mut WebSocket, frame: &impl Serialize) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).map_err(axum::Error::new)?;
    socket.send(WsMessage::Text(text.into())).await
}

/// The connection table as the API shows it.
pub(crate) fn peers_answer(snap: &PeerSnapshot, scores: &HashMap<PeerId, f64>) -> PeersAnswer {
    PeersAnswer {
        local: snap.local.to_string(),
        listen: snap.listen.iter().map(|a| a.to_string()).collect(),
        peers: snap
            .peers
            .iter()
            .map(|(p, i)| PeerAnswer {
                peer_id: p.to_string(),
                operator: i.operator.map(|o| o.to_string()),
                addresses: i.addresses.iter().map(|a| a.to_string()).collect(),
                connections: i.connections,
                topics: i.topics.iter().map(|t| t.as_str().to_owned()).collect(),
                anonymous_score: scores.get(p).copied(),
            })
            .collect(),
    }
}

pub(super) async fn peers(State(s): State<ApiState>) -> Json<PeersAnswer> {
    let scores = s.net.current().anonymous_scores().await.unwrap_or_default();
    Json(peers_answer(&s.net.peers(), &scores.into_iter().collect()))
}
