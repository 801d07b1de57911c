//! Key files: `keys generate/show` and `rln keygen/show`, and `--version`.

use super::*;

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
    for limit in ["0", "101"] {
        let out = conclave(&["rln", "keygen", "--out", "y.key", "--limit", limit]);
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains(&format!("--limit {limit}: expected 1 to 100")),
            "{}",
            stderr(&out)
        );
    }
}
