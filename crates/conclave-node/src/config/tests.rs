//! Configuration as a specification: layering, sections, flat names, and every malformed value
//! refused with its key named.

use std::time::Duration;

use super::*;

fn load_text(text: &str, overrides: &[&str]) -> Result<ValidConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let (c, base) = NodeConfig::load(Some(&path), &overrides)?;
    c.validate(&base)
}

#[test]
fn layers_and_resolves_paths() {
    let c = load_text(
        "key_file = \"k/node.key\"\ntopics = [\"signers\"]\n",
        &["http_listen=127.0.0.1:0", "ready_quorum=3"],
    )
    .unwrap();
    assert!(c.key_file.ends_with("k/node.key") && c.key_file.is_absolute());
    assert_eq!(c.http_listen.port(), 0);
    assert_eq!(c.ready_quorum, Some(3));
    assert_eq!(c.topics[0].as_str(), "signers");
    assert_eq!(c.listen.len(), 2);
}

#[test]
fn sections_configure_their_subsystem_and_overrides_take_either_name() {
    let text = "[registry]\nsource = \"evm\"\n\
                [evm]\nrpc_url = \"http://127.0.0.1:8545\"\ncontract = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\n\
                [coordination]\nenabled = true\nfrequency = 20\nactive = 10\npassive = 5\nsafe_shift = 3\n";
    let c = load_text(text, &["evm_confirmations=5", "coordination.active=12"]).unwrap();
    let RegistryChoice::Evm(evm) = &c.registry else {
        panic!("expected the evm registry: {:?}", c.registry);
    };
    assert_eq!(evm.confirmations, 5);
    let coord = c.coordination.unwrap();
    assert_eq!((coord.params.frequency, coord.params.active), (20, 12));
}

#[test]
fn the_stem_is_on_by_default_and_each_of_its_keys_configures_it() {
    let stem = load_text("[rln]\nenabled = true\n", &[])
        .unwrap()
        .rln
        .unwrap()
        .stem;
    assert!(
        stem.enabled,
        "own anonymous messages start on the stem by default"
    );
    assert_eq!(stem.fluff_probability, 0.2);
    let text = "[rln]\nenabled = true\nstem = false\nstem_hop_delay_ms = 10\n\
                stem_failsafe_ms = 900\nstem_epoch_secs = 60\n";
    let stem = load_text(text, &["rln_stem_fluff_probability=0.5"])
        .unwrap()
        .rln
        .unwrap()
        .stem;
    assert!(!stem.enabled);
    assert_eq!(stem.fluff_probability, 0.5);
    assert_eq!(
        (stem.hop_delay, stem.failsafe, stem.epoch),
        (
            Duration::from_millis(10),
            Duration::from_millis(900),
            Duration::from_secs(60)
        )
    );
}

#[test]
fn every_section_key_has_exactly_one_flat_name() {
    let defaults = toml::Table::try_from(NodeConfig::default()).unwrap();
    let mut places: Vec<String> = Vec::new();
    for (section, value) in &defaults {
        if let Some(table) = value.as_table() {
            places.extend(table.keys().map(|k| format!("{section}.{k}")));
        }
    }
    // Keys whose default is "unset" do not serialize; they still need a flat name.
    let unset = [
        "evm.rpc_url",
        "evm.contract",
        "stacks.node_url",
        "stacks.registry_contract",
        "clock_chain.genesis_ms",
        "rln.key",
        "rln.chain_key",
        "altnet.http_listen",
    ];
    places.extend(unset.iter().map(|s| s.to_string()));
    places.sort();
    let mut mapped: Vec<String> = FLAT_KEYS.iter().map(|(_, p)| p.to_string()).collect();
    mapped.sort();
    assert_eq!(mapped, places);
    let mut flat: Vec<&str> = FLAT_KEYS.iter().map(|(f, _)| *f).collect();
    flat.sort();
    flat.dedup();
    assert_eq!(flat.len(), FLAT_KEYS.len(), "a flat name is used twice");
}

#[test]
fn a_file_with_a_flat_name_is_told_where_the_key_moved() {
    let err = load_text("evm_rpc_url = \"http://x\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`evm_rpc_url` is now `evm.rpc_url` (section [evm])"),
        "{err}"
    );
    let err = load_text("rln = true\n", &[]).unwrap_err().to_string();
    assert!(err.contains("`rln.enabled`"), "{err}");
}

