//! The registry's view as this node acts on it.

use axum::extract::State;
use axum::Json;
use conclave_api::{
    GroupAnswer, MembershipAnswer, NodeAnswer, OperatorAnswer, RlnLeafAnswer, ViewAnswer,
};
use conclave_core::{MembershipView, Moment, PeerId};

use super::ApiState;

pub(super) async fn membership(State(s): State<ApiState>) -> Json<MembershipAnswer> {
    let view = s.view.borrow().clone();
    let status = s.registry_status.borrow().clone();
    let connected = s.net.peers();
    let view = describe_view(&view, s.clock.moment(), &|p| {
        Some(connected.peers.contains_key(p))
    });
    Json(MembershipAnswer {
        view,
        revision: status.revision,
        last_error: status.last_error,
        rejected_updates: status.rejected_updates,
        stale: status.stale,
        synced_block: status.synced_block,
        skipped: status.skipped,
        warnings: status.warnings,
    })
}

/// A view for operators (`/v1/membership`, `conclave registry show`): operators with their
/// node keys, whether each is authorized at `at` and, where known, connected.
pub fn describe_view(
    view: &MembershipView,
    at: Moment,
    connected: &dyn Fn(&PeerId) -> Option<bool>,
) -> ViewAnswer {
    let operators = view
        .operators()
        .map(|(op, nodes)| OperatorAnswer {
            address: op.to_string(),
            nodes: nodes
                .iter()
                .filter_map(|p| view.nodes().find(|(q, _)| *q == p))
                .map(|(p, a)| NodeAnswer {
                    peer_id: p.to_string(),
                    scopes: a.scopes.iter().map(|t| t.as_str().to_owned()).collect(),
                    valid_from_block: a.valid_from_block,
                    expiry: a.expiry.map(|e| format!("{e:?}")),
                    authorized_now: view.authorization(p, at).is_ok(),
                    connected: connected(p),
                    addresses: a.addresses.iter().map(|x| x.to_string()).collect(),
                })
                .collect(),
        })
        .collect();
    ViewAnswer {
        source: view.source().to_string(),
        operators,
        groups: view
            .groups()
            .iter()
            .map(|g| GroupAnswer {
                id: g.id.to_string(),
                seats: g.seats.iter().map(|o| o.to_string()).collect(),
            })
            .collect(),
        rln: view
            .rln_members()
            .map(|m| RlnLeafAnswer {
                index: m.index,
                operator: m.operator.to_string(),
                rate_commitment: format!("0x{}", hex::encode(m.rate_commitment)),
                limit: m.limit,
                validator: m.validator.map(|v| format!("0x{}", hex::encode(v))),
            })
            .collect(),
    }
}
