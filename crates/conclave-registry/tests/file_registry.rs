// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use conclave_core::{Moment, PeerId, TopicName};
use conclave_registry::{FileRegistry, RegistryError, RegistrySource, RlnEntry};
use conclave_testkit::{eventually_within, node, RegistryDoc};

const OP_A: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const OP_B: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";
const NOW: Moment = Moment {
    unix_secs: 1_700_000_000,
    block: None,
};

/// Operator A with node `a` (signers, an address hint), operator B with node `b` if given (its
/// scopes, valid until 1 800 000 000), and a group seating A twice.
fn registry_with(a: &PeerId, b: Option<(&PeerId, &[&str])>) -> RegistryDoc {
    let mut node_a = node(a, &["signers"]);
    node_a.addresses = vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{a}")];
    let mut doc = RegistryDoc::new().operator(OP_A, vec![node_a]);
    if let Some((b, scopes)) = b {
        let mut node_b = node(b, scopes);
        node_b.valid_until = Some(1_800_000_000);
        doc = doc.operator(OP_B, vec![node_b]);
    }
    doc.group(format!("0x{}", "11".repeat(20)), &[OP_A, OP_A])
}

fn registry(a: &PeerId, b: Option<&PeerId>) -> RegistryDoc {
    registry_with(a, b.map(|b| (b, &["signers", "coord"][..])))
}

/// Polls `f` until it has a value; a reload must land within 5 s.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    eventually_within(Duration::from_secs(5), what, || {
        let v = f();
        async move { v }
    })
    .await
}

#[tokio::test]
async fn reload_applies_valid_edits_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    let (a, b) = (PeerId::random(), PeerId::random());
    registry(&a, Some(&b)).write(&path);

    let reg = FileRegistry::spawn(&path, Duration::from_millis(20)).unwrap();
    let view = reg.view();
    let status = reg.status();
    let signers: TopicName = "signers".parse().unwrap();
    {
        let v = view.borrow();
        assert_eq!(v.members_at(NOW).count(), 2);
        let auth = v.may_publish(&a, &signers, NOW).unwrap();
        assert_eq!(auth.operator.to_string(), OP_A);
        assert_eq!(
            auth.addresses,
            vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
            "the /p2p suffix is stripped from hints"
        );
        assert_eq!(v.groups()[0].seats.len(), 2);
    }

    // Removing b is applied.
    registry(&a, None).write(&path);
    wait_for("revision 2", || {
        (status.borrow().revision == 2).then_some(())
    })
    .await;
    assert!(view.borrow().authorization(&b, NOW).is_err());
    assert!(view.borrow().authorization(&a, NOW).is_ok());

    // A malformed edit that would also re-add b is refused; a stays, b stays out.
    registry_with(&a, Some((&b, &["Bad Topic"]))).write(&path);
    let err = wait_for("the malformed edit's error", || {
        status.borrow().last_error.clone()
    })
    .await;
    assert!(err.contains("registry.toml"), "{err}");
    assert!(err.contains("operators[1].nodes[0].scopes"), "{err}");
    assert!(err.contains("Bad Topic"), "{err}");
    assert_eq!(status.borrow().revision, 2);
    assert_eq!(status.borrow().rejected_updates, 1);
    assert!(view.borrow().authorization(&a, NOW).is_ok());
    assert!(view.borrow().authorization(&b, NOW).is_err());

    // Syntax errors and vanished files are refused the same way.
    std::fs::write(&path, "[[operators]\naddress = ").unwrap();
    wait_for("the syntax error refused", || {
        (status.borrow().rejected_updates == 2).then_some(())
    })
    .await;
    std::fs::remove_file(&path).unwrap();
    wait_for("the vanished file refused", || {
        (status.borrow().rejected_updates >= 3).then_some(())
    })
    .await;
    assert!(view.borrow().authorization(&a, NOW).is_ok());

    // Fixing the file clears the error and publishes a new view.
    registry(&a, Some(&b)).write(&path);
    wait_for("revision 3", || {
        (status.borrow().revision == 3).then_some(())
    })
    .await;
    assert_eq!(status.borrow().last_error, None);
    assert!(view.borrow().authorization(&b, NOW).is_ok());
}

