//! The anonymous channel's gossip: messages carry no source, and a relay forwards one only after
//! the application's verdict (the RLN checks live in the node; here the verdicts are scripted).

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use conclave_net::{Acceptance, PublishError};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_forwards_only_what_the_application_accepts() {
    init_tracing();
    let (a, hub, c) = (Member::new(1), Member::new(2), Member::new(3));
    let view = line_view(&[&a, &hub, &c], &hub);
    let (_tx, rx) = watch::channel(view);
    let mut hub_cfg = config(&hub, &[]);
    hub_cfg.anonymous_capacity = 2;
    // Gossip alone here: the author's frames go straight to its mesh (tests/stem.rs has the
    // stem).
    let mut a_cfg = config(&a, &[]);
    a_cfg.stem.enabled = false;
    let mut a_node = start(a_cfg, rx.clone(), &a);
    let mut hub_node = start(hub_cfg, rx.clone(), &hub);
    let mut c_node = start(config(&c, &[]), rx.clone(), &c);
    let anon = topic("anon");
    for n in [&a_node, &hub_node, &c_node] {
        n.service.subscribe_anonymous(anon.clone()).await.unwrap();
    }
    for n in [&mut a_node, &mut c_node] {
        n.service.dial(hub.addr.clone()).await.unwrap();
    }
    // The first publish that finds a subscribed peer.
    let publish = |data: &'static [u8]| {
        let s = a_node.service.clone();
        let anon = anon.clone();
        async move {
            eventually("an anonymous peer subscribed", || {
                let (s, anon) = (s.clone(), anon.clone());
                async move {
                    match s.publish_anonymous(anon, data.to_vec()).await {
                        Ok(id) => Ok(id),
                        Err(PublishError::NotSent(e)) => Err(e),
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .await
        }
    };
    // C must have joined the hub's mesh too before anything is relayed.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let id = publish(b"accepted").await;
    let held = next_anonymous(&mut hub_node.anonymous, WAIT)
        .await
        .expect("hub receives it");
    assert_eq!(held.data, b"accepted");
    assert_eq!(
        held.id.hex(),
        id,
        "message id = SHA-256(data), the same everywhere"
    );
    assert!(
        next_anonymous(&mut c_node.anonymous, Duration::from_millis(800))
            .await
            .is_none(),
        "held at the hub until its verdict"
    );
    hub_node
        .service
        .report_anonymous(held.id, Acceptance::Accept)
        .await
        .unwrap();
    let relayed = next_anonymous(&mut c_node.anonymous, WAIT)
        .await
        .expect("relayed after Accept");
    assert_eq!(relayed.data, b"accepted");

    publish(b"rejected").await;
    let held = next_anonymous(&mut hub_node.anonymous, WAIT).await.unwrap();
    assert_eq!(held.data, b"rejected");
    hub_node
        .service
        .report_anonymous(held.id, Acceptance::Reject)
        .await
        .unwrap();
    assert!(
        next_anonymous(&mut c_node.anonymous, Duration::from_secs(1))
            .await
            .is_none(),
        "a rejected message is not relayed"
    );

    // The hub's validation queue holds 2: unread messages beyond it are ignored and counted.
    for d in [&b"q1"[..], b"q2", b"q3", b"q4"] {
        a_node
            .service
            .publish_anonymous(anon.clone(), d.to_vec())
            .await
            .unwrap();
    }
    eventually("overflow counted", || {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &hub_node.metrics).unwrap();
        async move {
            text.lines().any(|l| {
                l.starts_with("conclave_anonymous_validation_dropped_total")
                    && l.split_whitespace()
                        .last()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0)
                        >= 2.0
            })
        }
    })
    .await;
    let mut queued = 0;
    while next_anonymous(&mut hub_node.anonymous, Duration::from_millis(200))
        .await
        .is_some()
    {
        queued += 1;
    }
    assert_eq!(queued, 2, "exactly the queue's bound was kept");
}
