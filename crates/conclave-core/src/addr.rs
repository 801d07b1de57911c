use libp2p_identity::PeerId;
use multiaddr::{Multiaddr, Protocol};

/// Splits a trailing `/p2p/<peer id>` off an address. Seeds and registry hints are written with
/// it (so a dial names the peer and the gate can judge it before connecting); dial lists and
/// address books keep the transport part.
pub fn split_peer_id(mut addr: Multiaddr) -> (Multiaddr, Option<PeerId>) {
    match addr.iter().last() {
        Some(Protocol::P2p(id)) => {
            addr.pop();
            (addr, Some(id))
        }
        _ => (addr, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_only_a_trailing_peer_id() {
        let p = PeerId::random();
        let a: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{p}").parse().unwrap();
        assert_eq!(
            split_peer_id(a),
            ("/ip4/127.0.0.1/tcp/1".parse().unwrap(), Some(p))
        );
        let b: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert_eq!(split_peer_id(b.clone()), (b, None));
    }
}
