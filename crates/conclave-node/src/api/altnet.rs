//! The chain-view watchdog, the header server for members' polled drivers, and the transport
//! drivers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use conclave_api::WatchdogAnswer;
#[cfg(feature = "altnet")]
use {axum::routing::get, axum::Router, tokio::sync::watch};

use super::{error, ApiError, ApiState};

/// The watchdog's raised anomalies and the head it last saw.
pub(super) async fn watchdog(State(s): State<ApiState>) -> Result<Json<WatchdogAnswer>, ApiError> {
    match &s.watchdog {
        Some(w) => Ok(Json(w.borrow().clone())),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "the watchdog is not running (needs `[watchdog] enabled = true` and a chain source)",
        )),
    }
}

#[cfg(feature = "altnet")]
#[derive(serde::Deserialize)]
pub(super) struct HeaderQuery {
    from: u64,
    count: Option<u32>,
}

/// The polled header driver's server side: our source's recent headers from `from`, signed by
/// the node key so the asker can count us towards f+1 operators.
#[cfg(feature = "altnet")]
pub(super) async fn altnet_headers(
    State(s): State<ApiState>,
    axum::extract::Query(q): axum::extract::Query<HeaderQuery>,
) -> Result<Json<crate::header_answers::SignedHeaders>, ApiError> {
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
    Ok(Json(crate::header_answers::SignedHeaders::sign(
        &s.net.current(),
        q.from,
        &entries,
    )))
}

/// The read-only header listener (`[altnet] http_listen`): `GET /v1/altnet/headers` and nothing
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
pub(super) async fn altnet_headers() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no header serving",
    )
}

/// Every transport driver: capabilities and health.
#[cfg(feature = "altnet")]
pub(super) async fn altnet_drivers(
    State(s): State<ApiState>,
) -> Result<Json<conclave_api::DriversAnswer>, ApiError> {
    use conclave_api::{Capabilities, DeliveryMode, DriverAnswer, DriverHealth, PathKind};
    let Some(drivers) = &s.drivers else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "the drivers run with the watchdog (`[watchdog] enabled = true` and a chain source)",
        ));
    };
    let drivers = drivers
        .iter()
        .map(|d| {
            let c = d.capabilities();
            let h = d.health();
            DriverAnswer {
                name: d.name().to_owned(),
                capabilities: Capabilities {
                    send: c.send,
                    receive: c.receive,
                    delivery: match c.delivery {
                        conclave_altnet::Delivery::Push => DeliveryMode::Push,
                        conclave_altnet::Delivery::Polled => DeliveryMode::Polled,
                    },
                    carries: c.carries.iter().map(|k| k.label().to_owned()).collect(),
                    path: match c.path {
                        conclave_altnet::PathKind::Direct => PathKind::Direct,
                        conclave_altnet::PathKind::Relayed => PathKind::Relayed,
                    },
                },
                health: DriverHealth {
                    state: h.state.label().to_owned(),
                    reason: match &h.state {
                        conclave_altnet::DriverState::Down(r) => Some(r.clone()),
                        _ => None,
                    },
                    endpoints: h.endpoints,
                    peers: h.peers,
                },
            }
        })
        .collect();
    Ok(Json(conclave_api::DriversAnswer { drivers }))
}

/// Starts or stops one driver: an operator taking a transport out (a firewall change, a
/// suspected bad path) without restarting the node, or putting it back.
#[cfg(feature = "altnet")]
pub(super) async fn altnet_driver_action(
    State(s): State<ApiState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<conclave_api::DriverChanged>, ApiError> {
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
    Ok(Json(conclave_api::DriverChanged {
        state: driver.health().state.label().to_owned(),
        driver: name,
    }))
}

#[cfg(not(feature = "altnet"))]
pub(super) async fn altnet_driver_action(Path(_): Path<(String, String)>) -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no transport drivers",
    )
}

#[cfg(not(feature = "altnet"))]
pub(super) async fn altnet_drivers() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "built without the altnet feature: no transport drivers",
    )
}
