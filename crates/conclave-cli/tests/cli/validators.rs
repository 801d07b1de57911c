//! An Ethereum validator joins the anonymous channel from its EIP-2335 keystore: governance
//! admits the key, the validator signs offline (no RPC), anyone submits the file; a wrong
//! password and a second registration are refused with their reasons.

use super::cold_keys::{ok, online_registry, private_file, run};
use super::*;

#[test]
fn a_validator_signs_its_registration_offline_and_a_relayer_submits_it() {
    use conclave_registry::evm::anvil::{Anvil, DEV_KEYS};
    let anvil = Anvil::spawn(&[]).unwrap();
    let url = anvil.url.as_str();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    private_file(&dir.path().join("pw"), "validator password\n");
    let pubkey = ok(run(
        &[
            "keys",
            "bls-generate",
            "--out",
            &path("keystore.json"),
            "--password-file",
            &path("pw"),
            "--light",
        ],
        None,
    ))
    .trim()
    .to_owned();
    assert_eq!(pubkey.len(), 2 + 96, "{pubkey}");
    let mode = std::fs::metadata(path("keystore.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    ok(run(
        &["rln", "keygen", "--out", &path("id.rln"), "--limit", "2"],
        None,
    ));

    let operator = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let contract = online_registry(url, operator, &dir.path().join("show.json"));
    let at = ["--rpc-url", url, "--contract", contract.as_str()];
    let text = ok(run(
        &[
            &["registry", "assign-validators"],
            &at[..],
            &["--operator", operator, "--pubkeys", &pubkey],
        ]
        .concat(),
        Some(DEV_KEYS[0]),
    ));
    assert!(text.contains("1 validator key(s) admitted"), "{text}");

    // Offline: no RPC URL, the chain id given.
    let sign = |password: &str, out: &str| {
        run(
            &[
                "rln",
                "register-validator",
                "--keystore",
                &path("keystore.json"),
                "--password-file",
                &path(password),
                "--rln-key",
                &path("id.rln"),
                "--limit",
                "2",
                "--contract",
                &contract,
                "--chain-id",
                "31337",
                "--out",
                &path(out),
            ],
            None,
        )
    };
    private_file(&dir.path().join("wrong"), "guess\n");
    let refused = sign("wrong", "never.json");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("wrong password"),
        "{}",
        stderr(&refused)
    );
    let text = ok(sign("pw", "reg.json"));
    assert!(
        text.contains(&format!("validator {pubkey} registers")),
        "{text}"
    );

    // Online: a relayer that is neither governance nor the operator submits it.
    let submit = || {
        run(
            &["registry", "submit", &path("reg.json"), "--rpc-url", url],
            Some(DEV_KEYS[9]),
        )
    };
    let text = ok(submit());
    assert!(text.contains("registered RLN leaf 0 (limit 2)"), "{text}");
    let again = submit();
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("has already registered an RLN membership"),
        "{}",
        stderr(&again)
    );
    let view: ViewAnswer =
        serde_json::from_str(&ok(run(&[&["registry", "show"], &at[..]].concat(), None))).unwrap();
    assert_eq!(view.rln.len(), 1, "{view:?}");
    assert_eq!(view.rln[0].limit, 2);
}
