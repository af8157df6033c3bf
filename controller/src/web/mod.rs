//! The web face: the technician's local status page.

use tokio::task::JoinHandle;

use crate::config::Web;
use crate::faces::FaceContext;

/// The running web server.
#[derive(Debug)]
pub struct WebHandle {
    task: JoinHandle<()>,
}

impl WebHandle {
    /// Stop serving.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Start serving when `[web]` enables it.
///
/// # Errors
/// The address cannot be bound.
pub async fn start(cfg: &Web, ctx: FaceContext) -> anyhow::Result<Option<WebHandle>> {
    if !cfg.enabled {
        return Ok(None);
    }
    let _ = ctx;
    tracing::error!("the web page is not built into this version");
    Ok(None)
}
