//! `conclave registry` against a real chain: deploy, operators, delegations, rotation, RLN, refusals.

use super::*;

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
    // One membership per operator until governance raises its cap.
    let second_key = dir.path().join("op-2.rln");
    conclave(&[
        "rln",
        "keygen",
        "--out",
        second_key.to_str().unwrap(),
        "--limit",
        "3",
    ]);
    let second = with(
        "register-rln",
        &["--rln-key", second_key.to_str().unwrap(), "--limit", "3"],
    );
    let out = run(second.clone(), DEV_KEYS[1]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("RLN membership"), "{}", stderr(&out));
    let cap = with("set-rln-cap", &[operator, "--cap", "2"]);
    let out = run(cap.clone(), DEV_KEYS[5]);
    assert!(
        stderr(&out).contains("is not the registry owner"),
        "{}",
        stderr(&out)
    );
    let out = run(cap, DEV_KEYS[0]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("may hold 2 RLN memberships (holds 1)"),
        "{}",
        stdout(&out)
    );
    let out = run(second, DEV_KEYS[1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("RLN leaf 1 registered"),
        "{}",
        stdout(&out)
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
