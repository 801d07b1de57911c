//! The cold key stays offline: an operator whose key is an encrypted keystore and holds no
//! ETH signs an authorization with no RPC at all (the chain id, registry and nonce come from a
//! `conclave registry show` file), the file is inspected in words, and a relayer submits it;
//! a replay and a wrong password are refused with their reasons.

use super::*;

pub(super) fn run(args: &[&str], eth_key: Option<&str>) -> Output {
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

pub(super) fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn private_file(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The online machine's part: governance deploys a registry and admits `operator`, and the
/// registry is shown into `show_file` for the offline machine. Returns the contract.
pub(super) fn online_registry(url: &str, operator: &str, show_file: &std::path::Path) -> String {
    use conclave_registry::evm::anvil::DEV_KEYS;
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
        &[&["registry", "add-operator"], &at[..], &[operator]].concat(),
        Some(DEV_KEYS[0]),
    ));
    let show = ok(run(&[&["registry", "show"], &at[..]].concat(), None));
    std::fs::write(show_file, show).unwrap();
    contract
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
    let contract = online_registry(url, &operator, &dir.path().join("show.json"));
    let at = ["--rpc-url", url, "--contract", contract.as_str()];

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

/// A 2-of-3 Safe as the operator: two owners sign on their own machines, `combine` joins their
/// files, a relayer submits; one owner's file alone is refused by the Safe.
#[test]
fn safe_owners_sign_apart_and_their_combined_signature_authorizes() {
    use conclave_registry::evm::admin::PrivateKeySigner;
    use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
    use conclave_registry::evm::safe::SafeDeployment;
    let anvil = Anvil::spawn(&[]).unwrap();
    let url = anvil.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let owners = [(); 3].map(|_| PrivateKeySigner::random());
    for (i, o) in owners.iter().enumerate() {
        private_file(
            &dir.path().join(format!("owner{i}.hex")),
            &o.to_bytes().to_string(),
        );
    }
    let payer = conclave_registry::evm::admin::parse_eth_key(DEV_KEYS[9]).unwrap();
    let addresses: Vec<_> = owners.iter().map(|o| o.address()).collect();
    let safe = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let d = SafeDeployment::deploy(url, &payer).await.unwrap();
        d.create_safe(url, &payer, &addresses, 2, 7).await.unwrap()
    });
    let node = ok(run(&["keys", "generate", "--out", &path("node.key")], None))
        .trim()
        .to_owned();
    let safe_text = safe.to_string();
    let contract = online_registry(url, &safe_text, &dir.path().join("show.json"));
    let at = ["--rpc-url", url, "--contract", contract.as_str()];

    let sign = |owner: usize| {
        let out = format!("by-owner{owner}.json");
        ok(run(
            &[
                "registry",
                "sign",
                "--out",
                &path(&out),
                "--from",
                &path("show.json"),
                "--safe",
                &safe_text,
                "--eth-key-file",
                &path(&format!("owner{owner}.hex")),
                "authorize",
                "--peer-id",
                &node,
            ],
            None,
        ));
        path(&out)
    };
    let (first, third) = (sign(0), sign(2));
    let submit = |file: &str| {
        run(
            &["registry", "submit", file, "--rpc-url", url],
            Some(DEV_KEYS[9]),
        )
    };
    let alone = submit(&first);
    assert!(!alone.status.success());
    assert!(stderr(&alone).contains("ERC-1271"), "{}", stderr(&alone));
    let text = ok(run(
        &[
            "registry",
            "combine",
            "--out",
            &path("both.json"),
            &first,
            &third,
        ],
        None,
    ));
    assert!(text.contains("signed by its owners"), "{text}");
    ok(submit(&path("both.json")));
    let view: ViewAnswer =
        serde_json::from_str(&ok(run(&[&["registry", "show"], &at[..]].concat(), None))).unwrap();
    assert!(
        view.node(&node).is_some_and(|n| n.authorized_now),
        "{view:?}"
    );
}
