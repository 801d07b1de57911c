//! The local HTTP API for signers written in other languages: publish, subscribe (WebSocket),
//! peers, membership, health, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use conclave_core::{Clock, MembershipView, Moment, PeerId, TopicName};
use conclave_net::{Delivery, PeerSnapshot, PublishError, PublishOutcome};
use conclave_registry::RegistryStatus;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use crate::metrics::NodeMetrics;
use crate::network::NodeNetwork;
use crate::readiness::Readiness;

/// What the handlers share. Every field is a handle or a snapshot receiver: the API never owns
/// state, it reads what the registry task and the network worker publish.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub net: NodeNetwork,
    /// The chain-view watchdog's state, when it runs.
    pub watchdog: Option<watch::Receiver<Value>>,
    /// The chain as the node acts on it (and the headers it serves), when it has one.
    #[cfg(feature = "altnet")]
    pub chain: Option<crate::chain_view::ChainView>,
    /// The transport drivers, when the watchdog runs.
    #[cfg(feature = "altnet")]
    pub drivers: Option<Arc<Vec<Arc<dyn conclave_altnet::Driver>>>>,
    /// Header answers being built at once (each signs up to 128 headers); beyond it, 503.
    #[cfg(feature = "altnet")]
    pub header_permits: Arc<tokio::sync::Semaphore>,
    /// The anonymous channel, when `rln = true`.
    pub rln: Option<Arc<crate::rln::RlnNode>>,
    pub store: Arc<crate::store::StateStore>,
    pub view: watch::Receiver<Arc<MembershipView>>,
    pub registry_status: watch::Receiver<RegistryStatus>,
    pub deliveries: broadcast::Sender<Arc<Delivery>>,
    /// The metrics registry of the current network service (replaced on key rotation).
    pub registry: watch::Receiver<Arc<Registry>>,
    pub metrics: Arc<NodeMetrics>,
    pub readiness: Readiness,
    pub clock: Arc<dyn Clock>,
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/publish/{topic}", post(publish))
        .route("/v1/subscribe/{topic}", get(subscribe))
        .route("/v1/peers", get(peers))
        .route("/v1/membership", get(membership))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/v1/coordination/windows", get(coord_windows))
        .route("/v1/coordination/faults", get(coord_faults))
        .route("/v1/rln/publish/{topic}", post(rln_publish))
        .route("/v1/rln/subscribe/{topic}", get(rln_subscribe))
        .route("/v1/rln/removed", get(rln_removed))
        .route("/v1/rln/status", get(rln_status))
        .route("/v1/altnet/watchdog", get(watchdog))
        .route("/v1/altnet/headers", get(altnet_headers))
        .route("/v1/altnet/drivers", get(altnet_drivers))
        .route(
            "/v1/altnet/drivers/{name}/{action}",
            post(altnet_driver_action),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// An API failure: a status and a message saying what to fix.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn error(status: StatusCode, message: impl ToString) -> ApiError {
    ApiError(status, message.to_string())
}

fn parse_topic(topic: &str) -> Result<TopicName, ApiError> {
    topic
        .parse()
        .map_err(|e: conclave_core::TopicNameError| error(StatusCode::BAD_REQUEST, e))
}

async fn publish(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let topic = parse_topic(&topic)?;
    let response = match s.net.publish(topic, body.to_vec()).await {
        Ok(PublishOutcome::Published { message_id }) => (
            StatusCode::OK,
            Json(json!({ "status": "published", "message_id": message_id })),
        )
            .into_response(),
        Ok(PublishOutcome::Queued { position }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "queued", "position": position })),
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

/// The JSON form of a delivered message, as streamed to subscribers.
pub(crate) fn delivery_json(d: &Delivery) -> Value {
    json!({
        "topic": d.topic.as_str(),
        "operator": d.operator.to_string(),
        "node": d.source.to_string(),
        "timestamp_ms": d.timestamp_ms,
        "message_id": d.message_id,
        "payload_base64": base64::engine::general_purpose::STANDARD.encode(&d.payload),
    })
}

