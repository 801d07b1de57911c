//! The cold key stays offline: an operator whose key is an encrypted keystore and holds no
//! ETH signs an authorization with no RPC at all (the chain id, registry and nonce come from a
//! `conclave registry show` file), the file is inspected in words, and a relayer submits it;
//! a replay and a wrong password are refused with their reasons.

use super::*;

fn run(args: &[&str], eth_key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
    c.args(args)
        .env_remove("CONCLAVE_LOG")
        .env_remove("CONCLAVE_PASSWORD_FILE");
    match eth_key {
        Some(k) => c.env("CONCLAVE_ETH_KEY", k),
        None => c.env_remove("CONCLAVE_ETH_KEY"),
    };
    c.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn private_file(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn an_offline_signature_submitted_by_a_relayer_authorizes_a_node_key() {
    use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
    let anvil = Anvil::spawn(&[]).unwrap();
    let url = anvil.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    // The offline machine: a new cold key, straight into an encrypted keystore.
    private_file(&dir.path().join("pw"), "correct horse battery staple\n");
    let operator = ok(run(
        &[
            "keys",
            "eth-keystore",
            "--out",
            &path("cold.json"),
            "--password-file",
            &path("pw"),
            "--light",
        ],
        None,
    ))
    .trim()
    .to_owned();
    let node = ok(run(&["keys", "generate", "--out", &path("node.key")], None))
        .trim()
        .to_owned();

    // The online machine: governance deploys and admits the operator, then shows the registry.
    let text = ok(run(
        &["registry", "deploy", "--rpc-url", url],
        Some(DEV_KEYS[0]),
    ));
    let contract = text
        .lines()
        .find_map(|l| l.strip_prefix("contract = "))
        .unwrap()
        .to_owned();
    let at = ["--rpc-url", url, "--contract", contract.as_str()];
    ok(run(
        &[&["registry", "add-operator"], &at[..], &[operator.as_str()]].concat(),
        Some(DEV_KEYS[0]),
    ));
    let show = ok(run(&[&["registry", "show"], &at[..]].concat(), None));
    std::fs::write(dir.path().join("show.json"), &show).unwrap();

    // Offline again: sign from the show file; no RPC URL anywhere.
    let sign = |out: &str, password: &str| {
        run(
            &[
                "registry",
                "sign",
                "--out",
                &path(out),
                "--from",
                &path("show.json"),
                "--keystore",
                &path("cold.json"),
                "--password-file",
                &path(password),
                "authorize",
                "--peer-id",
                &node,
            ],
            None,
        )
    };
    let text = ok(sign("authorize.json", "pw"));
    assert!(text.contains("valid: signed by the operator"), "{text}");
    let inspected = ok(run(&["registry", "inspect", &path("authorize.json")], None));
    assert!(
        inspected.contains(&format!("authorize node key {node} for scope mask 0x1")),
        "{inspected}"
    );
    assert!(inspected.contains("nonce     0"), "{inspected}");
    assert!(
        inspected.contains("valid: signed by the operator"),
        "{inspected}"
    );
    private_file(&dir.path().join("wrong-pw"), "Tr0ub4dor&3\n");
    let refused = sign("never.json", "wrong-pw");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("wrong password"),
        "{}",
        stderr(&refused)
    );

    // Online: a relayer that is no operator submits it; the operator never sends anything.
    let submit = |key| {
        run(
            &[
                "registry",
                "submit",
                &path("authorize.json"),
                "--rpc-url",
                url,
            ],
            key,
        )
    };
    let text = ok(submit(Some(DEV_KEYS[9])));
    let relayer = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";
    assert!(
        text.contains(&format!(
            "signed by operator {operator}, submitted by {relayer}"
        )),
        "{text}"
    );
    let view: ViewAnswer =
        serde_json::from_str(&ok(run(&[&["registry", "show"], &at[..]].concat(), None))).unwrap();
    assert!(
        view.node(&node).is_some_and(|n| n.authorized_now),
        "{view:?}"
    );
    let replay = submit(Some(DEV_KEYS[9]));
    assert!(!replay.status.success());
    assert!(
        stderr(&replay).contains("already used"),
        "{}",
        stderr(&replay)
    );
}
