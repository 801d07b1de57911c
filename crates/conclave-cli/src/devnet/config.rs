//! The devnet nodes' configurations, as the node's own `NodeConfig` values: a key the node does
//! not know fails to compile here instead of failing its start-up.

use std::time::Duration;

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
        registry_poll_ms: 100,
        ..NodeConfig::default()
    }
}

/// Membership from the ConclaveRegistry contract at `contract`, read through `rpc_url`.
pub fn evm_registry(cfg: &mut NodeConfig, rpc_url: &str, contract: &str) {
    cfg.registry = "evm".into();
    cfg.evm_rpc_url = Some(rpc_url.into());
    cfg.evm_contract = Some(contract.into());
    cfg.evm_confirmations = CONFIRMATIONS;
    cfg.evm_poll_ms = 100;
}

/// A clock chain shared by every node: the same genesis, blocks of `block_ms`.
pub fn clock_chain(cfg: &mut NodeConfig, genesis_ms: u64, block_ms: u64) {
    cfg.clock_chain_genesis_ms = Some(genesis_ms);
    cfg.clock_chain_block_ms = block_ms;
}

/// Coordination windows on `windows`; with `clock_genesis_ms`, on the devnet's clock chain.
pub fn coordination(cfg: &mut NodeConfig, windows: Windows, clock_genesis_ms: Option<u64>) {
    cfg.coordination = true;
    cfg.coord_frequency = windows.frequency;
    cfg.coord_active = windows.active;
    cfg.coord_passive = windows.passive;
    cfg.coord_safe_shift = windows.safe_shift;
    if let Some(genesis) = clock_genesis_ms {
        clock_chain(cfg, genesis, CLOCK_BLOCK_MS);
    }
}

/// The anonymous channel for member `i`; the twin runs with the spammer's identity.
pub fn rln(cfg: &mut NodeConfig, i: usize) {
    let key = if i == TWIN { SPAMMER } else { i };
    cfg.rln = true;
    cfg.rln_key = Some(format!("node-{key}.rln").into());
    cfg.rln_identifier = "conclave/devnet".into();
    cfg.rln_topics = vec![ANON_TOPIC.into()];
    cfg.rln_announce_removed_secs = 2;
}

/// On a chain: member `i` submits removals of slashed members with its funded hot account.
pub fn rln_on_chain(cfg: &mut NodeConfig, i: usize) {
    cfg.rln_chain_key = Some(format!("node-{i}.eth").into());
    cfg.rln_chain_stagger_secs = CHAIN_STAGGER_SECS;
}

/// The watchdog scaled to the chain's block time, so a frozen source is noticed in a few blocks.
pub fn watchdog(cfg: &mut NodeConfig, block: Duration) {
    let ms = block.as_millis() as u64;
    cfg.watchdog_block_ms = ms;
    cfg.watchdog_variance_ms = ms * 2;
    cfg.watchdog_tip_secs = 1;
    cfg.watchdog_ahead_blocks = 3;
    cfg.watchdog_raise_after_ms = 300;
    cfg.watchdog_clear_after_ms = 1000;
    cfg.watchdog_fetch_ms = 300;
    cfg.watchdog_silence_secs = 600;
}

/// The TOML file of `cfg`: only the keys that differ from the node's defaults, so the file
/// says what the devnet chose.
pub fn to_toml(cfg: &NodeConfig) -> anyhow::Result<String> {
    let mut table = toml::Table::try_from(cfg)?;
    let defaults = toml::Table::try_from(NodeConfig::default())?;
    // A key dropped here must fall back to the very value it had.
    if let Some(k) = defaults.keys().find(|k| !table.contains_key(*k)) {
        anyhow::bail!("config key `{k}` has a default the devnet cannot unset");
    }
    table.retain(|k, v| defaults.get(k) != Some(v));
    Ok(toml::to_string(&table)?)
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
