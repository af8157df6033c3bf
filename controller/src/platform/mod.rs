//! The platform face: the link to the utility's MQTT broker.

use tokio::task::JoinHandle;

use crate::config::Platform;
use crate::faces::FaceContext;
use crate::station::PlatformLinkState;

/// The running platform link.
#[derive(Debug)]
pub struct PlatformHandle {
    task: JoinHandle<()>,
    state: tokio::sync::watch::Receiver<PlatformLinkState>,
}

impl PlatformHandle {
    /// The link's state now.
    #[must_use]
    pub fn state(&self) -> PlatformLinkState {
        self.state.borrow().clone()
    }

    /// Stop the link.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Start the link when `[platform]` enables it.
#[must_use]
pub fn start(cfg: &Platform, ctx: FaceContext) -> Option<PlatformHandle> {
    if !cfg.enabled {
        return None;
    }
    let _ = ctx;
    tracing::error!("the platform link is not built into this version");
    None
}
