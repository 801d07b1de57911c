//! The HTTP listeners: the API and, when configured, the read-only header listener for
//! members' polled drivers. Their addresses go to `<state_dir>/api.addr` and `altnet.addr`, so
//! tools find OS-chosen ports.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{NodeError, ValidConfig};

pub(super) struct Listeners {
    pub api: TcpListener,
    pub api_addr: SocketAddr,
    pub headers: Option<(TcpListener, SocketAddr)>,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), NodeError> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Http { addr, source })?;
    let local = l
        .local_addr()
        .map_err(|source| NodeError::Http { addr, source })?;
    Ok((l, local))
}

impl Listeners {
    pub async fn bind(cfg: &ValidConfig) -> Result<Self, NodeError> {
        let (api, api_addr) = bind(cfg.http_listen).await?;
        let headers = match cfg.altnet_http_listen {
            Some(addr) => {
                let (l, local) = bind(addr).await?;
                if let Err(e) = std::fs::write(cfg.state_dir.join("altnet.addr"), local.to_string())
                {
                    tracing::warn!(error = %e, "cannot write altnet.addr");
                }
                Some((l, local))
            }
            None => None,
        };
        // Written last: when it exists, so does altnet.addr if configured.
        if let Err(e) = std::fs::write(cfg.state_dir.join("api.addr"), api_addr.to_string()) {
            tracing::warn!(error = %e, "cannot write api.addr");
        }
        Ok(Listeners {
            api,
            api_addr,
            headers,
        })
    }
}

/// Serves `app` on `listener` until `stop` changes.
pub(super) async fn serve_api(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let graceful = async move {
        let _ = stop.changed().await;
    };
    // Deliveries are small WebSocket frames: without NODELAY, Nagle and delayed ACKs add ~40 ms.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(error = %e, "HTTP API failed");
    }
}
