//! `/api/balance`: the latest balancing advice from the room history (see docs/balancing.md),
//! computed on a blocking thread every [`REFRESH`] (real time) and at start, never in a request
//! and never in the control cycle; requests get the cached answer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::balance::{self, Advice};
use crate::config::Config;

/// How often the advice is computed again, real time.
pub(super) const REFRESH: Duration = Duration::from_secs(600);

/// What `/api/balance` answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BalanceView {
    /// Wall time of the computation, unix s (None: not computed yet).
    pub computed_unix_s: Option<f64>,
    /// The plain-language summary (the advice's, or why there is none).
    pub summary: Option<String>,
    /// The advice (None: no history to read; see `error`).
    pub advice: Option<Advice>,
    /// Why the history could not be read.
    pub error: Option<String>,
}

/// The cached advice.
#[derive(Debug, Default)]
pub(super) struct BalanceCache {
    view: Mutex<BalanceView>,
}

impl BalanceCache {
    pub(super) fn get(&self) -> BalanceView {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, v: BalanceView) {
        *self
            .view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = v;
    }
}

fn compute(state_dir: Option<PathBuf>, config: &Config) -> BalanceView {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let Some(dir) = state_dir else {
        return BalanceView {
            computed_unix_s: Some(now),
            summary: Some(
                "No balancing advice: heatctl keeps no room history without a state directory \
                 (heatctl run --state-dir)."
                    .into(),
            ),
            advice: None,
            error: Some("no state directory".into()),
        };
    };
    let dir = balance::recorder::history_dir(&dir);
    match balance::advise_from(&dir, config) {
        Ok(a) => BalanceView {
            computed_unix_s: Some(now),
            summary: Some(a.summary()),
            advice: Some(a),
            error: None,
        },
        Err(e) => BalanceView {
            computed_unix_s: Some(now),
            summary: Some(format!("No balancing advice yet: {e}.")),
            advice: None,
            error: Some(e.to_string()),
        },
    }
}

/// The refresh task: compute now, then every [`REFRESH`].
pub(super) async fn refresh(
    cache: Arc<BalanceCache>,
    state_dir: Option<PathBuf>,
    configs: watch::Receiver<Arc<Config>>,
) {
    loop {
        let cfg = Arc::clone(&configs.borrow());
        let dir = state_dir.clone();
        match tokio::task::spawn_blocking(move || compute(dir, &cfg)).await {
            Ok(v) => cache.set(v),
            Err(e) => tracing::warn!(error = %e, "balancing advice not computed"),
        }
        tokio::time::sleep(REFRESH).await;
    }
}
