#[allow(unused_imports)]
use {
    anyhow as _, axum as _, base64 as _, clap as _, figment as _, futures as _, hex as _,
    libp2p as _, prometheus_client as _, prost as _, rand as _, redb as _, reqwest as _,
    serde as _, serde_json as _, sha2 as _, sha3 as _, tempfile as _, thiserror as _, tokio as _,
    tokio_tungstenite as _, toml as _, tracing as _, tracing_subscriber as _,
};
fn main() {}
