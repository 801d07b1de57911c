//! Five nodes: anonymous delivery, a double signal detected, verified and removed everywhere, a late joiner catching up.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_messages_and_slashing_across_five_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (peers, rates, ids) = generate_members(d, &NAMES, LIMIT);
    let nodes = start_network(d, &NAMES[..5], (&peers, &rates, LIMIT), 6, |_| {}).await;
    let root = get_json::<RlnStatusAnswer>(&nodes[0], "/v1/rln/status")
        .await
        .root;

    // Honest: a's message reaches b..e, with no sender identity.
    let mut subs = Vec::new();
    for n in &nodes[1..] {
        subs.push(subscribe(n).await);
    }
    // Read as an `RlnPublishAnswer`, the answer carries `"status": "published"`.
    let RlnPublishAnswer::Published { .. } = publish(&nodes[0], b"anonymous hello").await;
    for ws in subs.iter_mut() {
        let text = next_text(ws, WAIT)
            .await
            .expect("honest anonymous message delivered");
        let v = delivery(&text);
        assert_eq!(payload(&v), b"anonymous hello", "{v:?}");
        assert_eq!(v.topic, "anon", "{v:?}");
        // The frame is exactly an `AnonymousDeliveryFrame`, which has no sender fields: nothing
        // beyond them (no operator, no node) travels.
        let sent: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            sent,
            serde_json::to_value(&v).unwrap(),
            "no sender identity: {text}"
        );
    }

    // A spammer: member e reuses message id 0 in one epoch for two different payloads.
    let spammer = 4;
    let forge = Forger::for_rates(&rates, LIMIT);

    // A duplicate — the same message proven twice (two proofs, so two gossip ids, one nullifier
    // and one share) — is delivered once and ignored the second time, never slashed.
    mid_epoch().await;
    let ts = now_ms();
    let mut dup = Vec::new();
    for _ in 0..2 {
        dup.push(forge.frame(&ids[0], b"said twice", ts, LIMIT - 1).await);
    }
    assert_ne!(dup[0], dup[1], "two different proofs");
    send_raw(&nodes[0], dup).await;
    eventually("every other node to ignore the duplicate", || async {
        let mut ignored = 0.0;
        for n in &nodes[1..] {
            let text = get(n, "/metrics").await.1;
            ignored += metric(&text, "conclave_rln_messages_total", "reason=\"duplicate\"");
        }
        if ignored >= 4.0 {
            Ok(())
        } else {
            Err(format!("duplicates ignored by {ignored} of 4 nodes"))
        }
    })
    .await;
    for (ws, n) in subs.iter_mut().zip(&nodes[1..]) {
        let mut got = 0;
        while let Some(v) = next(ws, Duration::from_millis(500)).await {
            got += usize::from(payload(&v) == b"said twice");
        }
        assert_eq!(got, 1, "delivered once");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 6, "nobody slashed: {status:?}");
    }

    mid_epoch().await;
    let started = forge.double_signal(&nodes[spammer], &ids[spammer]).await;
    let rules = EpochRules::default();
    let secret = hex::encode(ids[spammer].secret_bytes());
    let mut removed_root = None;
    for n in &nodes {
        let v = until_json(
            n,
            "/v1/rln/removed",
            "the spammer's removal",
            |v: &RlnRemovedAnswer| !v.removed.is_empty(),
        )
        .await;
        assert_eq!(v.removed.len(), 1, "only the spammer is removed: {v:?}");
        assert_eq!(v.removed[0].secret, secret, "{v:?}");
        let status: RlnStatusAnswer = get_json(n, "/v1/rln/status").await;
        assert_eq!(status.members, 5, "{status:?}");
        let removed_root = removed_root.get_or_insert_with(|| status.root.clone());
        assert_eq!(
            &status.root, removed_root,
            "every node removed the same leaf"
        );
    }
    let removed_root = removed_root.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(rules.epoch_secs),
        "removed everywhere within one epoch (took {took:?})"
    );
    assert_ne!(removed_root, root);
    // Whichever spam message a node saw first was valid; the second, the double signal, is never
    // delivered (which one comes first may differ between nodes).
    for ws in subs.iter_mut().take(3) {
        let mut got = Vec::new();
        while let Some(v) = next(ws, Duration::from_millis(300)).await {
            got.push(payload(&v));
        }
        let spam = got.iter().filter(|p| p.starts_with(b"spam ")).count();
        assert!(
            spam <= 1,
            "the double signal was delivered ({spam} spam messages)"
        );
    }

    // The removed member's later messages are rejected: its node refuses, and a forged one
    // under the old root is refused by everyone.
    let (status, v) = post(&nodes[spammer], "/v1/rln/publish/anon", b"still here?").await;
    assert_eq!(status, 409, "{v}");
    let after = forge
        .frame(&ids[spammer], b"after removal", now_ms(), 1)
        .await;
    send_raw(&nodes[spammer], vec![after]).await;
    for ws in subs.iter_mut().take(3) {
        while let Some(v) = next(ws, Duration::from_millis(1500)).await {
            assert_ne!(payload(&v), b"after removal");
        }
    }
    let mut unknown_root = 0.0;
    for n in &nodes[..spammer] {
        let text = get(n, "/metrics").await.1;
        unknown_root += metric(
            &text,
            "conclave_rln_messages_total",
            "reason=\"unknown_root\"",
        );
        assert!(metric(&text, "conclave_rln_slashings_total", "") <= 1.0);
    }
    assert!(
        unknown_root >= 1.0,
        "the forged message was rejected for its stale root"
    );

    // Honest members still publish.
    let RlnPublishAnswer::Published { .. } = publish(&nodes[1], b"after the slashing").await;

    // A node started late rebuilds the same tree from the registry and the announced removals.
    // A node takes the leaf out of its tree first and records the removal next, so once the
    // removal is listed the tree must already be the others'.
    let late = start(d, "f").await;
    let v = until_json(
        &late,
        "/v1/rln/removed",
        "the late joiner's removals",
        |v: &RlnRemovedAnswer| !v.removed.is_empty(),
    )
    .await;
    assert_eq!(
        v.removed.first().map(|r| r.secret.as_str()),
        Some(secret.as_str()),
        "{v:?}"
    );
    let v: RlnStatusAnswer = get_json(&late, "/v1/rln/status").await;
    assert_eq!(v.root, removed_root, "the late joiner's tree: {v:?}");
    assert_eq!(v.members, 5, "{v:?}");

    late.shutdown().await;
    for n in nodes {
        n.shutdown().await;
    }
}