/// Operator A (capped at `cap` RLN memberships, or the default) holding leaves 1..=`leaves`.
fn rln_registry(cap: Option<i64>, leaves: u32) -> RegistryDoc {
    let mut doc = RegistryDoc::new().operator(OP_A, vec![]);
    if let Some(cap) = cap {
        doc = doc.rln_memberships(cap);
    }
    for index in 1..=leaves {
        doc = doc.rln(RlnEntry {
            operator: OP_A.into(),
            index,
            rate_commitment: format!("{index:02x}").repeat(32),
            limit: 1,
            validator_pubkey: None,
            validator_signature: None,
        });
    }
    doc
}

#[tokio::test]
async fn an_operator_holds_one_rln_membership_unless_the_file_allows_more() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    let leaves = |v: &conclave_core::MembershipView| -> Vec<u32> {
        v.rln_members().map(|m| m.index).collect()
    };

    // Default: one. A second leaf refuses the file, naming both leaves and the cap.
    rln_registry(None, 1).write(&path);
    assert_eq!(leaves(&FileRegistry::load(&path).unwrap().0), [1]);
    let err = load_err(&rln_registry(None, 2).toml());
    assert!(
        err.contains(&format!(
            "rln[1]: RLN leaf 2: operator {OP_A} already holds leaf 1 (its cap of 1)"
        )),
        "{err}"
    );

    // Governance (the file's writer) allows two: both leaves are in; a third is refused.
    rln_registry(Some(2), 2).write(&path);
    let reg = FileRegistry::spawn(&path, Duration::from_millis(20)).unwrap();
    let (view, status) = (reg.view(), reg.status());
    assert_eq!(leaves(&view.borrow()), [1, 2]);
    let err = load_err(&rln_registry(Some(2), 3).toml());
    assert!(
        err.contains("already holds leaves 1, 2 (its cap of 2)"),
        "{err}"
    );

    // An invalid cap is refused like any bad edit: the last good view stays.
    rln_registry(Some(0), 2).write(&path);
    let err = wait_for("the invalid cap refused", || {
        status.borrow().last_error.clone()
    })
    .await;
    assert!(
        err.contains(&format!(
            "operators[0].rln_memberships = \"0\" is invalid: expected 1 to 16 RLN memberships for operator {OP_A}"
        )),
        "{err}"
    );
    assert_eq!(status.borrow().revision, 1);
    assert_eq!(leaves(&view.borrow()), [1, 2]);
}

fn load_err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.toml");
    std::fs::write(&path, text).unwrap();
    match FileRegistry::load(&path) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted an invalid registry:\n{text}"),
    }
}

