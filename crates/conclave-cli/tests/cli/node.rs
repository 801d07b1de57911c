//! `node run`: a malformed config stops start-up naming the key; a node reports its build and stops gracefully.

use super::*;

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
        ("[registry]\nfile = \"nowhere.toml\"\n", "nowhere.toml"),
        // A key of a section given flat is refused, naming where it moved.
        (
            "registry_file = \"nowhere.toml\"\n",
            "key `registry_file` is now `registry.file` (section [registry])",
        ),
        ("[evm]\nrpc_url = 8545\n", "rpc_url"),
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
    // A key of a section reaches its place from the environment by its flat name, and from
    // `--set` in either form: the node then stops on the registry file it names.
    let cfg_s = cfg.to_str().unwrap();
    let with_set = |set: &'static str| vec!["node", "run", "--config", cfg_s, "--set", set];
    let runs = [
        (
            "CONCLAVE_REGISTRY_FILE",
            vec!["node", "run", "--config", cfg_s],
        ),
        ("", with_set("registry_file=nowhere.toml")),
        ("", with_set("registry.file=nowhere.toml")),
    ];
    for (var, args) in runs {
        let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
        c.args(&args).env_remove("CONCLAVE_LOG");
        if !var.is_empty() {
            c.env(var, "nowhere.toml");
        }
        let out = c.output().unwrap();
        assert!(!out.status.success(), "{var} {args:?} was accepted");
        assert!(
            stderr(&out).contains("/nowhere.toml: cannot read"),
            "{var} {args:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn node_reports_its_build_and_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("node.key");
    let peer =
        String::from_utf8(conclave(&["keys", "generate", "--out", key.to_str().unwrap()]).stdout)
            .unwrap();
    RegistryDoc::new()
        .operator(
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            vec![node(peer.trim(), &["signers"])],
        )
        .write(&d.join("registry.toml"));
    let cfg = d.join("node.toml");
    let config = NodeConfig {
        http_listen: "127.0.0.1:0".into(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..NodeConfig::default()
    };
    std::fs::write(&cfg, toml::to_string(&config).unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["node", "run", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api_file = d.join("state/api.addr");
    let api = eventually_within(
        Duration::from_secs(30),
        "the node to start (its API address in state/api.addr)",
        || async {
            match std::fs::read_to_string(&api_file) {
                Ok(addr) if !addr.trim().is_empty() => Ok(addr.trim().to_string()),
                Ok(_) => Err("state/api.addr is empty".to_string()),
                Err(e) => Err(format!("state/api.addr: {e}")),
            }
        },
    )
    .await;
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
    let status = eventually_within(
        Duration::from_secs(15),
        "the node to exit on SIGTERM",
        || {
            let exited = child.try_wait().unwrap();
            async move { exited }
        },
    )
    .await;
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
