//! The web face: the technician's local status page and its JSON API.
//!
//! An axum server on `[web] listen` (plain HTTP, or HTTPS with rustls when `tls_cert_file` and
//! `tls_key_file` are given) serves the page's embedded assets (no CDN, no external fonts), the
//! station snapshot as JSON, live updates as server-sent events, 48 h of trends from a bounded
//! ring buffer, the heating curve, the audit log's tail, and settings writes through the one
//! [`Gate`](crate::gate::Gate), only with the write token (`token_file`). The API is documented
//! in `docs/web-api.md`, also served at `/api/doc`.
//!
//! Nothing here can slow the control cycle: every reader takes the latest snapshot from the
//! watch channel (a clone of an `Arc`); one task encodes it for the live clients at most twice
//! a real second, and one task samples it once a clock minute for the trends. Live clients
//! are capped (`max_sse_clients`, 503 beyond).

mod api;
mod assets;
mod auth;
mod balance;
mod events;
mod tls;
mod trends;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use anyhow::Context as _;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Web;
use crate::faces::FaceContext;

pub use api::{CurvePoint, CurveView, Info, OperatingPoint, default_language};
pub use assets::total_bytes as assets_total_bytes;
pub use auth::tokens_match;
pub use balance::BalanceView;
pub use trends::{TRENDS_COLUMNS, Trends};

/// Most bytes a settings request body may have (a setting is a few dozen bytes).
pub const MAX_BODY_BYTES: usize = 4096;
/// Shortest gap between two snapshots sent to a live client, real time (the control cycle may
/// run much faster on an accelerated clock; the latest snapshot is always the one sent).
pub const EVENTS_MIN_GAP: std::time::Duration = std::time::Duration::from_millis(500);
/// Keep-alive comment interval of the live stream.
pub const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

/// What every request handler shares.
#[derive(Debug, Clone)]
struct AppState {
    ctx: FaceContext,
    /// The write token (None: the page is read-only).
    token: Option<Arc<[u8]>>,
    /// Why the page is read-only, when it is.
    read_only_reason: Option<String>,
    trends: Arc<Trends>,
    /// The latest balancing advice (`/api/balance`).
    balance: Arc<balance::BalanceCache>,
    /// The latest snapshot as JSON, at most every [`EVENTS_MIN_GAP`].
    encoded: watch::Receiver<Option<events::Encoded>>,
    /// Live clients now.
    sse_clients: Arc<AtomicUsize>,
    max_sse_clients: usize,
    tls: bool,
}

/// The peer's address, for plain and TLS connections alike.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tls::TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// The running web server.
#[derive(Debug)]
pub struct WebHandle {
    addr: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    helpers: Vec<JoinHandle<()>>,
    trends: Arc<Trends>,
}

impl WebHandle {
    /// The address the server listens on (the real port when the configuration said 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "{}://{}/",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The trends ring buffer (for measurements).
    #[must_use]
    pub fn trends(&self) -> &Arc<Trends> {
        &self.trends
    }

    /// Stop serving: open connections (live streams too) are closed.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for h in &self.helpers {
            h.abort();
        }
        // Live streams never end on their own: give graceful shutdown a moment, then cut.
        let mut server = self.server;
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut server)
            .await
            .is_err()
        {
            server.abort();
            let _ = server.await;
        }
        for h in self.helpers {
            let _ = h.await;
        }
    }
}

/// Start serving when `[web]` enables it.
///
/// # Errors
/// The address cannot be bound, or the TLS certificate or key cannot be read. (An unreadable
/// token file makes the page read-only, logged, rather than stopping the controller.)
pub fn start(
    cfg: &Web,
    ctx: FaceContext,
) -> crate::BoxFuture<'_, anyhow::Result<Option<WebHandle>>> {
    Box::pin(start_inner(cfg, ctx))
}

async fn start_inner(cfg: &Web, ctx: FaceContext) -> anyhow::Result<Option<WebHandle>> {
    if !cfg.enabled {
        return Ok(None);
    }
    let addr: SocketAddr = cfg
        .listen
        .parse()
        .with_context(|| format!("web.listen {:?} is not an address:port", cfg.listen))?;
    let tls = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert.as_ref(), key.as_ref())?),
        _ => None,
    };
    let (token, read_only_reason) = auth::load_token(cfg);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("the web page cannot listen on {addr}"))?;
    let addr = listener.local_addr().context("web listener address")?;

    let write_enabled = token.is_some() && !cfg.writable.is_empty();
    let trends = Arc::new(Trends::new(cfg.trend_hours));
    let (encoded_tx, encoded) = watch::channel(None);
    let sse_clients = Arc::new(AtomicUsize::new(0));
    let balance_cache = Arc::new(balance::BalanceCache::default());
    let helpers = vec![
        tokio::spawn(balance::refresh(
            Arc::clone(&balance_cache),
            ctx.state_dir.clone(),
            ctx.configs.clone(),
        )),
        tokio::spawn(trends::sample(ctx.snapshots.clone(), Arc::clone(&trends))),
        tokio::spawn(events::encode(
            ctx.snapshots.clone(),
            encoded_tx,
            Arc::clone(&sse_clients),
        )),
    ];
    let state = AppState {
        ctx,
        token,
        read_only_reason,
        trends: Arc::clone(&trends),
        balance: balance_cache,
        encoded,
        sse_clients,
        max_sse_clients: cfg.max_sse_clients.max(1) as usize,
        tls: tls.is_some(),
    };
    let app = api::router(state).into_make_service_with_connect_info::<Peer>();
    let (shutdown, mut stop_rx) = watch::channel(false);
    let stopped = async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    };
    let is_tls = tls.is_some();
    let server = match tls {
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "web server stopped");
            }
        }),
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stopped)
                    .await
                {
                    tracing::error!(error = %e, "web server stopped");
                }
            })
        }
    };
    let handle = WebHandle {
        addr,
        tls: is_tls,
        shutdown,
        server,
        helpers,
        trends,
    };
    tracing::info!(
        url = %handle.url(),
        writes = if write_enabled { "with the token" } else { "read-only" },
        "web page serving"
    );
    Ok(Some(handle))
}
