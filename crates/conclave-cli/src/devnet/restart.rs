//! `--scenario restart`: a member is killed with SIGKILL under traffic, in the middle of its
//! coordination windows and an RLN epoch — no shutdown, nothing flushed — stays down for
//! `--duration`, and starts again on the same state directory. It must catch up everything
//! published while it was down, exactly once; its application, subscribing again from the moment
//! it last heard, is replayed what it missed; its anonymous channel must not signal twice (the
//! RLN message counter survives the crash), so nobody slashes it; and it keeps the windows it
//! settled (with their faults: one seat holder never runs, so its windows fault as idle) and the
//! removal of a double signaller it made before the crash.

use std::path::Path;
use std::time::Duration;

use conclave_api::{FaultReport, RlnRemovedAnswer};
use conclave_core::GroupId;
use conclave_node::keys::{self, KeyType};

use super::args::DevnetArgs;
use super::client;
use super::cluster::{self, await_api};
use super::common::{now_ms, CLOCK_WINDOWS, RLN_LIMIT, SPAMMER, TWIN};
use super::config;
use super::faults::{books, latency_before, FaultNet, Measured, Registered};
use super::kept::Kept;
use super::rln;
use super::traffic;

const BEFORE: Duration = Duration::from_secs(3);
const AFTER: Duration = Duration::from_secs(5);
/// One RLN epoch spans the whole run, so the posts before the crash and after it count
/// against the same limit.
const RLN_EPOCH_SECS: u64 = 300;
/// How far back the restarted member's application asks to be replayed from (it last heard
/// something just before the crash).
const RESUBSCRIBE_MARGIN_MS: u64 = 2_000;
/// Messages sent this shortly before the kill may have been delivered and not yet recorded.
const CRASH_WINDOW_MS: u64 = 1_000;

