//! `conclave devnet`, the main job and its scenarios, judged by the typed report and its summary.

use super::*;

/// Runs `conclave devnet` with `args` and returns its summary, which must say PASS.
fn devnet(args: &[&str]) -> String {
    let out = conclave(&[&["devnet"], args].concat());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "devnet failed:\n{text}\n{}",
        stderr(&out)
    );
    assert!(text.contains("result            PASS"), "{text}");
    text
}

/// Runs `conclave devnet` with `args` and `--report`; returns its summary and the report.
pub(super) fn devnet_with_report(args: &[&str]) -> (String, DevnetReport) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let text = devnet(&[args, &["--report", file.to_str().unwrap()]].concat());
    let report: DevnetReport = serde_json::from_slice(&std::fs::read(&file).unwrap())
        .unwrap_or_else(|e| panic!("the report is no DevnetReport: {e}"));
    assert!(report.ok(), "{report:?}");
    (text, report)
}

/// The traffic report of the main job.
fn traffic(report: DevnetReport) -> TrafficReport {
    match report {
        DevnetReport::Traffic(r) => r,
        other => panic!("expected a traffic report: {other:?}"),
    }
}

/// What every main job must show: everything delivered once, the intruder kept out, the victim
/// evicted and silenced, coordination without faults.
fn assert_clean_run(r: &TrafficReport) {
    let d = &r.delivery;
    assert!(d.expected > 0 && d.delivered == d.expected, "{d:?}");
    assert_eq!(d.duplicates, 0);
    assert_eq!((r.intruder.received, r.intruder.delivered), (0, 0), "{r:?}");
    assert!(r.intruder.refused > 0 && r.intruder.peers == 0, "{r:?}");
    assert!(r.removal.eviction_ms.is_some(), "{:?}", r.removal);
    assert_eq!(r.removal.later_delivered, 0);
    assert!(r.coordination.windows > 0, "{:?}", r.coordination);
    assert_eq!(r.coordination.faults, 0);
    assert_eq!(
        r.coordination.acceptances,
        r.coordination.expected_acceptances
    );
}

/// The main job, exactly as the README runs it.
#[test]
fn devnet_delivers_everything_and_keeps_strangers_out() {
    let (text, report) = devnet_with_report(&["--nodes", "7", "--duration", "20s"]);
    assert!(text.contains("(100.00 %)"), "{text}");
    assert!(
        text.contains("per node          peak RSS") && text.contains("(whole run, 7 processes)"),
        "{text}"
    );
    assert!(text.contains("delivered 0 of"), "{text}");
    assert!(text.contains("connected peers 0; received 0"), "{text}");
    assert!(
        text.contains("windows in 2 groups") && text.contains("; faults 0"),
        "{text}"
    );
    let r = traffic(report);
    assert_clean_run(&r);
    assert_eq!(r.setup.members, 7);
    assert!(r.setup.chain.is_none() && r.rotation.is_none() && !r.removal.on_chain);
    assert_eq!(r.nodes.len(), 7);
    // The clock chain times every acceptance.
    assert!(
        !r.coordination.acceptance_ms.is_empty(),
        "{:?}",
        r.coordination
    );
    let rln = r.rln.expect("7 members run the anonymous channel");
    assert!(rln.posted > 0 && rln.delivered == rln.expected, "{rln:?}");
    assert_eq!(rln.removed_by, rln.members);
    assert!(rln.refused_after && rln.onchain.is_none(), "{rln:?}");
}

