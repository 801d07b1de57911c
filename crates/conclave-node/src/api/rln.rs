//! The anonymous channel: publish with a proof, subscribe, the tree and its removals.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use conclave_api::{
    AnonymousDeliveryFrame, RlnArrivalsAnswer, RlnPublishAnswer, RlnRemovedAnswer, RlnStatusAnswer,
};
use conclave_net::PublishError;

use super::messaging::stream;
use super::{error, parse_topic, ApiError, ApiState};

pub(super) fn rln_of(s: &ApiState) -> Result<Arc<crate::rln::RlnNode>, ApiError> {
    s.rln.clone().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "the anonymous channel is off on this node (set `[rln] enabled = true`)",
        )
    })
}

pub(super) async fn rln_publish(
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
            Json(RlnPublishAnswer::Published {
                message_id: p.message_id,
                epoch: p.epoch,
                proof_ms: p.proof_ms,
            }),
        )
            .into_response()),
        Err(e @ (E::NoIdentity | E::NotAMember)) => Err(error(StatusCode::CONFLICT, e)),
        Err(e @ E::Quota(crate::store::AllocateError::QuotaExhausted { .. })) => {
            Err(error(StatusCode::TOO_MANY_REQUESTS, e))
        }
        Err(e @ (E::Net(PublishError::TooLarge { .. }) | E::TooLarge { .. })) => {
            Err(error(StatusCode::PAYLOAD_TOO_LARGE, e))
        }
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}

pub(super) async fn rln_subscribe(
    State(s): State<ApiState>,
    Path(topic): Path<String>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let rln = rln_of(&s)?;
    let topic = parse_topic(&topic)?;
    let rx = rln.deliveries.subscribe();
    Ok(ws.on_upgrade(move |socket| {
        stream(socket, rx, s, move |d: &crate::rln::AnonymousDelivery| {
            (d.topic == topic).then(|| AnonymousDeliveryFrame {
                topic: d.topic.as_str().to_owned(),
                epoch: d.epoch,
                message_id: d.message_id.clone(),
                payload_base64: base64::engine::general_purpose::STANDARD.encode(&d.payload),
            })
        })
    }))
}

pub(super) async fn rln_removed(
    State(s): State<ApiState>,
) -> Result<Json<RlnRemovedAnswer>, ApiError> {
    rln_of(&s)?
        .removed()
        .map(Json)
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
}

pub(super) async fn rln_status(
    State(s): State<ApiState>,
) -> Result<Json<RlnStatusAnswer>, ApiError> {
    Ok(Json(rln_of(&s)?.status()))
}

pub(super) async fn rln_arrivals(
    State(s): State<ApiState>,
) -> Result<Json<RlnArrivalsAnswer>, ApiError> {
    let rln = rln_of(&s)?;
    let record = rln.arrivals.as_ref().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "arrivals are not recorded on this node (set `[rln] record_arrivals`)",
        )
    })?;
    Ok(Json(record.answer()))
}