pub async fn run(args: &DevnetArgs, dir: &Path, exe: &Path) -> anyhow::Result<FaultReport> {
    let n = args.nodes;
    let victim = n - 1;
    println!(
        "conclave devnet restart: {n} members; node-{victim} is killed (SIGKILL) for {:?}",
        args.duration
    );
    anyhow::ensure!(
        n > TWIN + 1,
        "the restart scenario needs at least {} members",
        TWIN + 2
    );
    let ids = rln::identities(dir, n, RLN_LIMIT)?;
    // One group: the victim, node-0 and a member that never runs (its windows fault as idle).
    let absent = [keys::generate(&dir.join("absent.key"), KeyType::Ed25519)?.to_string()];
    let groups = [(GroupId([0xc3; 20]), vec![victim, 0, n])];
    let genesis_ms = now_ms();
    let tune = |cfg: &mut conclave_node::NodeConfig, i: usize| {
        config::rln(cfg, i);
        cfg.rln.epoch_secs = RLN_EPOCH_SECS;
        config::coordination(cfg, CLOCK_WINDOWS, Some(genesis_ms));
    };
    let registered = Registered {
        rln: &ids,
        groups: &groups,
        absent: &absent,
    };
    let mut net = FaultNet::start(dir, exe, n, None, registered, tune).await?;
    println!(
        "ready {:.1} s after start",
        net.started.elapsed().as_secs_f64()
    );
    let publishers = net.publish(args);
    tokio::time::sleep(BEFORE).await;

    // A proof takes a moment on a busy machine: these requests get longer than the devnet's
    // usual 5 s.
    let rln_http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let half = (RLN_LIMIT / 2) as usize;
    let mut posted = 0;
    for k in 0..half {
        let (status, _) = rln::post(
            &rln_http,
            &net.nodes[victim],
            format!("before {k}").as_bytes(),
        )
        .await;
        posted += usize::from(status == 200);
    }
    // node-1's identity runs on node-2 too: one post from each is a double signal.
    let spammer = keys::load_rln(&dir.join(format!("node-{SPAMMER}.rln")))?;
    let secret = hex::encode(spammer.secret_bytes());
    let _ = tokio::join!(
        rln::post(&rln_http, &net.nodes[SPAMMER], b"spam"),
        rln::post(&rln_http, &net.nodes[TWIN], b"spam from the twin"),
    );
    let held = Kept::wait_for(
        &net.http,
        &net.nodes[victim],
        &secret,
        Duration::from_secs(90),
    )
    .await?;
    let down_ms = now_ms();
    cluster::kill9(&mut net.nodes[victim]).await;
    println!("node-{victim} killed");
    tokio::time::sleep(args.duration).await;

    // The crashed process left its API address behind; the new one writes its own.
    let _ = std::fs::remove_file(net.nodes[victim].state.join("api.addr"));
    let restarted = cluster::spawn(
        exe,
        dir,
        &format!("node-{victim}-restarted"),
        &net.configs[victim],
    )?;
    net.nodes[victim] = restarted;
    await_api(&mut net.nodes[victim]).await?;
    let up_ms = now_ms();
    let since = down_ms.saturating_sub(RESUBSCRIBE_MARGIN_MS);
    let reader = traffic::subscribe_since(
        &net.nodes[victim],
        Some(victim),
        net.tally.clone(),
        Some(since),
    )
    .await?;
    net.readers.push(reader);
    println!("node-{victim} restarted");
    let reconnected = net.all_connected(Duration::from_secs(60)).await;
    let mut posted_after = 0;
    for k in 0..half {
        let (status, _) = rln::post(
            &rln_http,
            &net.nodes[victim],
            format!("after {k}").as_bytes(),
        )
        .await;
        posted_after += usize::from(status == 200);
    }
    tokio::time::sleep(AFTER).await;
    let sent = std::mem::take(&mut *publishers.sent.lock().expect("sent lock"));
    publishers.stop().await;
    net.settle(Duration::from_secs(3), Duration::from_secs(30))
        .await;
    // Give removals time to be announced, had anyone seen another double signal.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut other_removals = 0;
    for node in &net.nodes {
        if let Ok((_, r)) =
            client::get::<RlnRemovedAnswer>(&net.http, &node.url("/v1/rln/removed")).await
        {
            other_removals += r.removed.iter().filter(|x| x.secret != secret).count();
        }
    }
    let kept = held.checks(&net.http, &net.nodes[victim], &secret).await?;
    let (caught_up, catchup_bytes) = net.catch_up_figures().await;
    let (all, at_risk, latency_before_ms, replayed_known, outside_crash_window) = {
        let tally = net.tally.lock().expect("tally lock");
        let while_down = |at: u64| (down_ms..up_ms).contains(&at);
        // The victim's own messages are not at risk (it sent none while down); what others sent
        // while it was down is, for it.
        let (all, at_risk) = books(
            &sent,
            &tally,
            n,
            |s, r| r == victim && while_down(s.at_ms),
            up_ms,
        );
        let latency_before_ms = latency_before(&sent, &tally, down_ms);
        let replayed_known = tally.replayed_known;
        // A crash loses the last moments' record of what was delivered (written every 250 ms):
        // those few messages may be delivered again after the restart, never any others.
        let sent_at: std::collections::HashMap<(usize, u64), u64> =
            sent.iter().map(|s| ((s.sender, s.seq), s.at_ms)).collect();
        let outside_crash_window = tally
            .repeats
            .keys()
            .filter(|(r, from, seq)| {
                let at = sent_at.get(&(*from, *seq)).copied().unwrap_or(0);
                *r != victim || at + CRASH_WINDOW_MS < down_ms || at > down_ms
            })
            .count();
        (
            all,
            at_risk,
            latency_before_ms,
            replayed_known,
            outside_crash_window,
        )
    };
    net.stop().await;

    // Messages in flight at the kill, to or from the victim, are not counted against it: the
    // crash lost them by definition and catch-up recovers what others hold.
    let mut checks = vec![
        (
            "every message published while it was down reached it".to_string(),
            at_risk.expected > 0 && at_risk.delivered == at_risk.expected,
        ),
        ("none of those reached it twice".to_string(), at_risk.duplicates == 0),
        (
            format!(
                "{} duplicates, all at the crashed member of messages from the last {CRASH_WINDOW_MS} ms before the kill",
                all.duplicates
            ),
            outside_crash_window == 0,
        ),
        ("it reconnected to every member".to_string(), reconnected.is_some()),
        (
            format!("its {posted_after} anonymous posts after the restart were accepted ({posted} before)"),
            posted == half && posted_after == half,
        ),
        (
            format!("nobody but the double signaller was removed ({other_removals} others)"),
            other_removals == 0,
        ),
    ];
    checks.extend(kept);
    let measured = Measured {
        sent,
        all,
        at_risk,
        reconnected,
        catch_up: (caught_up, catchup_bytes),
        latency_before_ms,
    };
    Ok(measured.report("restart", n, format!(
            "node-{victim} killed (SIGKILL) for {:.0} s under {} msg/s per member; its app resubscribed from {} s before the kill ({replayed_known} replayed messages it had)",
            args.duration.as_secs_f64(),
            args.rate,
            RESUBSCRIBE_MARGIN_MS / 1000,
        ), checks))
}