#[test]
fn every_kind_of_bad_entry_is_named() {
    let a = PeerId::random();
    let cases = [
        (
            "[[operators]]\naddress = \"0x1234\"\n".to_string(),
            "operators[0].address",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[operators.nodes]]\npeer_id = \"nope\"\n"),
            "operators[0].nodes[0].peer_id",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[operators.nodes]]\npeer_id = \"{a}\"\nvalid_until = 5\nvalid_until_block = 6\n"),
            "operators[0].nodes[0].valid_until_block",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[operators.nodes]]\npeer_id = \"{a}\"\naddresses = [\"/ip4/1.2.3.4/tcp/1/p2p/{}\"]\n", PeerId::random()),
            "operators[0].nodes[0].addresses",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[operators]]\naddress = \"{}\"\n", OP_A.to_lowercase()),
            "operators[1]: operator",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[operators.nodes]]\npeer_id = \"{a}\"\n[[operators]]\naddress = \"{OP_B}\"\n[[operators.nodes]]\npeer_id = \"{a}\"\n"),
            "operators[1].nodes[0]: node",
        ),
        (
            format!("[[groups]]\nid = \"0x{}\"\nseats = [\"{OP_A}\"]\n", "22".repeat(20)),
            "groups[0]: group",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\nkey = 1\n"),
            "unknown field `key`",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"0x12\"\nlimit = 1\n"),
            "rln[0].rate_commitment = \"0x12\" is invalid: expected 32 bytes",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_B}\"\nindex = 1\nrate_commitment = \"{}\"\nlimit = 1\n", "11".repeat(32)),
            "rln[0]: RLN leaf 1 belongs to operator",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"{}\"\nlimit = 1\n", "ff".repeat(32)),
            "rln[0]: RLN leaf 1: rate commitment is not below the BN254 scalar field modulus",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"{c}\"\nlimit = 1\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"{c}\"\nlimit = 2\n", c = "11".repeat(32)),
            "rln[1]: RLN leaf 1 is registered twice",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"{c}\"\nlimit = 1\n[[rln]]\noperator = \"{OP_A}\"\nindex = 2\nrate_commitment = \"{d}\"\nlimit = 1\n", c = "11".repeat(32), d = "12".repeat(32)),
            "rln[1]: RLN leaf 2: operator 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed already holds leaf 1 (its cap of 1)",
        ),
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\n[[rln]]\noperator = \"{OP_A}\"\nindex = 1\nrate_commitment = \"{c}\"\nlimit = 101\n", c = "11".repeat(32)),
            "limit is above the largest allowed",
        ),
    ];
    let cap_cases = ["0", "17", "-1", "4294967297"].map(|cap| {
        (
            format!("[[operators]]\naddress = \"{OP_A}\"\nrln_memberships = {cap}\n"),
            format!("operators[0].rln_memberships = \"{cap}\" is invalid: expected 1 to 16 RLN memberships for operator {OP_A}"),
        )
    });
    let cases = cases
        .into_iter()
        .map(|(text, expected)| (text, expected.to_owned()))
        .chain(cap_cases);
    for (text, expected) in cases {
        let err = load_err(&text);
        assert!(err.contains("r.toml"), "{err}");
        assert!(err.contains(&expected), "expected `{expected}` in: {err}");
    }
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = FileRegistry::load(std::path::Path::new("/nonexistent/registry.toml")).unwrap_err();
    assert!(matches!(err, RegistryError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/registry.toml"));
}

/// A validator's `[[rln]]` entry (chain id 0 and a zero registry: a file has neither), signed
/// by `signer` (the validator itself, or a forger).
fn validator_entry(
    index: u32,
    validator: &conclave_bls::ValidatorSecret,
    signer: &conclave_bls::ValidatorSecret,
) -> RlnEntry {
    let rate_commitment = [index as u8 + 1; 32];
    let registration = conclave_bls::Registration {
        validator_pubkey: validator.public_key(),
        rate_commitment,
        limit: 1,
        chain_id: 0,
        registry: [0; 20],
    };
    RlnEntry {
        operator: OP_A.into(),
        index,
        rate_commitment: hex::encode(rate_commitment),
        limit: 1,
        validator_pubkey: Some(format!("0x{}", hex::encode(validator.public_key()))),
        validator_signature: Some(format!("0x{}", hex::encode(signer.sign(&registration)))),
    }
}

#[tokio::test]
async fn a_forged_or_repeated_validator_entry_is_skipped_and_named_the_rest_stays() {
    use conclave_bls::ValidatorSecret;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.toml");
    let (v1, v2, forger) = (
        ValidatorSecret::generate().unwrap(),
        ValidatorSecret::generate().unwrap(),
        ValidatorSecret::generate().unwrap(),
    );
    RegistryDoc::new()
        .operator(OP_A, vec![])
        .rln_memberships(4)
        .rln(validator_entry(0, &v1, &v1))
        .rln(validator_entry(1, &v2, &forger))
        .rln(validator_entry(2, &v1, &v1))
        .write(&path);
    let reg = FileRegistry::spawn(&path, Duration::from_millis(20)).unwrap();
    let leaves: Vec<_> = reg
        .view()
        .borrow()
        .rln_members()
        .map(|m| (m.index, m.validator))
        .collect();
    assert_eq!(
        leaves,
        [(0, Some(v1.public_key()))],
        "the forged leaf and the validator's second leaf are left out"
    );
    let skipped = reg.status().borrow().skipped.clone();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].starts_with("rln[1]: RLN leaf 1: validator 0x")
            && skipped[0].contains("not the validator's"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].contains("is already registered at leaf 0"),
        "{skipped:?}"
    );

    // A key that is not 48 bytes is a typo, not a forgery: the file is refused, by field.
    let mut typo = validator_entry(0, &v1, &v1);
    typo.validator_pubkey = Some("0x1234".into());
    let err = load_err(&RegistryDoc::new().operator(OP_A, vec![]).rln(typo).toml());
    assert!(
        err.contains("rln[0].validator_pubkey = \"0x1234\" is invalid: expected 48 bytes"),
        "{err}"
    );
    let mut half = validator_entry(0, &v1, &v1);
    half.validator_signature = None;
    let err = load_err(&RegistryDoc::new().operator(OP_A, vec![]).rln(half).toml());
    assert!(err.contains("rln[0].validator_signature"), "{err}");
}