#[test]
fn devnet_on_a_chain_rotates_and_revokes_without_losing_messages() {
    let (text, report) =
        devnet_with_report(&["--chain", "anvil", "--nodes", "5", "--duration", "16s"]);
    assert!(text.contains("(100.00 %), 0 duplicates"), "{text}");
    assert!(text.contains("rotation          node-0 moved to"), "{text}");
    assert!(
        text.contains("after the block that made the revocation final"),
        "{text}"
    );
    assert!(text.contains("removed node      0 of"), "{text}");
    // RLN memberships registered on-chain; the slashed one removed there by one node.
    assert!(
        text.contains("rln on-chain      slashRln landed") && text.contains("1 node submitted"),
        "{text}"
    );
    let r = traffic(report);
    assert_clean_run(&r);
    assert!(r.removal.on_chain);
    let rotation = r.rotation.as_ref().expect("node-0 rotates on a chain");
    assert!(rotation.after_ms.is_some(), "{rotation:?}");
    let onchain = r
        .rln
        .and_then(|rln| rln.onchain)
        .expect("an on-chain removal");
    assert!(onchain.removed, "{onchain:?}");
    assert_eq!(onchain.submitted, 1.0);
}

/// Cold keys offline: every operator action is signed offline (one operator a 2-of-3 Safe) and
/// submitted by one relayer; read back from the chain, no operator key sent a transaction, and
/// a replay and an expired action are refused.
#[test]
fn devnet_with_offline_cold_keys_has_no_operator_send_a_transaction() {
    let (text, report) = devnet_with_report(&[
        "--chain",
        "anvil",
        "--cold-keys",
        "offline",
        "--nodes",
        "4",
        "--duration",
        "8s",
    ]);
    assert!(text.contains("(Safe, 2 of 3 owners)"), "{text}");
    let r = traffic(report);
    assert_clean_run(&r);
    let c = r.cold_keys.expect("a cold-key report");
    assert_eq!(c.operators.len(), 4);
    assert!(c.other_senders.is_empty(), "{c:?}");
    assert!(c.transactions > 0);
    for o in &c.operators {
        assert!(
            o.actions
                .iter()
                .all(|a| a.ends_with(&format!("submitted by {}", c.relayer))),
            "{o:?}"
        );
    }
    let rotated = &c.operators[0].actions;
    assert!(
        rotated.iter().any(|a| a.starts_with("rotate node key")),
        "{rotated:?}"
    );
    let revoked = &c.operators[3].actions;
    assert!(
        revoked.iter().any(|a| a.starts_with("revoke node key")),
        "{revoked:?}"
    );
    assert!(
        c.replay_refusal
            .as_deref()
            .is_some_and(|w| w.contains("already used")),
        "{c:?}"
    );
    assert!(
        c.expired_refusal
            .as_deref()
            .is_some_and(|w| w.contains("deadline")),
        "{c:?}"
    );
}

/// Every member's RLN membership registered by a validator's BLS key from its EIP-2335
/// keystore; on anvil the contract refuses a forged and a repeated registration, and the RLN
/// phase runs on the validators' memberships.
#[test]
fn devnet_validators_register_on_chain_and_the_forgeries_are_refused() {
    let (text, report) = devnet_with_report(&[
        "--chain",
        "anvil",
        "--rln-validators",
        "--nodes",
        "4",
        "--duration",
        "6s",
    ]);
    assert!(
        text.contains("RLN memberships registered by validator BLS keys"),
        "{text}"
    );
    let r = traffic(report);
    assert_clean_run(&r);
    let v = r.validators.expect("a validators report");
    assert_eq!(v.registry, "anvil");
    assert_eq!(v.accepted.len(), 4);
    assert!(
        v.accepted.iter().all(|a| a.gas.is_some_and(|g| g > 0)),
        "{v:?}"
    );
    let why: Vec<&str> = v
        .refused
        .iter()
        .filter_map(|r| r.refusal.as_deref())
        .collect();
    assert_eq!(why.len(), 2, "{v:?}");
    assert!(why[0].contains("BLS signature is not validator"), "{why:?}");
    assert!(why[1].contains("has already registered"), "{why:?}");
    assert!(r.rln.is_some_and(|rln| rln.ok()));
}

/// With a registry file the forgeries are in the file: every member leaves them out.
#[test]
fn devnet_validators_in_a_file_every_member_skips_the_forgeries() {
    let (_, report) = devnet_with_report(&["--rln-validators", "--nodes", "4", "--duration", "6s"]);
    let r = traffic(report);
    assert_clean_run(&r);
    let v = r.validators.expect("a validators report");
    assert_eq!((v.registry.as_str(), v.accepted.len()), ("file", 4));
    assert_eq!(v.nodes_skipping, Some((3, 3)), "{v:?}");
    assert!(
        v.refused.iter().all(|r| r
            .refusal
            .as_deref()
            .is_some_and(|w| w.contains("skipped by every member"))),
        "{v:?}"
    );
    assert!(r.rln.is_some_and(|rln| rln.ok()));
}

