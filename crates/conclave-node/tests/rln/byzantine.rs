//! A Byzantine member floods the anonymous channel with forged proofs — each well formed, on the
//! current root and epoch, with a fresh nullifier, so only the proof check can refuse it (the
//! ≈ 2 ms CPU attack) — while an honest member keeps publishing. The flooded node judges one
//! message of a forwarder at a time, so it verifies the flooder's first forgery only, drops the
//! rest of its backlog unjudged, disconnects it, and honest messages all arrive once.

use conclave_rln::RlnFrame;
use conclave_testkit::{Channel, HostileMember, Ran};
use prost::Message as _;

use super::*;

/// Forged frames sent in one go.
const FLOOD_BATCH: u64 = 1000;

/// Enough quota for the honest rounds (and the publish retries while the mesh forms).
const QUOTA: u32 = 100;

/// Publishes `n` messages tagged `tag` from `from`, each waited for at `ws` before the next;
/// returns each one's time from publish to delivery. Anything else arriving fails the test.
async fn honest_round(from: &RunningNode, ws: &mut Ws, tag: &str, n: usize) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for i in 0..n {
        let body = format!("{tag}-{i}");
        let sent = Instant::now();
        publish(from, body.as_bytes()).await;
        let got = next(ws, WAIT).await.expect("delivered at the flooded node");
        assert_eq!(payload(&got), body.as_bytes(), "{got:?}");
        latencies.push(sent.elapsed());
    }
    latencies
}

fn p99(l: &[Duration]) -> Duration {
    let mut l = l.to_vec();
    l.sort_unstable();
    l[(l.len() - 1) * 99 / 100]
}

/// `template` (an honest frame) with nullifier and share `n`: it passes every check but the
/// proof's.
fn forged(template: &RlnFrame, n: u64) -> Vec<u8> {
    let mut f = template.clone();
    f.nullifier = [[0u8; 24].as_slice(), &n.to_be_bytes()].concat();
    f.share_y = f.nullifier.clone();
    f.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_flooding_forged_proofs_costs_one_verification_and_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = &NAMES[..3];
    let (mut peers, rates, _) = generate_members(d, names, QUOTA);
    // The hostile member: a registered node key, no RLN membership (it only forwards).
    peers.push(
        keys::generate(&d.join("h.key"), KeyType::Ed25519)
            .unwrap()
            .to_string(),
    );
    let nodes = start_network(d, names, (&peers, &rates, QUOTA), 3, |_| {}).await;
    let (author, target) = (&nodes[0], &nodes[2]);
    let mut ws = subscribe(target).await;

    let (key, _) = keys::load(&d.join("h.key")).unwrap();
    let mut hostile = HostileMember::on(Channel::Anonymous, key);
    let at = listen_addrs(target, 1).await[0].clone();
    let at = format!("{at}/p2p/{}", peers[2]).parse().unwrap();
    hostile.connect(at, &["anon"]).await;
    // The flooder learns the current root and epoch from the first honest frame it is sent,
    // then waits for the signal.
    let (go, start) = tokio::sync::oneshot::channel::<()>();
    let flood = tokio::spawn(async move {
        let template = hostile
            .next_message(WAIT)
            .await
            .expect("the hostile member hears honest traffic");
        let template = RlnFrame::decode(&template[..]).unwrap();
        start.await.unwrap();
        let (mut sent, mut ran) = (0, Ran::default());
        // A thousand at once, then more while it is still connected.
        for batch in 0..4u64 {
            for i in 0..FLOOD_BATCH {
                let n = batch * FLOOD_BATCH + i + 1;
                if hostile.publish("anon", forged(&template, n)).is_ok() {
                    sent += 1;
                }
            }
            let r = hostile.run_for(Duration::from_millis(25)).await;
            if r.disconnected {
                ran.disconnected = true;
                break;
            }
        }
        if !ran.disconnected {
            ran = hostile.run_for(WAIT).await;
        }
        (sent, ran)
    });

    let before = honest_round(author, &mut ws, "before", 8).await;
    go.send(()).unwrap();
    let during = honest_round(author, &mut ws, "during", 8).await;
    let (sent, ran) = flood.await.unwrap();
    assert!(
        next(&mut ws, Duration::from_secs(1)).await.is_none(),
        "nothing more: every honest message once, no forgery"
    );
    eprintln!(
        "{sent} forged proofs sent; honest publish→delivery p99 {:?} before, {:?} during",
        p99(&before),
        p99(&during)
    );
    assert!(ran.disconnected, "the flooder was disconnected");

    let text = get(target, "/metrics").await.1;
    let verified = metric(
        &text,
        "conclave_rln_messages_total",
        "reason=\"invalid_proof\"",
    );
    assert_eq!(
        verified, 1.0,
        "a forwarder has one message judged at a time: its first forgery is all that is verified, not {verified} of {sent}:\n{text}"
    );
    let unjudged = metric(&text, "conclave_rln_messages_total", "forwarder_suspended");
    eprintln!("{verified} forgeries verified, {unjudged} dropped unjudged");
    assert!(
        unjudged > 0.0,
        "the flooder's backlog was dropped unjudged:\n{text}"
    );
    assert_eq!(
        metric(&text, "conclave_peers_evicted_total", "reason=\"forged\""),
        1.0,
        "{text}"
    );
    let v: RlnRemovedAnswer = get_json(target, "/v1/rln/removed").await;
    assert!(v.removed.is_empty(), "nobody honest was slashed: {v:?}");
    for n in nodes {
        n.shutdown().await;
    }
}
