//! Live key rotation: when the registry delegates the node's operator to a key the node holds in
//! its key directory, and that key outlives the current one, the node moves to it.
//!
//! The decision is a plain function of the view ([`rotation_target`]); the swap itself lives in
//! the node ([`crate::RunningNode`]): start a second network service with the new key, let it
//! join the mesh, point the API at it, hand over the old service's queued publishes, then stop
//! the old service and take over its listen addresses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use conclave_core::{Expiry, MembershipView, Moment, PeerId};
use libp2p::identity::Keypair;

use crate::keys;

/// Keys found in the key directory, by PeerId.
pub(crate) type Candidates = BTreeMap<PeerId, Keypair>;

/// Loads every `*.key` file in `dir`. Files that do not load are skipped with a warning (once per
/// file and content, so a bad file does not flood the log).
pub(crate) fn load_candidates(dir: &Path, warned: &mut Vec<(PathBuf, String)>) -> Candidates {
    let mut out = Candidates::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        let note = (dir.to_owned(), "unreadable".to_owned());
        if !warned.contains(&note) {
            tracing::warn!(dir = %dir.display(), "key directory is unreadable; no rotation possible");
            warned.push(note);
        }
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        match keys::load(&path) {
            Ok((kp, _)) => {
                out.insert(kp.public().to_peer_id(), kp);
            }
            Err(e) => {
                let note = (path.clone(), e.to_string());
                if !warned.contains(&note) {
                    tracing::warn!(error = %e, "key file skipped for rotation");
                    warned.push(note);
                }
            }
        }
    }
    out
}

/// Orders expiries with "never" last: the later a key expires, the longer it can serve.
fn lifetime(e: Option<Expiry>) -> (u8, u64) {
    match e {
        None => (2, 0),
        Some(Expiry::Block(b)) => (1, b),
        Some(Expiry::UnixSecs(t)) => (0, t), // mixed kinds do not compare; chain keys use blocks
    }
}

/// The key to move to, if any: a held key, authorized now for the current key's operator, that
/// outlives the current key (or the current key is no longer authorized at all). Two open-ended
/// keys of one operator never trigger a move, so operators may run several nodes.
pub(crate) fn rotation_target(
    view: &MembershipView,
    at: Moment,
    current: &PeerId,
    held: impl IntoIterator<Item = PeerId>,
) -> Option<PeerId> {
    let now = view.authorization(current, at);
    let entry = view.nodes().find(|(p, _)| *p == current).map(|(_, a)| a);
    let operator = entry.map(|a| a.operator);
    let current_life = match (&now, entry) {
        (Ok(a), _) => Some(lifetime(a.expiry)),
        _ => None, // not authorized now: any valid key of ours is better
    };
    held.into_iter()
        .filter(|p| p != current)
        .filter_map(|p| view.authorization(&p, at).ok().map(|a| (p, a)))
        .filter(|(_, a)| operator.is_none_or(|o| a.operator == o))
        .filter(|(_, a)| current_life.is_none_or(|c| lifetime(a.expiry) > c))
        .max_by_key(|(p, a)| (lifetime(a.expiry), std::cmp::Reverse(*p)))
        .map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_core::{NodeAuthorization, OperatorId, ViewBuilder, ViewSource};

    fn view(nodes: &[(PeerId, u8, Option<u64>)]) -> MembershipView {
        let mut b = ViewBuilder::new(ViewSource::Empty);
        for (p, op, until) in nodes {
            let _ = b.operator(OperatorId([*op; 20]));
            b.node(
                *p,
                NodeAuthorization {
                    operator: OperatorId([*op; 20]),
                    scopes: ["signers".parse().unwrap()].into(),
                    valid_from_block: Some(0),
                    expiry: until.map(Expiry::Block),
                    addresses: vec![],
                },
            )
            .unwrap();
        }
        b.build()
    }

    const AT: Moment = Moment {
        unix_secs: 0,
        block: Some(100),
    };

    #[test]
    fn moves_to_a_held_key_that_outlives_the_current_one() {
        let (old, new, other) = (PeerId::random(), PeerId::random(), PeerId::random());
        // rotate(): the old key revoked from block 110, the new one open-ended.
        let v = view(&[(old, 1, Some(110)), (new, 1, None)]);
        assert_eq!(rotation_target(&v, AT, &old, [new]), Some(new));
        // Not held: nothing to do.
        assert_eq!(rotation_target(&v, AT, &old, [other]), None);
        // Already on the new key: stay.
        assert_eq!(rotation_target(&v, AT, &new, [old, new]), None);
    }

    #[test]
    fn never_moves_between_open_ended_keys_or_to_another_operator() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let v = view(&[(a, 1, None), (b, 1, None), (c, 2, None)]);
        assert_eq!(rotation_target(&v, AT, &a, [b, c]), None);
        let v = view(&[(a, 1, Some(150)), (c, 2, None)]);
        assert_eq!(
            rotation_target(&v, AT, &a, [c]),
            None,
            "another operator's key"
        );
    }

    #[test]
    fn a_revoked_current_key_moves_to_any_valid_key_of_its_operator() {
        let (old, new) = (PeerId::random(), PeerId::random());
        let v = view(&[(old, 1, Some(90)), (new, 1, Some(120))]);
        assert_eq!(rotation_target(&v, AT, &old, [new]), Some(new));
        // The new key not valid yet (expired here) is never chosen.
        let v = view(&[(old, 1, Some(110)), (new, 1, Some(100))]);
        assert_eq!(rotation_target(&v, AT, &old, [new]), None);
    }
}
