//! The `conclave` binary as operators use it.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use conclave_api::{DevnetReport, OperatorAnswer, TrafficReport, ViewAnswer};

fn conclave(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(args)
        .env_remove("CONCLAVE_LOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The commit of the checkout the tests run in (the one the binary was built from).
fn head_commit() -> String {
    let out = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .expect("git runs");
    assert!(out.status.success(), "the tests run in a git checkout");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A plain HTTP/1.0 GET against the node's API; returns the body.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_string()
}

#[test]
fn version_names_the_commit() {
    let out = conclave(&["--version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = format!(
        "conclave {} (commit {}",
        env!("CARGO_PKG_VERSION"),
        head_commit()
    );
    assert!(
        line.starts_with(&expected),
        "{line:?} should start with {expected:?}"
    );
}

#[test]
fn keys_generate_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let key_s = key.to_str().unwrap();
    let out = conclave(&["keys", "generate", "--out", key_s, "--type", "secp256k1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let peer = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        peer.starts_with("16Uiu2"),
        "secp256k1 PeerIds start with 16Uiu2: {peer}"
    );
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = conclave(&["keys", "show", key_s]);
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(&peer) && shown.contains("secp256k1"),
        "{shown}"
    );
    let secret_line = std::fs::read_to_string(&key).unwrap();
    let secret = secret_line
        .lines()
        .find(|l| l.starts_with("secret"))
        .unwrap();
    assert!(
        !shown.contains(&secret[10..40]),
        "show never prints the secret"
    );

    let out = conclave(&["keys", "generate", "--out", key_s]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = conclave(&["keys", "show", key_s]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("0640"), "{}", stderr(&out));

    let out = conclave(&["keys", "generate", "--out", "x.key", "--type", "rsa"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("expected ed25519 or secp256k1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rln_keygen_prints_what_the_registry_needs() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rln.key");
    let key_s = key.to_str().unwrap();
    let out = conclave(&["rln", "keygen", "--out", key_s, "--limit", "4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["limit"], 4);
    assert_eq!(made["rate_commitment"].as_str().unwrap().len(), 66);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let out = conclave(&["rln", "show", key_s, "--limit", "4"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, made, "show derives the same commitments");
    let other: serde_json::Value =
        serde_json::from_slice(&conclave(&["rln", "show", key_s, "--limit", "5"]).stdout).unwrap();
    assert_eq!(other["id_commitment"], made["id_commitment"]);
    assert_ne!(other["rate_commitment"], made["rate_commitment"]);
    let text = std::fs::read_to_string(&key).unwrap();
    let secret = text.lines().find(|l| l.starts_with("secret")).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret[10..40]));
    let out = conclave(&["rln", "keygen", "--out", key_s]);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    let out = conclave(&["rln", "keygen", "--out", "y.key", "--limit", "0"]);
    assert!(
        stderr(&out).contains("--limit must be at least 1"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn malformed_config_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("node.key");
    assert!(
        conclave(&["keys", "generate", "--out", key.to_str().unwrap()])
            .status
            .success()
    );
    std::fs::write(d.join("registry.toml"), "").unwrap();
    let cases = [
        ("listen = [\"tcp://0.0.0.0:9000\"]\n", "listen[0]"),
        ("seeds = [\"/ip4/127.0.0.1/tcp/9000\"]\n", "seeds[0]"),
        ("unknown_key = true\n", "unknown_key"),
        ("key_file = \"missing.key\"\n", "missing.key"),
        ("registry_file = \"nowhere.toml\"\n", "nowhere.toml"),
    ];
    for (text, expected) in cases {
        let cfg = d.join("node.toml");
        std::fs::write(&cfg, format!("http_listen = \"127.0.0.1:0\"\n{text}")).unwrap();
        let out = conclave(&["node", "run", "--config", cfg.to_str().unwrap()]);
        assert!(!out.status.success(), "{text} was accepted");
        assert!(
            stderr(&out).contains(expected),
            "expected `{expected}` in: {}",
            stderr(&out)
        );
    }
    // Environment overrides are checked the same way.
    let cfg = d.join("node.toml");
    std::fs::write(&cfg, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["node", "run", "--config", cfg.to_str().unwrap()])
        .env("CONCLAVE_HTTP_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("http_listen"), "{}", stderr(&out));
}

#[test]
fn node_reports_its_build_and_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("node.key");
    let peer =
        String::from_utf8(conclave(&["keys", "generate", "--out", key.to_str().unwrap()]).stdout)
            .unwrap();
    std::fs::write(
        d.join("registry.toml"),
        format!(
            "[[operators]]\naddress = \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\"\n[[operators.nodes]]\npeer_id = \"{}\"\nscopes = [\"signers\"]\n",
            peer.trim()
        ),
    )
    .unwrap();
    let cfg = d.join("node.toml");
    std::fs::write(
        &cfg,
        "http_listen = \"127.0.0.1:0\"\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["node", "run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api_file = d.join("state/api.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    let api = loop {
        match std::fs::read_to_string(&api_file) {
            Ok(addr) if !addr.trim().is_empty() => break addr.trim().to_string(),
            _ => {
                assert!(Instant::now() < deadline, "node did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let metrics = http_get(&api, "/metrics");
    let build = metrics
        .lines()
        .find(|l| l.starts_with("conclave_build_info{"))
        .unwrap_or_else(|| panic!("no conclave_build_info in /metrics:\n{metrics}"));
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.contains(&format!("commit=\"{}\"", head_commit()))
            && build.ends_with(" 1"),
        "{build}"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "node ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "exit {status}: {log}");
    assert!(
        log.contains("shutting down") && log.contains("network service stopped"),
        "{log}"
    );
    let started = log
        .lines()
        .find(|l| l.contains("node started"))
        .unwrap_or_default();
    assert!(
        started.contains("commit") && started.contains(&head_commit()),
        "the start log names the build: {log}"
    );
    assert!(
        d.join("state/conclave.redb").exists(),
        "state store created"
    );
}

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
fn devnet_with_report(args: &[&str]) -> (String, DevnetReport) {
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

/// Runs `conclave` with `CONCLAVE_ETH_KEY` set to `eth_key`, or unset.
fn chain_cmd(args: &[&str], eth_key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
    c.args(args).env_remove("CONCLAVE_LOG");
    match eth_key {
        Some(k) => c.env("CONCLAVE_ETH_KEY", k),
        None => c.env_remove("CONCLAVE_ETH_KEY"),
    };
    c.output().unwrap()
}

#[test]
fn registry_commands_change_the_chain_and_explain_refusals() {
    use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
    let anvil = Anvil::spawn(&[]).unwrap();
    let url = anvil.url.as_str();
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();

    let out = chain_cmd(
        &[
            "registry",
            "deploy",
            "--rpc-url",
            url,
            "--scopes",
            "signers,coord",
        ],
        Some(DEV_KEYS[0]),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("deployed: tx 0x"), "{text}");
    assert!(text.contains("scope 1 = coord"), "{text}");
    let contract = text
        .lines()
        .find_map(|l| l.strip_prefix("contract = "))
        .unwrap()
        .to_owned();
    let at = ["--rpc-url", url, "--contract", contract.as_str()];

    // Governance admits operator 1 (dev account 1).
    let operator = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let args: Vec<&str> = ["registry", "add-operator"]
        .iter()
        .chain(&at)
        .copied()
        .chain([operator])
        .collect();
    let out = chain_cmd(&args, Some(DEV_KEYS[0]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(operator), "{}", stdout(&out));

    // The operator signs with a key file, which must be private.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("operator.hex");
    std::fs::write(&key_file, DEV_KEYS[1]).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let node = dir.path().join("node.key");
    let peer = stdout(&conclave(&[
        "keys",
        "generate",
        "--out",
        node.to_str().unwrap(),
    ]))
    .trim()
    .to_owned();
    let authorize: Vec<&str> = ["registry", "authorize"]
        .iter()
        .chain(&at)
        .copied()
        .chain([
            "--eth-key-file",
            key_file.to_str().unwrap(),
            "--peer-id",
            &peer,
            "--scopes",
            "signers",
        ])
        .chain(["--address", "/ip4/127.0.0.1/tcp/9000"])
        .collect();
    let out = chain_cmd(&authorize, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("0644"), "{}", stderr(&out));
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = chain_cmd(&authorize, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("{peer} authorized: tx 0x")),
        "{text}"
    );
    assert!(
        text.contains("\"authorized_now\": true") && text.contains("/ip4/127.0.0.1/tcp/9000"),
        "{text}"
    );

    // Refusals from the contract come back in words.
    let out = chain_cmd(&authorize, None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is already authorized"),
        "{}",
        stderr(&out)
    );
    let out = chain_cmd(&args, Some(DEV_KEYS[2]));
    assert!(
        stderr(&out).contains("is not the registry owner"),
        "{}",
        stderr(&out)
    );
    let out = chain_cmd(&args, Some("not a key"));
    assert!(
        stderr(&out).contains("Ethereum private key"),
        "{}",
        stderr(&out)
    );
    let out = chain_cmd(&args, None);
    assert!(
        stderr(&out).contains("CONCLAVE_ETH_KEY"),
        "{}",
        stderr(&out)
    );

    // Revocation, then the whole registry as nodes see it.
    let revoke: Vec<&str> = ["registry", "revoke"]
        .iter()
        .chain(&at)
        .copied()
        .chain(["--peer-id", &peer])
        .collect();
    let out = chain_cmd(&revoke, Some(DEV_KEYS[1]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"authorized_now\": false"),
        "{}",
        stdout(&out)
    );
    let show: Vec<&str> = ["registry", "show"].iter().chain(&at).copied().collect();
    let out = chain_cmd(&show, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let view: ViewAnswer = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view.operators[0].nodes[0].peer_id, peer);
    assert!(view.source.starts_with("chain 31337"), "{view:?}");

    // Rotation: a second key, then a move to a third; the old one stays valid until its block.
    let keygen = |name: &str| {
        let path = dir.path().join(name);
        stdout(&conclave(&[
            "keys",
            "generate",
            "--out",
            path.to_str().unwrap(),
        ]))
        .trim()
        .to_owned()
    };
    let (old, new) = (keygen("old.key"), keygen("new.key"));
    let with = |cmd: &'static str, rest: &[&str]| -> Vec<String> {
        ["registry", cmd]
            .iter()
            .chain(&at)
            .chain(rest)
            .map(|x| x.to_string())
            .collect()
    };
    let run = |args: Vec<String>, key: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        chain_cmd(&refs, Some(key))
    };
    let out = run(with("authorize", &["--peer-id", &old]), DEV_KEYS[1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(with("rotate", &["--old", &old, "--new", &new]), DEV_KEYS[1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("rotated {old} -> {new}")) && text.contains("tx 0x"),
        "{text}"
    );
    let op: OperatorAnswer = serde_json::from_str(&text[text.find('{').unwrap()..]).unwrap();
    let node = |p: &str| op.nodes.iter().find(|n| n.peer_id == p).unwrap();
    assert!(node(&new).authorized_now, "{op:?}");
    assert!(
        node(&old).authorized_now,
        "valid until its revocation block: {op:?}"
    );
    assert!(
        node(&old).expiry.as_deref().unwrap().starts_with("Block("),
        "{op:?}"
    );

    // RLN: the operator registers a membership from its identity file; a wrong secret is refused
    // in words, the right one (anyone may reveal it) removes the leaf, once.
    let rln_key = dir.path().join("op.rln");
    let ids: serde_json::Value = serde_json::from_str(&stdout(&conclave(&[
        "rln",
        "keygen",
        "--out",
        rln_key.to_str().unwrap(),
        "--limit",
        "3",
    ])))
    .unwrap();
    let out = run(
        with(
            "register-rln",
            &["--rln-key", rln_key.to_str().unwrap(), "--limit", "3"],
        ),
        DEV_KEYS[1],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("RLN leaf 0 registered: tx 0x"), "{text}");
    assert!(
        text.contains(ids["rate_commitment"].as_str().unwrap()),
        "the view lists the leaf: {text}"
    );
    let out = run(
        with("slash-rln", &["--index", "0", "--secret", &"11".repeat(32)]),
        DEV_KEYS[5],
    );
    assert!(
        stderr(&out).contains("does not open the rate commitment"),
        "{}",
        stderr(&out)
    );
    let secret = std::fs::read_to_string(&rln_key).unwrap();
    let secret = secret
        .lines()
        .find_map(|l| l.strip_prefix("secret = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    for expected in [
        "RLN leaf 0 slashed: tx 0x",
        "RLN leaf 0 was already removed",
    ] {
        let out = run(
            with("slash-rln", &["--index", "0", "--secret", &secret]),
            DEV_KEYS[5],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stdout(&out).contains(expected), "{}", stdout(&out));
    }

    // Groups (governance), then the operator's removal voids its keys.
    let group = "0x1111111111111111111111111111111111111111";
    let out = run(
        with(
            "add-group",
            &["--id", group, "--seats", &format!("{operator},{operator}")],
        ),
        DEV_KEYS[0],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("group {group} set")),
        "{}",
        stdout(&out)
    );
    let out = run(
        with(
            "add-group",
            &[
                "--id",
                group,
                "--seats",
                "0x0000000000000000000000000000000000000009",
            ],
        ),
        DEV_KEYS[0],
    );
    assert!(
        stderr(&out).contains("is not an operator"),
        "{}",
        stderr(&out)
    );
    let out = run(with("remove-operator", &[operator]), DEV_KEYS[0]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"operator\": false"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn coord_commands_answer_in_json() {
    let json = |args: &[&str]| -> serde_json::Value {
        let out = conclave(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = json(&[
        "coord",
        "seed",
        "--group",
        "0x1111111111111111111111111111111111111111",
        "--safe-block-hash",
        &"22".repeat(32),
    ]);
    let seed = v["seed"].as_str().unwrap().to_owned();
    assert_eq!(seed.len(), 64);

    // Addresses come back as given; repeats count once.
    let given = [
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    ];
    let v = json(&[
        "coord",
        "leader",
        "--seed",
        &seed,
        "--operators",
        &given.join(","),
    ]);
    let order: Vec<&str> = v["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 3);
    assert_eq!(v["leader"], order[0]);
    assert!(order.iter().all(|o| given.contains(o)));

    let v = json(&["coord", "checklist", "--block", "3600", "--seed", &seed]);
    assert_eq!(v["index"], 4);
    assert_eq!(v["actions"][0], "Redemption");
    let v = json(&["coord", "checklist", "--block", "3601", "--seed", &seed]);
    assert!(v["index"].is_null() && v["actions"].is_null());

    let msg = r#"{"sender_id":3,"coordination_block":900,"wallet_public_key_hash":"0x1111111111111111111111111111111111111111","proposal":{"action":"Noop"}}"#;
    let hex = json(&["coord", "encode", msg])["hex"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        hex.ends_with("2200"),
        "a no-op is an empty, present proposal: {hex}"
    );
    let back = json(&["coord", "decode", &hex]);
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(msg).unwrap()
    );
    let out = conclave(&["coord", "decode", "0803108407"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("walletPublicKeyHash has 0 bytes; expected 20"),
        "{}",
        stderr(&out)
    );
}
