//! The faces that run beside the control cycle and talk to the outside: the platform link
//! (MQTT) and the web page. Each reads the station snapshots from the watch channel and writes
//! only through the settings [`Gate`]; none can delay the cycle.

use std::path::PathBuf;
use std::sync::Arc;

use crate::audit::Audit;
use crate::balance::recorder::{self, RecorderHandle};
use crate::config::Config;
use crate::gate::Gate;
use crate::platform::{self, PlatformHandle};
use crate::station::{PlatformLinkState, SnapshotReceiver};
use crate::web::{self, WebHandle};

/// What a face is given when it starts.
#[derive(Debug, Clone)]
pub struct FaceContext {
    /// The station snapshots, one per cycle.
    pub snapshots: SnapshotReceiver,
    /// The one way to change a setting or the configuration.
    pub gate: Gate,
    /// The audit log (tail and live records).
    pub audit: Audit,
    /// Where the state file, the audit log and the platform queue live (None: nothing kept).
    pub state_dir: Option<PathBuf>,
    /// The configuration in force when the face started.
    pub config: Arc<Config>,
    /// The configuration in force now: updated at every reload, also for a face that is not
    /// restarted by it (a face whose own table did not change).
    pub configs: tokio::sync::watch::Receiver<Arc<Config>>,
}

/// The running faces.
#[derive(Debug, Default)]
pub(crate) struct Faces {
    platform: Option<PlatformHandle>,
    web: Option<WebHandle>,
    history: Option<RecorderHandle>,
}

impl Faces {
    /// Start the faces the configuration enables.
    ///
    /// # Errors
    /// The web page cannot listen on its address.
    pub(crate) async fn start(ctx: &FaceContext) -> anyhow::Result<Self> {
        let web = web::start(&ctx.config.web, ctx.clone()).await?;
        let platform = platform::start(&ctx.config.platform, ctx.clone());
        let history = recorder::start(
            ctx.state_dir.as_deref(),
            ctx.snapshots.clone(),
            ctx.configs.clone(),
        );
        Ok(Self {
            platform,
            web,
            history,
        })
    }

    /// After a reload: restart each face whose table changed.
    ///
    /// # Errors
    /// The web page cannot listen on its new address (the platform link is restarted anyway).
    pub(crate) async fn reconfigure(
        &mut self,
        old: &Config,
        ctx: &FaceContext,
    ) -> anyhow::Result<()> {
        let new = &ctx.config;
        if old.platform != new.platform || old.site != new.site {
            if let Some(p) = self.platform.take() {
                p.stop().await;
            }
            self.platform = platform::start(&new.platform, ctx.clone());
        }
        if old.web != new.web {
            if let Some(w) = self.web.take() {
                w.stop().await;
            }
            self.web = web::start(&new.web, ctx.clone()).await?;
        }
        Ok(())
    }

    /// The platform link's state, when it runs.
    pub(crate) fn platform_state(&self) -> Option<PlatformLinkState> {
        self.platform.as_ref().map(PlatformHandle::state)
    }

    /// Stop every face (the platform link publishes what it can first).
    pub(crate) async fn stop(&mut self) {
        if let Some(p) = self.platform.take() {
            p.stop().await;
        }
        if let Some(w) = self.web.take() {
            w.stop().await;
        }
        if let Some(h) = self.history.take() {
            h.stop().await;
        }
    }
}
