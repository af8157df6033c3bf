//! The runtime: tokio glue around the controller.
//!
//! One cycle every [`VALVE_PERIOD_S`] clock seconds: read both clocks (monotonic time for every
//! duration, wall time for schedules and timestamps, see [`clock`]; a wall-clock step is logged
//! and raised as alarm 701), build the process image from the field readings (with ages on
//! monotonic time), step the controller, add the field layer's alarms, write the commands
//! (or, in a dry run, log them), then build the cycle's [`StationSnapshot`], which the log
//! lines, SCADA, the state file and an embedding program read. SIGINT/SIGTERM write the safe
//! positions and end the run; SIGHUP or a changed configuration file reloads the configuration
//! atomically.
//!
//! The seams: `io` (process image in, writes out), `state` (the state file), `reload`
//! (SCADA settings and configuration reloads), `cycle` (the cycle and the run loop), [`clock`].
//!
//! [`StationSnapshot`]: crate::station::StationSnapshot

mod alarm_log;
pub mod clock;
mod cycle;
mod io;
mod reload;
mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, LoadedConfig};
use crate::station::SnapshotSender;
pub use clock::{
    CLOCK_STEP_ALARM_HOLD_S, Clock, ScaledClock, SteppableClock, WALL_STEP_THRESHOLD_S, WallClock,
};
pub use io::{build_image, planned_writes, split_binding};
pub use state::{STATE_MAX_AGE_S, STATE_SAVE_PERIOD_S};

/// Period of the control cycle (valve loop), clock seconds. Demand correction runs inside the
/// controller at its own configured period.
pub const VALVE_PERIOD_S: f64 = 1.0;
/// How often the field statistics are summarised in the log, clock seconds (hourly: the
/// failures themselves are logged when they start and stop).
pub const STATS_LOG_PERIOD_S: f64 = 3600.0;
/// The same in a dry run, where commissioning watches the statistics.
pub const STATS_LOG_PERIOD_DRY_RUN_S: f64 = 300.0;
/// How long start-up waits for the first poll round before the first control step.
pub const FIRST_ROUND_LIMIT: Duration = Duration::from_secs(3);
/// Real time of a reading's age that is not counted against its max age: the host's
/// scheduling allowance (see [`crate::field::FieldShared::set_age_allowance_s`]); scaled with the clock.
pub const REAL_AGE_ALLOWANCE: Duration = Duration::from_millis(50);
/// How long shutdown waits for the safe positions to be written and verified.
pub const SHUTDOWN_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The configuration file.
    pub config_path: PathBuf,
    /// Poll and compute, log the writes, write nothing.
    pub dry_run: bool,
    /// The clock (wall, or scaled for the rig).
    pub clock: Arc<dyn Clock>,
    /// Where the slow control state (demand shift, damped outdoor) is kept across restarts:
    /// read at start, written every [`STATE_SAVE_PERIOD_S`] (at most once a real second on an
    /// accelerated clock) and on shutdown. None: not kept.
    pub state_path: Option<PathBuf>,
    /// Where the audit log (`audit.jsonl`) and the platform queue are kept (the package:
    /// /var/lib/heatctl). None: the audit log is kept in memory only and the platform link
    /// queues nothing on disk.
    pub state_dir: Option<PathBuf>,
}

/// Running heatctl inside another program (the demo): the configuration is handed over
/// already loaded (no file is watched and SIGHUP does nothing), the program stops the run
/// through `stop`, and each cycle's snapshot is published on `snapshots`.
#[derive(Debug)]
pub struct Embedding {
    /// The configuration to run.
    pub loaded: LoadedConfig,
    /// The run ends (safe positions written) when this becomes true.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// Where every cycle's snapshot is published.
    pub snapshots: SnapshotSender,
}

/// The running controller as a future: what [`run`] and [`run_embedded`] return (boxed: see
/// [`crate::BoxFuture`]).
pub type RunFuture = crate::BoxFuture<'static, anyhow::Result<()>>;

/// Load the configuration and run until SIGINT or SIGTERM.
///
/// # Errors
/// The configuration is invalid (every problem listed), or a signal handler or the SCADA
/// address cannot be set up.
pub fn run(opts: RunOptions) -> RunFuture {
    Box::pin(async move {
        let loaded = config::load(&opts.config_path).map_err(|p| anyhow::anyhow!("{p}"))?;
        let (snapshots, _) = tokio::sync::watch::channel(None);
        cycle::run_inner(opts, loaded, None, snapshots).await
    })
}

/// Run with an already loaded configuration until `embedding.stop` becomes true (or SIGINT or
/// SIGTERM), reporting every cycle. The configuration file is not watched.
///
/// # Errors
/// A signal handler or the SCADA address cannot be set up.
pub fn run_embedded(opts: RunOptions, embedding: Embedding) -> RunFuture {
    let Embedding {
        loaded,
        stop,
        snapshots,
    } = embedding;
    Box::pin(cycle::run_inner(opts, loaded, Some(stop), snapshots))
}