#[test]
fn malformed_values_name_the_key_and_the_expected_form() {
    let cases = [
        (
            "listen = [\"/ip4/1.2.3.4/tcp/1\", \"nonsense\"]\n",
            "listen[1]",
        ),
        ("seeds = [\"/ip4/127.0.0.1/tcp/1\"]\n", "/p2p/<peer id>"),
        ("http_listen = \"localhost\"\n", "IP:PORT"),
        ("[altnet]\nhttp_listen = \"8081\"\n", "altnet.http_listen"),
        ("topics = [\"Bad\"]\n", "topics[0]"),
        ("log_format = \"xml\"\n", "log_format"),
        ("frobnicate = 1\n", "frobnicate"),
        ("[evm]\nfrobnicate = 1\n", "frobnicate"),
        ("[limits]\nmax_message_bytes = \"big\"\n", "max_message_bytes"),
        ("[registry]\nsource = \"ldap\"\n", "`file`, `evm` or `stacks`"),
        ("[coordination]\nenabled = true\n", "clock_chain.genesis_ms"),
        (
            "[coordination]\nenabled = true\nactive = 950\n[clock_chain]\ngenesis_ms = 1\n",
            "active + passive",
        ),
        (
            "[coordination]\nenabled = true\nheartbeat_probability = 2.0\n[clock_chain]\ngenesis_ms = 1\n",
            "coordination.heartbeat_probability",
        ),
        ("[registry]\nsource = \"evm\"\n", "evm.rpc_url"),
        (
            "[altnet]\nhttp_peers = [\"ftp://10.0.0.5\"]\n",
            "altnet.http_peers",
        ),
        ("[watchdog]\nfetch_ms = 0\n", "watchdog.fetch_ms"),
        (
            "[registry]\nsource = \"evm\"\n[evm]\nrpc_url = \"http://127.0.0.1:8545\"\ncontract = \"0x12\"\n",
            "evm.contract",
        ),
        (
            "[rln]\nenabled = true\nchain_key = \"k.eth\"\n",
            "rln.chain_key",
        ),
        (
            "[rln]\nenabled = true\nstem_fluff_probability = 0.0\n",
            "rln.stem_fluff_probability",
        ),
        (
            "[rln]\nenabled = true\nstem_fluff_probability = 1.5\n",
            "above 0 and at most 1",
        ),
        (
            "[rln]\nenabled = true\nstem_hop_delay_ms = 3000\n",
            "less than rln.stem_failsafe_ms",
        ),
        ("[rln]\nenabled = true\nstem_epoch_secs = 0\n", "rln.stem_epoch_secs"),
        (
            "[limits]\ntimestamp_tolerance_secs = 301\n",
            "at most 300 seconds",
        ),
    ];
    for (text, expected) in cases {
        let err = load_text(text, &[]).unwrap_err().to_string();
        assert!(err.contains(expected), "expected `{expected}` in: {err}");
    }
    let err = load_text("", &["nonsense"]).unwrap_err().to_string();
    assert!(err.contains("KEY=VALUE"), "{err}");
    let err = NodeConfig::load(Some(Path::new("/nonexistent/node.toml")), &[]).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/node.toml"));
}

#[test]
fn the_stacks_registry_takes_the_issue_s_flat_names_and_refuses_what_it_cannot_use() {
    const CONTRACT: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.sbtc-registry";
    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let base = [
        "registry=stacks",
        "stacks_node_url=http://127.0.0.1:20443/",
        "stacks_registry_contract=ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.sbtc-registry",
        "stacks_poll_ms=500",
        "stacks_member_scopes=[\"sbtc\", \"dkg\"]",
    ];
    let with = |extra: &[&str]| load_text("", &[&base[..], extra].concat());
    let c = with(&[
        &format!("stacks_candidates=[\"{G}\"]"),
        "stacks_candidate_scopes=[\"dkg\"]",
    ])
    .unwrap();
    let RegistryChoice::Stacks(s) = &c.registry else {
        panic!("expected the stacks registry: {:?}", c.registry);
    };
    assert_eq!(s.node_url, "http://127.0.0.1:20443");
    assert_eq!(s.contract.to_string(), CONTRACT);
    assert_eq!(s.poll_interval, Duration::from_millis(500));
    assert_eq!(s.member_scopes.len(), 2);
    assert_eq!(hex::encode(s.candidates[0].compressed), G);

    let refused = |extra: &[&str]| match with(extra) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("{extra:?} was not refused: {other:?}"),
    };
    assert_eq!(
        refused(&["stacks_node_url=127.0.0.1:20443"]),
        "stacks.node_url"
    );
    assert_eq!(
        refused(&[
            "stacks_registry_contract=ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGN.sbtc-registry"
        ]),
        "stacks.registry_contract"
    );
    assert_eq!(
        refused(&["stacks_member_scopes=[]"]),
        "stacks.member_scopes"
    );
    let not_a_point = format!("02{}", "ff".repeat(32));
    assert_eq!(
        refused(&[&format!("stacks_candidates=[\"{not_a_point}\"]")]),
        "stacks.candidates[0]"
    );
    assert_eq!(
        refused(&[&format!("stacks_candidates=[\"{G}\", \"0x{G}\"]")]),
        "stacks.candidates[1]"
    );
    assert_eq!(refused(&["coordination=true"]), "clock_chain.genesis_ms");
}
