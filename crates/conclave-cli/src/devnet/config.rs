//! The devnet nodes' configurations, as the node's own `NodeConfig` values: a key the node does
//! not know fails to compile here instead of failing its start-up.

use std::time::Duration;

use conclave_node::config::{
    ClockChainSection, CoordinationSection, EvmSection, RegistrySection, RlnSection,
    WatchdogSection,
};
use conclave_node::NodeConfig;

use super::common::{
    Windows, ANON_TOPIC, CHAIN_STAGGER_SECS, CLOCK_BLOCK_MS, CONFIRMATIONS, SPAMMER, TOPIC, TWIN,
};

/// Node `name` on loopback (OS-chosen ports), with its key `<name>.key` and state in `<name>/`,
/// subscribed to the devnet topic and polling the registry file (`registry.toml` by default)
/// often.
pub fn node(name: &str) -> NodeConfig {
    NodeConfig {
        key_file: format!("{name}.key").into(),
        state_dir: name.into(),
        listen: vec![
            "/ip4/127.0.0.1/tcp/0".into(),
            "/ip4/127.0.0.1/udp/0/quic-v1".into(),
        ],
        http_listen: "127.0.0.1:0".into(),
        topics: vec![TOPIC.into()],
        registry: RegistrySection {
            poll_ms: 100,
            ..RegistrySection::default()
        },
        ..NodeConfig::default()
    }
}

/// Membership from the ConclaveRegistry contract at `contract`, read through `rpc_url`.
pub fn evm_registry(cfg: &mut NodeConfig, rpc_url: &str, contract: &str) {
    cfg.registry.source = "evm".into();
    cfg.evm = EvmSection {
        rpc_url: Some(rpc_url.into()),
        contract: Some(contract.into()),
        confirmations: CONFIRMATIONS,
        poll_ms: 100,
    };
}

/// A clock chain shared by every node: the same genesis, blocks of `block_ms`.
pub fn clock_chain(cfg: &mut NodeConfig, genesis_ms: u64, block_ms: u64) {
    cfg.clock_chain = ClockChainSection {
        genesis_ms: Some(genesis_ms),
        block_ms,
    };
}

/// Coordination windows on `windows`; with `clock_genesis_ms`, on the devnet's clock chain.
pub fn coordination(cfg: &mut NodeConfig, windows: Windows, clock_genesis_ms: Option<u64>) {
    cfg.coordination = CoordinationSection {
        enabled: true,
        frequency: windows.frequency,
        active: windows.active,
        passive: windows.passive,
        safe_shift: windows.safe_shift,
        ..CoordinationSection::default()
    };
    if let Some(genesis) = clock_genesis_ms {
        clock_chain(cfg, genesis, CLOCK_BLOCK_MS);
    }
}

/// The anonymous channel for member `i`; the twin runs with the spammer's identity.
pub fn rln(cfg: &mut NodeConfig, i: usize) {
    let key = if i == TWIN { SPAMMER } else { i };
    cfg.rln = RlnSection {
        enabled: true,
        key: Some(format!("node-{key}.rln").into()),
        identifier: "conclave/devnet".into(),
        topics: vec![ANON_TOPIC.into()],
        announce_removed_secs: 2,
        ..cfg.rln.clone()
    };
}

/// The anonymous channel for the anonymity scenario: member `i`'s own identity, the stem on or
/// off with stem epochs of `stem_epoch_secs`, the last `record_arrivals` arrivals kept.
pub fn anonymous(
    cfg: &mut NodeConfig,
    i: usize,
    stem: bool,
    stem_epoch_secs: u64,
    record_arrivals: usize,
) {
    cfg.rln = RlnSection {
        enabled: true,
        key: Some(format!("node-{i}.rln").into()),
        identifier: "conclave/devnet".into(),
        topics: vec![ANON_TOPIC.into()],
        stem,
        stem_epoch_secs,
        record_arrivals,
        ..RlnSection::default()
    };
}

/// On a chain: member `i` submits removals of slashed members with its funded hot account.
pub fn rln_on_chain(cfg: &mut NodeConfig, i: usize) {
    cfg.rln.chain_key = Some(format!("node-{i}.eth").into());
    cfg.rln.chain_stagger_secs = CHAIN_STAGGER_SECS;
}

/// The watchdog scaled to the chain's block time, so a frozen source is noticed in a few blocks.
pub fn watchdog(cfg: &mut NodeConfig, block: Duration) {
    let ms = block.as_millis() as u64;
    cfg.watchdog = WatchdogSection {
        block_ms: ms,
        variance_ms: ms * 2,
        tip_secs: 1,
        ahead_blocks: 3,
        raise_after_ms: 300,
        clear_after_ms: 1000,
        fetch_ms: 300,
        silence_secs: 600,
        ..cfg.watchdog.clone()
    };
}

/// The TOML file of `cfg`: only the keys (and, within sections, only the section keys) that
/// differ from the node's defaults, so the file says what the devnet chose.
pub fn to_toml(cfg: &NodeConfig) -> anyhow::Result<String> {
    let table = toml::Table::try_from(cfg)?;
    let defaults = toml::Table::try_from(NodeConfig::default())?;
    Ok(toml::to_string(&changed(table, &defaults, "")?)?)
}

/// The entries of `table` that differ from `defaults`, recursing into sections.
fn changed(
    mut table: toml::Table,
    defaults: &toml::Table,
    at: &str,
) -> anyhow::Result<toml::Table> {
    // A key dropped here must fall back to the very value it had.
    if let Some(k) = defaults.keys().find(|k| !table.contains_key(*k)) {
        anyhow::bail!("config key `{at}{k}` has a default the devnet cannot unset");
    }
    let mut out = toml::Table::new();
    for (k, v) in std::mem::take(&mut table) {
        match (v, defaults.get(&k)) {
            (toml::Value::Table(section), Some(toml::Value::Table(default))) => {
                let section = changed(section, default, &format!("{k}."))?;
                if !section.is_empty() {
                    out.insert(k, toml::Value::Table(section));
                }
            }
            (v, d) if d != Some(&v) => {
                out.insert(k, v);
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::common::CHAIN_WINDOWS;
    use super::*;

    #[test]
    fn a_written_config_reads_back_as_built() {
        let mut cfg = node("node-3");
        evm_registry(&mut cfg, "http://127.0.0.1:8545", "0xabc");
        coordination(&mut cfg, CHAIN_WINDOWS, None);
        rln(&mut cfg, TWIN);
        watchdog(&mut cfg, Duration::from_millis(500));
        let text = to_toml(&cfg).unwrap();
        assert!(!text.contains("timestamp_tolerance_secs"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, &text).unwrap();
        let (read, _) = NodeConfig::load(Some(&file), &[]).unwrap();
        assert_eq!(read, cfg);
    }
}