/// A member's chain source freezes on anvil: it follows the members' headers, keeps
/// coordinating and returns to its source.
#[test]
fn devnet_stale_chain_falls_back_to_members_headers_and_returns() {
    let (text, report) = devnet_with_report(&["--scenario", "stale-chain", "--nodes", "4"]);
    assert!(text.contains("its hash is the chain's"), "{text}");
    assert!(text.contains("\"following\":\"fallback\""), "{text}");
    assert!(text.contains("kept coordinating"), "{text}");
    assert!(text.contains("following it again"), "{text}");
    let DevnetReport::StaleChain(r) = report else {
        panic!("expected a stale-chain report: {report:?}");
    };
    assert_eq!(r.nodes, 4);
    assert!(r.windows_on_fallback > 0, "{r:?}");
    assert!(r.freeze_to_raise_ms <= r.freeze_to_match_ms, "{r:?}");
}

/// sBTC's registry on a Clarity VM: the contract's signer set rotates mid-run, the removed
/// signer is cut off and silenced, the new one is admitted and delivered to.
#[test]
fn devnet_stacks_rotation_evicts_the_removed_signer_and_admits_the_new_one() {
    let (text, report) = devnet_with_report(&["--registry", "stacks", "--nodes", "4"]);
    assert!(text.contains("last connection closed after"), "{text}");
    let DevnetReport::StacksRotation(r) = report else {
        panic!("expected a Stacks rotation report: {report:?}");
    };
    assert_eq!(r.signers, 4);
    assert_eq!((r.removed_reconnections, r.removed_delivered_after), (0, 0));
    assert_eq!(r.joiner_delivered_after, 3 * 5, "{r:?}");
}

/// Curious members pool their first sights of anonymous messages; the report scores their
/// estimators against a random guess (the numbers themselves are the benchmark's business).
#[test]
fn devnet_anonymity_scores_curious_members_on_every_message() {
    let args = [
        "--scenario",
        "anonymity",
        "--nodes",
        "5",
        "--spies",
        "2",
        "--messages",
        "12",
    ];
    let (text, report) = devnet_with_report(&args);
    assert!(
        text.contains("first-spy with 1 colluding member(s)"),
        "{text}"
    );
    let DevnetReport::Anonymity(r) = report else {
        panic!("expected an anonymity report: {report:?}");
    };
    assert!(r.stem && r.members == 5, "{r:?}");
    assert_eq!((r.published, r.delivered_to_all), (12, 12), "{r:?}");
    let alone = &r.guesses[0];
    assert_eq!(
        (alone.estimator.as_str(), alone.colluders),
        ("first-spy", 1)
    );
    let s = r.first_sights;
    let sighted =
        s.stem_from_author + s.stem_from_relay + s.gossip_from_author + s.gossip_from_relay;
    assert_eq!(
        sighted + s.unseen,
        alone.judged,
        "every judged message is sorted by how the spy first saw it: {r:?}"
    );
    assert!(
        alone.correct <= s.stem_from_author + s.gossip_from_author,
        "first-spy is right only when the spy heard it from its author: {r:?}"
    );
    assert_eq!(
        r.guesses.len(),
        3,
        "pooled first-spy and majority for two colluders"
    );
}

/// A member takes TCP out: the others reach it over QUIC, no message lost either way.
#[test]
fn devnet_tcp_cut_keeps_traffic_flowing_over_quic() {
    let text = devnet(&["--scenario", "tcp-cut", "--nodes", "4"]);
    assert!(
        text.contains("reconnected to all 3 members over quic"),
        "{text}"
    );
    assert!(text.contains("to/from node-0 missing: 0"), "{text}");
}