async fn subscribe(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let topic = parse_topic(&topic)?;
    s.net
        .subscribe(topic.clone())
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e))?;
    let rx = s.deliveries.subscribe();
    Ok(ws.on_upgrade(move |socket| stream_deliveries(socket, topic, rx, s)))
}

async fn stream_deliveries(
    socket: WebSocket,
    topic: TopicName,
    rx: broadcast::Receiver<Arc<Delivery>>,
    s: ApiState,
) {
    stream(socket, rx, s, move |d: &Delivery| {
        (d.topic == topic).then(|| delivery_json(d))
    })
    .await
}

/// Streams what `pick` selects from `rx` as JSON text frames until the client leaves or the
/// node stops. A slow subscriber loses messages rather than stalling the node; it is told how
/// many.
async fn stream<T>(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<T>>,
    s: ApiState,
    pick: impl Fn(&T) -> Option<Value>,
) {
    let mut shutdown = s.shutdown.clone();
    s.metrics.subscribers.inc();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(d) => {
                    if let Some(v) = pick(&d) {
                        if socket.send(WsMessage::Text(v.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    s.metrics.subscriber_lagged.inc_by(n);
                    let note = json!({ "lagged": n }).to_string();
                    if socket.send(WsMessage::Text(note.into())).await.is_err() {
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

fn rln_of(s: &ApiState) -> Result<Arc<crate::rln::RlnNode>, ApiError> {
    s.rln.clone().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "the anonymous channel is off on this node (set `rln = true`)",
        )
    })
}

async fn rln_publish(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    use crate::rln::RlnPublishError as E;
    let rln = rln_of(&s)?;
    let topic = parse_topic(&topic)?;
    let published = tokio::time::timeout(
        crate::rln::PUBLISH_TIMEOUT,
        rln.publish(topic, body.to_vec()),
    )
    .await
    .map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "proving took too long; try again",
        )
    })?;
    match published {
        Ok(p) => Ok((
            StatusCode::OK,
            Json(json!({
                "status": "published",
                "message_id": p.message_id,
                "epoch": p.epoch,
                "proof_ms": p.proof_ms,
            })),
        )
            .into_response()),
        Err(e @ (E::NoIdentity | E::NotAMember)) => Err(error(StatusCode::CONFLICT, e)),
        Err(e @ E::Quota(crate::store::AllocateError::QuotaExhausted { .. })) => {
            Err(error(StatusCode::TOO_MANY_REQUESTS, e))
        }
        Err(e @ E::Net(PublishError::TooLarge { .. })) => {
            Err(error(StatusCode::PAYLOAD_TOO_LARGE, e))
        }
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}

async fn rln_subscribe(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let rln = rln_of(&s)?;
    let topic = parse_topic(&topic)?;
    let rx = rln.deliveries.subscribe();
    Ok(ws.on_upgrade(move |socket| {
        stream(socket, rx, s, move |d: &crate::rln::AnonymousDelivery| {
            (d.topic == topic).then(|| {
                json!({
                    "topic": d.topic.as_str(),
                    "timestamp_ms": d.timestamp_ms,
                    "epoch": d.epoch,
                    "message_id": d.message_id,
                    "payload_base64": base64::engine::general_purpose::STANDARD.encode(&d.payload),
                })
            })
        })
    }))
}

async fn rln_removed(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    rln_of(&s)?
        .removed()
        .map(Json)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn rln_status(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(rln_of(&s)?.status()))
}

pub(crate) fn peers_json(snap: &PeerSnapshot) -> Value {
    json!({
        "local": snap.local.to_string(),
        "listen": snap.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "peers": snap.peers.iter().map(|(p, i)| json!({
            "peer_id": p.to_string(),
            "operator": i.operator.map(|o| o.to_string()),
            "addresses": i.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "connections": i.connections,
            "topics": i.topics.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

async fn peers(State(s): State<ApiState>) -> Json<Value> {
    let snap = s.net.peers();
    Json(peers_json(&snap))
}

async fn membership(State(s): State<ApiState>) -> Json<Value> {
    let view = s.view.borrow().clone();
    let status = s.registry_status.borrow().clone();
    let connected = s.net.peers();
    let mut v = describe_view(&view, s.clock.moment(), &|p| {
        Some(connected.peers.contains_key(p))
    });
    v["revision"] = json!(status.revision);
    v["last_error"] = json!(status.last_error);
    v["rejected_updates"] = json!(status.rejected_updates);
    v["stale"] = json!(status.stale);
    v["synced_block"] = json!(status.synced_block);
    v["skipped"] = json!(status.skipped);
    Json(v)
}

/// A view as JSON for operators (`/v1/membership`, `conclave registry show`): operators with
/// their node keys, whether each is authorized at `at` and, where known, connected.
pub fn describe_view(
    view: &MembershipView,
    at: Moment,
    connected: &dyn Fn(&PeerId) -> Option<bool>,
) -> Value {
    let operators: Vec<Value> = view
        .operators()
        .map(|(op, nodes)| {
            let nodes: Vec<Value> = nodes
                .iter()
                .filter_map(|p| view.nodes().find(|(q, _)| *q == p))
                .map(|(p, a)| {
                    json!({
                        "peer_id": p.to_string(),
                        "scopes": a.scopes.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                        "valid_from_block": a.valid_from_block,
                        "expiry": a.expiry.map(|e| format!("{e:?}")),
                        "authorized_now": view.authorization(p, at).is_ok(),
                        "connected": connected(p),
                        "addresses": a.addresses.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "address": op.to_string(), "nodes": nodes })
        })
        .collect();
    json!({
        "source": view.source().to_string(),
        "operators": operators,
        "groups": view.groups().iter().map(|g| json!({
            "id": g.id.to_string(),
            "seats": g.seats.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "rln": view.rln_members().map(|m| json!({
            "index": m.index,
            "operator": m.operator.to_string(),
            "rate_commitment": format!("0x{}", hex::encode(m.rate_commitment)),
            "limit": m.limit,
        })).collect::<Vec<_>>(),
    })
}

/// The watchdog's raised anomalies and the head it last saw.
async fn watchdog(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    match &s.watchdog {
        Some(w) => Ok(Json(w.borrow().clone())),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "the watchdog is not running (needs `watchdog = true` and a chain source)",
        )),
    }
}

#[cfg(feature = "altnet")]
#[derive(serde::Deserialize)]
struct HeaderQuery {
    from: u64,
    count: Option<u32>,
}

/// The polled header driver's server side: our source's recent headers from `from`, signed by
/// the node key so the asker can count us towards f+1 operators.
#[cfg(feature = "altnet")]
async fn altnet_headers(
    State(s): State<ApiState>,
    axum::extract::Query(q): axum::extract::Query<HeaderQuery>,
) -> Result<Json<crate::drivers::SignedHeaders>, ApiError> {
    let Some(chain) = &s.chain else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "this node follows no chain (no EVM registry or clock chain)",
        ));
    };
    let _permit = s.header_permits.try_acquire().map_err(|_| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many header requests at once; retry shortly",
        )
    })?;
    let count = q
        .count
        .unwrap_or(conclave_net::MAX_HEADERS_PER_REQUEST)
        .min(conclave_net::MAX_HEADERS_PER_REQUEST);
    let entries = chain.recent().borrow().range(q.from, count);
    Ok(Json(crate::drivers::SignedHeaders::sign(
        &s.net.current(),
        q.from,
        &entries,
    )))
}

/// The read-only header listener (`altnet_http_listen`): `GET /v1/altnet/headers` and nothing
/// else, so members' polled drivers never reach the publishing API.
#[cfg(feature = "altnet")]
pub(crate) async fn serve_headers(
    listener: tokio::net::TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/v1/altnet/headers", get(altnet_headers))
        .with_state(state);
    let graceful = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(error = %e, "header listener failed");
    }
}

#[cfg(not(feature = "altnet"))]
async fn altnet_headers() -> Result<Json<Value>, ApiError> {
    Err(error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no header serving",
    ))
}

/// Every transport driver: capabilities and health.
#[cfg(feature = "altnet")]
async fn altnet_drivers(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let Some(drivers) = &s.drivers else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "the drivers run with the watchdog (`watchdog = true` and a chain source)",
        ));
    };
    let list: Vec<Value> = drivers
        .iter()
        .map(|d| {
            let c = d.capabilities();
            let h = d.health();
            json!({
                "name": d.name(),
                "capabilities": {
                    "send": c.send,
                    "receive": c.receive,
                    "delivery": match c.delivery {
                        conclave_altnet::Delivery::Push => "push",
                        conclave_altnet::Delivery::Polled => "polled",
                    },
                    "carries": c.carries.iter().map(|k| k.label()).collect::<Vec<_>>(),
                    "path": match c.path {
                        conclave_altnet::PathKind::Direct => "direct",
                        conclave_altnet::PathKind::Relayed => "relayed",
                    },
                },
                "health": {
                    "state": h.state.label(),
                    "reason": match &h.state {
                        conclave_altnet::DriverState::Down(r) => Some(r.clone()),
                        _ => None,
                    },
                    "endpoints": h.endpoints,
                    "peers": h.peers,
                },
            })
        })
        .collect();
    Ok(Json(json!({ "drivers": list })))
}

