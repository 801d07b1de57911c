//! Honest traffic across epochs and a restart is never slashed.

use super::*;

/// Honest traffic at the quota across many short epochs, with a node restarted in the middle and
/// the stem on (the default): nobody is ever slashed, because message ids come from a persisted
/// counter, and a stem hop's verification is the same as gossip's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_traffic_across_epochs_and_a_restart_never_slashes() {
    const EPOCH_LIMIT: u32 = 1;
    let short_epochs = |c: &mut NodeConfig| {
        c.rln.epoch_secs = 2;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = &NAMES[..5];
    let (peers, rates, _) = generate_members(d, names, EPOCH_LIMIT);
    let started = start_network(d, names, (&peers, &rates, EPOCH_LIMIT), 5, short_epochs).await;
    let mut nodes: Vec<Option<RunningNode>> = started.into_iter().map(Some).collect();

    // Every node publishes as fast as it can (one message per 2 s epoch is its quota) in at least
    // four epochs; node c restarts half-way, right after a round, in an epoch it has likely just
    // used.
    let restarted = 2;
    let mut published = vec![0usize; names.len()];
    let mut refused_quota = 0;
    let mut restarted_at = None;
    // Driven by progress, not by a fixed time, so a loaded machine only makes it slower: node c
    // restarts once every node has published twice, and the run ends once every node has
    // published four times and the quota has been hit.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(restarted_at.is_some() && published.iter().all(|p| *p >= 4) && refused_quota > 0) {
        assert!(
            Instant::now() < deadline,
            "no progress: published {published:?}, refused {refused_quota}, restarted {restarted_at:?}"
        );
        for (i, slot) in nodes.iter().enumerate() {
            let Some(n) = slot else { continue };
            let (status, v) = post(
                n,
                "/v1/rln/publish/anon",
                format!("{i}:{}", published[i]).as_bytes(),
            )
            .await;
            match status {
                200 => published[i] += 1,
                429 => refused_quota += 1,
                503 => {} // the anonymous mesh is still (re)forming
                other => panic!("unexpected {other}: {v}"),
            }
        }
        if restarted_at.is_none() && published.iter().all(|p| *p >= 2) {
            nodes[restarted].take().unwrap().shutdown().await;
            nodes[restarted] = Some(start_with(d, names[restarted], short_epochs).await);
            restarted_at = Some(Instant::now());
        }
    }
    // Let the last messages settle, then check that nobody was ever slashed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut stemmed = 0.0;
    for n in nodes.iter().flatten() {
        let v: RlnRemovedAnswer = get_json(n, "/v1/rln/removed").await;
        assert!(v.removed.is_empty(), "an honest member was removed: {v:?}");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 5, "{status:?}");
        let text = get(n, "/metrics").await.1;
        assert_eq!(
            metric(
                &text,
                "conclave_rln_messages_total",
                "reason=\"double_signal\""
            ),
            0.0
        );
        assert_eq!(metric(&text, "conclave_rln_slashings_total", ""), 0.0);
        assert!(metric(&text, "conclave_rln_messages_total", "outcome=\"accepted\"") > 0.0);
        stemmed += metric(&text, "conclave_stem_received_total", "reason=\"accepted\"");
    }
    assert!(stemmed > 0.0, "the messages travelled the stem");
    for n in nodes.into_iter().flatten() {
        n.shutdown().await;
    }
}
