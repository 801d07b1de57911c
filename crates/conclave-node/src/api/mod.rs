//! The local HTTP API for signers written in other languages: publish, subscribe (WebSocket),
//! peers, membership, health, readiness and Prometheus metrics. Every answer is a type of
//! `conclave-api`, so the devnet, the bench and the tests read what the node writes.

mod altnet;
mod membership;
mod messaging;
mod rln;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use conclave_api::{
    ChainFollowing, ErrorAnswer, FaultsAnswer, Following, ReadyAnswer, WatchdogAnswer,
    WindowsAnswer,
};
use conclave_core::{Clock, MembershipView, TopicName};
use conclave_net::Delivery;
use conclave_registry::RegistryStatus;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, watch};

#[cfg(feature = "altnet")]
pub(crate) use self::altnet::serve_headers;
use self::altnet::{altnet_driver_action, altnet_drivers, altnet_headers, watchdog};
pub use self::membership::describe_view;
use self::membership::membership;
use self::messaging::{peers, publish, subscribe};
use self::rln::{rln_arrivals, rln_publish, rln_removed, rln_status, rln_subscribe};
use crate::metrics::NodeMetrics;
use crate::network::NodeNetwork;
use crate::readiness::Readiness;

/// What the handlers share. Every field is a handle or a snapshot receiver: the API never owns
/// state, it reads what the registry task and the network worker publish.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub net: NodeNetwork,
    /// The chain-view watchdog's state, when it runs.
    pub watchdog: Option<watch::Receiver<WatchdogAnswer>>,
    /// The chain as the node acts on it (and the headers it serves), when it has one.
    #[cfg(feature = "altnet")]
    pub chain: Option<crate::chain_view::ChainView>,
    /// The transport drivers, when the watchdog runs.
    #[cfg(feature = "altnet")]
    pub drivers: Option<Arc<Vec<Arc<dyn conclave_altnet::Driver>>>>,
    /// Header answers being built at once (each signs up to 128 headers); beyond it, 503.
    #[cfg(feature = "altnet")]
    pub header_permits: Arc<tokio::sync::Semaphore>,
    /// The anonymous channel, when `[rln] enabled = true`.
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
        .route("/v1/rln/arrivals", get(rln_arrivals))
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
        (self.0, Json(ErrorAnswer { error: self.1 })).into_response()
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

/// How many settled windows the coordination endpoints return.
const COORD_WINDOWS_SHOWN: usize = 200;

async fn settled_windows(s: &ApiState) -> Result<Vec<conclave_coord::WindowOutcome>, ApiError> {
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || store.windows(COORD_WINDOWS_SHOWN))
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn coord_windows(State(s): State<ApiState>) -> Result<Json<WindowsAnswer>, ApiError> {
    Ok(Json(WindowsAnswer {
        windows: settled_windows(&s).await?,
    }))
}

async fn coord_faults(State(s): State<ApiState>) -> Result<Json<FaultsAnswer>, ApiError> {
    let faults: Vec<_> = settled_windows(&s)
        .await?
        .into_iter()
        .flat_map(|w| w.faults)
        .collect();
    Ok(Json(FaultsAnswer { faults }))
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
        Json(ReadyAnswer {
            ready: r.ready,
            member: r.member,
            not_ready: r.reasons(),
            connected_members: r.connected_members,
            quorum: r.quorum,
            registry_stale: r.registry_stale,
            chain: r.chain_head.map(|head| ChainFollowing {
                head,
                following: if r.on_fallback {
                    Following::Fallback
                } else {
                    Following::Source
                },
            }),
        }),
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