/// Starts or stops one driver: an operator taking a transport out (a firewall change, a
/// suspected bad path) without restarting the node, or putting it back.
#[cfg(feature = "altnet")]
async fn altnet_driver_action(
    State(s): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let driver = s
        .drivers
        .as_ref()
        .and_then(|ds| ds.iter().find(|d| d.name() == name).cloned())
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("no driver `{name}` (GET /v1/altnet/drivers lists them)"),
            )
        })?;
    match action.as_str() {
        "start" => driver
            .start()
            .await
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?,
        "stop" => driver.stop().await,
        other => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("unknown action `{other}`: expected `start` or `stop`"),
            ))
        }
    }
    tracing::info!(driver = %name, %action, "driver changed by the API");
    Ok(Json(
        json!({ "driver": name, "state": driver.health().state.label() }),
    ))
}

#[cfg(not(feature = "altnet"))]
async fn altnet_driver_action(Path(_): Path<(String, String)>) -> Result<Json<Value>, ApiError> {
    Err(error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no transport drivers",
    ))
}

#[cfg(not(feature = "altnet"))]
async fn altnet_drivers() -> Result<Json<Value>, ApiError> {
    Err(error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no transport drivers",
    ))
}

/// How many settled windows the coordination endpoints return.
const COORD_WINDOWS_SHOWN: usize = 200;

async fn settled_windows(s: &ApiState) -> Result<Vec<conclave_coord::WindowOutcome>, ApiError> {
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.windows(COORD_WINDOWS_SHOWN))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn coord_windows(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "windows": settled_windows(&s).await? })))
}

async fn coord_faults(State(s): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let faults: Vec<_> = settled_windows(&s)
        .await?
        .into_iter()
        .flat_map(|w| w.faults)
        .collect();
    Ok(Json(json!({ "faults": faults })))
}

async fn readyz(State(s): State<ApiState>) -> Response {
    let r = s.readiness.evaluate();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "ready": r.ready,
            "connected_members": r.connected_members,
            "quorum": r.quorum,
            "registry_stale": r.registry_stale,
            "chain": r.chain_head.map(|head| json!({
                "head": head,
                "following": if r.on_fallback { "fallback" } else { "source" },
            })),
        })),
    )
        .into_response()
}

async fn metrics(State(s): State<ApiState>) -> Response {
    s.metrics.ready.set(i64::from(s.readiness.evaluate().ready));
    let mut text = String::new();
    let registry = s.registry.borrow().clone();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
